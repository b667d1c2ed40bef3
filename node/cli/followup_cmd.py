"""``enlace followup``: the follow-ups this node answered (holder) or asked (querier).

A holder's operator lists pending requests, reads one (case reference, purpose, agreement,
attributes asked; never the querier's input, which the holder does not have) and approves or
denies it; the decision, who took it and when are recorded, and the querier fetches it with
``enlace followup fetch``. Thin by design.
"""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from node.cli.common import (
    FittedTable,
    HomeOption,
    JsonOption,
    cli_errors,
    console,
    id_column,
    print_json,
    text_column,
)
from node.errors import NotFoundError
from node.home import NodeHome
from node.matching.client import MatchClient, Outcome
from node.matching.followup import decide
from node.runtime import open_runtime
from node.store.followup_store import FollowUpRecord

app = typer.Typer(no_args_is_help=True)

OutboundOption = Annotated[
    bool, typer.Option("--outbound", help="Follow-ups this node asked of peers.")
]
ByOption = Annotated[str, typer.Option("--by", help="Who decides (default: the OS user).")]


def followups_table(records: list[FollowUpRecord], title: str) -> Table:
    """The follow-ups, one a row. On a narrow terminal the id, peer, status and date stay;
    attributes, purpose, dataset and then the case reference give way (``show`` has them)."""
    table = FittedTable(title=title, hidden_hint="see `enlace followup show ID` or --json")
    id_column(table, "id")
    text_column(table, "peer")
    text_column(table, "dataset", drop=3)
    text_column(table, "status")
    text_column(table, "case", drop=2)
    text_column(table, "purpose", drop=4)
    text_column(table, "attributes", drop=5)
    text_column(table, "when (UTC)")
    for r in records:
        table.add_row(r.followup_id, r.peer, r.dataset, r.status, r.case_reference, r.purpose,
                      ", ".join(r.attributes), r.created_at.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
    return table


def _print(records: list[FollowUpRecord], as_json: bool, title: str) -> None:
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    console.print(followups_table(records, title))


@app.command("list")
def list_followups(
    home: HomeOption,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="pending, approved, denied, released.")
    ] = None,
    outbound: OutboundOption = False,
    as_json: JsonOption = False,
) -> None:
    """Follow-ups, newest first (default: requests peers sent to this node)."""
    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            direction = "outbound" if outbound else "inbound"
            records = runtime.store.matching.followups(direction=direction, statuses=status or ())
        finally:
            runtime.close()
    _print(records, as_json, "Follow-ups asked of peers" if outbound else "Follow-ups received")


def _get(home: Path, followup_id: str, direction: str) -> FollowUpRecord:
    runtime = open_runtime(NodeHome(home))
    other = "outbound" if direction == "inbound" else "inbound"
    try:
        record = runtime.store.matching.followup(followup_id, direction)
        elsewhere = record is None and runtime.store.matching.followup(followup_id, other)
    finally:
        runtime.close()
    if record is None:
        if elsewhere and other == "outbound":
            hint = "it is one this node asked of a peer: add --outbound"
        elif elsewhere:
            hint = "it is one a peer asked of this node: leave out --outbound"
        else:
            hint = f"see `enlace followup list{' --outbound' if other == 'inbound' else ''}`"
        raise NotFoundError(f"no {direction} follow-up {followup_id!r}", hint=hint)
    return record


@app.command("show")
def show(
    followup_id: Annotated[str, typer.Argument(help="Follow-up id.")],
    home: HomeOption,
    outbound: OutboundOption = False,
    as_json: JsonOption = False,
) -> None:
    """One follow-up in full."""
    with cli_errors(as_json):
        record = _get(home, followup_id, "outbound" if outbound else "inbound")
    if as_json:
        print_json(record.to_dict())
        return
    for key, value in record.to_dict().items():
        console.print(f"{key:>15}: {value}", highlight=False)


def _decide(home: Path, followup_id: str, approve: bool, by: str, note: str, as_json: bool) -> None:
    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            record = decide(
                runtime.store,
                followup_id,
                approve=approve,
                by=by or getpass.getuser(),
                note=note,
                now=dt.datetime.now(dt.UTC),
            )
        finally:
            runtime.close()
    if as_json:
        print_json(record.to_dict())
        return
    console.print(f"follow-up {record.followup_id} from {record.peer}: {record.status}")


@app.command("approve")
def approve(
    followup_id: Annotated[str, typer.Argument(help="Follow-up id.")],
    home: HomeOption,
    note: Annotated[str, typer.Option("--note", help="Recorded with the decision.")] = "",
    by: ByOption = "",
    as_json: JsonOption = False,
) -> None:
    """Release the granted attributes of a pending follow-up (the peer fetches them)."""
    _decide(home, followup_id, True, by, note, as_json)


@app.command("deny")
def deny(
    followup_id: Annotated[str, typer.Argument(help="Follow-up id.")],
    home: HomeOption,
    note: Annotated[str, typer.Option("--note", help="Reason, sent to the peer.")],
    by: ByOption = "",
    as_json: JsonOption = False,
) -> None:
    """Refuse a pending follow-up; the reason is what the peer is told."""
    _decide(home, followup_id, False, by, note, as_json)


@app.command("fetch")
def fetch(
    followup_id: Annotated[str, typer.Argument(help="Id of a follow-up this node asked.")],
    home: HomeOption,
    as_json: JsonOption = False,
) -> None:
    """Ask the holder for its decision on a follow-up this node sent."""
    with cli_errors(as_json):
        record = _get(home, followup_id, "outbound")
        runtime = open_runtime(NodeHome(home))
        try:
            with MatchClient(runtime) as client:
                hit = Outcome(0, record.peer, record.dataset, "hit", epoch=record.epoch)
                record = client.follow_up(
                    hit,
                    case_reference=record.case_reference,
                    purpose=record.purpose,
                    attributes=record.attributes,
                    followup_id=record.followup_id,
                )
        finally:
            runtime.close()
    if as_json:
        print_json(record.to_dict())
        return
    values = ", ".join(f"{k}={v}" for k, v in (record.released or {}).items())
    console.print(f"follow-up {record.followup_id} with {record.peer}: {record.status} {values}")
