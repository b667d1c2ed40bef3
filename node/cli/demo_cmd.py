"""``enlace demo``: run a local federation end to end and print what happened.

Output: in text mode everything the demo shows goes to stdout in the order it happens (each
step's narration, then its tables); only an error goes to stderr. With ``--json`` stdout holds
one JSON document and nothing else (the narration is not printed).

``--keep-running`` leaves the nodes up and prints each node's pid and endpoint and the command
that stops them, ``enlace demo --stop`` (same ``--dir``). A run in a directory whose nodes
still run is refused (rebuilding it would orphan them) with that command as the hint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from node.cli.common import (
    FittedTable,
    JsonOption,
    cli_errors,
    console,
    print_json,
    styled,
    text_column,
)
from node.demo.run import DEFAULT_COUNTRIES, DemoResult, run_demo, stop_command, stop_demo
from node.errors import InvalidArgumentError


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def matrix_table(result: DemoResult) -> Table:
    table = FittedTable(title="Signed Ping latency (ms), caller → callee")
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


def say(message: str) -> None:
    """One line of narration, on stdout with the tables so the output reads in order."""
    console.print(message, highlight=False)


def show_running(result: DemoResult) -> None:
    for node in result.running:
        console.print(
            f"  {node['country']}: pid {node['pid']}, {node['endpoint']}, "
            f"home {node['home']}, log {node['log']}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"Stop them with: {stop_command(result.root)}", highlight=False, soft_wrap=True)


def stop(directory: Path, as_json: bool) -> None:
    stopped = stop_demo(directory)
    if as_json:
        print_json({"root": str(directory), "stopped": stopped})
        return
    if not stopped:
        console.print(f"No demo nodes running in {directory}", highlight=False)
    for node in stopped:
        console.print(
            f"  {node['country']}: pid {node['pid']} ({node['endpoint']}) {node['outcome']}",
            highlight=False,
        )


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
    stop_nodes: Annotated[
        bool,
        typer.Option(
            "--stop", help="Stop the nodes an earlier --keep-running left up in --dir, and exit."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Start a local federation (separate node processes on loopback) and exercise it."""
    with cli_errors(as_json):
        if stop_nodes:
            if keep_running:
                raise InvalidArgumentError(
                    "--stop and --keep-running exclude each other", field="--stop"
                )
            stop(directory, as_json)
            return
        chosen = tuple(c.strip().upper() for c in countries.split(",") if c.strip())
        result = run_demo(
            directory,
            chosen,
            keep_running=keep_running,
            say=(lambda _m: None) if as_json else say,
            on_pings=None if as_json else (lambda r: console.print(matrix_table(r))),
        )
        if as_json:
            print_json(result.to_dict())
        else:
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
            if keep_running:
                show_running(result)
        clean = all(code == 0 for code in result.exit_codes.values())
        if not result.all_reachable or not clean:
            raise typer.Exit(1)
