"""``enlace generate``: write a member's synthetic local files (for tests, demos and benchmarks).

Thin by design: it validates the options, calls :func:`node.records.generate.generate` with a
rich progress bar, and prints the rows written per file (or ``--json``). The same
``--federation-seed`` in every country gives overlapping persons, so two nodes generated this
way can find each other's documents, alerts and faces.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from node.cli.common import (
    FittedTable,
    JsonOption,
    ProgressOption,
    cli_errors,
    console,
    member_country,
    print_json,
    progress_bar,
    text_column,
)
from node.manifests.sample import write_samples
from node.records.codelists import REGIONAL_MEMBERS
from node.records.generate import DEFAULT_FEDERATION_SEED, GenerationSummary, generate


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)


def summary_table(summary: GenerationSummary, seconds: float) -> Table:
    table = FittedTable(
        title=f"Synthetic records of {summary.country} in {summary.out_dir} "
        f"(seed {summary.seed}, federation seed {summary.federation_seed})"
    )
    text_column(table, "file")
    text_column(table, "rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    rate = summary.encounters / seconds if seconds > 0 else 0.0
    table.caption = (
        f"{summary.persons:,} persons, {summary.journeying_persons:,} shared with the federation; "
        f"{seconds:.1f} s ({rate:,.0f} encounters/s)"
    )
    return table


def generate_command(
    country: Annotated[
        str,
        typer.Option(
            "--country", help="Member (ISO 3166 alpha-3): " + ", ".join(REGIONAL_MEMBERS) + "."
        ),
    ],
    encounters: Annotated[int, typer.Option("--encounters", help="Rows of encounters.csv.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the CSV files into.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of this country's local records.")],
    federation_seed: Annotated[
        int, typer.Option("--federation-seed", help="Seed shared by all countries (journeys).")
    ] = DEFAULT_FEDERATION_SEED,
    templates_fraction: Annotated[
        float, typer.Option("--templates-fraction", help="Share of persons with a face template.")
    ] = 0.05,
    manifests: Annotated[
        int, typer.Option("--manifests", help="Also write sample manifests of N travellers.")
    ] = 0,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
) -> None:
    """Generate realistic, deterministic synthetic records for one member country."""
    with cli_errors(as_json):
        code = member_country(country, "--country", secretariat=False)
        started = time.monotonic()
        with progress_bar(disable=not progress) as bar:
            task = bar.add_task(f"{code} encounters", total=max(encounters, 0))
            summary = generate(
                code, encounters, seed, out, federation_seed=federation_seed,
                templates_fraction=templates_fraction,
                progress=lambda done: bar.update(task, completed=done),
            )  # fmt: skip
        if manifests > 0:
            write_samples(code, out, travellers=manifests, seed=seed, now=dt.datetime.now(dt.UTC))
        seconds = time.monotonic() - started
        if as_json:
            print_json(summary.to_dict())
        else:
            console.print(summary_table(summary, seconds))
