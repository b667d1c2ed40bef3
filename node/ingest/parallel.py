"""A large CSV file imported on more than one core: its later parts converted by helpers.

Why: reading, checking and converting a row costs more Python than writing it, and an import
of a million rows kept one core busy while the node's other cores waited. Sending rows to
another process costs about what converting them does (pickling was measured at 4 µs a row),
so a helper does not send rows back: it writes them into an SQLite file of its own, and the
importing process copies them with one ``INSERT … SELECT``, which runs in SQLite's C code.

How: :func:`plan_parts` cuts the file at row boundaries into parts of about equal size. The
importing process reads the first part itself, inside its transaction, as for any file. Each
other part goes to a spawned helper process (:class:`Helper`), which reads the rows of its part
with the same reader, converts and checks them with the same code, compares them with the rows
stored (the node's database attached read-only), and writes the rows to insert into its part
database, with the keys it replaces, the keys it finds unchanged and the rows it refuses.
When the first part is written,
:meth:`Helper.outcome` waits for each helper and
:meth:`~node.store.records_store.RecordsWriter.copy_part` copies its rows.

Invariants:
* Only the importing process writes the node's database, in its one transaction. A part
  changes nothing until it is copied, and the copy rolls back with everything else.
* A helper compares with the rows committed before the import began (the import holds the
  write lock from its start, so nothing else commits meanwhile); rows written by the import
  itself it cannot see. A key repeated across parts, or across files of one call, is found
  when the part is copied, by joining the part's keys with the rows this call wrote, and the
  later row is refused as the one-process import refuses it.
* An import in parts gives the same rows, counts, errors and rejected rows as in one process.
  The order differs: a part's errors and rejected rows follow those of the parts before it,
  and rows refused at the copy (repeated keys) follow the part's own; so, past the 1,000
  errors an import keeps, which ones are kept can differ.
* A cut follows a line break with an even number of quotes before it. A quote inside an
  unquoted cell (which CSV readers accept) can fool that count; the part before the cut then
  ends inside a quoted cell (:attr:`~node.ingest.readers.Source.misaligned`), the caller
  raises :class:`SplitMisalignedError` and the file is imported again in one process. A file
  with a carriage return that is not followed by a line feed is not cut (the reader counts it
  as a line break, the cut's line numbers would not).
* A helper stops when the importing process is gone; part files live in a scratch directory
  the importing process removes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateTable

from node.errors import StoreError
from node.ingest import IngestError, RowError
from node.ingest.readers import ByteRange, FileFacts, Source
from node.records.equivalence import EquivalenceTable
from node.store.failures import reported_failure
from node.store.records_schema import DATASET_TABLES, key_column
from node.store.records_writer import RecordsWriter

if TYPE_CHECKING:
    from node.store.store import Store

#: Files smaller than this are imported by one process: a helper takes about a second to start.
PARALLEL_MIN_BYTES = 16 << 20
#: Part databases one import may attach (SQLite attaches at most ten databases).
MAX_ATTACHED = 8
#: The first part is this much (of a part) larger than the others: a helper first starts an
#: interpreter and then looks keys up in two databases, so equal parts left this process
#: waiting for its helper (measured: 2.9 s of 20 s at 1,000,000 rows).
FIRST_PART_EXTRA = 0.2
#: A helper's page cache for its part database, in KiB (negative: the PRAGMA's KiB form):
#: with SQLite's default of 2 MB the part's key index was read back from disk at every batch.
PART_CACHE_KIB = -16384
#: The importing process's page cache while helpers run (the same PRAGMA form): with its
#: one-process 64 MB beside a helper's, an import of 1,000,000 rows peaked at 290 MB in all.
MAIN_CACHE_KIB = -32768
#: The schema name under which a helper sees the node's database.
STORED = "stored"
_SCAN = 1 << 20
_NOTHING_WRITTEN = "nothing was written; run the import again, or with --workers 1"


class SplitMisalignedError(Exception):
    """The first part did not end at a row boundary: import the file in one process."""


def plan_parts(path: Path, size: int, parts: int) -> list[ByteRange]:
    """``parts`` ranges of about equal size (the first :data:`FIRST_PART_EXTRA` larger), cut
    after line breaks outside quoted cells; one range when no cut is found. Reads the file
    once, counting in C."""
    if parts < 2:
        return [ByteRange(0, None)]
    total = parts + FIRST_PART_EXTRA
    targets = [int(size * (i + FIRST_PART_EXTRA) / total) for i in range(1, parts)]
    cuts: list[tuple[int, int]] = []  # (offset, line of the row starting there)
    quotes = lines = offset = 0
    carried_cr = False  # the previous chunk ended with a carriage return
    with path.open("rb") as handle:
        header_end = -1
        while targets:
            chunk = handle.read(_SCAN)
            if not chunk:
                break
            # A carriage return alone ends a line for the CSV reader but not for this count:
            # such a file is read in one part (its row numbers would differ).
            lone = chunk.count(b"\r") - chunk.count(b"\r\n")
            lone += carried_cr and not chunk.startswith(b"\n")
            carried_cr = chunk.endswith(b"\r")
            if lone - carried_cr:
                return [ByteRange(0, None)]
            start = 0
            if header_end < 0:
                header_end = chunk.find(b"\n")
                if header_end < 0 or b'"' in chunk[:header_end]:
                    return [ByteRange(0, None)]  # a header on several lines: no cutting
            while targets:
                target = max(targets[0] - offset, header_end + 1 - offset, start)
                if target >= len(chunk):
                    break
                newline = chunk.find(b"\n", target)
                if newline < 0:
                    break
                between = chunk[start : newline + 1]
                quotes += between.count(b'"')
                lines += between.count(b"\n")
                start = newline + 1
                if quotes % 2 == 0:
                    cuts.append((offset + start, lines + 1))
                    targets.pop(0)
            rest = chunk[start:]
            quotes += rest.count(b'"')
            lines += rest.count(b"\n")
            offset += len(chunk)
    cuts = [c for c in cuts if c[0] < size]
    if not cuts:
        return [ByteRange(0, None)]
    bounds = [(0, 2), *cuts]
    stops: list[int | None] = [c[0] for c in cuts]
    stops.append(None)
    return [ByteRange(s, stop, line) for (s, line), stop in zip(bounds, stops, strict=True)]


@dataclass(frozen=True)
class PartJob:
    """What a helper needs to convert one part (sent to it pickled, once)."""

    facts: FileFacts
    part: ByteRange
    dataset: str
    import_id: str
    started: datetime
    equivalence: EquivalenceTable | None
    skip_invalid: bool
    replace: bool
    store_path: str
    part_path: str
    parent_pid: int


@dataclass
class PartOutcome:
    """What a helper reports back: counts, the errors it kept, or why it failed."""

    rows_read: int = 0
    added: int = 0
    unchanged: int = 0
    replaced: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    notes: list[str] = field(default_factory=list)
    misaligned: bool = False  # the part ended inside a quoted cell: its cut was not a row end
    file_errors: list[RowError] | None = None  # an IngestError that refuses the whole file
    file_hint: str = ""
    crash: str | None = None  # any other failure, as text


class Helper:
    """One spawned process converting one part into its part database."""

    def __init__(self, job: PartJob) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process holding threads
        self.job = job
        self.rows = context.RawValue("q", 0)
        self.position = context.RawValue("q", job.part.start)
        self._receiver, sender = context.Pipe(duplex=False)
        # Never written to: the helper waits for it to close (this process done with the part
        # database, or gone) before it deletes its files and exits.
        control, self._control = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_helper_main,
            args=(job, self.rows, self.position, sender, control),
            name=f"enlace-ingest-part-{job.part.start}",
            daemon=True,
        )
        try:
            self._process.start()
        except BaseException:
            for end in (self._receiver, sender, control, self._control):
                end.close()
            raise
        sender.close()
        control.close()

    def outcome(self, waiting: Callable[[], None] | None = None) -> PartOutcome:
        """Wait for the helper's report (calling ``waiting`` about every 0.2 s meanwhile)."""
        while not self._receiver.poll(0.2):
            if not self._process.is_alive() and not self._receiver.poll(0):
                raise self._stopped()
            if waiting is not None:
                waiting()
        try:
            result: PartOutcome = self._receiver.recv()
        except (EOFError, OSError):  # it ended without reporting (killed, out of memory)
            self._process.join(timeout=10)
            raise self._stopped() from None
        if result.crash is not None:
            raise StoreError(
                f"converting {self.job.facts.path} from byte {self.job.part.start} failed: "
                f"{result.crash}",
                hint=_NOTHING_WRITTEN,
            )
        if result.file_errors is not None:
            raise IngestError(result.file_errors, hint=result.file_hint)
        return result

    def _stopped(self) -> StoreError:
        return StoreError(
            f"the helper converting {self.job.facts.path} from byte {self.job.part.start} "
            f"stopped (exit code {self._process.exitcode})",
            hint=_NOTHING_WRITTEN,
        )

    def close(self) -> None:
        """Release the helper (it deletes its part database and exits)."""
        self._control.close()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._receiver.close()


def scratch_directory() -> Path:
    return Path(tempfile.mkdtemp(prefix="enlace-ingest-"))


def remove_scratch(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------ the helper


def _part_engine(part_path: str, store_path: str) -> Engine:
    """The part database, with the node's attached read-only as :data:`STORED`."""
    import sqlite3

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"file:{url_quote(part_path)}", uri=True, isolation_level=None, timeout=30
        )
        conn.execute("PRAGMA journal_mode=OFF")  # scratch data: a crash loses nothing of value
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(f"PRAGMA cache_size = {PART_CACHE_KIB}")
        conn.execute(f"ATTACH DATABASE 'file:{url_quote(store_path)}?mode=ro' AS {STORED}")
        return conn

    # As the node's engines: a failing statement's values (names, document numbers) stay out
    # of the exception text, which travels to the importing process and onto the screen.
    engine = create_engine("sqlite+pysqlite://", creator=connect, future=True, hide_parameters=True)

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


def _helper_main(job: PartJob, rows: Any, position: Any, sender: Pipe, control: Pipe) -> None:
    gc.disable()  # as in the importing process (node.ingest.pipeline says why); it exits after
    try:
        try:
            outcome = _convert_part(job, rows, position)
        except IngestError as exc:
            outcome = PartOutcome(file_errors=list(exc.errors), file_hint=exc.hint or "")
        except Exception as exc:  # reported to the importing process, which raises it there
            failure = reported_failure(exc)  # a database's words, never its SQL
            detail = (
                failure.message
                if failure is not None
                else traceback.format_exception_only(type(exc), exc)[-1].strip()
            )
            outcome = PartOutcome(crash=detail)
        sender.send(outcome)
        sender.close()
        with contextlib.suppress(EOFError):
            control.recv()  # raises EOFError once the importing process closes it, or exits
    finally:
        _remove_part(job.part_path)


def _remove_part(part_path: str) -> None:
    path = Path(part_path)
    for leftover in (path, path.with_name(path.name + "-journal")):
        leftover.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the scratch directory, once its last part is gone


def _convert_part(job: PartJob, rows: Any, position: Any) -> PartOutcome:
    from node.ingest.batch import RowPlan, columns_for
    from node.ingest.csv_source import CsvSource
    from node.ingest.pipeline import _read_file, _Run
    from node.ingest.report import FileReport, IngestReport, Progress
    from node.records.datasets import DATASETS

    spec = DATASETS[job.dataset]
    table = DATASET_TABLES[job.dataset]
    engine = _part_engine(job.part_path, job.store_path)
    try:
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql(str(CreateTable(table).compile(dialect=conn.dialect)))
            conn.exec_driver_sql("CREATE TABLE part_replaced (key TEXT PRIMARY KEY)")
            conn.exec_driver_sql(
                "CREATE TABLE part_unchanged (key TEXT PRIMARY KEY, content_hash TEXT, "
                "import_id TEXT, source_row INTEGER)"
            )
            conn.exec_driver_sql(
                "CREATE TABLE part_rejects (source_row INTEGER, cells TEXT, errors TEXT)"
            )
            writer = _PartWriter(
                conn,
                job.dataset,
                columns_for(spec),
                stored_schema=STORED,
                unchanged_table="part_unchanged",
            )
            plan = RowPlan(spec, writer, job.equivalence, job.started)
            report = IngestReport(job.dataset, False, job.skip_invalid, job.replace)
            rejects = _PartRejects(writer) if job.skip_invalid else None
            imported_at = writer.processor("imported_at")(job.started)
            run = _Run(writer, plan, report, rejects, imported_at)
            facts = job.facts
            file = FileReport(
                str(facts.path), facts.format, facts.sha256, facts.size, job.import_id
            )
            report.files.append(file)
            run.file = file
            run.files_by_import[job.import_id] = str(facts.path)

            def progress(now: Progress) -> None:
                if os.getppid() != job.parent_pid:
                    raise SystemExit(1)  # the importing process is gone
                rows.value, position.value = now.rows, now.position

            source = CsvSource(facts, spec, part=job.part)
            _read_file(run, source, progress)
        return PartOutcome(
            rows_read=file.rows_read,
            added=file.added,
            unchanged=file.unchanged,
            replaced=file.replaced,
            rejected=file.rejected,
            errors=report.errors,
            error_count=report.error_count,
            notes=list(file.notes),
            misaligned=source.misaligned,
        )
    finally:
        engine.dispose()


class _PartWriter(RecordsWriter):
    """The part's writer: also notes the keys it replaces, and keeps the rows it refuses."""

    def replace(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            at = self.columns.index(key_column(self.dataset))
            keys = [(row[at],) for row in rows]
            self._run_many("INSERT OR IGNORE INTO part_replaced (key) VALUES (?)", keys)
        super().replace(rows)

    def reject(self, cells: Sequence[str], errors: list[RowError], raw: str | None) -> None:
        """Keep a refused row: its cells as a JSON list, or a misshapen row's ``raw`` text as
        ``{"raw": text}`` (:func:`part_rejects` reads both back)."""
        encoded = json.dumps([_error_tuple(e) for e in errors], ensure_ascii=False)
        kept = list(cells) if raw is None else {"raw": raw}
        self._run_many(
            "INSERT INTO part_rejects (source_row, cells, errors) VALUES (?, ?, ?)",
            [(errors[0].row, json.dumps(kept, ensure_ascii=False), encoded)],
        )


class _PartRejects:
    """The rejects of a part, kept in its database until the importing process writes them."""

    def __init__(self, writer: _PartWriter) -> None:
        self._writer = writer

    def write(self, cells: Sequence[str], errors: list[RowError], raw: str | None = None) -> None:
        self._writer.reject(cells, errors, raw)


def _error_tuple(error: RowError) -> list[Any]:
    return [error.file, error.row, error.column, error.problem, error.fix]


def part_rejects(
    rows: Sequence[tuple[int, str, str]],
) -> list[tuple[int, list[str], list[RowError], str | None]]:
    """The part's refused rows as (row, cells, errors, raw text of a misshapen row), decoded."""
    decoded: list[tuple[int, list[str], list[RowError], str | None]] = []
    for number, cells, errors in rows:
        kept = json.loads(cells)
        problems = [RowError(*e) for e in json.loads(errors)]
        if isinstance(kept, dict):
            decoded.append((number, [], problems, str(kept["raw"])))
        else:
            decoded.append((number, kept, problems, None))
    return decoded


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def database_path(store: Store) -> str:
    """The SQLite file the helpers open by its path (:func:`parts_for` plans no parts for an
    in-memory database)."""
    database = store.engine.url.database
    assert database is not None
    return database


def parts_for(store: Store, source: Source, workers: int, room: int) -> list[ByteRange]:
    """The parts a file is read in: one, unless it is a large CSV file on an SQLite file
    database and more than one process may convert it (``room``: part databases left)."""
    facts = source.facts
    whole = [ByteRange(0, None)]
    if facts.format != "csv" or store.records.backend != "sqlite" or room < 1:
        return whole
    database = store.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return whole  # helpers open the database by its path
    if facts.size < PARALLEL_MIN_BYTES:
        return whole
    count = min(workers or _usable_cores(), room + 1)
    count = min(count, max(1, 2 * facts.size // PARALLEL_MIN_BYTES))  # >= half each
    return plan_parts(facts.path, facts.size, count)
