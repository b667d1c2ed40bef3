"""``enlace ingest`` (validated, atomic imports) and ``enlace records`` (what the node holds).

The command is thin: it opens the node's store, picks the equivalence table (``--equivalence``
or ``HOME/equivalence.yaml``), runs :func:`node.ingest.pipeline.ingest` and prints either a
summary or JSON. A refused import prints one line per problem, ``file:row:column: problem —
fix``, at most :data:`MAX_ERROR_LINES` of them, and exits 1; nothing was written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import TaskID
from rich.table import Table

from node.cli.common import (
    FittedTable,
    HomeOption,
    JsonOption,
    ProgressOption,
    cli_errors,
    console,
    err_console,
    error_line,
    print_json,
    progress_bar,
    text_column,
    warning_line,
)
from node.cli.match_cmd import refresh_match_filters
from node.errors import ConfigError
from node.home import NodeHome
from node.ingest import IngestError, node_equivalence
from node.ingest import pipeline as ingest_pipeline
from node.ingest.report import IngestReport
from node.ingest.report import Progress as ImportProgress
from node.records.datasets import DATASETS
from node.records.equivalence import EquivalenceTable, load_equivalence
from node.store import Store, open_store
from node.store.records_store import ImportRecord

MAX_ERROR_LINES = 50

records_app = typer.Typer(no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.add_typer(records_app, name="records", help="Local records: counts and import history.")


def _open(home: Path) -> tuple[NodeHome, Store, str]:
    node_home = NodeHome(home)
    config = node_home.config()
    return node_home, open_store(node_home.database_url(config)), config.country


def _equivalence(node_home: NodeHome, path: Path | None, country: str) -> EquivalenceTable | None:
    table = load_equivalence(path) if path is not None else node_equivalence(node_home)
    if table is not None and table.node != country:
        raise ConfigError(
            f"the equivalence table is for {table.node}, but this node is {country}",
            hint="pass the table of this node with --equivalence FILE",
        )
    return table


class _View:
    """An import's progress on stderr (:func:`node.cli.common.progress_bar`): one task per
    file, its bar the bytes read, its count the rows read and their rate. Off a terminal, a
    line per file every tenth of it (or every 10 s) and at its end: "encounters.csv: 120,000
    rows read, 41,000 rows/s (30%, 3 s)"."""

    def __init__(self, enabled: bool) -> None:
        self.bar = progress_bar(disable=not enabled)
        self.tasks: dict[str, tuple[TaskID, float]] = {}
        self.mark = self.bar.clock()  # when the file being read was started (hashing included)

    def __enter__(self) -> _View:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, event: ImportProgress) -> None:
        now = self.bar.clock()
        if event.file not in self.tasks:  # the file's name, never markup
            name, total = Path(event.file).name, event.size or None
            task = self.bar.add_task(name, total=total, started=self.mark)
            self.tasks[event.file] = (task, self.mark)
        task, started = self.tasks[event.file]
        rate = event.rows / max(now - started, 1e-3)
        detail = f"{event.rows:,} rows read, {rate:,.0f} rows/s"
        self.bar.update(task, completed=event.position, detail=detail)
        if event.size and event.position >= event.size:
            self.mark = now  # the next file starts


def _summary(report: IngestReport) -> Table:
    title = f"{report.dataset}: " + ("dry run, nothing written" if report.dry_run else "imported")
    table = FittedTable(title=title)
    for column in ("file", "rows", "added", "unchanged", "replaced", "rejected"):
        text_column(table, column, justify="left" if column == "file" else "right")
    for f in report.files:
        table.add_row(
            f.path, *(f"{n:,}" for n in (f.rows_read, f.added, f.unchanged, f.replaced, f.rejected))
        )
    return table


def _print_errors(exc: IngestError, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "error": exc.message,
                "hint": exc.hint,
                "status": exc.status_name,
                "error_count": exc.error_count,
                "errors": [e.to_dict() for e in exc.errors],
                "report": exc.report.to_dict() if exc.report else None,
            }
        )
        return
    for error in exc.errors[:MAX_ERROR_LINES]:
        err_console.print(str(error), highlight=False, markup=False, soft_wrap=True)
    more = exc.error_count - min(len(exc.errors), MAX_ERROR_LINES)
    if more > 0:
        err_console.print(f"… and {more:,} more", highlight=False)
    err_console.print(
        error_line(f"{exc.error_count:,} problem(s); nothing was imported — {exc.hint}"),
        highlight=False,
        soft_wrap=True,
    )


def ingest(
    dataset: Annotated[str, typer.Argument(help="Dataset: " + ", ".join(DATASETS) + ".")],
    files: Annotated[list[Path], typer.Argument(help="CSV (UTF-8), JSON Lines or XLSX files.")],
    home: HomeOption,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Import valid rows, refuse others."),
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="CSV file for refused rows and reasons.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and count, then write nothing.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite stored records whose content changed.")
    ] = False,
    equivalence: Annotated[
        Path | None,
        typer.Option("--equivalence", help="Equivalence table (default HOME/equivalence.yaml)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            envvar="ENLACE_INGEST_WORKERS",
            help="Processes converting one large CSV file on SQLite (0: one per core).",
        ),
    ] = 0,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
) -> None:
    """Validate FILES and import them into DATASET in one transaction (all or nothing)."""
    with cli_errors(as_json):
        node_home, store, country = _open(home)
        try:
            table = _equivalence(node_home, equivalence, country)
            with _View(enabled=progress) as view:
                report = ingest_pipeline.ingest(
                    store,
                    dataset,
                    files,
                    now=dt.datetime.now(dt.UTC),
                    equivalence=table,
                    skip_invalid=skip_invalid,
                    rejects_path=rejects,
                    replace=replace,
                    dry_run=dry_run,
                    progress=view,
                    workers=workers,
                )
            filters: list[dict[str, Any]] = []
            if report.committed:
                filters = refresh_match_filters(node_home, store, dataset, quiet=as_json)
        except IngestError as exc:
            _print_errors(exc, as_json)
            raise typer.Exit(1) from None
        finally:
            store.close()
    if as_json:
        print_json({**report.to_dict(), "match_filters": filters})
        return
    console.print(_summary(report))
    for f in report.files:
        for note in f.notes:
            console.print(f"note: {f.path}: {note}", highlight=False)
    rate = report.rows_per_second
    console.print(
        f"{report.total('rows_read'):,} rows in {report.seconds:.1f} s ({rate:,.0f} rows/s)"
    )
    if report.rejects_path and report.total("rejected"):
        console.print(
            warning_line(
                f"{report.total('rejected'):,} row(s) refused,",
                f"written with their reasons to {report.rejects_path}",
            ),
            highlight=False,
        )
        for error in report.errors[:MAX_ERROR_LINES]:
            err_console.print(str(error), highlight=False, markup=False, soft_wrap=True)


@records_app.command("counts")
def counts(home: HomeOption, as_json: JsonOption = False) -> None:
    """Records stored per dataset, and when each was last imported."""
    with cli_errors(as_json):
        _, store, _ = _open(home)
        try:
            summary = store.records.summary()
        finally:
            store.close()
    if as_json:
        print_json(
            {
                s.dataset: {"records": s.records, "as_of": s.as_of.isoformat() if s.as_of else None}
                for s in summary
            }
        )
        return
    table = FittedTable(title="Records")
    text_column(table, "dataset")
    text_column(table, "records", justify="right")
    text_column(table, "as of (latest import)")
    for s in summary:
        table.add_row(s.dataset, f"{s.records:,}", s.as_of.isoformat() if s.as_of else "—")
    console.print(table)


@records_app.command("imports")
def imports(
    home: HomeOption,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    limit: Annotated[int, typer.Option(help="Newest N imports.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Import history, newest first: file, hash, counts, status."""
    with cli_errors(as_json):
        _, store, _ = _open(home)
        try:
            history = store.records.imports(dataset, limit)
        finally:
            store.close()
    if as_json:
        print_json([r.to_dict() for r in history])
        return
    console.print(imports_table(history))
    for number, r in enumerate(history, 1):
        console.print(f"  {number:>3}  sha256 {r.file_sha256}", highlight=False, soft_wrap=True)


def imports_table(history: list[ImportRecord]) -> FittedTable:
    """One import a row. The SHA-256 goes under the table, whole (64 digits in a column would
    starve the others); on a narrow terminal the counts an operator can do without (unchanged,
    then rejected) are listed below by number rather than break a word."""
    table = FittedTable(title="Imports", key="#")
    for column in ("#", "finished", "dataset", "file", "added"):
        text_column(table, column)
    text_column(table, "unchanged", drop=1)
    text_column(table, "rejected", drop=2)
    text_column(table, "status")
    for number, r in enumerate(history, 1):
        row: list[Any] = [str(number), r.finished_at.strftime("%Y-%m-%d %H:%M:%S"), r.dataset]
        row += [r.file_name, f"{r.rows_added:,}", f"{r.rows_unchanged:,}"]
        row += [f"{r.rows_rejected:,}", r.status]
        table.add_row(*row)
    return table
