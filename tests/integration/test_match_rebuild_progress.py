"""A rebuild reports its progress (``Holder.rebuild(progress=...)``, the bar of ``enlace match
rebuild``), and reporting changes nothing it builds.

Why: a rebuild of 100,000 encounters runs for minutes; without progress an operator cannot
tell it from a hung command. The callback is called per dataset, from 0 to every record the
dataset reads, whether records are evaluated in this process or in worker processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from match_support import holder, pan_with_records

from crypto.match_keys import oprf_key_for
from crypto.oprf import Mode
from node.matching import evaluation
from node.matching.evaluation import evaluate_records, key_and_evaluate
from node.matching.sources import MATCH_DATASETS, count_records, iter_records

Call = tuple[str, int, int]


def _check(calls: list[Call], totals: dict[str, int]) -> None:
    """Per dataset, in order: (0, total) first, then non-decreasing counts, ending at total."""
    assert [d for d in dict.fromkeys(d for d, _, _ in calls)] == list(totals)
    for dataset, total in totals.items():
        mine = [(done, of) for d, done, of in calls if d == dataset]
        assert mine[0] == (0, total) and mine[-1] == (total, total)
        assert {of for _, of in mine} == {total}
        assert [done for done, _ in mine] == sorted(done for done, _ in mine)


def test_rebuild_reports_every_dataset_from_zero_to_its_records(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    live = pan_with_records(live_federation_factory, tmp_path_factory.getbasetemp())
    now = live.clocks["PAN"].now()
    pan = holder(live.runtimes["PAN"])
    engine = live.runtimes["PAN"].store.engine
    totals = {d: count_records(engine, d) for d in MATCH_DATASETS}
    assert totals["identities"] > 300  # encounters and travel documents

    calls: list[Call] = []
    reports = pan.rebuild(now, progress=lambda *call: calls.append(call))
    _check(calls, totals)
    assert [r.dataset for r in reports] == list(MATCH_DATASETS)

    # Without a callback the same entries are built: the rebuild is the same rebuild.
    epoch = pan.state().epoch
    entries = {d: live.runtimes["PAN"].store.matching.prefixes(d, epoch) for d in MATCH_DATASETS}
    pan.rebuild(now)
    assert {
        d: live.runtimes["PAN"].store.matching.prefixes(d, epoch) for d in MATCH_DATASETS
    } == entries

    rotated: list[Call] = []
    pan.rotate(now, progress=lambda *call: rotated.append(call))
    _check(rotated, totals)


def test_progress_comes_in_chunks_in_this_process_and_from_workers(
    live_federation_factory: Callable[..., Any],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = pan_with_records(live_federation_factory, tmp_path_factory.getbasetemp())
    engine = live.runtimes["PAN"].store.engine
    items = [(r.source, r.row) for r in iter_records(engine, "identities")]
    epoch, mode, master = 1, Mode.OPRF, bytes(range(32))
    key = oprf_key_for(master, "identities", epoch, mode)
    expected = key_and_evaluate(key, mode, "identities", items)

    monkeypatch.setattr(evaluation, "_PROGRESS_CHUNK", 100)
    done: list[int] = []
    here = evaluate_records(master, "identities", epoch, mode, iter(items), 1, done.append)
    assert here == expected  # a key shared by two chunks is evaluated twice, to the same bytes
    assert done == [*range(100, len(items), 100), len(items)]

    monkeypatch.setattr(evaluation, "PARALLEL_THRESHOLD", 100)
    monkeypatch.setattr(evaluation, "_CHUNK", 64)
    done.clear()
    workers = evaluate_records(master, "identities", epoch, mode, iter(items), 2, done.append)
    assert workers == expected
    steps = [b - a for a, b in zip([0, *done], done, strict=False)]
    assert done[-1] == len(items) and len(done) > 2 and all(0 < s <= 64 for s in steps)


def test_the_rebuild_table_fits_80_columns_with_headers_and_datasets_whole(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from typer.testing import CliRunner

    from node.cli.main import app

    live = pan_with_records(live_federation_factory, tmp_path_factory.getbasetemp())
    home = str(live.federation.homes["PAN"].root)
    result = CliRunner().invoke(app, ["match", "rebuild", "--home", home], terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "dataset" in line)
    for column in ("dataset", "version", "records keyed", "keys", "seconds"):
        assert column in header
    for dataset in MATCH_DATASETS:
        assert any(f" {dataset} " in line for line in lines)
    assert "…" not in result.output
