"""Fuzz the importers (``node.ingest``): CSV, JSON Lines and XLSX, random and mutated.

An import either succeeds or raises :class:`~node.ingest.IngestError` (an
``InvalidArgumentError``: the CLI prints it as ``file:row:column: problem — fix``); any other
exception is a bug. When it raises, nothing was written (DESIGN §2, non-negotiable 4): the
store's counts and import log are as before. Files start from the synthetic generator's real
rows, with cells replaced by other rows' cells, random or injection text, columns dropped or
shuffled, bytes flipped; or are random bytes under each extension.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile.toolkit import FURNISHED
from hypothesis import given
from hypothesis import strategies as st

from fuzz.harness import fuzz_examples, fuzz_settings
from fuzz.strategies import mutated, text
from node.errors import InvalidArgumentError
from node.ingest import IngestError
from node.ingest.pipeline import ingest
from node.records.generate import generate
from node.store import Store, open_store

NOW = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)


@dataclass
class Bench:
    store: Store
    work: Path
    rows: dict[str, list[list[str]]]
    headers: dict[str, list[str]]
    xlsx: bytes


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("ingest-fuzz")
    generate("PAN", 60, 3, root / "data", templates_fraction=0.5)
    store = open_store(f"sqlite+pysqlite:///{root / 'fuzz.db'}")
    headers, rows = {}, {}
    for dataset in FURNISHED:
        with (root / "data" / f"{dataset}.csv").open(encoding="utf-8", newline="") as handle:
            table = list(csv.reader(handle))
        headers[dataset], rows[dataset] = table[0], table[1:]
        ingest(store, dataset, [root / "data" / f"{dataset}.csv"], now=NOW)
    yield Bench(store, root, rows, headers, _xlsx(headers["encounters"], rows["encounters"][:5]))
    store.close()


def _xlsx(header: list[str], rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for line in [header, *rows]:
        sheet.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _table(rng: random.Random, bench: Bench, dataset: str) -> tuple[list[str], list[list[str]]]:
    header = list(bench.headers[dataset])
    pool = bench.rows[dataset]
    rows = [list(rng.choice(pool)) for _ in range(rng.randrange(0, 6))] if pool else []
    for row in rows:
        for _ in range(rng.randrange(0, 4)):
            at = rng.randrange(len(row))
            other = rng.choice(pool)[rng.randrange(len(header))]
            row[at] = rng.choice([text(rng, header[at]), other, "", row[at] * 3])
    roll = rng.random()
    if roll < 0.1 and len(header) > 1:
        drop = rng.randrange(len(header))
        header.pop(drop)
        for row in rows:
            row.pop(drop)
    elif roll < 0.2:
        order = list(range(len(header)))
        rng.shuffle(order)
        header = [header[i] for i in order]
        rows = [[row[i] for i in order] for row in rows]
    elif roll < 0.25:
        header.append(text(rng))
    return header, rows


def _csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([header, *rows])
    return out.getvalue().encode("utf-8")


def _jsonl_bytes(rng: random.Random, header: list[str], rows: list[list[str]]) -> bytes:
    lines = []
    for row in rows:
        record: dict[str, object] = dict(zip(header, row, strict=False))
        if record and rng.random() < 0.3:
            key = rng.choice(list(record))
            record[key] = rng.choice([None, 7, 1.5, True, [row[0]], {"x": 1}])
        lines.append(json.dumps(record, ensure_ascii=rng.random() < 0.5))
    return "\n".join(lines).encode("utf-8")


def _file(rng: random.Random, bench: Bench, dataset: str) -> tuple[str, bytes]:
    kind = rng.choice(["csv", "csv", "jsonl", "xlsx", "random"])
    header, rows = _table(rng, bench, dataset)
    if kind == "csv":
        data = _csv_bytes(header, rows)
        return ".csv", mutated(rng, data) if rng.random() < 0.3 else data
    if kind == "jsonl":
        data = _jsonl_bytes(rng, header, rows)
        return ".jsonl", mutated(rng, data) if rng.random() < 0.3 else data
    if kind == "xlsx":
        return ".xlsx", mutated(rng, bench.xlsx)
    return rng.choice([".csv", ".jsonl", ".xlsx"]), rng.randbytes(rng.randrange(0, 400))


def _state(store: Store) -> tuple[object, ...]:
    return (tuple(sorted(store.records.counts().items())), len(store.records.imports()))


@fuzz_settings(fuzz_examples())
@given(
    rng=st.randoms(use_true_random=False),
    dataset=st.sampled_from(FURNISHED),
    mode=st.sampled_from(["dry-run", "commit", "skip-invalid"]),
)
def test_an_import_succeeds_or_refuses_cleanly(
    bench: Bench, rng: random.Random, dataset: str, mode: str
) -> None:
    suffix, data = _file(rng, bench, dataset)
    path = bench.work / f"fuzzed{suffix}"
    path.write_bytes(data)
    before = _state(bench.store)
    rejects = bench.work / "rejects.csv"
    try:
        ingest(
            bench.store,
            dataset,
            [path],
            now=NOW,
            dry_run=mode == "dry-run",
            skip_invalid=mode == "skip-invalid",
            rejects_path=rejects if mode == "skip-invalid" else None,
        )
    except InvalidArgumentError:
        assert _state(bench.store) == before, "a refused import changed the store"
        return
    if mode == "dry-run":
        assert _state(bench.store) == before


def test_a_csv_header_with_an_unclosed_quote_is_refused_as_ingest_error(bench: Bench) -> None:
    path = bench.work / "unclosed.csv"
    path.write_text('"record_id,person_id\nPANE1,PANP1\n', encoding="utf-8")
    before = _state(bench.store)
    with pytest.raises(IngestError) as refused:
        ingest(bench.store, "encounters", [path], now=NOW)
    assert _state(bench.store) == before
    (error,) = refused.value.errors
    assert (error.file, error.row, error.column) == (str(path), 1, "column 1")
    assert "never closed" in error.problem and "close the quote" in error.fix
    # The same in a later cell of a semicolon-separated header, whichever reader is used.
    path.write_text('record_id;"person_id\nPANE1;PANP1\n', encoding="utf-8")
    with pytest.raises(IngestError) as refused:
        ingest(bench.store, "encounters", [path], now=NOW, dry_run=True)
    assert [(e.row, e.column) for e in refused.value.errors] == [(1, "column 2")]
