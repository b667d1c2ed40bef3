"""``enlace demo``: run a local federation end to end and print what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from node.cli.common import (
    JsonOption,
    cli_errors,
    console,
    err_console,
    print_json,
    styled,
    text_column,
)
from node.demo.run import DEFAULT_COUNTRIES, DemoResult, run_demo


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def matrix_table(result: DemoResult) -> Table:
    table = Table(title="Signed Ping latency (ms), caller → callee")
    text_column(table, "from \\ to")
    for country in result.countries:
        text_column(table, country, justify="right")
    cells = {(p["from"], p["to"]): p for p in result.pings}
    for caller in result.countries:
        row: list[str | Text] = [caller]
        for callee in result.countries:
            ping = cells.get((caller, callee))
            if ping is None:
                row.append("—")
            elif ping["ok"]:
                row.append(styled(f"{ping['ms']:.1f}", "green"))
            else:
                row.append(styled("unreachable", "red"))
        table.add_row(*row)
    return table


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", envvar="ENLACE_DEMO_DIR", help="Where the demo nodes live.")
    ] = Path("demo-home"),
    countries: Annotated[
        str, typer.Option(help="Comma-separated member countries (the ST is always added).")
    ] = ",".join(DEFAULT_COUNTRIES),
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the nodes running afterwards.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Start a local federation (separate node processes on loopback) and exercise it."""
    with cli_errors(as_json):
        say = (lambda _m: None) if as_json else (lambda m: err_console.print(m, highlight=False))
        chosen = tuple(c.strip().upper() for c in countries.split(",") if c.strip())
        result = run_demo(directory, chosen, keep_running=keep_running, say=say)
        if as_json:
            print_json(result.to_dict())
        else:
            console.print(matrix_table(result))
            for country, audit in result.audit.items():
                console.print(
                    f"  {country}: audit chain verifies ({audit['entries']} entries)",
                    highlight=False,
                )
            state = "still running" if keep_running else "stopped cleanly"
            reachable = f"{'All' if result.all_reachable else 'NOT all'} nodes reachable"
            console.print(
                Text.assemble((reachable, "bold"), f"; nodes {state}; {result.seconds:.1f} s")
            )
        clean = all(code == 0 for code in result.exit_codes.values())
        if not result.all_reachable or not clean:
            raise typer.Exit(1)
