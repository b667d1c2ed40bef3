"""Imports in parts (node.ingest.parallel): a CSV file cut at row boundaries, its later parts
converted by helper processes and copied into the one transaction, must give exactly what the
same import gives in one process — rows, counts, errors, rejects — and leave nothing behind.

SQLite only: PostgreSQL imports are never cut. ``PARALLEL_MIN_BYTES`` is lowered so that small
files are cut; the helpers are real spawned processes.
"""

from __future__ import annotations

import csv
import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from test_ingest import encounter

from node.ingest import IngestError, parallel
from node.ingest.pipeline import ingest
from node.ingest.readers import ByteRange
from node.ingest.report import IngestReport
from node.records.datasets import ENCOUNTERS
from node.store import Store, open_store
from node.store.records_schema import DATASET_TABLES, imports

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
#: Columns that differ between any two imports of the same rows (ids and clock).
VOLATILE = {"import_id", "imported_at", "started_at", "finished_at"}


@pytest.fixture(autouse=True)
def cut_small_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 1)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    yield
    assert list(scratch.iterdir()) == [], "part databases were left behind"


def row(i: int, **changes: str) -> dict[str, str]:
    """:func:`test_ingest.encounter`, with quoted cells that hold the delimiter, quotes and
    line breaks: cuts must not fall inside them."""
    cells = encounter(i)
    cells["surname"] = ("Jean-Baptiste", "Pérez, García", "Ndiaye\nSow")[i % 3]
    cells["given_names"] = ("Marie Nadège", "", 'Fatou "la grande"')[i % 3]
    cells.update(changes)
    return cells


def line_of(i: int) -> int:
    """The line row ``i`` starts on (the header is line 1; every third surname has a line
    break inside it)."""
    return 2 + i + sum(1 for j in range(i) if j % 3 == 2)


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(ENCOUNTERS.columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def fresh(tmp_path: Path, name: str) -> Store:
    return open_store(f"sqlite+pysqlite:///{tmp_path / name}.db")


def contents(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every records table and the imports, without the columns that name the run."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in [*DATASET_TABLES.values(), imports]:
            keep = [c for c in table.c if c.name not in VOLATILE]
            out[table.name] = sorted(tuple(r) for r in conn.execute(select(*keep)).all())
    return out


def index_names(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        found = conn.execute(
            text("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = :t"),
            {"t": "encounters"},
        )
        return sorted(found.scalars())


def comparable(report: IngestReport) -> dict[str, Any]:
    data = report.to_dict()
    for key in ("seconds", "rows_per_second", "rejects_path"):
        data.pop(key)
    for file in data["files"]:
        file.pop("import_id")
    data["errors"] = sorted(str(e) for e in report.errors)
    return data


def both(
    tmp_path: Path,
    files: list[Path],
    *,
    before: list[Path] | None = None,
    workers: int = 3,
    **options: Any,
) -> tuple[Any, Any, Store, Store]:
    """The same import in one process and in parts (after the same ``before`` imports), each
    into a store of its own: the two reports (or errors) and the two stores."""
    results = []
    stores = []
    for label, count in (("one", 1), ("parts", workers)):
        store = fresh(tmp_path, label)
        stores.append(store)
        for earlier in before or []:
            ingest(store, "encounters", [earlier], now=NOW, workers=1)
        extra = dict(options)
        if "rejects_path" in extra:
            extra["rejects_path"] = tmp_path / f"{label}-{extra['rejects_path']}"
        try:
            results.append(ingest(store, "encounters", files, now=NOW, workers=count, **extra))
        except IngestError as exc:
            results.append(exc)
    return results[0], results[1], stores[0], stores[1]


def same_refusal(one: Any, parts: Any) -> list[str]:
    assert isinstance(one, IngestError) and isinstance(parts, IngestError)
    assert parts.error_count == one.error_count
    assert sorted(map(str, parts.errors)) == sorted(map(str, one.errors))
    return sorted(map(str, one.errors))


def test_cuts_fall_on_row_boundaries_with_their_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", [row(i) for i in range(300)])
    data = path.read_bytes()
    ranges = parallel.plan_parts(path, len(data), 3)
    assert len(ranges) == 3
    assert ranges[0] == ByteRange(0, ranges[1].start, 2)
    assert ranges[-1].stop is None
    for previous, part in itertools.pairwise(ranges):
        assert previous.stop == part.start
        assert data[part.start - 1 : part.start] == b"\n"
        before = data[: part.start]
        assert before.count(b'"') % 2 == 0  # not inside a quoted cell
        assert part.first_line == before.count(b"\n") + 1
        # the row starting there is a whole record of the file
        assert data[part.start :].startswith(b"PANE")
    sizes = [(r.stop or len(data)) - r.start for r in ranges]
    assert sizes[0] > sizes[1] * 1.05  # the first part is the larger (FIRST_PART_EXTRA)


def test_a_header_spread_over_lines_is_not_cut(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    header = ",".join(ENCOUNTERS.columns).replace("record_id", '"record\nid"')
    path.write_text(header + "\n" + "x\n" * 1000, encoding="utf-8")
    assert parallel.plan_parts(path, path.stat().st_size, 2) == [ByteRange(0, None)]


def test_an_import_in_parts_stores_what_one_process_stores(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", [row(i) for i in range(1200)])
    one, parts, a, b = both(tmp_path, [path])
    assert comparable(parts) == comparable(one)
    assert parts.total("added") == 1200
    assert contents(b) == contents(a)
    with b.engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    assert index_names(b) == index_names(a) != []
    # The same file again: every row unchanged, in parts too.
    again = ingest(b, "encounters", [path], now=NOW, workers=3)
    assert (again.total("unchanged"), again.total("added")) == (1200, 0)


def test_errors_in_a_helpers_part_refuse_the_import_with_their_rows(tmp_path: Path) -> None:
    rows = [row(i) for i in range(900)]
    rows[850]["nationality"] = "ZZZ"
    rows[20]["event_date"] = "2023-02-30"
    path = write(tmp_path / "e.csv", rows)
    one, parts, _, b = both(tmp_path, [path])
    errors = same_refusal(one, parts)
    assert any(":nationality:" in e for e in errors)
    assert contents(b) == contents(fresh(tmp_path, "empty"))


def test_skip_invalid_writes_the_same_rejects(tmp_path: Path) -> None:
    rows = [row(i) for i in range(900)]
    for i in (3, 400, 640, 899):
        rows[i]["sex"] = "Q"
    rows[700]["record_id"] = rows[100]["record_id"]  # repeats a key across the cut
    rows[820]["record_id"] = rows[810]["record_id"]  # and inside a helper's part
    path = write(tmp_path / "e.csv", rows)
    misshapen = "PANE000000999,PANP00000999,Pérez, García"  # in the last helper's part
    path.write_text(path.read_text(encoding="utf-8") + misshapen + "\n", encoding="utf-8")
    one, parts, a, b = both(tmp_path, [path], skip_invalid=True, rejects_path="rejects.csv")
    assert comparable(parts) == comparable(one)
    assert parts.total("rejected") == 7
    assert contents(b) == contents(a)
    one_rejects = (tmp_path / "one-rejects.csv").read_text(encoding="utf-8").splitlines()
    part_rejects = (tmp_path / "parts-rejects.csv").read_text(encoding="utf-8").splitlines()
    assert part_rejects[0] == one_rejects[0]
    assert sorted(part_rejects) == sorted(one_rejects)
    assert any(f"repeats row {line_of(100)}" in line for line in part_rejects)
    with (tmp_path / "parts-rejects.csv").open(encoding="utf-8", newline="") as handle:
        assert misshapen in [r["_raw"] for r in csv.DictReader(handle)]


def test_a_key_repeated_across_parts_is_refused_naming_the_first_row(tmp_path: Path) -> None:
    rows = [row(i) for i in range(900)]
    rows[880]["record_id"] = rows[5]["record_id"]
    path = write(tmp_path / "e.csv", rows)
    one, parts, _, _ = both(tmp_path, [path])
    errors = same_refusal(one, parts)
    assert len(errors) == 1 and f"repeats row {line_of(5)}" in errors[0]


def test_a_key_of_an_earlier_file_of_the_same_import_is_refused(tmp_path: Path) -> None:
    first = write(tmp_path / "first.csv", [row(i) for i in range(100)])
    rows = [row(i) for i in range(1000, 1900)]
    rows[800]["record_id"] = row(42)["record_id"]
    second = write(tmp_path / "second.csv", rows)
    one, parts, _, _ = both(tmp_path, [first, second])
    errors = same_refusal(one, parts)
    assert len(errors) == 1 and f"{first} row {line_of(42)}" in errors[0]


def test_replace_in_a_helpers_part_overwrites_the_stored_rows(tmp_path: Path) -> None:
    before = write(tmp_path / "before.csv", [row(i) for i in range(900)])
    rows = [row(i) for i in range(900)]
    for i in (10, 600, 890):
        rows[i]["age_group"] = "Y45T54"
    after = write(tmp_path / "after.csv", rows)
    plain = tmp_path / "plain"
    plain.mkdir()
    refused, refused_parts, _, _ = both(plain, [after], before=[before])
    errors = same_refusal(refused, refused_parts)
    assert len(errors) == 3 and all("already stored with different content" in e for e in errors)
    one, parts, a, b = both(tmp_path, [after], before=[before], replace=True)
    assert comparable(parts) == comparable(one)
    assert (parts.total("replaced"), parts.total("unchanged")) == (3, 897)
    assert contents(b) == contents(a)


def test_a_cut_fooled_by_a_stray_quote_falls_back_to_one_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [row(i) for i in range(900)]
    rows[2]["border_post"] = 'PX"1'  # a quote inside an unquoted cell: CSV readers accept it
    path = tmp_path / "e.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(ENCOUNTERS.columns) + "\n")
        for r in rows:
            handle.write(",".join(_plain(v) for v in r.values()) + "\n")
    quotes = path.read_bytes().count(b'"')
    assert quotes % 2 == 1  # the count a cut relies on is off from row 2 on
    with caplog.at_level(logging.INFO, logger="node.ingest.pipeline"):
        one, parts, a, b = both(tmp_path, [path], skip_invalid=True, rejects_path="r.csv")
    assert "fell inside a quoted cell; importing it whole" in caplog.text
    assert comparable(parts) == comparable(one)
    assert contents(b) == contents(a)


def _plain(value: str) -> str:
    """A cell written as CSV writers do, except a lone quote left bare."""
    if value == 'PX"1':
        return value
    if any(c in value for c in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def test_a_broken_csv_in_a_helpers_part_refuses_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", [row(i) for i in range(900)])
    data = path.read_bytes()
    at = data.rindex(b"PANE000000880")
    path.write_bytes(data[:at] + b'"PANE"x' + data[at + 13 :])  # text after a closing quote
    one, parts, _, _ = both(tmp_path, [path])
    errors = same_refusal(one, parts)
    assert "CSV structure is broken" in errors[0]


def test_dry_run_in_parts_counts_and_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", [row(i) for i in range(900)])
    one, parts, _, b = both(tmp_path, [path], dry_run=True)
    assert comparable(parts) == comparable(one)
    assert parts.total("added") == 900 and not parts.committed
    assert contents(b) == contents(fresh(tmp_path, "empty"))


def test_an_equivalence_table_reaches_the_helpers(tmp_path: Path) -> None:
    from node.records.equivalence import EquivalenceTable

    table = EquivalenceTable.from_mapping(
        {
            "node": "PAN",
            "version": "2026-01",
            "passthrough": ["nationality", "age_group", "nationality_basis", "care"],
            "mappings": {"event_type": {"APREHENDIDO": "encounter"}, "sex": {"1": "M", "2": "F"}},
            "border_posts": {
                "LB": {"name": "Lajas Blancas", "kind": "land", "regional_code": "PAN-LAJ"}
            },
        }
    )
    rows = [row(i, event_type="APREHENDIDO", sex="12"[i % 2], border_post="LB") for i in range(900)]
    path = write(tmp_path / "e.csv", rows)
    one, parts, a, b = both(tmp_path, [path], equivalence=table)
    assert comparable(parts) == comparable(one)
    assert parts.total("added") == 900
    assert contents(b) == contents(a)


def test_a_stray_quote_in_a_helpers_part_falls_back_to_one_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [row(i) for i in range(900)]
    rows[450]["border_post"] = 'PX"1'  # inside the second of three parts
    path = tmp_path / "e.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(ENCOUNTERS.columns) + "\n")
        for r in rows:
            handle.write(",".join(_plain(v) for v in r.values()) + "\n")
    with caplog.at_level(logging.INFO, logger="node.ingest.pipeline"):
        one, parts, a, b = both(tmp_path, [path], skip_invalid=True, rejects_path="r.csv")
    assert "fell inside a quoted cell; importing it whole" in caplog.text
    assert comparable(parts) == comparable(one)
    assert parts.total("added") + parts.total("rejected") == 900
    assert contents(b) == contents(a)


def test_a_repeat_of_a_replaced_key_with_its_old_content_is_refused(tmp_path: Path) -> None:
    # The first row replaces the stored one; a later row (in a helper's part) carries the old
    # content, which the helper alone would count as unchanged.
    before = write(tmp_path / "before.csv", [row(i) for i in range(900)])
    rows = [row(i) for i in range(900)]
    rows[5]["age_group"] = "Y45T54"
    rows.append(row(5))
    after = write(tmp_path / "after.csv", rows)
    one, parts, a, b = both(tmp_path, [after], before=[before], replace=True, skip_invalid=True,
                            rejects_path="r.csv")  # fmt: skip
    assert comparable(parts) == comparable(one)
    assert (parts.total("replaced"), parts.total("rejected")) == (1, 1)
    assert f"repeats row {line_of(5)}" in str(parts.errors[0])
    assert contents(b) == contents(a)


@pytest.mark.parametrize("workers", [1, 3])
def test_a_repeated_key_is_refused_when_its_first_row_was_unchanged(
    tmp_path: Path, workers: int
) -> None:
    # Neither row is written (both equal the stored row), far apart in the file: the second
    # is still a repeat, in one process (other batches) and in parts.
    stored = write(tmp_path / "stored.csv", [row(i) for i in range(12_000)])
    rows = [row(i) for i in range(12_000)]
    rows.append(row(3))
    again = write(tmp_path / "again.csv", rows)
    store = fresh(tmp_path, "s")
    ingest(store, "encounters", [stored], now=NOW, workers=1)
    with pytest.raises(IngestError) as caught:
        ingest(store, "encounters", [again], now=NOW, workers=workers)
    [error] = caught.value.errors
    assert error.row == line_of(12_000) and f"repeats row {line_of(3)}" in error.problem


def test_a_file_with_a_lone_carriage_return_is_not_cut(tmp_path: Path) -> None:
    rows = [row(i) for i in range(900)]
    rows[100]["surname"] = "Ndiaye\rSow"  # quoted; the reader counts the \r as a line break
    rows[700]["sex"] = "Q"
    path = write(tmp_path / "e.csv", rows)
    assert parallel.plan_parts(path, path.stat().st_size, 3) == [ByteRange(0, None)]
    one, parts, _, _ = both(tmp_path, [path])
    assert same_refusal(one, parts)


def test_a_helper_that_dies_refuses_the_import_and_leaves_the_store(tmp_path: Path) -> None:
    import multiprocessing
    import os
    import signal

    from node.errors import StoreError
    from node.ingest.report import Progress

    path = write(tmp_path / "e.csv", [row(i) for i in range(12_000)])
    store = fresh(tmp_path, "s")
    before = contents(store)

    def kill_helpers(_: Progress) -> None:
        for child in multiprocessing.active_children():
            if child.name.startswith("enlace-ingest-part-"):
                os.kill(child.pid or 0, signal.SIGKILL)

    with pytest.raises(StoreError, match="stopped"):
        ingest(store, "encounters", [path], now=NOW, workers=2, progress=kill_helpers)
    assert contents(store) == before
    assert ingest(store, "encounters", [path], now=NOW, workers=2).total("added") == 12_000
