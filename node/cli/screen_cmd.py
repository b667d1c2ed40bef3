"""``enlace screen``: screen passenger manifests (PAXLST, bus CSV) against the federation.

``screen manifest FILE`` reads the file, screens every traveller against every peer and dataset
the agreements allow (one batched private match per peer and dataset, with a progress bar),
prints one row per traveller, writes CSV and JSON reports, keeps the screening for the
retention period, and exits 0 (nothing hit), 3 (at least one hit) or 4 (no hit, but a peer
failed or travellers could not be screened); 1 is any error before screening. ``--case`` sends
every hit straight into the follow-up flow (a Follow-ups table, ``followups`` in the JSON); if
one of those follow-ups fails the command exits 1 instead, after printing the results and
writing the reports. ``list``, ``show``, ``retention`` and ``purge``
manage what is kept. ``manifest-sample`` writes a sample manifest from generated data.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
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
    id_column,
    node_runtime,
    print_json,
    progress_bar,
    styled,
    text_column,
    warning_line,
)
from node.cli.files import check_writable
from node.cli.followups_view import (
    NOT_ASKED,
    exit_if_failed,
    follow_up_entry,
    followups_table,
    print_failures,
)
from node.cli.match_cmd import PeerOption, PurposeOption, TimeoutOption
from node.errors import EnlaceError, InvalidArgumentError
from node.manifests.csv_manifest import read_csv_manifest, write_csv_manifest
from node.manifests.model import Manifest, ManifestError
from node.manifests.paxlst import read_paxlst
from node.manifests.paxlst_writer import write_paxlst
from node.manifests.retention import expiry, purge_expired, record_reports, set_retention_days
from node.manifests.sample import sample_manifest, write_truth
from node.manifests.screen import (
    EXIT_FOLLOW_UP_FAILED,
    SCREEN_DATASETS,
    SCREEN_DATES,
    Screening,
    save_screening,
    screen_manifest,
)
from node.matching.client import MatchClient
from node.matching.followup import check_case_reference
from node.matching.keys import DATE_POLICIES
from node.runtime import NodeRuntime
from node.stats.export import spreadsheet_safe

app = typer.Typer(no_args_is_help=True)

#: How to ask a follow-up that failed once its cause is fixed.
AGAIN = (
    "once the cause is fixed, follow those travellers up with "
    "`enlace match document | person --case CASE`"
)
CSV_COLUMNS = ("position", "name", "birth_date", "document", "peer", "dataset", "result",
               "strength", "detail")  # fmt: skip


def read_manifest(path: Path, fmt: str, today: dt.date) -> Manifest:
    """Read ``path`` as PAXLST or CSV (``auto``: by content)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc.strerror}", field="FILE") from None
    if fmt == "auto":
        head = data.lstrip(b"\xef\xbb\xbf\r\n\t ")[:3]
        fmt = "paxlst" if head in (b"UNA", b"UNB") else "csv"
    try:
        if fmt == "paxlst":
            return read_paxlst(data, today=today)
        if fmt == "csv":
            return read_csv_manifest(data, today=today)
    except ManifestError as exc:  # the operator may be screening several files: name this one
        raise ManifestError(f"{path}: {exc.message}", hint=exc.hint) from None
    raise InvalidArgumentError("must be auto, paxlst or csv", field="--format")


def report_paths(stem: Path) -> tuple[Path, Path]:
    """``<stem>.screening.csv`` and ``<stem>.screening.json``."""
    return stem.with_name(stem.name + ".screening.csv"), stem.with_name(
        stem.name + ".screening.json"
    )


def write_reports(screening: Screening, stem: Path) -> tuple[Path, Path]:
    """Write both reports (see :func:`report_paths`); raises OSError."""
    csv_path, json_path = report_paths(stem)
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        # Names come from an airline's file and details from peers: neither may run as a
        # formula in the spreadsheet the report is opened in.
        writer.writerows(
            {k: spreadsheet_safe(v) for k, v in row.items()} for row in screening.csv_rows()
        )
    json_path.write_text(
        json.dumps(screening.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n",
        encoding="utf-8",
    )
    return csv_path, json_path


def _table(screening: Screening) -> Table:
    m = screening.manifest
    table = FittedTable(
        title=f"{m.format.upper()} {m.reference or m.transport} {m.departure_port}→"
        f"{m.arrival_port}: {len(m.travellers)} traveller{'s' * (len(m.travellers) != 1)} "
        f"({screening.purpose})"
    )
    for column in ("#", "traveller", "born", "document", "result"):
        text_column(table, column)
    for r in screening.travellers:
        t = r.traveller
        summary = r.summary()
        style = "bold red" if r.hits() else ("" if r.answered and summary != "incomplete"
                                              else "yellow")  # fmt: skip
        if t.duplicate_of is not None:
            summary += f" (same as #{t.duplicate_of})"
        table.add_row(
            str(t.position),
            t.name,
            t.birth_date.iso() if t.birth_date else "",
            f"{t.issuing_state} {t.document_number}".strip(),
            styled(summary, style),
        )
    for rejected in screening.rejected:
        reasons = "; ".join(rejected.reasons)  # whole: the reason says where the problem is
        table.add_row(str(rejected.position), rejected.name, "", "",
                      styled(f"NOT SCREENED: {reasons}", "yellow"))  # fmt: skip
    return table


def _follow_ups(
    runtime: NodeRuntime,
    mc: MatchClient,
    screening: Screening,
    manifest_id: str,
    case: str,
    purpose: str,
) -> list[dict[str, Any]]:
    """Follow every hit up under ``case``: one entry per hit (see
    :mod:`node.cli.followups_view`) with the traveller's ``position``, except a repeated
    traveller's (its first listing's hits are followed up). Each follow-up sent, answered or
    failed, is a ``followup`` event of the manifest's trail (identifiers and status only)."""
    entries: list[dict[str, Any]] = []
    for traveller, hit in screening.hits():
        if traveller.duplicate_of is not None:
            continue
        entry = follow_up_entry(
            {"position": traveller.position, "peer": hit.peer, "dataset": hit.dataset,
             "case_reference": case},
            granted=bool(mc.granted_attributes(hit.peer, hit.dataset, purpose)),
            ask=functools.partial(mc.follow_up, hit, case_reference=case, purpose=purpose),
            purpose=purpose,
        )  # fmt: skip
        entries.append(entry)
        if entry["status"] != NOT_ASKED:
            runtime.store.manifests.record(manifest_id, runtime.clock.now(), "followup",
                {key: entry.get(key, "") for key in
                 ("position", "peer", "dataset", "followup_id", "status")})  # fmt: skip
    return entries


@app.command("manifest")
def manifest_command(
    file: Annotated[Path, typer.Argument(help="PAXLST interchange or bus CSV manifest.")],
    home: HomeOption,
    fmt: Annotated[str, typer.Option("--format", help="auto, paxlst or csv.")] = "auto",
    purpose: PurposeOption = "identity_verification",
    peer: PeerOption = None,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="Screen only this dataset (repeatable).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Report path prefix.")] = None,
    case: Annotated[str, typer.Option("--case", help="Follow every hit up under this case.")] = "",
    dates: Annotated[
        str,
        typer.Option(
            "--dates",
            envvar="ENLACE_SCREEN_DATES",
            help="Birth-date keys sent: covering (full date and year: every hit), every "
            "(also year-month) or finest (full date only: fastest, misses year-only records).",
        ),
    ] = SCREEN_DATES,
    timeout: TimeoutOption = 30.0,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
) -> None:
    """Screen every traveller of a manifest against every peer the agreements allow."""
    followups: list[dict[str, Any]] = []
    with cli_errors(as_json):
        if dates not in DATE_POLICIES:
            raise InvalidArgumentError(
                f"unknown --dates {dates!r}", hint=f"use one of {', '.join(DATE_POLICIES)}"
            )
        if case:  # refused now, not after the screening has spent quota at every peer
            check_case_reference(case)
        check_writable(report_paths(out or file), "--out")
    with cli_errors(as_json), node_runtime(home) as runtime:
        now = runtime.clock.now()
        manifest = read_manifest(file, fmt, now.date())
        purge_expired(runtime.store, now)
        with (
            MatchClient(runtime, timeout=timeout) as mc,
            progress_bar("screening", disable=not progress) as bar,
        ):
            task = bar.add_task("elements", total=None)
            screening = screen_manifest(
                mc, manifest, purpose=purpose, peers=peer,
                datasets=tuple(dataset or SCREEN_DATASETS), dates=dates,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
            manifest_id = save_screening(
                runtime.store, screening, now=now, expires_at=expiry(runtime.store, now)
            )
            if case:
                followups = _follow_ups(runtime, mc, screening, manifest_id, case, purpose)
        written = failed = ""
        try:  # the screening is kept and its hits shown even when the reports cannot be written
            csv_path, json_path = write_reports(screening, out or file)
            written = f"reports {csv_path}, {json_path}"
        except OSError as exc:
            failed = (f"reports not written to {exc.filename or out or file}: {exc.strerror}; "
                      f"the results are kept: `enlace screen show {manifest_id}`")  # fmt: skip
        else:  # they list the travellers: they go when the manifest's retention ends
            try:
                record_reports(runtime.store, manifest_id, (csv_path, json_path), now)
            except (EnlaceError, OSError) as exc:  # the screening stands; say what to do
                err_console.print(
                    warning_line(
                        "warning",
                        f"the reports were written but not noted for deletion when "
                        f"{manifest_id}'s retention ends ({exc}); delete them by hand then",
                    ),
                    highlight=False,
                )
    if as_json:
        print_json(screening.to_dict() | {"manifest_id": manifest_id, "followups": followups,
                   "reports": [str(p) for p in report_paths(out or file)] if written else [],
                   **({} if written else {"reports_error": failed})})  # fmt: skip
    else:
        console.print(_table(screening))
        for failure in screening.peer_errors():  # why "incomplete": which peer, and why
            err_console.print(
                warning_line(
                    "not answered",
                    f"{failure['peer']} {failure['dataset']} ({failure['travellers']} "
                    f"traveller(s)): {failure['reason']}",
                ),
                highlight=False,
                soft_wrap=True,
            )
        for problem in screening.manifest.problems:
            if problem.severity == "warning":
                err_console.print(warning_line("warning", f"{problem.position}: "
                                               f"{problem.message}"), highlight=False)  # fmt: skip
        if followups:
            console.print(followups_table(followups, case, hit=("position", "#")))
        console.print(
            f"{screening.status.upper()}: {len(screening.hits())} hit(s) on "
            f"{sum(1 for r in screening.travellers if r.hits())} traveller(s), "
            f"{len(screening.rejected) + len(screening.unanswered())} not screened; "
            f"{screening.elements:,} elements in "
            f"{screening.seconds:.2f} s; kept as {manifest_id}" + (f"; {written}" * bool(written)),
            highlight=False,
        )
        if not written:
            err_console.print(error_line(failed), highlight=False, soft_wrap=True)
        print_failures(followups, again=AGAIN)
    # After the reports: a script must see they were not made; 5 is "a hit, and a follow-up
    # of it failed", never 1 ("nothing was screened").
    exit_if_failed(followups, EXIT_FOLLOW_UP_FAILED)
    raise typer.Exit(screening.exit_code)


@app.command("list")
def list_command(home: HomeOption, as_json: JsonOption = False) -> None:
    """The manifests kept, with their status and expiry."""
    with cli_errors(as_json), node_runtime(home) as runtime:
        rows = [m.to_dict() for m in runtime.store.manifests.stored()]
    if as_json:
        print_json(rows)
        return
    console.print(stored_table(rows))


def stored_table(rows: list[dict[str, Any]]) -> FittedTable:
    """The kept manifests (their ``to_dict()``). On a narrow terminal the format, then the
    number of travellers, give way (``--json`` has them)."""
    table = FittedTable(title="Screened manifests")
    id_column(table, "manifest_id")
    text_column(table, "format", drop=2)
    text_column(table, "reference")
    text_column(table, "travellers", drop=1)
    for column in ("hits", "status", "expires"):
        text_column(table, column)
    shown = ("manifest_id", "format", "reference", "travellers", "hits", "status")
    for row in rows:
        table.add_row(*(str(row[c]) for c in shown), row["expires_at"][:10])
    return table


@app.command("show")
def show_command(
    manifest_id: Annotated[str, typer.Argument(help="Manifest id from `enlace screen list`.")],
    home: HomeOption,
    as_json: JsonOption = False,
) -> None:
    """One kept manifest: its travellers' results and its trail."""
    with cli_errors(as_json), node_runtime(home) as runtime:
        stored = runtime.store.manifests.get(manifest_id)
        travellers = runtime.store.manifests.travellers(manifest_id)
        events = [e.to_dict() for e in runtime.store.manifests.events(manifest_id)]
    if as_json:
        print_json({"manifest": stored.to_dict(), "report": stored.report, "events": events,
                    "travellers": [t | {"results": r} for t, r in travellers]})  # fmt: skip
        return
    table = FittedTable(
        title=f"{stored.manifest_id} ({stored.status}, expires {stored.expires_at:%F})"
    )
    for column in ("#", "traveller", "result"):
        text_column(table, column)
    for t, _ in travellers:
        table.add_row(str(t["position"]), f"{t['surname']}, {t['given_names']}", t["summary"])
    console.print(table)
    for e in events:
        console.print(f"{e['at']} {e['action']} {json.dumps(e['detail'])}", highlight=False)


@app.command("retention")
def retention_command(
    home: HomeOption,
    days: Annotated[int, typer.Option("--days", help="Keep screened manifests this long.")],
    as_json: JsonOption = False,
) -> None:
    """Set how long screened manifests are kept (applies to manifests saved from now on)."""
    with cli_errors(as_json), node_runtime(home) as runtime:
        kept = set_retention_days(runtime.store, days, runtime.clock.now())
    if as_json:
        print_json({"retention_days": kept})
    else:
        console.print(f"screened manifests are kept {kept} days")


@app.command("purge")
def purge_command(home: HomeOption, as_json: JsonOption = False) -> None:
    """Delete the manifests whose retention period has ended, and the report files written
    for them (logged in the trail)."""
    with cli_errors(as_json), node_runtime(home) as runtime:
        purge = purge_expired(runtime.store, runtime.clock.now())
    if as_json:
        print_json(purge.to_dict())
        return
    purged = purge.manifests
    console.print(f"{len(purged)} manifest(s) purged" + (": " + ", ".join(purged) if purged
                                                          else ""))  # fmt: skip
    if purge.reports_deleted:
        console.print(f"{len(purge.reports_deleted)} report file(s) deleted: "
                      + ", ".join(purge.reports_deleted), highlight=False)  # fmt: skip
    for path, reason in purge.reports_kept:
        err_console.print(warning_line("left in place", f"{path}: {reason}"), highlight=False)


@app.command("manifest-sample")
def sample_command(
    peer_data: Annotated[
        list[str], typer.Option("--peer-data", help="PEER=DIR of `enlace generate` output.")
    ],
    out: Annotated[Path, typer.Option("--out", help="File to write (.edi or .csv).")],
    kind: Annotated[
        str, typer.Option("--kind", help="aircraft (PAXLST) or bus (CSV).")
    ] = "aircraft",
    travellers: Annotated[int, typer.Option("--travellers")] = 40,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    recipient: Annotated[str, typer.Option("--recipient", help="UNB recipient.")] = "CRI",
    as_json: JsonOption = False,
) -> None:
    """Write a sample manifest whose planted travellers come from peers' generated files."""
    with cli_errors(as_json):
        peers: dict[str, Path] = {}
        for item in peer_data:
            code, sep, folder = item.partition("=")
            if not sep:
                raise InvalidArgumentError("must be PEER=DIR", field="--peer-data")
            peers[code.strip().upper()] = Path(folder)
        if kind not in ("aircraft", "bus"):
            raise InvalidArgumentError("must be aircraft or bus", field="--kind")
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        departure = now + dt.timedelta(hours=2)
        manifest, planted = sample_manifest(
            peers, travellers=travellers, seed=seed, departure=departure, kind=kind
        )
        text = (write_paxlst(manifest, recipient=recipient, prepared_at=now) if kind == "aircraft"
                else write_csv_manifest(manifest))  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        truth = out.with_name(out.name + ".truth.csv")
        write_truth(truth, planted, manifest)
    if as_json:
        print_json({"file": str(out), "truth": str(truth), "travellers": len(manifest.travellers),
                    "planted": len(planted)})  # fmt: skip
    else:
        console.print(f"{out}: {len(manifest.travellers)} travellers, {len(planted)} planted "
                      f"from peers' files (see {truth})")  # fmt: skip
