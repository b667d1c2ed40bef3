"""``enlace match biometric`` and ``enlace biometric``: protected-template hit / no-hit.

Querier: ``enlace match biometric --template FILE`` probes every peer the agreements allow with
one template and prints one row per peer (band, agreement or reason); ``--batch FILE`` probes
many with a progress bar and writes a results CSV; ``--case REF`` follows up every hit. The
same command is ``enlace biometric search``. Holder: ``enlace biometric status``, ``refresh``
(bring the per-peer galleries up to date ahead of the first search) and ``rotate-epoch`` (new
pairwise keys: every code computed before misses). ``followup`` and ``fetch`` redeem a hit
reference or fetch a pending decision. Template formats: :mod:`node.biometrics.templates`.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from node.agreements import AgreementBook
from node.biometrics.client import BiometricClient, BiometricReport
from node.biometrics.holder import DATASET, GalleryHolder
from node.biometrics.templates import read_templates
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
)
from node.cli.files import check_writable
from node.cli.followups_view import (
    exit_if_failed,
    follow_up_entry,
    followups_table,
    print_failures,
)
from node.errors import InvalidArgumentError
from node.matching.followup import check_case_reference
from node.runtime import NodeRuntime
from node.stats.export import spreadsheet_safe
from node.store.matching_store import FollowUpRecord

app = typer.Typer(no_args_is_help=True)

PurposeOption = Annotated[
    str, typer.Option("--purpose", help="Purpose the agreement grants, sent with every call.")
]
PeerOption = Annotated[
    list[str] | None, typer.Option("--peer", help="Ask only this peer (repeatable).")
]
AllOption = Annotated[
    bool, typer.Option("--all-peers", help="Also call peers our agreements do not allow.")
]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Per-call deadline, seconds.")]
CaseOption = Annotated[
    str, typer.Option("--case", help="Case reference; with it, every hit is followed up.")
]
TemplateOption = Annotated[
    Path | None,
    typer.Option("--template", help="One template: .npy, CSV/JSONL row, or base64 float32."),
]
BatchOption = Annotated[
    Path | None, typer.Option("--batch", help="Many templates (same formats); progress bar.")
]
OutOption = Annotated[Path | None, typer.Option("--out", help="Results CSV of a batch.")]
#: How to ask a follow-up that failed once its cause is fixed.
AGAIN = (
    "once the cause is fixed, redeem each one's hit reference (in the results; single-use) "
    "with `enlace biometric followup --peer PEER --reference REF --case CASE`"
)
_STYLE = {"strong": "bold green", "probable": "yellow", "no hit": "", "not granted": "dim"}


def _follow_ups(
    client: BiometricClient, report: BiometricReport, case: str, purpose: str
) -> list[dict[str, Any]]:
    """Follow every hit up under ``case``: one entry per hit, with its probe's ``label`` and its
    ``hit_reference`` (a follow-up that failed can be asked again with it; see
    :mod:`node.cli.followups_view`)."""
    return [
        follow_up_entry(
            {
                "label": report.labels[hit.probe],
                "peer": hit.peer,
                "dataset": DATASET,
                "case_reference": case,
                "hit_reference": hit.reference,
            },
            granted=bool(client.granted_attributes(hit.peer, purpose)),
            ask=functools.partial(
                client.follow_up,
                hit.peer,
                purpose=purpose,
                case_reference=case,
                reference=hit.reference,
                epoch=hit.epoch,
            ),
            purpose=purpose,
        )
        for hit in report.hits()
    ]


def _table(report: BiometricReport, title: str) -> Table:
    """One row per (probe, peer). On a narrow terminal the probe (said below the table when
    there is only one) and then the agreement or reason give way to the hit reference."""
    table = FittedTable(title=title)
    text_column(table, "probe", drop=1)
    text_column(table, "peer")
    text_column(table, "result")
    text_column(table, "agreement / reason", drop=2)
    id_column(table, "hit reference")
    for o in report.outcomes:
        style = _STYLE.get(o.status, "red")
        result = o.status.upper() if o.hit else o.status
        reason = o.agreement if o.status in _STYLE and o.status != "not granted" else o.detail
        if o.status == "error":
            reason = f"{o.code}: {o.detail}"
        table.add_row(
            report.labels[o.probe],
            o.peer,
            styled(result, style),
            reason,
            o.reference,
        )
    return table


def _print_followups(records: list[FollowUpRecord]) -> None:
    for f in records:
        values = ", ".join(f"{k}={v}" for k, v in (f.released or {}).items())
        console.print(f"follow-up {f.followup_id} with {f.peer}: {f.status} {values}")


def search(
    home: HomeOption,
    template: TemplateOption = None,
    batch: BatchOption = None,
    purpose: PurposeOption = "identity_verification",
    peer: PeerOption = None,
    all_peers: AllOption = False,
    case: CaseOption = "",
    out: OutOption = None,
    timeout: TimeoutOption = 30.0,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
) -> None:
    """Probe every allowed peer's biometric gallery with protected codes of a template."""
    with cli_errors(as_json):
        if case:  # refused now, not after the probe has spent quota at every peer
            check_case_reference(case)
        if (template is None) == (batch is None):
            raise InvalidArgumentError(
                "give exactly one of --template FILE and --batch FILE", field="--template"
            )
        path = template or batch
        assert path is not None
        results = None
        if batch is not None:
            results = out or batch.with_name(batch.stem + ".results.csv")
            check_writable((results,), "--out")
        probes = read_templates(path)
        if template is not None and len(probes) != 1:
            raise InvalidArgumentError(
                f"{path.name} holds {len(probes)} templates",
                field="--template",
                hint="use --batch FILE for several",
            )
        quiet = not progress or template is not None  # one probe: no bar
        with (
            node_runtime(home) as runtime,
            BiometricClient(runtime, timeout=timeout) as client,
            progress_bar("probing", disable=quiet) as bar,
        ):
            task = bar.add_task("probes", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = client.search(
                probes.vectors,
                purpose,
                labels=probes.labels,
                peers=peer,
                ask_all=all_peers,
                progress=advance,
            )
            followups = _follow_ups(client, report, case, purpose) if case else []
    failed = ""
    if results is not None:
        try:  # hit references are single-use: if the file fails they must still be shown
            _write_results(results, report)
        except OSError as exc:
            failed = f"results not written to {results}: {exc.strerror}"
    hits = len(report.hits())
    if as_json:
        data = report.to_dict() | {
            "purpose": purpose,
            "hits": hits,
            "followups": followups,
        }
        if results is not None:
            data["results_file" if not failed else "results_error"] = failed or str(results)
        print_json(data)
        if failed:
            raise typer.Exit(1)
        exit_if_failed(followups)
        return
    if batch is None:
        console.print(_table(report, f"biometric probe {probes.labels[0]} ({purpose})"))
    else:
        summary = Counter((o.peer, o.status) for o in report.outcomes)
        table = FittedTable(title=f"{len(probes):,} probes ({purpose})")
        for column in ("peer", "result", "count"):
            text_column(table, column)
        for (p, s), n in sorted(summary.items()):
            table.add_row(p, s, f"{n:,}")
        console.print(table)
        if failed:
            hits_only = BiometricReport(report.labels, report.hits(), report.seconds)
            console.print(_table(hits_only, "hits (references are single-use)"))
    if followups:
        console.print(followups_table(followups, case, hit=("label", "probe")))
    tail = f"; results written to {results}" if results is not None and not failed else ""
    console.print(f"{hits} hit(s) in {report.seconds * 1000:.0f} ms{tail}", highlight=False)
    print_failures(followups, again=AGAIN)
    if failed:
        err_console.print(error_line(failed), highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    exit_if_failed(followups)  # the operator asked for these: a script must see they were not made


def _write_results(path: Path, report: BiometricReport) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("label", "peer", "result", "hit_reference", "status", "detail"))
        for o in report.outcomes:
            cells = (report.labels[o.probe], o.peer, o.status, o.reference, o.code, o.detail)
            writer.writerow([spreadsheet_safe(str(c)) for c in cells])  # peers' details too


def register_match(match_app: typer.Typer) -> None:
    """Add ``biometric`` to the ``enlace match`` group (once, however often it is called)."""
    if not any(c.name == "biometric" for c in match_app.registered_commands):
        match_app.command("biometric")(search)


app.command("search")(search)


@app.command("followup")
def followup(
    home: HomeOption,
    peer: Annotated[str, typer.Option("--peer", help="The holder that answered the hit.")],
    reference: Annotated[str, typer.Option("--reference", help="The hit reference.")],
    case: Annotated[str, typer.Option("--case", help="Case reference.")],
    purpose: PurposeOption = "identity_verification",
    attributes: Annotated[
        str, typer.Option("--attributes", help="Comma-separated; default: all granted.")
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Redeem a hit reference (once) for the attributes the agreement grants."""
    asked = [a.strip() for a in attributes.split(",") if a.strip()]
    with cli_errors(as_json), node_runtime(home) as runtime, BiometricClient(runtime) as client:
        record = client.follow_up(
            peer, purpose=purpose, case_reference=case, reference=reference, attributes=asked
        )
    if as_json:
        print_json(record.to_dict())
        return
    _print_followups([record])


@app.command("fetch")
def fetch(
    followup_id: Annotated[str, typer.Argument(help="Id of a biometric follow-up we asked.")],
    home: HomeOption,
    as_json: JsonOption = False,
) -> None:
    """Ask the holder for its decision on a pending biometric follow-up."""
    with cli_errors(as_json), node_runtime(home) as runtime, BiometricClient(runtime) as client:
        asked = runtime.store.matching.followup(followup_id, "outbound")
        if asked is None or asked.dataset != "biometric_templates":
            raise InvalidArgumentError(
                f"no biometric follow-up {followup_id!r} was asked by this node",
                field="followup_id",
                hint="see `enlace followup list --outbound`",
            )
        record = client.follow_up(
            asked.peer,
            purpose=asked.purpose,
            followup_id=followup_id,
            attributes=asked.attributes,
        )
    if as_json:
        print_json(record.to_dict())
        return
    _print_followups([record])


@app.command("status")
def status(home: HomeOption, as_json: JsonOption = False) -> None:
    """This node's biometric epoch and its per-peer galleries."""
    with cli_errors(as_json), node_runtime(home) as runtime:
        holder = _holder(runtime)
        state = holder.state()
        now = runtime.clock.now()
        granted = holder.granted_peers(AgreementBook(runtime).current(now), now)
        galleries = runtime.store.biometrics.gallery_states()
        templates = runtime.store.biometrics.template_count()
    data = {
        "epoch": state.epoch,
        "bits": state.bits,
        "templates": templates,
        "granted_peers": granted,
        "galleries": [g.to_dict() for g in galleries],
    }
    if as_json:
        print_json(data)
        return
    console.print(
        f"epoch {state.epoch}, {state.bits}-bit codes, {templates:,} templates; "
        f"peers with a biometric grant: {', '.join(granted) or 'none'}",
        highlight=False,
    )
    table = FittedTable(title="galleries")
    for column in ("peer", "epoch"):
        text_column(table, column)
    id_column(table, "key id")
    for column in ("codes", "updated (UTC)"):
        text_column(table, column)
    for g in galleries:
        updated = g.updated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(g.peer, str(g.epoch), g.key_id, f"{g.codes:,}", updated)
    console.print(table)


def _holder(runtime: NodeRuntime) -> GalleryHolder:
    return GalleryHolder(runtime.store, runtime.home, runtime.config.country, runtime.directory)


@app.command("refresh")
def refresh(
    home: HomeOption,
    peer: PeerOption = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Reproject every template.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Bring the galleries of granted peers up to date with the imported templates."""
    with cli_errors(as_json), node_runtime(home) as runtime:
        holder = _holder(runtime)
        now = runtime.clock.now()
        peers = peer or holder.granted_peers(AgreementBook(runtime).current(now), now)
        reports = [holder.refresh(p, now, rebuild=rebuild) for p in peers]
    _reports([r.to_dict() for r in reports], "galleries", as_json)


@app.command("rotate-epoch")
def rotate_epoch(
    home: HomeOption,
    bits: Annotated[
        int | None, typer.Option("--bits", help="New code length: 2048, 4096 or 8192.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Move to the next biometric epoch: new pairwise keys, galleries rebuilt, old codes miss."""
    with cli_errors(as_json), node_runtime(home) as runtime:
        holder = _holder(runtime)
        now = runtime.clock.now()
        peers = holder.granted_peers(AgreementBook(runtime).current(now), now)
        state, reports = holder.rotate(now, peers, bits=bits)
    if not as_json:
        console.print(f"biometric epoch {state.epoch} ({state.bits}-bit codes)")
    _reports([r.to_dict() for r in reports], f"galleries of epoch {state.epoch}", as_json)


def _reports(rows: list[dict[str, object]], title: str, as_json: bool) -> None:
    if as_json:
        print_json(rows)
        return
    table = FittedTable(title=title)
    for column in ("peer", "epoch"):
        text_column(table, column)
    id_column(table, "key id")
    for column in ("projected", "removed", "codes", "seconds"):
        text_column(table, column)
    for r in rows:
        table.add_row(
            str(r["peer"]),
            str(r["epoch"]),
            str(r["key_id"]),
            f"{r['projected']:,}",
            f"{r['removed']:,}",
            f"{r['codes']:,}",
            f"{r['seconds']:.2f}",
        )
    console.print(table)
