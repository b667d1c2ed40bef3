"""``enlace match biometric --case`` through the real command against a live holder: which hits
are followed up, and how a follow-up that is not made is shown and exits.

Why: as for ``enlace match person --case`` (tests/integration/test_match_case_cli.py), a
follow-up is what the operator asked for. One the agreement cannot allow is not asked and says
why; one that fails is in the table and in the JSON (``status: failed``, the reason, and the
hit reference to redeem later), and the command exits 1 — after the results file is written.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bio_support import (
    biometric_agreement,
    generated,
    install,
    load,
    read_rows,
    recapture,
    template_row,
    vectors,
    write_templates,
)
from cli_support import enlace

from node.biometrics.service import FOLLOW_UP
from policies.agreement import Quotas


def _federation(
    factory: Callable[..., Any], root: Path, *, followup: bool = True, per_day: int = 50
) -> Any:
    """PAN serves its generated templates to CRI; the follow-up grant allows ``per_day``."""
    live = factory(("PAN", "CRI"))
    now = live.clocks["PAN"].now()
    live.files = generated(root, "PAN")
    load(live.runtimes["PAN"], live.files, now)
    agreement = biometric_agreement("PAN", "CRI", now, followup=followup)
    if followup:
        search, grant = agreement.grants
        limited = dataclasses.replace(grant, quotas=Quotas(per_day=per_day, per_quarter=None))
        agreement = dataclasses.replace(agreement, grants=(search, limited))
    install(live.runtimes, agreement, now)
    live.serve("PAN")
    return live


def _probe_file(live: Any, tmp_path: Path) -> Path:
    """A recapture of one of PAN's templates (also as ``batch.npy``, for a batch of one)."""
    rows = read_rows(live.files / "biometric_templates.csv")
    faces = recapture(vectors(rows[:1]), seed=8)
    np.save(tmp_path / "batch.npy", faces)
    return write_templates(tmp_path / "probe.csv", [template_row("CRIB1", "CRIP1", faces[0])])


def _probe(live: Any, probe: Path, *extra: str) -> Any:
    home = str(live.federation.homes["CRI"].root)
    return enlace("match", "biometric", "--home", home, "--template", str(probe),
                  "--peer", "PAN", "--case", "CRI-B-1", *extra)  # fmt: skip


def _followups_served(live: Any) -> int:
    return sum(
        1
        for e in live.runtimes["PAN"].store.iter_audit()
        if e.record.direction == "inbound" and e.record.method == FOLLOW_UP
    )


def test_a_biometric_hit_without_a_follow_up_grant_is_not_asked_and_says_so(
    live_federation_factory: Callable[..., Any],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    live = _federation(live_federation_factory, tmp_path_factory.getbasetemp(), followup=False)
    probe = _probe_file(live, tmp_path)
    as_json = _probe(live, probe, "--json")
    assert as_json.exit_code == 0, as_json.output
    (entry,) = json.loads(as_json.stdout)["followups"]
    assert (entry["label"], entry["peer"], entry["status"]) == ("CRIB1", "PAN", "not asked")
    assert entry["dataset"] == "biometric_templates"
    assert "grants no follow-up attribute" in entry["reason"]

    table = _probe(live, probe)
    assert table.exit_code == 0, table.output
    assert "Follow-ups (case CRI-B-1)" in table.output and "not asked" in table.output
    assert _followups_served(live) == 0  # never called


def test_a_failed_biometric_follow_up_is_in_the_table_and_the_json_and_exits_1(
    live_federation_factory: Callable[..., Any],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    live = _federation(live_federation_factory, tmp_path_factory.getbasetemp(), per_day=1)
    probe = _probe_file(live, tmp_path)
    first = _probe(live, probe, "--json")
    assert first.exit_code == 0, first.output
    (released,) = json.loads(first.stdout)["followups"]
    assert released["status"] == "released" and released["released"]["nationality"]

    again = _probe(live, probe, "--json")  # the day's one follow-up is spent: PAN refuses
    assert again.exit_code == 1, again.output
    report = json.loads(again.stdout)
    (result,) = report["probes"][0]["results"]
    assert result["result"] in ("strong", "probable")
    (failed,) = report["followups"]
    assert (failed["label"], failed["peer"], failed["status"]) == ("CRIB1", "PAN", "failed")
    assert "quota" in failed["reason"].lower()
    assert failed["hit_reference"] == result["hit_reference"]  # to redeem it later

    table = _probe(live, probe)
    assert table.exit_code == 1
    assert "Follow-ups (case CRI-B-1)" in table.output and "failed" in table.output
    assert "1 of 1 follow-up(s) failed" in " ".join(table.output.split())

    out = tmp_path / "results.csv"
    home = str(live.federation.homes["CRI"].root)
    batch = enlace("match", "biometric", "--home", home, "--batch", str(tmp_path / "batch.npy"),
                   "--peer", "PAN", "--out", str(out), "--case", "CRI-B-1", "--json")  # fmt: skip
    assert batch.exit_code == 1, batch.output
    data = json.loads(batch.stdout)
    assert data["results_file"] == str(out)  # written all the same
    assert [f["status"] for f in data["followups"]] == ["failed"]
    with out.open(encoding="utf-8", newline="") as handle:
        assert [r["result"] for r in csv.DictReader(handle)] == [result["result"]]
