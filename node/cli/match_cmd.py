"""``enlace match``: private identity matching against every peer the agreements allow.

Querier commands (``document``, ``person``, ``batch``, ``sync``) fan out through
:class:`node.matching.client.MatchClient` and print one hit / no-hit row per peer and dataset
(``--json`` for machines); the holder commands (``rebuild``, ``rotate-epoch``, ``status``,
``usage``), which manage this node's keys and filters, are in :mod:`node.cli.match_holder_cmd`.
Thin by design: parse, call, print.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
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
    node_runtime,
    print_json,
    progress_bar,
    styled,
    text_column,
    warning_line,
)
from node.cli.files import check_writable
from node.cli.followups_view import (
    exit_if_failed,
    follow_up_entry,
    followups_table,
    print_failures,
)
from node.errors import InvalidArgumentError
from node.home import NodeHome
from node.matching.batch_file import BatchFile, BatchFileError, read_batch_file, write_rejects
from node.matching.client import MatchClient, MatchReport
from node.matching.filters import refresh_after_ingest
from node.matching.followup import check_case_reference
from node.matching.sources import (
    DOCUMENT_DATASETS,
    MATCH_DATASETS,
    PERSON_DATASETS,
    Query,
    document_query,
    person_query,
    split_name,
)
from node.stats.export import spreadsheet_safe
from node.store import Store
from node.store.failures import reported_failure

app = typer.Typer(no_args_is_help=True)

MAX_ERROR_LINES = 50  # problems of a batch file printed (as `enlace ingest`); --json gives all

PurposeOption = Annotated[
    str, typer.Option("--purpose", help="Purpose the agreement grants, sent with every call.")
]
PeerOption = Annotated[
    list[str] | None, typer.Option("--peer", help="Ask only this peer (repeatable).")
]
DatasetOption = Annotated[
    list[str] | None, typer.Option("--dataset", help="Ask only this dataset (repeatable).")
]
AllOption = Annotated[
    bool, typer.Option("--all-peers", help="Also call peers our agreements do not allow.")
]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Per-call deadline, seconds.")]
CaseOption = Annotated[
    str, typer.Option("--case", help="Case reference; with it, every hit is followed up.")
]


def refresh_match_filters(
    home: NodeHome, store: Store, table: str, *, quiet: bool
) -> list[dict[str, Any]]:
    """After an import: update the match filters it feeds (never fails the import itself).
    Returns what changed, for ``--json``: per dataset its new version and counts, or one
    ``{"error": …}`` when they could not be updated (the warning is printed either way)."""
    try:
        reports = refresh_after_ingest(home, store, table, dt.datetime.now(dt.UTC))
    except Exception as exc:  # the import is committed; say how to catch up
        failure = reported_failure(exc)  # a database's words, never its SQL
        said = failure.message if failure is not None else str(exc)
        err_console.print(
            warning_line(
                "warning:", f"match filters not updated ({said}); run `enlace match rebuild`"
            ),
            highlight=False,
        )
        return [{"error": f"match filters not updated ({said})", "fix": "enlace match rebuild"}]
    changed = [
        {"dataset": r.dataset, "version": r.version, "entries": r.entries,
         "keys_added": r.keys_added, "records_keyed": r.records_keyed,
         "records_removed": r.records_removed}
        for r in reports
    ]  # fmt: skip
    if not quiet:
        for r in reports:
            err_console.print(
                f"match filter {r.dataset}: version {r.version}, {r.entries:,} keys "
                f"(+{r.keys_added:,} from {r.records_keyed:,} records, "
                f"{r.records_removed:,} records removed)",
                highlight=False,
            )
    return changed


def chosen_datasets(chosen: Sequence[str] | None, default: Sequence[str]) -> list[str]:
    picked = list(chosen or default)
    for name in picked:
        if name not in default:
            raise InvalidArgumentError(
                f"{name!r} is not asked by this command", field="--dataset", hint=", ".join(default)
            )
    return picked


def _results_table(report: MatchReport, title: str) -> Table:
    table = FittedTable(title=title)
    for column in ("peer", "dataset", "result", "strength", "agreement / reason"):
        text_column(table, column)
    style = {"hit": "bold green", "no hit": "", "not granted": "dim", "error": "red"}
    for o in report.outcomes:
        result = "HIT" if o.status == "hit" else o.status
        table.add_row(
            o.peer,
            o.dataset,
            styled(result, style[o.status]),
            o.strength,
            o.agreement if o.status in ("hit", "no hit") else o.detail,
        )
    return table


def _follow_ups(
    mc: MatchClient, report: MatchReport, case: str, purpose: str
) -> list[dict[str, Any]]:
    """Follow every hit up under ``case``: one entry per hit (see
    :mod:`node.cli.followups_view`)."""
    return [
        follow_up_entry(
            {"peer": hit.peer, "dataset": hit.dataset, "case_reference": case},
            granted=bool(mc.granted_attributes(hit.peer, hit.dataset, purpose)),
            ask=functools.partial(mc.follow_up, hit, case_reference=case, purpose=purpose),
            purpose=purpose,
        )
        for hit in report.hits()
    ]


def _single(
    home: Path,
    query: Query,
    datasets: list[str],
    purpose: str,
    peers: Sequence[str] | None,
    ask_all: bool,
    timeout: float,
    case: str,
    as_json: bool,
) -> None:
    with cli_errors(as_json):
        if case:  # refused now, not after the query has spent quota at every peer
            check_case_reference(case)
    with (
        cli_errors(as_json),
        node_runtime(home) as runtime,
        MatchClient(runtime, timeout=timeout) as mc,
    ):
        report = mc.run([query], datasets, purpose=purpose, peers=peers, ask_all=ask_all)
        followups = _follow_ups(mc, report, case, purpose) if case else []
    if as_json:
        print_json(
            {
                "query": query.describe(),
                "purpose": purpose,
                "results": [o.to_dict() for o in report.outcomes],
                "hits": len(report.hits()),
                "elements": report.elements,
                "seconds": round(report.seconds, 3),
                "followups": followups,
            }
        )
    else:
        console.print(_results_table(report, f"{query.kind} {query.describe()} ({purpose})"))
        if followups:
            console.print(followups_table(followups, case))
        console.print(
            f"{len(report.hits())} hit(s); {report.elements} element(s) evaluated "
            f"in {report.seconds * 1000:.0f} ms",
            highlight=False,
        )
        print_failures(followups, again="ask again with `enlace match` once the cause is fixed")
    exit_if_failed(followups)  # the operator asked for these: a script must see they were not made


@app.command("document")
def document(
    number: Annotated[str, typer.Option("--number", help="Document number (any spacing).")],
    country: Annotated[str, typer.Option("--country", help="Issuing state, ISO 3166 alpha-3.")],
    home: HomeOption,
    purpose: PurposeOption = "identity_verification",
    peer: PeerOption = None,
    dataset: DatasetOption = None,
    all_peers: AllOption = False,
    timeout: TimeoutOption = 10.0,
    case: CaseOption = "",
    as_json: JsonOption = False,
) -> None:
    """Is this document known to (or flagged by) any peer? One row per peer and dataset."""
    with cli_errors(as_json):
        query = document_query(number, country.strip().upper())
        datasets = chosen_datasets(dataset, DOCUMENT_DATASETS)
    _single(home, query, datasets, purpose, peer, all_peers, timeout, case, as_json)


@app.command("person")
def person(
    name: Annotated[str, typer.Option("--name", help='"SURNAMES, GIVEN NAMES".')],
    birth_date: Annotated[str, typer.Option("--birth-date", help="YYYY-MM-DD, YYYY-MM or YYYY.")],
    home: HomeOption,
    purpose: PurposeOption = "identity_verification",
    peer: PeerOption = None,
    dataset: DatasetOption = None,
    all_peers: AllOption = False,
    timeout: TimeoutOption = 10.0,
    case: CaseOption = "",
    as_json: JsonOption = False,
) -> None:
    """Has any peer recorded this person (name + date of birth, several exact variants)?"""
    with cli_errors(as_json):
        surname, given = split_name(name)
        query = person_query(surname, given, birth_date)
        datasets = chosen_datasets(dataset, PERSON_DATASETS)
    _single(home, query, datasets, purpose, peer, all_peers, timeout, case, as_json)


def _print_problems(batch: BatchFile, as_json: bool, error: BatchFileError | None) -> None:
    """The problems of ``batch``'s refused rows, one line each (at most
    :data:`MAX_ERROR_LINES`) on stderr, as ``enlace ingest`` prints them; with ``error`` (the
    file is refused) the closing error line, or the JSON error object."""
    errors = batch.errors
    if as_json:
        if error is not None:
            print_json(
                {
                    "error": error.message,
                    "hint": error.hint,
                    "status": error.status_name,
                    "error_count": len(errors),
                    "errors": [e.to_dict() for e in errors],
                }
            )
        return
    for problem in errors[:MAX_ERROR_LINES]:
        err_console.print(str(problem), highlight=False, soft_wrap=True)
    if len(errors) > MAX_ERROR_LINES:
        err_console.print(f"… and {len(errors) - MAX_ERROR_LINES:,} more", highlight=False)
    if error is not None:
        err_console.print(
            error_line(
                f"{len(errors):,} problem(s) in {len(batch.refused):,} of {batch.rows:,} row(s) "
                f"of {batch.path}; nothing was asked of any peer — {error.hint}"
            ),
            highlight=False,
            soft_wrap=True,
        )


@app.command("batch")
def batch(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: id, document_number, issuing_state, surname, given_names, birth_date."
        ),
    ],
    home: HomeOption,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Results CSV (default: FILE's stem + .results.csv)."),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Ask the valid rows, refuse others.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="CSV file for refused rows and reasons.")
    ] = None,
    purpose: PurposeOption = "identity_verification",
    peer: PeerOption = None,
    all_peers: AllOption = False,
    timeout: TimeoutOption = 30.0,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
) -> None:
    """Match thousands of documents and persons; write one result row per query, peer, dataset.

    The whole file is checked first: with a bad row nothing is asked (every problem is
    listed), unless --skip-invalid --rejects FILE asks the valid rows and sets the others
    aside with their reasons."""
    target = out or file.with_name(file.stem + ".results.csv")
    with cli_errors(as_json):
        if skip_invalid != (rejects is not None):
            raise InvalidArgumentError(
                "--skip-invalid and --rejects go together",
                field="--rejects",
                hint="give both: --skip-invalid --rejects rejected.csv",
            )
        read = read_batch_file(file)
        check_writable((target,), "--out")
        if rejects is not None:
            check_writable((rejects,), "--rejects")
    if read.refused and not skip_invalid:
        _print_problems(read, as_json, BatchFileError(read))
        raise typer.Exit(1)
    with cli_errors(as_json):
        if rejects is not None and read.refused:
            try:
                write_rejects(read, rejects)
            except OSError as exc:
                raise InvalidArgumentError(
                    f"cannot write {rejects}: {exc.strerror or exc}; nothing was asked",
                    field="--rejects",
                    hint="give --rejects a path in an existing, writable directory",
                ) from None
        if not read.queries:
            _print_problems(read, as_json, None)
            raise InvalidArgumentError(
                f"none of the {read.rows:,} row(s) of {file} is valid; nothing was asked",
                hint=f"the rows and their reasons are in {rejects}",
            )
        queries = read.queries
        kinds = {q.kind for q in queries}
        datasets = [
            d
            for d in MATCH_DATASETS
            if ("document" in kinds and d in DOCUMENT_DATASETS)
            or ("person" in kinds and d in PERSON_DATASETS)
        ]
        with (
            node_runtime(home) as runtime,
            MatchClient(runtime, timeout=timeout) as mc,
            progress_bar("matching", disable=not progress) as bar,
        ):
            task = bar.add_task("elements", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = mc.run(
                queries, datasets, purpose=purpose, peers=peer, ask_all=all_peers, progress=advance
            )
        wanted = {(i, d) for i, q in enumerate(queries) for d in datasets if _asks(q, d)}
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("id", "kind", "peer", "dataset", "result", "strength", "detail"))
            for o in report.outcomes:
                if (o.query, o.dataset) in wanted:
                    q = queries[o.query]
                    cells = (q.label, q.kind, o.peer, o.dataset, o.status, o.strength, o.detail)
                    writer.writerow([spreadsheet_safe(c) for c in cells])  # peers' details too
    summary = Counter((o.peer, o.dataset, o.status) for o in report.outcomes)
    refused = {
        "rows": read.rows,
        "refused": len(read.refused),
        "rejects_file": str(rejects) if rejects is not None and read.refused else None,
    }
    if as_json:
        print_json(
            {
                "queries": len(queries),
                "elements": report.elements,
                "seconds": round(report.seconds, 3),
                "results_file": str(target),
                "summary": [
                    {"peer": p, "dataset": d, "result": s, "count": n}
                    for (p, d, s), n in sorted(summary.items())
                ],
                **refused,
                "errors": [e.to_dict() for e in read.errors],
            }
        )
        return
    table = FittedTable(title=f"{len(queries):,} queries, {report.elements:,} elements")
    for column in ("peer", "dataset", "result", "count"):
        text_column(table, column)
    for (p, d, s), n in sorted(summary.items()):
        table.add_row(p, d, s, f"{n:,}")
    console.print(table)
    console.print(
        f"{report.seconds:.1f} s; results written to {target}", highlight=False, soft_wrap=True
    )
    if read.refused:
        console.print(
            warning_line(
                f"{len(read.refused):,} row(s) refused, not asked,",
                f"written with their reasons to {rejects}",
            ),
            highlight=False,
            soft_wrap=True,  # a path, whole on one line
        )
        _print_problems(read, as_json, None)


def _asks(query: Query, dataset: str) -> bool:
    return dataset in (DOCUMENT_DATASETS if query.kind == "document" else PERSON_DATASETS)


@app.command("sync")
def sync(
    home: HomeOption,
    purpose: PurposeOption = "identity_verification",
    peer: PeerOption = None,
    dataset: DatasetOption = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Fetch whole filters, not deltas, and accept one older than the copy held "
            "(a peer restored from a backup).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Fetch and verify the filters of every peer and dataset our agreements allow."""
    rows: list[dict[str, Any]] = []
    with cli_errors(as_json), node_runtime(home) as runtime, MatchClient(runtime) as mc:
        for target in mc.targets(chosen_datasets(dataset, MATCH_DATASETS), purpose, peers=peer):
            row: dict[str, Any] = {"peer": target.peer, "dataset": target.dataset}
            if not target.allowed:
                rows.append(row | {"result": "not granted", "detail": target.reason})
                continue
            try:
                cached = mc.sync(target.peer, target.dataset, purpose, full=full)
            except Exception as exc:
                rows.append(row | {"result": "error", "detail": str(exc)})
                continue
            m = cached.manifest
            rows.append(row | {"result": "ok", "epoch": m.epoch, "version": m.version,
                               "entries": m.count, "bytes": m.size})  # fmt: skip
    print_rows(rows, "Peers' filters", as_json)


def print_rows(rows: list[dict[str, Any]], title: str, as_json: bool) -> None:
    if as_json:
        print_json(rows)
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    table = FittedTable(title=title)
    for column in columns:
        text_column(table, column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)
