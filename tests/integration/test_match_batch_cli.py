"""``enlace match batch`` on files with bad rows, through the real command against a real
federation: PAN holds generated records and serves them; CRI asks.

Why: every element a batch sends costs quota at each peer, so a file is checked whole before
anything is sent, every problem is reported at once as ``file:row:column: problem — fix``, and
either nothing is asked (the default) or, with ``--skip-invalid --rejects FILE`` (the flags of
``enlace ingest``), only the valid rows are asked and the others set aside with their reasons.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_support import enlace
from match_support import read_csv, serving_holder

from node.matching.peers import EVALUATE
from node.runtime import NodeRuntime


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    return serving_holder(live_federation_factory(), tmp_path_factory.getbasetemp(), 300, 23)


def _inbound(runtime: NodeRuntime) -> list[Any]:
    """PAN's audit entries of calls CRI made to it."""
    return [
        e.record
        for e in runtime.store.iter_audit()
        if e.record.direction == "inbound" and e.record.peer == "CRI"
    ]


def _batch(fed: Any, path: Path) -> list[str]:
    """A batch of 6 documents PAN holds, with a person whose birth date does not exist in
    row 3 and a document of an unknown state in row 6; returns the valid rows' ids."""
    documents = read_csv(fed.files / "travel_documents.csv")[:6]
    rows = [[f"q{n}", d["document_number"], d["issuing_state"], "", "", ""]
            for n, d in enumerate(documents)]  # fmt: skip
    rows.insert(1, ["bad-date", "", "", "GARCIA LOPEZ", "MARIA", "2003-02-30"])
    rows.insert(4, ["bad-state", "AB1234567", "XYZ", "", "", ""])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["id", "document_number", "issuing_state", "surname", "given_names", "birth_date"]
        )
        writer.writerows(rows)
    return [f"q{n}" for n in range(6)]


def test_every_bad_row_is_reported_and_nothing_is_asked(fed: Any, tmp_path: Path) -> None:
    queries = tmp_path / "q.csv"
    _batch(fed, queries)
    home = str(fed.federation.homes["CRI"].root)
    before = len(_inbound(fed.runtimes["PAN"]))

    result = enlace("match", "batch", str(queries), "--home", home)

    assert result.exit_code == 1
    assert f"{queries}:3:birth_date: 2003-02-30 is not a calendar date" in result.output
    assert f"{queries}:6:issuing_state: state code 'XYZ'" in result.output
    assert "2 problem(s) in 2 of 8 row(s)" in result.output
    assert "nothing was asked" in result.output and "--skip-invalid" in result.output
    assert not (tmp_path / "q.results.csv").exists()
    assert len(_inbound(fed.runtimes["PAN"])) == before  # no sync, no Evaluate: no quota spent

    as_json = enlace("match", "batch", str(queries), "--home", home, "--json")
    assert as_json.exit_code == 1
    refused = json.loads(as_json.stdout)
    assert refused["error_count"] == 2
    assert [(e["row"], e["column"]) for e in refused["errors"]] == [
        (3, "birth_date"),
        (6, "issuing_state"),
    ]
    assert len(_inbound(fed.runtimes["PAN"])) == before


def test_skip_invalid_asks_only_the_valid_rows_and_sets_the_others_aside(
    fed: Any, tmp_path: Path
) -> None:
    queries, rejects = tmp_path / "q.csv", tmp_path / "refused.csv"
    valid = _batch(fed, queries)
    home = str(fed.federation.homes["CRI"].root)

    half = enlace("match", "batch", str(queries), "--home", home, "--skip-invalid")
    assert half.exit_code == 1 and "--skip-invalid and --rejects go together" in half.output
    assert len(_inbound(fed.runtimes["PAN"])) == 0

    result = enlace("match", "batch", str(queries), "--home", home, "--peer", "PAN",
                    "--skip-invalid", "--rejects", str(rejects), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["queries"], summary["rows"], summary["refused"]) == (6, 8, 2)
    assert summary["rejects_file"] == str(rejects)
    assert [(e["row"], e["column"]) for e in summary["errors"]] == [
        (3, "birth_date"),
        (6, "issuing_state"),
    ]

    results = read_csv(Path(summary["results_file"]))
    assert {r["id"] for r in results} == set(valid)
    hits = {r["id"] for r in results if r["dataset"] == "travel_documents" and r["result"] == "hit"}
    assert hits == set(valid)
    asked = sum(
        int(r.extra.get("elements", 0))
        for r in _inbound(fed.runtimes["PAN"])
        if r.method == EVALUATE and r.status == "OK"
    )
    assert asked == summary["elements"] == 6 * 3  # 6 documents, 3 document datasets

    refused = read_csv(rejects)
    assert [(r["id"], r["_source"]) for r in refused] == [
        ("bad-date", f"{queries}:3"),
        ("bad-state", f"{queries}:6"),
    ]
    assert refused[0]["birth_date"] == "2003-02-30"
    assert refused[0]["_error"].startswith("birth_date: 2003-02-30 is not a calendar date")
    assert refused[1]["_error"].startswith("issuing_state: state code 'XYZ'")

    table = enlace("match", "batch", str(queries), "--home", home, "--peer", "PAN",
                   "--skip-invalid", "--rejects", str(rejects))  # fmt: skip
    assert table.exit_code == 0
    assert f"2 row(s) refused, not asked, written with their reasons to {rejects}" in table.output
    assert f"{queries}:6:issuing_state:" in table.output


def test_a_missing_file_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    result = enlace("match", "batch", str(missing), "--home", str(tmp_path / "home"))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: cannot read {missing}: No such file or directory — ")
    assert "CSV file of queries" in line

    as_json = enlace("match", "batch", str(missing), "--home", str(tmp_path / "home"), "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["status"] == "INVALID_ARGUMENT"
