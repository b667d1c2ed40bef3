"""``enlace st``: the Technical Secretariat's commands (and a member's emergency update).

``status``   each member's freshness, recent pulls, rounds, emergencies and reminders
``pull``     pull a period's matrices from every member now (``--retry`` completes partials)
``report``   write the regional matrices (CSV, XLSX, SDMX-CSV), the brief, the consular directory
``calendar`` list and edit the schedule (persisted in the node's database)
``notify``   remind late members (signed notification + e-mail), or send a notice
``emergency`` (on a member's node) ask the Secretariat to pull this node's data now

A partial pull is a result, not an error: the command exits 0 and marks it PARTIAL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from node.cli.common import (
    FittedTable,
    HomeOption,
    JsonOption,
    cli_errors,
    console,
    id_column,
    print_json,
    styled,
    text_column,
)
from node.errors import InvalidArgumentError, NotFoundError
from node.home import NodeHome
from node.runtime import NodeRuntime, open_runtime
from node.secretariat.freshness import last_closed_month, last_closed_quarter
from node.secretariat.office import Secretariat
from node.stats.query import parse_period

app = typer.Typer(no_args_is_help=True)

PeriodOption = Annotated[
    str, typer.Option("--period", help="Quarter (2024Q3) or month; default: last closed quarter.")
]
MatrixOption = Annotated[
    list[str] | None, typer.Option("--matrix", help="M01..M08 (repeat); default: all.")
]


def _office(home: Path) -> tuple[NodeRuntime, Secretariat]:
    runtime = open_runtime(NodeHome(home))
    return runtime, Secretariat(runtime)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds") if moment else None


def _minute(iso: str | None) -> str:
    """An ISO moment of the report, as ``2027-03-14 09:30`` (UTC) for a table: it wraps
    between date and time instead of in the middle of either."""
    return (
        dt.datetime.fromisoformat(iso).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") if iso else ""
    )


def members_table(report: dict[str, Any]) -> FittedTable:
    """Each member's freshness (the ``members`` of the status report)."""
    table = FittedTable(title=f"Members' data for {report['period']} (UTC)")
    for column in ("member", "state", "data as of", "deadline", "late (days)", "last answer"):
        text_column(table, column)
    colours = {"current": "green", "pending": "yellow", "late": "red"}
    for m in report["members"]:
        table.add_row(
            m["country"],
            styled(m["state"], colours.get(m["state"], "")),
            _minute(m["as_of"]) or "—",
            (m["deadline"] or "")[:10],
            str(m["days_late"] or ""),
            _minute(m["last_answer"]) or "never",
        )
    return table


def pulls_table(pulls: list[dict[str, Any]]) -> FittedTable:
    """The recent pulls (the ``pulls`` of the status report). On a narrow terminal the time
    gives way (the pull id starts with it: P20270402T060000-…), then the trigger."""
    table = FittedTable(title="Recent pulls (UTC)")
    id_column(table, "pull")
    text_column(table, "when", drop=2)
    text_column(table, "trigger", drop=1)
    for column in ("period", "status", "missing"):
        text_column(table, column)
    for p in pulls:
        shown = styled("PARTIAL", "bold red") if p["status"] == "partial" else p["status"]
        table.add_row(
            p["pull_id"],
            _minute(p["created_at"]),
            p["trigger"],
            p["period"],
            shown,
            ", ".join(p["missing"]),
        )
    return table


@app.command("status")
def status(home: HomeOption, period: PeriodOption = "", as_json: JsonOption = False) -> None:
    """Each member's freshness for the period, and the Secretariat's recent work."""
    with cli_errors(as_json):
        runtime, office = _office(home)
        try:
            states = office.freshness(period or None)
            store = runtime.store.secretariat
            directory = runtime.directory.current(runtime.clock.now())
            report: dict[str, Any] = {
                "period": states[0].period if states else period,
                "members": [
                    {
                        "country": s.country,
                        "name": directory.member(s.country).name,
                        "state": s.state,
                        "as_of": _iso(s.as_of),
                        "deadline": _iso(s.deadline),
                        "days_late": s.days_late,
                        "last_answer": _iso(s.last_answer_at),
                    }
                    for s in states
                ],
                "pulls": [
                    {
                        "pull_id": p.pull_id,
                        "created_at": _iso(p.created_at),
                        "trigger": p.trigger,
                        "period": p.period,
                        "status": p.status,
                        "missing": sorted(c for c, o in p.summary.items() if o.get("failed")),
                    }
                    for p in store.pulls(limit=10)
                ],
                "rounds": [
                    {k: r[k] for k in ("round_id", "matrix", "period", "status", "detail")}
                    for r in store.rounds(limit=10)
                ],
                "emergencies": [
                    {
                        "id": e["emergency_id"],
                        "member": e["member"],
                        "period": e["period"],
                        "status": e["status"],
                    }
                    for e in store.emergencies(limit=10)
                ],
                "reminders_sent": len(
                    [r for r in store.reminders(period=period or None) if r["status"] == "sent"]
                ),
            }
        finally:
            runtime.close()
        if as_json:
            print_json(report)
            return
        console.print(members_table(report))
        console.print(pulls_table(report["pulls"]))
        if report["rounds"]:
            console.print("Regional-only rounds:")
        for r in report["rounds"]:
            console.print(
                f"  {r['round_id']} {r['matrix']} {r['period']}: {r['status']} {r['detail']}",
                highlight=False,
            )
        if report["emergencies"]:
            console.print("Emergency updates:")
        for e in report["emergencies"]:
            console.print(
                f"  {e['id']} from {e['member']}, {e['period']}: {e['status']}", highlight=False
            )


def _print_collection(report: dict[str, Any]) -> None:
    pull = report.get("pull")
    if pull:
        table = FittedTable(title=f"Pull {pull['pull_id']} — {pull['period']} ({pull['trigger']})")
        for column in ("member", "status", "received", "failed", "attempts", "seconds"):
            text_column(table, column)
        for country, o in pull["members"].items():
            table.add_row(
                country,
                o["status"],
                ",".join(o["received"]),
                "; ".join(f"{t}: {e}" for t, e in o["failed"].items()),
                str(o["attempts"]),
                f"{o['seconds']:.2f}",
            )
        console.print(table)
    for r in report.get("rounds", []):
        console.print(f"round {r['round_id']}: {r['status']} — {r['detail']}", highlight=False)
    if report["status"] == "partial":
        console.print(
            Text.assemble(
                ("PARTIAL", "bold red"),
                ": some members are missing; `enlace st pull --retry` asks "
                "them again (the calendar retries hourly).",
            )
        )
    else:
        console.print(Text.assemble(("complete", "green"), ": every member answered."))


@app.command("pull")
def pull(
    home: HomeOption,
    period: PeriodOption = "",
    matrices: MatrixOption = None,
    members: Annotated[
        list[str] | None, typer.Option("--member", help="Only these members (repeat).")
    ] = None,
    retry: Annotated[
        bool, typer.Option("--retry", help="Ask again the members missing from partial pulls.")
    ] = False,
    pull_id: Annotated[str, typer.Option("--pull-id", help="With --retry: only this pull.")] = "",
    purpose: Annotated[str, typer.Option(help="Purpose stated to the members.")] = (
        "quarterly_matrices"
    ),
    as_json: JsonOption = False,
) -> None:
    """Pull the period's matrices from every member now (or complete partial pulls)."""
    with cli_errors(as_json):
        runtime, office = _office(home)
        try:
            if retry:
                reports = [r.to_dict() for r in office.retry(pull_id or None)]
                payload: Any = {"retried": reports}
            else:
                chosen = period or last_closed_quarter(runtime.clock.now())
                parse_period(chosen)
                payload = office.collect(
                    chosen,
                    matrices=[m.upper() for m in matrices] if matrices else None,
                    members=[m.upper() for m in members] if members else None,
                    purpose=purpose,
                ).to_dict()
        finally:
            office.stop()
            runtime.close()
        if as_json:
            print_json(payload)
        elif retry:
            if not payload["retried"]:
                console.print("no partial pull to retry")
            for r in payload["retried"]:
                _print_collection({"pull": r, "status": r["status"]})
        else:
            _print_collection(payload)


@app.command("report")
def report(
    home: HomeOption,
    period: PeriodOption = "",
    matrices: MatrixOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default HOME/secretariat).")
    ] = None,
    formats: Annotated[
        str, typer.Option("--format", help="Comma-separated: csv,xlsx,sdmx,json.")
    ] = ("csv,xlsx,sdmx"),
    brief: Annotated[
        str, typer.Option(help="Also render the monthly brief of this month (YYYY-MM or 'last').")
    ] = "",
    language: Annotated[str, typer.Option(help="Brief language: es or en.")] = "",
    pull_brief: Annotated[
        bool, typer.Option(help="Pull the brief's tables first (else use what is stored).")
    ] = True,
    consular: Annotated[bool, typer.Option(help="Also merge the consular directory.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write the regional matrices of a period; optionally the brief and consular directory."""
    from node.secretariat.brief_collect import monthly_brief
    from node.secretariat.outputs import write_consular, write_regional

    with cli_errors(as_json):
        chosen_formats = [f.strip() for f in formats.split(",") if f.strip()]
        if language and language not in ("es", "en"):
            raise InvalidArgumentError("es or en", field="--language")
        runtime, office = _office(home)
        try:
            chosen = period or last_closed_quarter(runtime.clock.now())
            parse_period(chosen)
            if not runtime.store.secretariat.results(period=chosen):
                raise NotFoundError(
                    f"no pull of {chosen} is stored: its regional tables would be empty",
                    hint=f"run `enlace st pull --period {chosen}` first (the calendar pulls "
                    "each quarter once it closes)",
                )
            written = write_regional(
                office,
                chosen,
                matrices=[m.upper() for m in matrices] if matrices else None,
                out_dir=out,
                formats=chosen_formats,
            )
            result: dict[str, Any] = {"period": chosen, "files": [str(p) for p in written]}
            if consular:
                result["consular"] = [str(p) for p in write_consular(office, out)]
            if brief:
                month = last_closed_month(runtime.clock.now()) if brief == "last" else brief
                outcome = monthly_brief(
                    office, month, language=language or None, out_dir=out, pull=pull_brief
                )
                result["brief"] = outcome.to_dict()
        finally:
            office.stop()
            runtime.close()
        if as_json:
            print_json(result)
            return
        for path in result["files"] + result.get("consular", []):
            console.print(f"written {path}", highlight=False)
        if "brief" in result:
            b = result["brief"]
            console.print(f"brief {b['period']} ({b['language']}): {b['html']}, {b['pdf']}")
        console.print("Regional sums count transits, not unique persons.")


@app.command("calendar")
def calendar(
    home: HomeOption,
    set_cron: Annotated[
        tuple[str, str] | None, typer.Option("--cron", help="JOB 'MIN HOUR DAY MONTH DOW' (UTC).")
    ] = None,
    every: Annotated[
        tuple[str, int] | None, typer.Option("--every", help="JOB SECONDS (interval jobs).")
    ] = None,
    pause: Annotated[str, typer.Option(help="Pause this job.")] = "",
    resume: Annotated[str, typer.Option(help="Resume this job.")] = "",
    run_now: Annotated[str, typer.Option("--run-now", help="Make this job due now.")] = "",
    as_json: JsonOption = False,
) -> None:
    """The Secretariat's schedule; edits are stored and picked up by the running node."""
    from node.secretariat.schedule import Calendar, edit_calendar

    def edit(cal: Calendar) -> None:
        if set_cron:
            cal.set_cron(*set_cron)
        if every:
            cal.set_interval(every[0], every[1])
        if pause:
            cal.pause(pause)
        if resume:
            cal.resume(resume)
        if run_now:
            cal.run_soon(run_now, dt.datetime.now(dt.UTC))

    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            if "secretariat" not in runtime.config.roles:
                raise InvalidArgumentError(
                    "this node does not hold the secretariat role", field="--home"
                )
            rows = edit_calendar(runtime, edit)
        finally:
            runtime.close()
        if as_json:
            print_json(rows)
            return
        table = FittedTable(title="Secretariat calendar (UTC)")
        for column in ("job", "schedule", "next run", "what"):
            text_column(table, column)
        for row in rows:
            nxt = styled("paused", "yellow") if row["paused"] else _iso(row["next_run"])
            table.add_row(row["id"], row["trigger"], nxt, row["description"])
        console.print(table)


@app.command("notify")
def notify(
    home: HomeOption,
    period: PeriodOption = "",
    channels: Annotated[
        str,
        typer.Option("--channel", help="Reminders: node,email (comma-separated; default both)."),
    ] = "",
    force: Annotated[bool, typer.Option(help="Remind every late member now.")] = False,
    member: Annotated[str, typer.Option(help="Send a notice to this member instead.")] = "",
    kind: Annotated[str, typer.Option(help="notice or publication (with --member).")] = "notice",
    subject: Annotated[str, typer.Option(help="Subject of the notice.")] = "",
    body: Annotated[str, typer.Option(help="Text of the notice.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Remind the late members (signed notification and e-mail), or send one notice."""
    from node.secretariat.notify import send_notification

    with cli_errors(as_json):
        runtime, office = _office(home)
        try:
            if member:
                if not subject:
                    raise InvalidArgumentError("a notice needs a subject", field="--subject")
                if channels.replace(" ", "") not in ("", "node"):
                    raise InvalidArgumentError(
                        "a notice to one member travels by node only (signed, shown in its "
                        "`enlace status`)",
                        field="--channel",
                        hint="leave --channel out; it chooses the channels of reminders",
                    )
                notification = send_notification(
                    runtime,
                    member.upper(),
                    kind=kind,
                    subject=subject,
                    body=body,
                    period=period,
                    language=office.settings.language,
                )
                sent: list[dict[str, str]] = [
                    {"member": member.upper(), "channel": "node", "status": "sent",
                     "detail": notification}
                ]  # fmt: skip
            else:
                wanted = [c.strip() for c in (channels or "node,email").split(",") if c.strip()]
                sent = office.remind_late(period or None, channels=wanted, force=force)
        finally:
            office.stop()
            runtime.close()
        if as_json:
            print_json(sent)
            return
        if not sent:
            console.print("nobody to remind: no member is late, or all were reminded recently")
        for row in sent:
            console.print(
                f"{row['member']} by {row['channel']}: {row['status']} {row.get('detail', '')}",
                highlight=False,
            )


@app.command("emergency")
def emergency(
    home: HomeOption,
    period: Annotated[str, typer.Option("--period", help="The period whose data changed.")],
    matrices: MatrixOption = None,
    reason: Annotated[str, typer.Option(help="Why (at most 500 characters).")] = "",
    as_json: JsonOption = False,
) -> None:
    """On a member's node: tell the Secretariat the data changed, so it pulls them now."""
    from node.secretariat.emergency import send_emergency_update

    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            answer = send_emergency_update(
                runtime, period, [m.upper() for m in matrices or []], reason
            )
        finally:
            runtime.close()
        data = {
            "emergency_id": answer.emergency_id,
            "pull_started": answer.pull_started,
            "detail": answer.detail,
        }
        if as_json:
            print_json(data)
        else:
            console.print(f"{answer.emergency_id}: {answer.detail}", highlight=False)
