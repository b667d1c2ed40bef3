"""Imports that succeed: formats, normalisation, idempotency, corrections, rejects, dry runs,
and what the node publishes about its records — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from typer.testing import CliRunner

from enlace.v1 import node_pb2
from node.cli.main import app
from node.home import NodeHome
from node.ingest import IngestError, info_provider
from node.ingest.pipeline import ingest
from node.records.codelists import CODELISTS_VERSION
from node.records.datasets import DATASETS, ENCOUNTERS
from node.records.equivalence import EquivalenceTable
from node.records.icao import make_td3
from node.store import Store, open_store

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def encounter(i: int, **changes: str) -> dict[str, str]:
    row = {
        "record_id": f"PANE{i:09d}",
        "person_id": f"PANP{i // 2:08d}",
        "event_type": ("irregular_entry", "encounter", "detention")[i % 3],
        "event_date": f"2023-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
        "border_post": "",
        "nationality": ("HTI", "CUB", "IND", "SEN")[i % 4],
        "nationality_basis": ("declared", "documented", "presumed")[i % 3],
        "sex": "FM"[i % 2],
        "birth_date": ("1990-07-00", "1985", "2001-02-03")[i % 3],
        "age_group": ("Y25T34", "Y35T44", "Y18T24")[i % 3],
        "care_provided": ("food;health", "", "none")[i % 3],
        "vulnerabilities": ("", "pregnant", "")[i % 3],
        "document_number": f"ab 12-{i:05d}" if i % 2 else "",
        "document_country": "hti" if i % 2 else "",
        "surname": ("Jean-Baptiste", "Pérez García", "Ndiaye")[i % 3],
        "given_names": ("Marie Nadège", "", "Fatou")[i % 3],
    }
    row.update(changes)
    return row


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every records table, for 'exactly as before' comparisons."""
    from sqlalchemy import select

    from node.store.records_schema import DATASET_TABLES, encounter_codes, imports

    tables = [*DATASET_TABLES.values(), encounter_codes, imports]
    with store.engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(select(t)).all())  # type: ignore[misc]
            for t in tables
        }


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


def test_csv_import_normalises_and_records_provenance(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "encounters.csv", [encounter(i) for i in range(7)])
    report = ingest(store, "encounters", [path], now=NOW)
    assert report.committed and report.total("added") == 7 and report.error_count == 0
    rows = {r["record_id"]: r for r in store.records.iter_rows("encounters")}
    first = rows["PANE000000001"]
    assert first["document_number"] == "ab 12-00001"  # as recorded
    assert first["document_number_norm"] == "AB1200001"  # ICAO 9303 canonical form
    assert first["document_country"] == "HTI"
    assert first["surname"] == "Pérez García" and first["surname_norm"] == "PEREZ GARCIA"
    assert first["given_names"] is None and first["given_names_norm"] is None
    assert first["event_date"] == date(2023, 2, 2)
    assert (first["birth_date"], first["birth_year"], first["birth_month"]) == ("1985", 1985, None)
    zero = rows["PANE000000000"]
    assert (zero["birth_date"], zero["birth_month"], zero["birth_day"]) == ("1990-07", 7, None)
    assert zero["care_provided"] == "food;health"
    assert store.records.encounter_codes("PANE000000000") == {"care": ["food", "health"]}
    assert store.records.encounter_codes("PANE000000001") == {"vulnerability": ["pregnant"]}
    assert first["source_row"] == 3 and first["import_id"] == report.files[0].import_id
    [history] = store.records.imports()
    assert (history.rows_read, history.rows_added, history.status) == (7, 7, "complete")
    assert history.file_sha256 == report.files[0].sha256
    assert history.finished_at >= NOW and store.records.data_as_of() == history.finished_at


def test_foreign_keys_are_enforced_again_after_an_import(store: Store, tmp_path: Path) -> None:
    # SQLite imports skip the per-row probe of import_id (it holds by construction); the
    # connection must come back to the pool enforcing foreign keys, committed or rolled back.
    from sqlalchemy import exc, insert

    from node.store.records_schema import encounters

    path = write_csv(tmp_path / "encounters.csv", [encounter(i) for i in range(3)])
    ingest(store, "encounters", [path], now=NOW)
    bad = write_csv(tmp_path / "bad.csv", [encounter(7, event_type="no_such_type")])
    with pytest.raises(IngestError):
        ingest(store, "encounters", [bad], now=NOW)
    stored = next(store.records.iter_rows("encounters"))
    orphan = {**stored, "record_id": "PANE999999999", "import_id": "no-such-import"}
    for _ in range(3):  # whichever pooled connection the engine hands out
        with pytest.raises(exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(insert(encounters).values(**orphan))


def test_a_document_lookup_uses_the_index_of_documented_encounters(
    store: Store, tmp_path: Path
) -> None:
    # Migration 0010: the index leaves out encounters without a document; a lookup by
    # document must still use it (the equality implies IS NOT NULL on both backends).
    from sqlalchemy import text

    path = write_csv(tmp_path / "encounters.csv", [encounter(i) for i in range(40)])
    ingest(store, "encounters", [path], now=NOW)
    query = (
        "SELECT record_id FROM encounters "
        "WHERE document_country = 'HTI' AND document_number_norm = 'AB1200001'"
    )
    with store.engine.connect() as conn:
        if store.backend == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}"))
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {query}"))
        assert "ix_encounters_document" in plan
        assert [r[0] for r in conn.execute(text(query))] == ["PANE000000001"]
        definition = conn.execute(
            text("SELECT sql FROM sqlite_schema WHERE name = 'ix_encounters_document'")
            if store.backend == "sqlite"
            else text(  # this test's schema: other tests' schemas have the same index
                "SELECT indexdef FROM pg_indexes "
                "WHERE indexname = 'ix_encounters_document' AND schemaname = current_schema()"
            )
        ).scalar_one()
    assert "WHERE" in definition and "IS NOT NULL" in definition, definition


def test_a_large_import_leaves_postgres_statistics_ready(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a bulk import PostgreSQL's table is vacuumed and analysed at once, so statistics
    # can read the covering index alone (pages all-visible) and plan with the real size.
    if store.records.backend != "postgresql":
        pytest.skip("SQLite keeps no visibility map and needs no ANALYZE here")
    from sqlalchemy import text

    from node.ingest import pipeline

    monkeypatch.setattr(pipeline, "SETTLE_ROWS", 3)
    ingest(store, "encounters", [write_csv(tmp_path / "e.csv", [encounter(i) for i in range(3)])],
           now=NOW)  # fmt: skip
    with store.engine.connect() as conn:
        vacuumed, include = conn.execute(
            text(
                "SELECT s.last_vacuum IS NOT NULL, "
                "pg_get_indexdef('ix_encounters_stats'::regclass) "
                "FROM pg_stat_user_tables s "
                "WHERE s.relname = 'encounters' AND s.schemaname = current_schema()"
            )
        ).one()
    assert vacuumed
    assert "INCLUDE (nationality_basis, sex, age_group, border_post_regional, person_id" in include


def test_reimport_of_the_same_file_adds_nothing(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", [encounter(i) for i in range(12)])
    ingest(store, "encounters", [path], now=NOW)
    before = snapshot(store)
    again = ingest(store, "encounters", [path], now=NOW + timedelta(hours=1))
    assert (again.total("added"), again.total("unchanged")) == (0, 12)
    after = snapshot(store)
    assert {k: v for k, v in after.items() if k != "imports"} == {
        k: v for k, v in before.items() if k != "imports"
    }
    assert len(after["imports"]) == 2  # the re-import is recorded as provenance, nothing more


def test_a_repeat_of_an_unchanged_row_in_a_later_batch_is_refused(
    store: Store, tmp_path: Path
) -> None:
    # The first row is unchanged (not written), so the store alone cannot find it again;
    # the import remembers the keys it found unchanged.
    rows = [encounter(i) for i in range(5_200)]
    ingest(store, "encounters", [write_csv(tmp_path / "first.csv", rows)], now=NOW)
    again = write_csv(tmp_path / "again.csv", [*rows, encounter(3)])
    with pytest.raises(IngestError) as caught:
        ingest(store, "encounters", [again], now=NOW)
    [error] = caught.value.errors
    assert (error.row, error.column) == (5_202, "record_id") and "repeats row 5" in error.problem
    report = ingest(store, "encounters", [write_csv(tmp_path / "same.csv", rows)], now=NOW)
    assert (report.total("unchanged"), report.error_count) == (5_200, 0)


def test_changed_record_is_refused_unless_replace(store: Store, tmp_path: Path) -> None:
    ingest(store, "encounters", [write_csv(tmp_path / "a.csv", [encounter(1)])], now=NOW)
    fixed = write_csv(tmp_path / "b.csv", [encounter(1, sex="M", vulnerabilities="")])
    before = snapshot(store)
    with pytest.raises(IngestError) as caught:
        ingest(store, "encounters", [fixed], now=NOW)
    [error] = caught.value.errors
    assert str(error).startswith(f"{fixed}:2:record_id: record_id 'PANE000000001' is already")
    assert f"{tmp_path / 'a.csv'} row 2" in error.problem and "--replace" in error.fix
    assert snapshot(store) == before
    report = ingest(store, "encounters", [fixed], now=NOW, replace=True)
    assert report.total("replaced") == 1
    [row] = store.records.iter_rows("encounters")
    assert row["sex"] == "M" and row["vulnerabilities"] is None
    assert store.records.encounter_codes("PANE000000001") == {}


def test_skip_invalid_imports_the_rest_and_writes_reasons(store: Store, tmp_path: Path) -> None:
    rows = [encounter(0), encounter(1, nationality="HIT"), encounter(2, surname="=cmd|' /C'")]
    rows.append(encounter(3, event_date="2023-02-30"))
    path = write_csv(tmp_path / "e.csv", rows)
    rejects = tmp_path / "rejected.csv"
    report = ingest(store, "encounters", [path], now=NOW, skip_invalid=True, rejects_path=rejects)
    assert (report.total("added"), report.total("rejected")) == (1, 3)
    assert store.records.counts()["encounters"] == 1
    with rejects.open(encoding="utf-8", newline="") as handle:
        refused = list(csv.DictReader(handle))
    assert [r["record_id"] for r in refused] == ["PANE000000001", "PANE000000002", "PANE000000003"]
    assert list(refused[0])[: len(ENCOUNTERS.columns)] == ENCOUNTERS.columns
    assert "nationality: 'HIT' is not a code of nationality" in refused[0]["_error"]
    assert "did you mean 'HTI'" in refused[0]["_error"]
    assert refused[1]["surname"] == "'=cmd|' /C'"  # neutralised for spreadsheets
    assert "2023-02-30 does not exist" in refused[2]["_error"]
    assert refused[2]["_source"] == f"{path}:5"
    [history] = store.records.imports()
    assert (history.status, history.rows_rejected) == ("partial", 3)


def test_dry_run_counts_exactly_and_writes_nothing(store: Store, tmp_path: Path) -> None:
    ingest(store, "encounters", [write_csv(tmp_path / "a.csv", [encounter(0)])], now=NOW)
    before = snapshot(store)
    path = write_csv(tmp_path / "b.csv", [encounter(i) for i in range(3)])
    report = ingest(store, "encounters", [path], now=NOW, dry_run=True)
    assert not report.committed
    assert (report.total("added"), report.total("unchanged")) == (2, 1)
    assert snapshot(store) == before


def test_jsonl_and_xlsx_give_the_same_rows_as_csv(
    database_url_factory: Any, tmp_path: Path
) -> None:
    rows = [encounter(i) for i in range(5)]
    jsonl = tmp_path / "e.jsonl"
    with jsonl.open("w", encoding="utf-8") as handle:
        for row in rows:
            record: dict[str, Any] = {k: v for k, v in row.items() if v}
            if record.get("care_provided"):
                record["care_provided"] = record["care_provided"].split(";")
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    book = openpyxl.Workbook()
    notes = book.active
    assert notes is not None
    notes.title = "Notas"
    notes.append(["Exportado del sistema nacional"])
    sheet = book.create_sheet("eventos")
    sheet.append(ENCOUNTERS.columns)
    for row in rows:
        sheet.append([row[c] or None for c in ENCOUNTERS.columns])
    book.create_sheet("Resumen").append(["total", 5])
    xlsx = tmp_path / "e.xlsx"
    book.save(xlsx)
    results = []
    for path in (write_csv(tmp_path / "e.csv", rows), jsonl, xlsx):
        store = open_store(database_url_factory())
        report = ingest(store, "encounters", [path], now=NOW)
        assert report.total("added") == 5
        results.append(
            [
                {k: v for k, v in r.items() if k not in ("import_id", "imported_at", "source_row")}
                for r in store.records.iter_rows("encounters")
            ]
        )
        if path == xlsx:
            assert report.files[0].notes == ["sheet 'Notas' ignored", "sheet 'Resumen' ignored"]
        store.close()
    assert results[0] == results[1] == results[2]


def test_equivalence_table_translates_local_codes(store: Store, tmp_path: Path) -> None:
    table = EquivalenceTable.from_mapping(
        {
            "node": "PAN",
            "version": "2026-01",
            "passthrough": ["nationality", "age_group", "nationality_basis"],
            "mappings": {
                "event_type": {"APREHENDIDO": "encounter"},
                "sex": {"1": "M", "2": "F"},
                "care": {"ALIMENTACION": "food", "ATENCION MEDICA": "health"},
            },
            "border_posts": {
                "LB": {"name": "Lajas Blancas", "kind": "land", "regional_code": "PAN-LAJ"}
            },
        }
    )
    row = encounter(0, event_type="APREHENDIDO", sex="2", border_post="LB", vulnerabilities="")
    row["care_provided"] = "ALIMENTACION;ATENCION MEDICA"
    path = write_csv(tmp_path / "e.csv", [row])
    ingest(store, "encounters", [path], now=NOW, equivalence=table)
    [stored] = store.records.iter_rows("encounters")
    assert (stored["event_type"], stored["sex"]) == ("encounter", "F")
    assert (stored["border_post"], stored["border_post_regional"]) == ("LB", "PAN-LAJ")
    assert stored["care_provided"] == "food;health"
    [history] = store.records.imports()
    assert history.equivalence_version == "PAN:2026-01"
    bad = write_csv(tmp_path / "bad.csv", [encounter(1, event_type="APREHENDIDA", sex="1")])
    with pytest.raises(IngestError) as caught:
        ingest(store, "encounters", [bad], now=NOW, equivalence=table)
    [error] = caught.value.errors
    assert error.column == "event_type" and "did you mean 'APREHENDIDO'" in error.fix


def test_other_datasets_and_composite_keys(store: Store, tmp_path: Path) -> None:
    mrz = make_td3(
        issuing_state="IND",
        surname="Kumar",
        given_names="Ravi",
        document_number="Z1234567",
        nationality="IND",
        birth_date="1990-01-15",
        sex="M",
        expiry_date="2030-05-01",
    )
    document = {
        "record_id": "PAND1",
        "person_id": "PANP1",
        "document_type": "P",
        "document_number": "z1234567",
        "issuing_state": "IND",
        "nationality": "IND",
        "surname": "Kumar",
        "given_names": "Ravi",
        "birth_date": "1990-01-15",
        "sex": "M",
        "expiry_date": "2030-05-01",
        "first_seen_date": "2023-09-14",
        "mrz": mrz,
    }
    ingest(store, "travel_documents", [write_csv(tmp_path / "d.csv", [document])], now=NOW)
    [stored] = store.records.iter_rows("travel_documents")
    assert stored["document_number_norm"] == "Z1234567" and stored["expiry_date"] == date(
        2030, 5, 1
    )
    matrix = [
        {
            "matrix_id": "eventos",
            "period": "2023Q3",
            "event_type": "encounter",
            "nationality": "HTI",
            "nationality_basis": "",
            "sex": sex,
            "age_group": "",
            "value": v,
        }
        for sex, v in (("F", "12"), ("M", "30"), ("", "42"))
    ]
    ingest(store, "matrices", [write_csv(tmp_path / "m.csv", matrix)], now=NOW)
    stored_matrix = {r["natural_key"]: r for r in store.records.iter_rows("matrices")}
    total = stored_matrix['["eventos","2023Q3","encounter","HTI","","",""]']
    assert total["value"] == 42 and total["sex"] is None
    again = [dict(matrix[0], value="13")]
    with pytest.raises(IngestError, match="already stored with different content"):
        ingest(store, "matrices", [write_csv(tmp_path / "m2.csv", again)], now=NOW)
    assert store.records.counts() == {
        **dict.fromkeys(DATASETS, 0),
        "travel_documents": 1,
        "matrices": 3,
    }


def test_info_provider_publishes_datasets_and_table(database_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "equivalence.yaml").write_text(
        "node: PAN\nversion: '1'\nmappings:\n  sex:\n    '2': F\n", encoding="utf-8"
    )
    store = open_store(database_url)
    runtime: Any = type("Runtime", (), {"store": store, "home": NodeHome(home)})()
    fill = info_provider(runtime)
    empty = node_pb2.GetInfoResponse()
    fill(empty)
    assert (list(empty.datasets), empty.data_as_of) == ([], "")
    ingest(
        store, "encounters", [write_csv(tmp_path / "e.csv", [encounter(0), encounter(1)])], now=NOW
    )
    response = node_pb2.GetInfoResponse()
    fill(response)
    [published] = response.datasets
    assert published.name == "encounters"
    assert "records" not in node_pb2.DatasetInfo.DESCRIPTOR.fields_by_name  # never a count
    assert response.data_as_of == published.as_of and response.data_as_of.startswith("2026-11-28T")
    assert json.loads(response.equivalence_table_json)["mappings"] == {"sex": {"2": "F"}}
    assert response.codelists_version == CODELISTS_VERSION
    store.close()


def test_cli_ingest_counts_and_imports(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "node.toml").write_text(
        'country = "PAN"\nname = "Panamá"\nendpoint = "127.0.0.1:7001"\n', encoding="utf-8"
    )
    path = write_csv(tmp_path / "e.csv", [encounter(i) for i in range(4)])
    runner = CliRunner()
    ok = runner.invoke(app, ["ingest", "encounters", str(path), "--home", str(home), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["totals"]["added"] == 4
    counts = runner.invoke(app, ["records", "counts", "--home", str(home), "--json"])
    assert json.loads(counts.stdout)["encounters"]["records"] == 4
    history = runner.invoke(app, ["records", "imports", "--home", str(home), "--json"])
    assert [h["rows_added"] for h in json.loads(history.stdout)] == [4]
    bad = write_csv(tmp_path / "bad.csv", [encounter(i, sex="W") for i in range(60)])
    refused = runner.invoke(app, ["ingest", "encounters", str(bad), "--home", str(home)])
    assert refused.exit_code == 1
    progress = re.compile(r"bad\.csv: [\d,]+ rows read, .*\)")  # off a terminal, on stderr
    lines = [line for line in refused.stderr.splitlines() if not progress.fullmatch(line)]
    assert lines[0] == (
        f"{bad}:2:sex: 'W' is not a code of sex — see docs/code-lists.md for the codes of 'sex'"
    )
    assert sum(1 for line in lines if line.startswith(f"{bad}:")) == 50
    assert any(line.startswith("… and 10 more") for line in lines)
