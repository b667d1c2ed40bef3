"""``enlace doctor``: every operational check with its fix; non-zero exit when one fails."""

from __future__ import annotations

from typing import Annotated

import typer

from node.cli.common import (
    FittedTable,
    HomeOption,
    JsonOption,
    cli_errors,
    console,
    print_json,
    styled,
    text_column,
)
from node.clock import SystemClock
from node.home import NodeHome
from node.ops.doctor import FAIL, OK, WARN, open_for_checks, run_checks, summary

_SHOWN = {OK: ("ok", "green"), WARN: ("warn", "yellow"), FAIL: ("FAIL", "red")}


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    home: HomeOption,
    peers: Annotated[bool, typer.Option(help="Also ping every peer (clock skew, latency).")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each peer.")] = 3.0,
    as_json: JsonOption = False,
) -> None:
    """Check clock skew, expiry of directory, keys and certificates, migrations, disk, peers."""
    with cli_errors(as_json):
        runtime = open_for_checks(NodeHome(home), SystemClock())
        try:
            checks = run_checks(runtime, peers=peers, timeout=timeout)
        finally:
            runtime.close()
    result = summary(checks)
    if as_json:
        print_json({**result, "checks": [c.to_dict() for c in checks]})
    else:
        table = FittedTable(title=f"enlace doctor — {home}")
        for column in ("check", "status", "detail", "fix"):
            text_column(table, column)
        for check in checks:
            table.add_row(check.name, styled(*_SHOWN[check.status]), check.detail, check.fix)
        console.print(table)
        console.print(
            f"{result[OK]} ok, {result[WARN]} warning(s), {result[FAIL]} failure(s)",
            highlight=False,
        )
    if result["status"] == FAIL:
        raise typer.Exit(1)
