"""Bad input never corrupts or loses data: every refused import leaves the store exactly as
it was (same rows in every records table, same import history), on SQLite and PostgreSQL, and
the operator gets ``file:row:column: problem — fix`` lines that say what to change."""

from __future__ import annotations

import base64
import csv
import io
import json
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from node.errors import InvalidArgumentError
from node.ingest import IngestError, RowError
from node.ingest import pipeline as ingest_pipeline
from node.ingest.pipeline import ingest
from node.records.datasets import DATASETS, ENCOUNTERS, validate_row
from node.records.icao import make_td3
from node.store import Store, open_store
from node.store.records_schema import DATASET_TABLES, encounter_codes, imports

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def encounter(i: int, **changes: str) -> dict[str, str]:
    row = {
        "record_id": f"PANE{i:09d}",
        "person_id": f"PANP{i:08d}",
        "event_type": "encounter",
        "event_date": "2023-09-14",
        "border_post": "",
        "nationality": "HTI",
        "nationality_basis": "declared",
        "sex": "F",
        "birth_date": "1994-07",
        "age_group": "Y25T34",
        "care_provided": "food;health",
        "vulnerabilities": "",
        "document_number": "",
        "document_country": "",
        "surname": "Jean-Baptiste",
        "given_names": "Marie",
    }
    row.update(changes)
    return row


def csv_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(rows[0])
    writer.writerows(row.values() for row in rows)
    return buffer.getvalue()


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    tables = [*DATASET_TABLES.values(), encounter_codes, imports]
    with store.engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in tables}  # type: ignore[misc]


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    """A store already holding three encounters, so 'as before' is not just 'empty'."""
    opened = open_store(database_url)
    seed = tmp_path / "seed.csv"
    seed.write_text(csv_text([encounter(i) for i in range(3)]), encoding="utf-8")
    ingest(opened, "encounters", [seed], now=NOW)
    yield opened
    opened.close()


def refused(
    store: Store, paths: list[Path], dataset: str = "encounters", **kw: Any
) -> list[RowError]:
    """Run an import that must be refused; check nothing changed; return its problems."""
    before = snapshot(store)
    with pytest.raises(IngestError) as caught:
        ingest(store, dataset, paths, now=NOW, **kw)
    assert snapshot(store) == before
    assert caught.value.errors and caught.value.error_count >= len(caught.value.errors)
    return caught.value.errors


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_latin1_file_is_refused_with_line_and_conversion(store: Store, tmp_path: Path) -> None:
    rows = [encounter(10), encounter(11), encounter(12, surname="Pérez")]
    path = write(tmp_path, "latin.csv", csv_text(rows), encoding="latin-1")
    [error] = refused(store, [path])
    assert (error.row, error.column) == (4, "-")
    assert "byte 0xE9 is not UTF-8 (it looks like Latin-1 / Windows-1252)" in error.problem
    assert "iconv -f WINDOWS-1252 -t UTF-8" in error.fix
    assert str(error).startswith(f"{path}:4:-: byte 0xE9")


def test_boms(store: Store, tmp_path: Path) -> None:
    text = csv_text([encounter(10)])
    utf16 = write(tmp_path, "utf16.csv", "\ufeff" + text, encoding="utf-16-le")
    [error] = refused(store, [utf16])
    assert "UTF-16" in error.problem
    with_bom = write(tmp_path, "bom.csv", "\ufeff" + text)
    report = ingest(store, "encounters", [with_bom], now=NOW)
    assert report.total("added") == 1  # the BOM is not part of the first column's name


@pytest.mark.parametrize(
    "column, value",
    [
        ("surname", '=HYPERLINK("http://x","y")'),
        ("given_names", "+cmd|' /C calc'!A0"),
        ("surname", "@SUM(1+1)*cmd"),
        ("given_names", "-2+3+cmd"),
        ("surname", "\tMarie"),
    ],
)
def test_formula_injection_is_refused(
    store: Store, tmp_path: Path, column: str, value: str
) -> None:
    path = write(tmp_path, "f.csv", csv_text([encounter(10, **{column: value})]))
    [error] = refused(store, [path])
    assert error.column == column and "spreadsheets run as a formula" in error.problem


def test_numbers_with_a_sign_are_not_formulas(store: Store, tmp_path: Path) -> None:
    row = {
        "origin_country": "IND",
        "host_country": "PAN",
        "city": "Ciudad de Panamá",
        "consulate_name": "Embajada de India",
        "address": "",
        "phone": "+507 263 9001",
        "email": "",
        "procedures": "passport_issue;visa",
    }
    path = write(tmp_path, "c.csv", csv_text([row]))
    assert ingest(store, "consular_directory", [path], now=NOW).total("added") == 1
    with_minus = write(tmp_path, "m.csv", csv_text([dict(row, phone="-507 263 9001")]))
    [error] = refused(store, [with_minus], "consular_directory")
    assert error.column == "phone" and "expected form" in error.problem


def test_truncated_files(store: Store, tmp_path: Path) -> None:
    text = csv_text([encounter(i) for i in range(10, 14)])
    cut = write(tmp_path, "cut.csv", text[: text.rindex(",Y25T34")])
    [error] = refused(store, [cut])
    assert (error.row, error.column) == (5, "-") and "the row has 9 cells" in error.problem
    unclosed = write(tmp_path, "quote.csv", text + 'PANE000000099,"PANP1,encounter\n')
    [error] = refused(store, [unclosed])
    assert error.row == 6 and "quoted cell is never closed" in error.problem


def test_huge_fields(store: Store, tmp_path: Path) -> None:
    long_name = write(tmp_path, "a.csv", csv_text([encounter(10, surname="A" * 81)]))
    [error] = refused(store, [long_name])
    assert error.column == "surname" and "81 characters; at most 80" in error.problem
    long_codes = write(tmp_path, "b.csv", csv_text([encounter(11, care_provided="food;" * 1000)]))
    [error] = refused(store, [long_codes])
    assert "at most 4096" in error.problem
    enormous = write(tmp_path, "c.csv", csv_text([encounter(12, surname="B" * (1 << 21))]))
    [error] = refused(store, [enormous])
    assert "longer than 1048576 characters" in error.problem


def test_unknown_codes_come_with_suggestions(store: Store, tmp_path: Path) -> None:
    rows = [
        encounter(10, nationality="HIT"),
        encounter(11, event_type="Encounter"),
        encounter(12, care_provided="food;helth"),
    ]
    errors = refused(store, [write(tmp_path, "c.csv", csv_text(rows))])
    assert [(e.row, e.column) for e in errors] == [
        (2, "nationality"),
        (3, "event_type"),
        (4, "care_provided"),
    ]
    assert "did you mean 'HTI'" in errors[0].fix
    assert "did you mean 'encounter'" in errors[1].fix
    assert "'helth' is not a code of care" in errors[2].problem and "'health'" in errors[2].fix


def test_impossible_dates(store: Store, tmp_path: Path) -> None:
    rows = [
        encounter(10, event_date="2023-02-30"),
        encounter(11, birth_date="1990-13"),
        encounter(12, event_date="2027-01-01"),
        encounter(13, birth_date="2023-02-29"),
        encounter(14, event_date="14/09/2023"),
    ]
    errors = refused(store, [write(tmp_path, "d.csv", csv_text(rows))])
    assert [e.column for e in errors] == [
        "event_date",
        "birth_date",
        "event_date",
        "birth_date",
        "event_date",
    ]
    assert "2023-02-30 does not exist" in errors[0].problem
    assert "month 13 does not exist" in errors[1].problem
    assert "after the import date 2026-11-28" in errors[2].problem
    assert "February 2023 has 28 days" in errors[3].problem
    assert "not a date YYYY-MM-DD" in errors[4].problem


def _document(mrz: str, **changes: str) -> dict[str, str]:
    row = {
        "record_id": "PAND1",
        "person_id": "PANP1",
        "document_type": "P",
        "document_number": "L898902C3",
        "issuing_state": "IND",
        "nationality": "IND",
        "surname": "Eriksson",
        "given_names": "Anna Maria",
        "birth_date": "1974-08-12",
        "sex": "F",
        "expiry_date": "2031-04-15",
        "first_seen_date": "2023-09-14",
        "mrz": mrz,
    }
    row.update(changes)
    return row


def test_bad_check_digits_and_mrz_mismatch(store: Store, tmp_path: Path) -> None:
    good = make_td3(
        issuing_state="IND",
        surname="Eriksson",
        given_names="Anna Maria",
        document_number="L898902C3",
        nationality="IND",
        birth_date="1974-08-12",
        sex="F",
        expiry_date="2031-04-15",
    )
    line1, line2 = good.split("\n")
    digit = str((int(line2[9]) + 1) % 10)
    bad_digit = line1 + line2[:9] + digit + line2[10:]  # one 88-character line
    rows = [_document(bad_digit), _document(good, record_id="PAND2", document_number="L898902C4")]
    errors = refused(store, [write(tmp_path, "t.csv", csv_text(rows))], "travel_documents")
    assert [(e.row, e.column) for e in errors] == [(2, "mrz"), (3, "mrz")]
    assert "MRZ document_number: check digit is" in errors[0].problem
    assert "document number 'L898902C3' differs from the row's 'L898902C4'" in errors[1].problem
    ok = write(tmp_path, "ok.csv", csv_text([_document(good)]))
    assert ingest(store, "travel_documents", [ok], now=NOW).total("added") == 1


def test_duplicate_rows_inside_a_file_name_both_rows(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [encounter(10), encounter(11), encounter(10, sex="M"), encounter(12), encounter(11)]
    path = write(tmp_path, "dup.csv", csv_text(rows))
    errors = refused(store, [path])
    assert [str(e).split(" — ")[0] for e in errors] == [
        f"{path}:4:record_id: record_id 'PANE000000010' repeats row 2",
        f"{path}:6:record_id: record_id 'PANE000000011' repeats row 3",
    ]
    monkeypatch.setattr(ingest_pipeline, "BATCH_ROWS", 2)  # the first row is in an earlier batch
    assert [e.row for e in refused(store, [path])] == [4, 6]
    other = write(tmp_path, "other.csv", csv_text([encounter(12)]))
    errors = refused(store, [other, path])
    assert [(e.row, e.problem.split(" repeats ")[1]) for e in errors] == [
        (4, "row 2"),
        (5, f"{other} row 2"),
        (6, "row 3"),
    ]


def test_an_error_in_a_later_file_keeps_the_earlier_one_out(store: Store, tmp_path: Path) -> None:
    good = write(tmp_path, "good.csv", csv_text([encounter(i) for i in range(20, 30)]))
    bad = write(tmp_path, "bad.csv", csv_text([encounter(30, sex="W")]))
    [error] = refused(store, [good, bad])
    assert error.file == str(bad)


def test_header_problems(store: Store, tmp_path: Path) -> None:
    row = encounter(10)
    row["nacionality"] = row.pop("nationality")
    errors = refused(store, [write(tmp_path, "h.csv", csv_text([row]))])
    assert [(e.row, e.column, e.problem) for e in errors] == [
        (1, "nacionality", "unknown column"),
        (1, "nationality", "required column is missing"),
    ]
    assert errors[0].fix.startswith("did you mean 'nationality'?")
    with pytest.raises(IngestError):  # header problems stop --skip-invalid too
        ingest(
            store,
            "encounters",
            [tmp_path / "h.csv"],
            now=NOW,
            skip_invalid=True,
            rejects_path=tmp_path / "r.csv",
        )
    assert not (tmp_path / "r.csv").exists()


def test_xlsx_without_a_matching_sheet_and_with_formulas(store: Store, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["something", "else"])
    book.save(tmp_path / "none.xlsx")
    [error] = refused(store, [tmp_path / "none.xlsx"])
    assert "no sheet has the header of encounters" in error.problem
    sheet.title = "encounters"
    sheet.delete_rows(1)
    sheet.append(ENCOUNTERS.columns)
    row = encounter(10)
    sheet.append([row[c] or None for c in ENCOUNTERS.columns])
    sheet.cell(row=2, column=ENCOUNTERS.columns.index("surname") + 1, value='=CONCAT("a","b")')
    book.save(tmp_path / "formula.xlsx")
    [error] = refused(store, [tmp_path / "formula.xlsx"])
    assert (error.row, error.column) == (2, "surname") and "formula" in error.problem


def test_bad_json_lines(store: Store, tmp_path: Path) -> None:
    text = '{"record_id": "PANE1"\n["a"]\n{"record_id": "PANE2", "colour": "blue"}\n'
    errors = refused(store, [write(tmp_path, "e.jsonl", text)])
    assert [(e.row, e.column) for e in errors] == [(1, "-"), (2, "-"), (3, "colour")]
    assert "not valid JSON" in errors[0].problem


def test_a_json_field_written_twice_is_refused(store: Store, tmp_path: Path) -> None:
    """JSON parsers keep the last of two values silently; the record would be imported with
    whichever the exporting program wrote last."""
    first = json.dumps(encounter(10))
    twice = json.dumps(encounter(11))[:-1] + ', "nationality": "CUB"}'  # HTI, then CUB
    nested = json.dumps(encounter(12))[:-1] + ', "care_provided": {"a": 1, "a": 2}}'
    path = write(tmp_path, "e.jsonl", "\n".join([first, twice, nested]) + "\n")
    errors = refused(store, [path])
    assert [str(e) for e in errors] == [
        f"{path}:2:nationality: the field 'nationality' appears twice in the line — "
        "keep one: a record has one value per field",
        f"{path}:3:a: the field 'a' appears twice in the line — "
        "keep one: a record has one value per field",
    ]


def test_skip_invalid_needs_a_rejects_file(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "e.csv", csv_text([encounter(10)]))
    with pytest.raises(InvalidArgumentError, match="go together"):
        ingest(store, "encounters", [path], now=NOW, skip_invalid=True)


def _vector(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


@pytest.mark.parametrize(
    "dataset, column, value",
    [
        ("encounters", "record_id", "PAN E1"),
        ("encounters", "record_id", "PANE1\nPANE2"),
        ("encounters", "record_id", "PANE000000000\n"),  # stored without the line feed
        ("encounters", "birth_date", "١٩٩٤-٠٧"),
        ("encounters", "sex", "f"),
        ("encounters", "care_provided", "none;food"),
        ("encounters", "care_provided", "food;food"),
        ("encounters", "birth_date", "1990-02-30"),
        ("encounters", "document_number", "AB#1"),
        ("encounters", "document_country", "ZZZ"),
        ("encounters", "surname", "1234"),
        ("encounters", "age_group", "Y25-34"),
        ("encounters", "event_date", "2023-9-14"),
        ("matrices", "value", "-1"),
        ("matrices", "value", "1.5"),
        ("matrices", "period", "2023Q5"),
        ("matrices", "period", "2023Q3\n"),
        ("matrices", "period", "٢٠٢٣Q3"),
        ("matrices", "value", "１３７"),
        ("consular_directory", "phone", "+٥٠٧ ٢٦٣ ٩٠٠١"),
        ("biometric_templates", "vector", _vector([0.5] * 127)),
        ("biometric_templates", "vector", _vector([float("nan")] + [0.5] * 127)),
        ("biometric_templates", "vector", "not base64!"),
        ("consular_directory", "email", "consul@"),
        ("document_alerts", "source", "rumour"),
    ],
)
def test_the_importer_refuses_what_the_data_dictionary_refuses(
    store: Store, tmp_path: Path, dataset: str, column: str, value: str
) -> None:
    valid = {
        "encounters": encounter(10),
        "matrices": {
            "matrix_id": "m",
            "period": "2023Q3",
            "event_type": "encounter",
            "nationality": "HTI",
            "nationality_basis": "",
            "sex": "",
            "age_group": "",
            "value": "3",
        },
        "biometric_templates": {
            "record_id": "PANB1",
            "person_id": "PANP1",
            "modality": "face",
            "capture_date": "2023-09-14",
            "vector": _vector([0.5] * 128),
        },
        "consular_directory": {
            "origin_country": "IND",
            "host_country": "PAN",
            "city": "Panamá",
            "consulate_name": "Embajada",
            "address": "",
            "phone": "",
            "email": "c@mea.example",
            "procedures": "visa",
        },
        "document_alerts": {
            "record_id": "PANA1",
            "alert_type": "stolen",
            "document_number": "X1",
            "issuing_state": "HTI",
            "reported_date": "2022-11-03",
            "source": "inspection",
        },
    }[dataset]
    spec = DATASETS[dataset]
    assert validate_row(spec, valid) == []
    bad = dict(valid, **{column: value})
    assert validate_row(spec, bad), "the reference validator must refuse it too"
    errors = refused(store, [write(tmp_path, "x.csv", csv_text([bad]))], dataset)
    assert [e.column for e in errors] == [column]
