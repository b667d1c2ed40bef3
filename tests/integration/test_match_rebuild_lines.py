"""``enlace match rebuild`` without a terminal says how far it is, on stderr only, with
``--json`` too; ``--quiet`` silences it.

Why: from cron or ``ssh`` without a TTY rich draws no bar, and a rebuild of a large holder
printed nothing until its table. The CLI runner's streams are not terminals, as there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from cli_support import enlace
from match_support import pan_with_records

from node.matching.sources import MATCH_DATASETS

LINE = re.compile(r"(\w+): ([\d,]+) of ([\d,]+) records evaluated \((\d+)%, \d+ s\)")


def test_rebuild_off_a_terminal_writes_progress_lines_to_stderr_only(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    live = pan_with_records(live_federation_factory, tmp_path_factory.getbasetemp())
    home = str(live.federation.homes["PAN"].root)

    result = enlace("match", "rebuild", "--home", home)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    counts = [m.groups() for m in map(LINE.fullmatch, lines) if m]
    assert [d for d in dict.fromkeys(d for d, *_ in counts)] == list(MATCH_DATASETS)
    for dataset in MATCH_DATASETS:
        mine = [(done, of, share) for d, done, of, share in counts if d == dataset]
        assert mine[0][0] == "0" and mine[-1][0] == mine[-1][1] and mine[-1][2] == "100"
        assert f"{dataset}: writing, publishing" in lines
    assert len(lines) == len(counts) + len(MATCH_DATASETS), lines  # nothing else
    assert "records evaluated" not in result.stdout  # stdout: the table, as before
    assert "Filters rebuilt" in result.stdout

    # --json: stdout is the JSON document only; the same progress lines are on stderr.
    as_json = enlace("match", "rebuild", "--home", home, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert [r["dataset"] for r in json.loads(as_json.stdout)] == list(MATCH_DATASETS)
    json_lines = as_json.stderr.splitlines()
    named = [m.group(1) for m in map(LINE.fullmatch, json_lines) if m]
    assert list(dict.fromkeys(named)) == list(MATCH_DATASETS), json_lines
    assert all(f"{dataset}: writing, publishing" in json_lines for dataset in MATCH_DATASETS)

    quiet = enlace("match", "rebuild", "--home", home, "--json", "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert [r["dataset"] for r in json.loads(quiet.stdout)] == list(MATCH_DATASETS)
    assert quiet.stderr == ""  # --quiet: no progress at all
