"""The import itself: one transaction, validated rows, batched writes, idempotent re-imports.

Why: DESIGN §2 non-negotiable 4. Every file of an ``enlace ingest`` is read in one database
transaction; rows are validated and normalised (:mod:`node.ingest.cells`), compared with what
is stored under the same natural key, and written in batches of :data:`BATCH_ROWS` through the
driver's ``executemany``. Memory stays flat: the pipeline holds one batch, a bounded list of
problems and the converters' bounded caches — never the file, never all its keys.

Invariants:
* Default mode is all-or-nothing: any problem in any row of any file raises
  :class:`~node.ingest.IngestError` inside the transaction, which rolls back. A crash (even
  ``SIGKILL``) before the commit leaves the store exactly as it was.
* ``skip_invalid`` commits the valid rows and writes every refused row, with its reasons, to
  the rejects file (published atomically once the import ends). File-level problems (encoding,
  header, a CSV that cannot be parsed further) still refuse the whole import.
* ``dry_run`` does everything, including the writes, then rolls back: its counts are exactly
  those a real run would give.
* A natural key already stored with identical content counts as *unchanged*; with different
  content it is an error naming both places, unless ``replace`` is set. A key repeated within
  the import is an error naming both rows, whatever became of the first: the store finds it,
  since rows of earlier batches are already written in the transaction, and the keys of rows
  found unchanged (not written) are kept in a table of the transaction for the lookups.

Speed: the cyclic garbage collector is paused while an import runs (:func:`_collector_paused`)
and restored afterwards. An import allocates millions of short-lived lists and tuples, none in
a reference cycle; each batch is freed by reference counting, but the collector would still
walk every live batch and every long-lived object of the process, again and again (about a
fifth of the import's time).
"""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

try:
    from psycopg import Error as _PostgresError
except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite-only installs work
    _PostgresError = SQLAlchemyError  # type: ignore[assignment,misc]

from node.errors import InvalidArgumentError, StoreError
from node.ingest import IngestError, RowError, parallel
from node.ingest.batch import PROVENANCE, RowPlan, columns_for
from node.ingest.csv_source import CsvSource
from node.ingest.readers import Source, open_source, source_columns
from node.ingest.report import FileReport, IngestReport, Progress, RejectsFile, RejectSink
from node.records.datasets import DATASETS, DatasetSpec
from node.records.equivalence import EquivalenceTable
from node.store.records_writer import RecordsWriter
from node.store.store import Store

#: Rows written by one import from which PostgreSQL's table is vacuumed and analysed at once.
SETTLE_ROWS = 10_000
log = logging.getLogger(__name__)
#: Errors of the database under an import, raised by SQLAlchemy or by the drivers themselves
#: (the writer hands batches straight to ``sqlite3`` and psycopg's ``COPY``).
DATABASE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, sqlite3.Error, _PostgresError)

BATCH_ROWS = 5000
MAX_KEPT_ERRORS = 1000


class _DryRunFinishedError(Exception):
    """Raised inside the transaction to roll a dry run back."""


class _Run:
    """State of one ingest call: counts, kept errors, the rejects file, the pending batch."""

    def __init__(
        self,
        writer: RecordsWriter,
        plan: RowPlan,
        report: IngestReport,
        rejects: RejectSink | None,
        imported_at: Any,
    ) -> None:
        self.writer = writer
        self.plan = plan
        self.report = report
        self.rejects = rejects
        self.imported_at = imported_at
        self.files_by_import: dict[str, str] = {}
        self.cells: list[list[str]] = []
        self.numbers: list[int] = []
        self.file: FileReport | None = None

    def fail(
        self, row: int, cells: list[str], problems: list[RowError], raw: str | None = None
    ) -> None:
        """Count a refused row, keep its problems, and set it aside (``raw``: a misshapen
        row as read, whose cells could not be mapped to columns)."""
        report = self.report
        report.error_count += len(problems)
        room = MAX_KEPT_ERRORS - len(report.errors)
        if room > 0:
            report.errors.extend(problems[:room])
        if self.rejects is not None:
            self.rejects.write(cells, problems, raw)
        assert self.file is not None
        self.file.rejected += 1

    def flush(self) -> None:
        """Convert, check and write the pending rows."""
        if not self.cells:
            return
        file, plan = self.file, self.plan
        assert file is not None
        cells, numbers, source = self.cells, self.numbers, file.path
        rows, keys, problems = plan.convert(cells, file.import_id, numbers, self.imported_at)
        kept = list(range(len(cells)))
        if problems:
            for index, found in sorted(problems.items()):
                row = numbers[index]
                self.fail(row, cells[index], [RowError(source, row, *p) for p in found])
            kept = [i for i in kept if i not in problems]
        if len(set(keys)) != len(keys):
            rows, keys, kept = self._drop_repeats(rows, keys, kept)
        new, changed = self._compare(rows, keys, kept)
        self.writer.insert(new)
        self.writer.replace(changed)
        file.added += len(new)
        file.replaced += len(changed)
        self.cells, self.numbers = [], []

    def _drop_repeats(
        self, rows: list[tuple[Any, ...]], keys: list[str], kept: list[int]
    ) -> tuple[list[tuple[Any, ...]], list[str], list[int]]:
        """Refuse the second and later rows of a key repeated within the batch."""
        first: dict[str, int] = {}
        keep: list[int] = []
        for position, key in enumerate(keys):
            index = kept[position]
            if key in first:
                source = self.file.path if self.file else ""
                row = self.numbers[index]
                error = _duplicate(source, row, self.plan, key, source, first[key])
                self.fail(row, self.cells[index], [error])
            else:
                first[key] = self.numbers[index]
                keep.append(position)
        return [rows[p] for p in keep], [keys[p] for p in keep], [kept[p] for p in keep]

    def _compare(
        self, rows: list[tuple[Any, ...]], keys: list[str], kept: list[int]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Split rows into new and changed ones; unchanged are counted, conflicts refused."""
        existing = self.writer.existing(keys)
        if not existing:
            return rows, []
        file, plan = self.file, self.plan
        assert file is not None
        new: list[tuple[Any, ...]] = []
        changed: list[tuple[Any, ...]] = []
        unchanged: list[tuple[str, str, str, int]] = []
        hash_at = len(plan.columns) - len(PROVENANCE)
        for position, (key, row) in enumerate(zip(keys, rows, strict=True)):
            stored = existing.get(key)
            index = kept[position]
            number = self.numbers[index]
            if stored is None:
                new.append(row)
            elif stored.import_id in self.files_by_import:
                earlier = self.files_by_import[stored.import_id]
                error = _duplicate(file.path, number, plan, key, earlier, stored.source_row)
                self.fail(number, self.cells[index], [error])
            elif stored.content_hash == row[hash_at]:
                file.unchanged += 1
                unchanged.append((key, row[hash_at], file.import_id, number))
            elif self.report.replace:
                changed.append(row)
            else:
                earlier = self.writer.import_file_name(stored.import_id)
                problem = (
                    f"{plan.describe_key(key)} is already stored with different content "
                    f"(from {earlier} row {stored.source_row})"
                )
                fix = "re-run with --replace to overwrite the stored record, or fix this row"
                error = RowError(file.path, number, plan.key_column, problem, fix)
                self.fail(number, self.cells[index], [error])
        # Not written, so remembered: the same key later in the import is a repeat.
        self.writer.note_unchanged(unchanged)
        return new, changed


def _duplicate(
    source: str, number: int, plan: RowPlan, key: str, first_file: str, first_row: int
) -> RowError:
    where = f"row {first_row}" if first_file == source else f"{first_file} row {first_row}"
    return RowError(
        source,
        number,
        plan.key_column,
        f"{plan.describe_key(key)} repeats {where}",
        "keep one of the two rows (a record is imported once)",
    )


def _read_file(
    run: _Run,
    source: Source,
    progress: Callable[[Progress], None] | None,
    helpers: Sequence[parallel.Helper] = (),
) -> None:
    """Read, convert and write the rows of ``source`` (the first part of the file when
    ``helpers`` convert the others: progress then counts theirs too)."""
    name, file = source.name, run.file
    assert file is not None
    last_report = time.monotonic()
    rows_read = 0
    if helpers and progress is not None:
        progress = _with_helpers(progress, helpers)
    for numbers, cells, misshapen in source.batches(BATCH_ROWS):
        rows_read += len(numbers) + len(misshapen)
        for number, row, shape in misshapen:
            assert shape is not None
            run.fail(number, [], [RowError(name, number, *shape)], source.raw_text(row))
        run.cells, run.numbers = cells, numbers
        full = len(numbers) >= BATCH_ROWS
        run.flush()
        now = time.monotonic()
        if full and progress is not None and now - last_report > 0.2:
            last_report = now
            progress(Progress(name, rows_read, source.position, source.facts.size))
    file.rows_read = rows_read
    file.notes.extend(source.notes)
    if progress is not None and source.part is None:
        progress(Progress(name, rows_read, source.facts.size, source.facts.size))


def _with_helpers(
    progress: Callable[[Progress], None], helpers: Sequence[parallel.Helper]
) -> Callable[[Progress], None]:
    """Progress of the whole file: this process's part and the helpers' so far."""

    def report(own: Progress) -> None:
        rows = own.rows + sum(h.rows.value for h in helpers)
        done = own.position + sum(h.position.value - h.job.part.start for h in helpers)
        progress(Progress(own.file, rows, done, own.size))

    return report


def _read_in_parts(
    run: _Run,
    source: Source,
    progress: Callable[[Progress], None] | None,
    helpers: Sequence[parallel.Helper],
) -> None:
    """The first part here, then each helper's part copied in (see :mod:`.parallel`)."""
    file = run.file
    assert file is not None
    _read_file(run, source, progress, helpers)
    if source.misaligned:
        raise parallel.SplitMisalignedError(str(file.path))
    tick = _with_helpers(progress, helpers) if progress is not None else None
    own_end = helpers[0].job.part.start if helpers else 0

    def waiting() -> None:
        if tick is not None:
            tick(Progress(source.name, file.rows_read, own_end, source.facts.size))

    for helper in helpers:
        outcome = helper.outcome(waiting)
        if outcome.misaligned:  # before the next helper: its part began at a wrong place
            raise parallel.SplitMisalignedError(str(file.path))
        _take_part(run, helper, outcome)
    if progress is not None:
        progress(Progress(source.name, file.rows_read, source.facts.size, source.facts.size))


def _take_part(run: _Run, helper: parallel.Helper, outcome: parallel.PartOutcome) -> None:
    """Add a helper's counts and errors, copy its rows, refuse its rows repeating a key."""
    file, report, plan = run.file, run.report, run.plan
    assert file is not None
    file.rows_read += outcome.rows_read
    file.added += outcome.added
    file.unchanged += outcome.unchanged
    file.replaced += outcome.replaced
    file.rejected += outcome.rejected
    file.notes.extend(n for n in outcome.notes if n not in file.notes)
    report.error_count += outcome.error_count
    room = MAX_KEPT_ERRORS - len(report.errors)
    if room > 0:
        report.errors.extend(outcome.errors[:room])
    repeats, refused = run.writer.copy_part(helper.job.part_path, list(run.files_by_import))
    cells = _cells_of(helper, {r.source_row for r in repeats}) if run.rejects else {}
    pending = {r.source_row: r for r in repeats}
    rejected = parallel.part_rejects(refused)
    events = sorted([(r.source_row, 1) for r in repeats] + [(row, 0) for row, *_ in rejected])
    by_row = {row: (row_cells, errors, raw) for row, row_cells, errors, raw in rejected}
    for row, kind in events:
        if kind == 0:
            if run.rejects is not None:
                run.rejects.write(*by_row[row])
            continue
        repeat = pending[row]
        earlier = run.files_by_import.get(repeat.earlier_import, file.path)
        error = _duplicate(file.path, row, plan, repeat.key, earlier, repeat.earlier_row)
        setattr(file, repeat.counted, getattr(file, repeat.counted) - 1)
        run.fail(row, cells.get(row, []), [error])


def _cells_of(helper: parallel.Helper, rows: set[int]) -> dict[int, list[str]]:
    """The cells of some rows of a helper's part, read again (for the rejects file)."""
    if not rows:
        return {}
    job = helper.job
    source = CsvSource(job.facts, DATASETS[job.dataset], part=job.part)
    found: dict[int, list[str]] = {}
    for numbers, cells, _ in source.batches(BATCH_ROWS):
        found.update((n, c) for n, c in zip(numbers, cells, strict=True) if n in rows)
    return found


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (see the module docstring)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_arguments(
    dataset: str, paths: Sequence[Path], now: datetime, skip: bool, rejects: Path | None
) -> DatasetSpec:
    if dataset not in DATASETS:
        raise InvalidArgumentError(
            f"unknown dataset {dataset!r}", field="dataset", hint="datasets: " + ", ".join(DATASETS)
        )
    if not paths:
        raise InvalidArgumentError("no file to import", field="files", hint="name one or more")
    if now.tzinfo is None:
        raise InvalidArgumentError("now must be timezone-aware", field="now")
    if skip != (rejects is not None):
        raise InvalidArgumentError(
            "--skip-invalid and --rejects go together",
            field="rejects",
            hint="give both: --skip-invalid --rejects rejected.csv",
        )
    return DATASETS[dataset]


def ingest(
    store: Store,
    dataset: str,
    paths: Sequence[Path | str],
    *,
    now: datetime,
    equivalence: EquivalenceTable | None = None,
    skip_invalid: bool = False,
    rejects_path: Path | str | None = None,
    replace: bool = False,
    dry_run: bool = False,
    progress: Callable[[Progress], None] | None = None,
    workers: int = 0,
) -> IngestReport:
    """Import ``paths`` into ``dataset`` in one transaction (see the module invariants).

    ``workers`` is the number of processes converting one large CSV file on SQLite (0: one
    per core; 1: this process alone; see :mod:`node.ingest.parallel`).

    Raises :class:`~node.ingest.IngestError` (nothing written) on any problem in default mode,
    on file-level problems in every mode, and on any problem in a dry run.
    """
    arguments = (store, dataset, paths, now, equivalence, skip_invalid, rejects_path, replace)
    try:
        return _ingest(*arguments, dry_run, progress, workers)
    except parallel.SplitMisalignedError as exc:
        log.info("%s: a cut between parts fell inside a quoted cell; importing it whole", exc)
        return _ingest(*arguments, dry_run, progress, 1)


def _ingest(
    store: Store,
    dataset: str,
    paths: Sequence[Path | str],
    now: datetime,
    equivalence: EquivalenceTable | None,
    skip_invalid: bool,
    rejects_path: Path | str | None,
    replace: bool,
    dry_run: bool,
    progress: Callable[[Progress], None] | None,
    workers: int,
) -> IngestReport:
    files = [Path(p) for p in paths]
    rejects_file = Path(rejects_path) if rejects_path is not None else None
    spec = _check_arguments(dataset, files, now, skip_invalid, rejects_file)
    started, clock = now.astimezone(UTC), time.monotonic()
    report = IngestReport(dataset, dry_run, skip_invalid, replace)
    rejects = RejectsFile(rejects_file, source_columns(spec)) if rejects_file else None
    report.rejects_path = str(rejects_file) if rejects_file else None
    scratches: list[Path] = []  # one per file in parts (its helpers remove it when done)
    try:
        with _collector_paused(), store.records.transaction() as conn:
            writer = store.records.writer(conn, dataset, columns_for(spec))
            plan = RowPlan(spec, writer, equivalence, started)
            writer.defer_indexes()
            run = _Run(writer, plan, report, rejects, writer.processor("imported_at")(started))
            attached = 0
            for path in files:
                source = open_source(path, spec)
                facts = source.facts
                file = FileReport(
                    str(path), facts.format, facts.sha256, facts.size, uuid.uuid4().hex
                )
                report.files.append(file)
                run.file = file
                run.files_by_import[file.import_id] = str(path)
                writer.begin_import(file.import_record(dataset, started, started, equivalence))
                parts = parallel.parts_for(store, source, workers, parallel.MAX_ATTACHED - attached)
                if len(parts) < 2:
                    _read_file(run, source, progress)
                else:
                    scratch = parallel.scratch_directory()
                    scratches.append(scratch)
                    writer.limit_cache(parallel.MAIN_CACHE_KIB)
                    source.part = parts[0]
                    helpers: list[parallel.Helper] = []
                    try:
                        for part in parts[1:]:
                            attached += 1
                            job = parallel.PartJob(
                                facts, part, dataset, file.import_id, started, equivalence,
                                skip_invalid, replace, parallel.database_path(store),
                                str(scratch / f"part-{attached}.db"), os.getpid(),
                            )  # fmt: skip
                            helpers.append(parallel.Helper(job))
                        _read_in_parts(run, source, progress, helpers)
                    finally:
                        for helper in helpers:
                            helper.close()
                finished = started + timedelta(seconds=time.monotonic() - clock)
                writer.finish_import(file.import_record(dataset, started, finished, equivalence))
            if report.error_count and not skip_invalid:
                report.seconds = time.monotonic() - clock
                raise IngestError(report.errors, error_count=report.error_count, report=report)
            if dry_run:
                report.seconds = time.monotonic() - clock
                raise _DryRunFinishedError
            writer.restore_indexes()
            report.seconds = time.monotonic() - clock
    except _DryRunFinishedError:
        pass
    except DATABASE_ERRORS as exc:
        if rejects is not None:
            rejects.discard()
        raise _store_refused(exc, files) from exc
    except BaseException:
        if rejects is not None:
            rejects.discard()
        raise
    finally:
        for scratch in scratches:
            parallel.remove_scratch(scratch)
    report.committed = not dry_run
    if rejects is not None:
        rejects.publish()
    if report.committed and report.total("added") + report.total("replaced") >= SETTLE_ROWS:
        try:
            store.records.settle(dataset)
        except DATABASE_ERRORS as exc:  # the import is committed; only its tidying failed
            log.warning("import committed; VACUUM (ANALYZE) of %s failed: %s", dataset, exc)
    return report


def _store_refused(exc: Exception, files: Sequence[Path]) -> StoreError:
    """The database failed under the import (disk full, connection lost, locked): one clear
    error instead of a driver traceback. The transaction was rolled back, so it says so."""
    cause = getattr(exc, "orig", None) or exc
    detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    names = ", ".join(str(f) for f in files)
    hint = "nothing was written; fix the database's condition and run the same import again"
    if "full" in detail.lower() or "no space" in detail.lower():
        hint = "free disk space where the database lives (or raise its quota); " + hint
    return StoreError(f"the database refused the import of {names}: {detail}", hint=hint)
