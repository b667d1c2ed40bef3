"""The rejects file of ``--skip-invalid`` loses and moves nothing, and runs nothing.

Why: the rejects file is how an operator recovers refused rows — fix the cells, re-import.
A row written under the wrong column names (a misshapen row laid over the dataset's columns)
would be "fixed" into garbage and imported; a cell cut off would be lost. A misshapen row is
therefore kept whole, as read, in ``_raw``; a row read whole is written under its columns by
name, whatever the file's column order. Every cell, ``_source`` included, is inert in a
spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest

from node.ingest import IngestError
from node.ingest.pipeline import ingest
from node.ingest.report import IngestReport
from node.records.datasets import ENCOUNTERS
from node.store import Store, open_store

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
COLUMNS = list(ENCOUNTERS.columns)
HEADER = [*COLUMNS, "_error", "_source", "_raw"]


def encounter(i: int, **changes: str) -> dict[str, str]:
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        record_id=f"PANE{i:09d}", person_id=f"PANP{i:08d}", event_type="encounter",
        event_date="2023-09-14", nationality="HTI", nationality_basis="declared", sex="F",
        birth_date="1994-07", age_group="Y25T34", care_provided="food;health",
        surname="Jean-Baptiste", given_names="Marie",
    )  # fmt: skip
    row.update(changes)
    return row


def csv_lines(order: list[str], rows: list[dict[str, str]]) -> list[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(order)
    writer.writerows([r[c] for c in order] for r in rows)
    return buffer.getvalue().splitlines()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


def skipping(
    store: Store, path: Path | str, rejects: Path
) -> tuple[IngestReport, list[dict[str, str]]]:
    """Import with --skip-invalid; the report and the rejects file's rows."""
    report = ingest(store, "encounters", [path], now=NOW, skip_invalid=True, rejects_path=rejects)
    with rejects.open(encoding="utf-8", newline="") as handle:
        return report, list(csv.DictReader(handle))


def test_a_misshapen_row_is_kept_whole_in_the_files_order(store: Store, tmp_path: Path) -> None:
    order = list(reversed(COLUMNS))  # another column order: allowed
    lines = csv_lines(order, [encounter(0), encounter(1), encounter(2), encounter(3)])
    lines[2] = lines[2].replace("Marie", "Marie, Nadège", 1)  # an unquoted comma: 17 cells
    lines[3] = lines[3].rsplit(",", 3)[0]  # cut short: 13 cells
    path = tmp_path / "e.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report, rejected = skipping(store, path, tmp_path / "rejects.csv")
    assert (report.total("added"), report.total("rejected")) == (2, 2)
    assert list(rejected[0]) == HEADER
    assert [r["_source"] for r in rejected] == [f"{path}:3", f"{path}:4"]
    assert "the row has 17 cells; the header has 16" in rejected[0]["_error"]
    assert "the row has 13 cells; the header has 16" in rejected[1]["_error"]
    assert [r["_raw"] for r in rejected] == [lines[2], lines[3]]  # as read: nothing lost
    for row in rejected:
        assert all(row[c] == "" for c in COLUMNS)  # no cell under another column's name


def test_re_importing_the_rejects_as_they_stand_imports_no_garbage(
    store: Store, tmp_path: Path
) -> None:
    lines = csv_lines(list(reversed(COLUMNS)), [encounter(0), encounter(1)])
    lines[2] = lines[2].replace("Marie", "Marie, Nadège", 1)
    path = tmp_path / "e.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, rejected = skipping(store, path, tmp_path / "rejects.csv")
    again = tmp_path / "again.csv"
    again.write_text("\n".join(csv_lines(COLUMNS, rejected)) + "\n", encoding="utf-8")
    with pytest.raises(IngestError) as caught:
        ingest(store, "encounters", [again], now=NOW)
    assert {e.column for e in caught.value.errors} >= {"record_id", "person_id"}
    assert all(e.problem == "required but empty" for e in caught.value.errors[:2])
    assert store.records.counts()["encounters"] == 1


def test_a_row_read_whole_is_written_by_column_name(store: Store, tmp_path: Path) -> None:
    order = list(reversed(COLUMNS))
    lines = csv_lines(order, [encounter(0), encounter(1, sex="Q", surname="Pérez, García")])
    path = tmp_path / "e.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, [row] = skipping(store, path, tmp_path / "rejects.csv")
    expected = encounter(1, sex="Q", surname="Pérez, García")
    assert {c: row[c] for c in COLUMNS} == expected
    assert row["_raw"] == "" and "sex: 'Q'" in row["_error"]


def test_refused_json_lines_are_kept_as_read(store: Store, tmp_path: Path) -> None:
    good = json.dumps(encounter(0))
    broken = '{"record_id": "PANE000000001", "sex": F}'
    unknown = json.dumps(encounter(2) | {"colour": "blue"})
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join([good, broken, unknown]) + "\n", encoding="utf-8")
    report, rejected = skipping(store, path, tmp_path / "rejects.csv")
    assert (report.total("added"), report.total("rejected")) == (1, 2)
    assert [r["_raw"] for r in rejected] == [broken, unknown]


def test_a_spreadsheet_row_with_a_value_beyond_the_header_is_kept_whole(
    store: Store, tmp_path: Path
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    order = list(reversed(COLUMNS))
    sheet.append(order)
    sheet.append([encounter(0)[c] for c in order])
    sheet.append([*(encounter(1)[c] for c in order), "Nadège"])
    path = tmp_path / "e.xlsx"
    book.save(path)
    _, [row] = skipping(store, path, tmp_path / "rejects.csv")
    assert "a value sits in a column without a header" in row["_error"]
    assert next(csv.reader([row["_raw"]])) == [*(encounter(1)[c] for c in order), "Nadège"]
    assert all(row[c] == "" for c in COLUMNS)


def test_the_source_cell_is_neutralised_like_the_others(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name = '=HYPERLINK("example.invalid")+0.csv'  # a name chosen by a file's sender
    lines = csv_lines(COLUMNS, [encounter(0), encounter(1, sex="Q")])
    Path(name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, [row] = skipping(store, name, tmp_path / "rejects.csv")
    assert row["_source"] == f"'{name}:3"
    misshapen = "-1+cmd.csv"
    Path(misshapen).write_text("\n".join([lines[0], "=1+2,x"]) + "\n", encoding="utf-8")
    _, [row] = skipping(store, misshapen, tmp_path / "more.csv")
    assert (row["_source"], row["_raw"]) == (f"'{misshapen}:2", "'=1+2,x")
