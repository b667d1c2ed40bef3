"""``enlace status``: one screen on the node's health for its operator.

What it shows: the node and its roles; the directory's freshness; the data as-of per dataset;
the notifications the Secretariat sent (reminders, publication notices) not yet acknowledged;
follow-ups waiting for this node's approval. ``--ack ID`` acknowledges a notification.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.text import Text

from node.cli.common import (
    FittedTable,
    HomeOption,
    JsonOption,
    cli_errors,
    console,
    print_json,
    text_column,
)
from node.errors import EnlaceError, NotFoundError
from node.home import NodeHome
from node.runtime import NodeRuntime, open_runtime


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds") if moment else None


def node_status(runtime: NodeRuntime) -> dict[str, Any]:
    """Everything ``enlace status`` shows, as plain data."""
    now = runtime.clock.now()
    config = runtime.config
    try:
        freshness = runtime.directory.freshness(now)
        directory: dict[str, Any] = {
            "version": freshness.version,
            "state": str(freshness.state),
            "expires_at": _iso(freshness.expires_at),
            "message": freshness.message,
        }
    except EnlaceError as exc:
        directory = {"version": None, "state": "unusable", "message": str(exc)}
    data = [
        {"dataset": s.dataset, "records": s.records, "as_of": _iso(s.as_of)}
        for s in runtime.store.records.summary()
        if s.records
    ]
    notifications = [
        {
            "id": n["notification_id"],
            "from": n["sender"],
            "kind": n["kind"],
            "period": n["period"],
            "subject": n["subject"],
            "body": n["body"],
            "received_at": _iso(n["received_at"]),
        }
        for n in runtime.store.secretariat.notifications(pending_only=True)
    ]
    followups = [
        {"id": f.followup_id, "peer": f.peer, "dataset": f.dataset, "case": f.case_reference}
        for f in runtime.store.matching.followups(direction="inbound", statuses=("pending",))
    ]
    return {
        "country": config.country,
        "name": config.name,
        "roles": list(config.roles),
        "now": _iso(now),
        "directory": directory,
        "data_as_of": _iso(runtime.store.records.data_as_of()),
        "data": data,
        "notifications": notifications,
        "pending_followups": followups,
    }


def _show(report: dict[str, Any]) -> None:
    console.print(
        Text.assemble(
            (report["country"], "bold"), f" {report['name']} ({', '.join(report['roles'])})"
        ),
        highlight=False,
    )
    d = report["directory"]
    # The message already names the version and state when there is one ("directory v1 valid
    # until …"); an unusable directory has only the message.
    shown = d["message"] if d["version"] is not None else f"directory unusable: {d['message']}"
    console.print(shown, highlight=False, soft_wrap=True)
    console.print(f"data as of: {report['data_as_of'] or '— (nothing imported)'}", highlight=False)
    if report["data"]:
        table = FittedTable(title="datasets")
        for column in ("dataset", "records", "as of"):
            text_column(table, column)
        for row in report["data"]:
            table.add_row(row["dataset"], f"{row['records']:,}", row["as_of"] or "—")
        console.print(table)
    notes = report["notifications"]
    if notes:
        console.print(Text(f"{len(notes)} notification(s) from the Secretariat", style="bold"))
        for n in notes:
            console.print(
                f"  {n['id']}  {n['kind']}  {n['period'] or '—'}  from {n['from']}, "
                f"received {n['received_at']}",
                highlight=False,
                soft_wrap=True,
            )
            console.print(f"    {n['subject']}", highlight=False, soft_wrap=True)
            for line in n["body"].splitlines():
                console.print(f"    {line}", highlight=False, soft_wrap=True)
        console.print("Acknowledge with `enlace status --ack ID`.")
    else:
        console.print("notifications: none pending")
    pending = report["pending_followups"]
    console.print(
        f"follow-ups awaiting approval: {len(pending)}"
        + (" (`enlace followup list`)" if pending else ""),
        highlight=False,
    )


def status(
    home: HomeOption,
    ack: Annotated[str, typer.Option("--ack", help="Acknowledge a notification by id.")] = "",
    as_json: JsonOption = False,
) -> None:
    """The node's health: directory, data as-of, notifications and pending follow-ups."""
    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            if ack and not runtime.store.secretariat.acknowledge(ack, runtime.clock.now()):
                raise NotFoundError(f"no pending notification {ack!r}", hint="see `enlace status`")
            report = node_status(runtime)
        finally:
            runtime.close()
        if as_json:
            print_json(report | ({"acknowledged": ack} if ack else {}))
        else:
            if ack:
                console.print(f"notification {ack} acknowledged", highlight=False)
            _show(report)
