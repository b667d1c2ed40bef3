"""What a filter build reads and evaluates, on both backends.

``iter_records`` streams every stored record of a match dataset straight from the driver on
SQLite (SQLAlchemy's per-row fetch was most of a 1M read) and through a server-side cursor on
PostgreSQL; ``evaluate_records`` splits large reads over worker processes. Both must give
exactly what one plain read and one in-process evaluation give, record for record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto.match_keys import oprf_key_for
from crypto.oprf import Mode
from node.ingest.pipeline import ingest
from node.matching import evaluation
from node.matching.evaluation import evaluate_records, key_and_evaluate
from node.matching.sources import iter_records
from node.records.datasets import DATASETS
from node.store import Store, open_store
from node.store.records_schema import DATASET_TABLES

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
MASTER = bytes(range(32))


def _write(path: Path, count: int) -> Path:
    columns = DATASETS["travel_documents"].columns
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(columns) + "\n")
        for i in range(count):
            number = f"X{i * 7919 % 10**7:07d}"
            handle.write(
                f"R{i:07d},P{i:07d},P,{number},HTI,HTI,APELLIDO{i % 31},NOMBRE{i % 7},"
                f"1980-01-{1 + i % 28:02d},F,2030-01-01,2024-05-01\n"
            )
    return path


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(database_url)
    report = ingest(opened, "travel_documents", [_write(tmp_path / "docs.csv", 1_200)], now=NOW)
    assert report.committed and report.total("added") == 1_200
    try:
        yield opened
    finally:
        opened.engine.dispose()


def test_every_record_is_read_once_with_the_columns_its_keys_need(store: Store) -> None:
    table = DATASET_TABLES["travel_documents"]
    with store.engine.connect() as conn:
        stored = {
            (r.record_id, r.content_hash, r.document_number_norm, r.issuing_state)
            for r in conn.execute(table.select())
        }
    read = list(iter_records(store.engine, "travel_documents"))
    assert len(read) == len(stored) == 1_200
    assert {
        (r.record_id, r.content_hash, r.row["document_number_norm"], r.row["issuing_state"])
        for r in read
    } == stored
    assert set(read[0].row) == {
        "record_id",
        "content_hash",
        "document_number_norm",
        "issuing_state",
    }


def test_workers_evaluate_exactly_what_one_process_evaluates(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    epoch, mode = 1, Mode.OPRF
    items = [(r.source, r.row) for r in iter_records(store.engine, "travel_documents")]
    key = oprf_key_for(MASTER, "travel_documents", epoch, mode)
    expected = key_and_evaluate(key, mode, "travel_documents", items)
    monkeypatch.setattr(evaluation, "PARALLEL_THRESHOLD", 100)
    monkeypatch.setattr(evaluation, "_CHUNK", 64)

    def not_here(*_: object) -> None:
        raise AssertionError("evaluated in this process, not in the workers")

    # The spawned workers import the module afresh; only this process sees the replacement.
    monkeypatch.setattr(evaluation, "key_and_evaluate", not_here)
    generator = (item for item in items)  # streamed, as a build reads the store
    counts, joined = evaluate_records(MASTER, "travel_documents", epoch, mode, generator, workers=2)
    assert (counts, joined) == expected
    assert counts == [1] * 1_200  # one key per travel document
    assert len(joined) == 48 * 1_200
