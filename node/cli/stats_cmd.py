"""``enlace stats``: ask a peer for protected statistics; compute this node's CRM matrices."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from enlace.v1 import stats_pb2
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
from node.client import PeerClient
from node.errors import InvalidArgumentError
from node.home import NodeHome
from node.runtime import open_runtime
from node.stats.answer import AnsweredCell, StatsAnswer, answer
from node.stats.answer_check import check_aggregate
from node.stats.matrices import MATRICES, MATRICES_VERSION, matrix
from node.stats.query import build_query, parse_period
from node.stats.service import SERVICE, query_from_request

app = typer.Typer(no_args_is_help=True)

FormatOption = Annotated[
    str, typer.Option("--format", help="csv, xlsx, sdmx (SDMX-CSV 2.0) or json.")
]
OutOption = Annotated[Path | None, typer.Option(help="Write the export here (else stdout).")]


def _filters(items: list[str]) -> list[stats_pb2.Filter]:
    filters = []
    for item in items:
        name, _, values = item.partition("=")
        if not values:
            raise InvalidArgumentError(
                f"filter {item!r} is not DIMENSION=V1,V2", field="--filter", hint="e.g. sex=F"
            )
        filters.append(stats_pb2.Filter(dimension=name.strip(), values=values.split(",")))
    return filters


def from_proto(response: stats_pb2.AggregateResponse) -> StatsAnswer:
    coverage = response.coverage
    as_of = dt.datetime.fromisoformat(coverage.as_of) if coverage.as_of else None
    profile, _, method = coverage.disclosure_profile.partition(" (")
    return StatsAnswer(
        dimensions=tuple(response.dimensions),
        cells=[
            AnsweredCell(
                tuple(c.key),
                c.value if c.has_value else None,
                c.obs_status,
                c.conf_status,
                c.perturbed,
            )
            for c in response.cells
        ],
        as_of=as_of,
        profile=profile,
        method=method.rstrip(")"),
        suppressed_primary=coverage.suppressed_primary,
        suppressed_secondary=coverage.suppressed_secondary,
        perturbed=coverage.perturbed,
        epsilon_spent=coverage.epsilon_spent,
        period=coverage.period,
        measure=coverage.measure,
    )


def _emit(
    result: StatsAnswer,
    fmt: str,
    out: Path | None,
    holder: str,
    matrix_id: str,
    agreement: str = "",
) -> None:
    from node.stats.export import export_table

    data = export_table(result, fmt, holder=holder, matrix=matrix_id, agreement=agreement)
    if out is not None:
        out.write_bytes(data)
        console.print(f"{fmt} written to {out}")
    elif fmt == "xlsx":
        raise InvalidArgumentError("an XLSX export needs --out FILE", field="--out")
    else:
        sys.stdout.buffer.write(data)


def _show(result: StatsAnswer, title: str) -> None:
    table = FittedTable(title=title)
    for name in result.dimensions:
        text_column(table, name)
    text_column(table, "value", justify="right")
    text_column(table, "flags")
    for cell in result.cells:
        shown = styled("—", "dim") if cell.value is None else f"{cell.value:,}"
        flags = f"{cell.obs_status}/{cell.conf_status}" + (" ~" if cell.perturbed else "")
        table.add_row(*cell.key, shown, flags)
    console.print(table)
    read = (
        "" if result.records_considered is None else f"{result.records_considered:,} records read; "
    )
    console.print(
        f"{read}{result.suppressed_primary} primary and {result.suppressed_secondary} secondary "
        f"suppressions; {result.perturbed} perturbed; profile {result.profile} ({result.method}). "
        "— means confidential, not zero.",
        highlight=False,
    )


def _as_json(result: StatsAnswer, **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "dimensions": list(result.dimensions),
        "cells": [
            {
                "key": list(c.key),
                "value": c.value,
                "obs_status": c.obs_status,
                "conf_status": c.conf_status,
                "perturbed": c.perturbed,
            }
            for c in result.cells
        ],
        **(
            {}
            if result.records_considered is None
            else {"records_considered": result.records_considered}
        ),
        "suppressed_primary": result.suppressed_primary,
        "suppressed_secondary": result.suppressed_secondary,
        "perturbed": result.perturbed,
        "profile": result.profile,
        "method": result.method,
        "epsilon_spent": result.epsilon_spent,
        "period": result.period,
        "measure": result.measure,
        "as_of": result.as_of.isoformat() if result.as_of else None,
    }


@app.command("query")
def query(
    home: HomeOption,
    peer: Annotated[str, typer.Option(help="The holder to ask (ISO3).")],
    period: Annotated[str, typer.Option(help="2023, 2023Q3, 2023-07 or A..B.")],
    purpose: Annotated[str, typer.Option(help="Purpose the agreement grants.")] = (
        "quarterly_matrices"
    ),
    dimensions: Annotated[str, typer.Option(help="Comma-separated dimensions.")] = "nationality",
    measure: Annotated[str, typer.Option(help="persons or events.")] = "persons",
    dataset: Annotated[str, typer.Option(help="encounters or matrices.")] = "encounters",
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="DIMENSION=V1,V2 (repeat).")
    ] = None,
    margins: Annotated[bool, typer.Option(help="Also release totals.")] = True,
    matrix_id: Annotated[str, typer.Option("--matrix", help="A named CRM matrix.")] = "",
    agreement: Annotated[str, typer.Option(help="Agreement to cite (optional).")] = "",
    fmt: FormatOption = "",
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask a peer for a protected table under the agreement between you."""
    with cli_errors(as_json):
        request = stats_pb2.AggregateRequest(
            dataset=dataset,
            measure=measure,
            dimensions=[d.strip() for d in dimensions.split(",") if d.strip()],
            filters=_filters(filters or []),
            period=period,
            margins=margins,
            matrix=matrix_id,
        )
        query_from_request(request)  # refuse locally what the peer would refuse as malformed
        runtime = open_runtime(NodeHome(home))
        try:
            with PeerClient(runtime, peer.upper(), timeout=60) as client:
                reply = client.call(
                    f"/{SERVICE}/Aggregate",
                    request,
                    stats_pb2.AggregateResponse,
                    purpose=purpose,
                    agreement=agreement,
                )
        finally:
            runtime.close()
        # The table is signed by the peer, but checked before it is shown or written: a
        # malformed one is the peer's INVALID_ARGUMENT failure, not a crash or a forged row.
        answered = matrix(matrix_id).dimensions if matrix_id else tuple(request.dimensions)
        check_aggregate(peer.upper(), reply.message, answered)
        result = from_proto(reply.message)
        if fmt:
            _emit(result, fmt, out, peer.upper(), matrix_id, reply.header.agreement)
        elif as_json:
            print_json(
                _as_json(
                    result,
                    holder=peer.upper(),
                    agreement=reply.header.agreement,
                    agreement_hash=reply.header.agreement_hash,
                    matrix_version=reply.message.coverage.matrix_version or None,
                )
            )
        else:
            _show(result, f"{peer.upper()} — {period} ({reply.header.agreement})")
            fresh = result.as_of.isoformat() if result.as_of else "unknown"
            version = reply.message.coverage.matrix_version
            console.print(
                f"data as of {fresh} at {peer.upper()}"
                + (f"; matrices {version}" if version else ""),
                highlight=False,
            )


@app.command("matrix")
def matrix_cmd(
    home: HomeOption,
    quarter: Annotated[str, typer.Option(help="Quarter, e.g. 2023Q3.")],
    matrix_id: Annotated[str, typer.Option("--matrix", help="M01..M08 (default: all).")] = "",
    fmt: FormatOption = "",
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """This node's own CRM matrices for a quarter, protected with the default profile."""
    with cli_errors(as_json):
        parse_period(quarter)
        ids = [matrix(matrix_id).id] if matrix_id else list(MATRICES)
        if fmt and len(ids) > 1:
            raise InvalidArgumentError(
                f"--format writes one matrix per file; {len(ids)} were asked",
                field="--matrix",
                hint=f"name one with --matrix ({', '.join(ids)}), or use --json for all of them",
            )
        runtime = open_runtime(NodeHome(home))
        try:
            results = []
            for mid in ids:
                definition = MATRICES[mid]
                q = build_query(
                    dataset="encounters",
                    measure=definition.measure,
                    dimensions=definition.dimensions,
                    period=quarter,
                    filters={k: list(v) for k, v in definition.filters.items()},
                    margins=True,
                    matrix=mid,
                )
                results.append((mid, answer(runtime, q, None, now=runtime.clock.now())))
            country = runtime.config.country
        finally:
            runtime.close()
        if fmt:
            _emit(results[0][1], fmt, out, country, results[0][0])
        elif as_json:
            print_json(
                {
                    "holder": country,
                    "version": MATRICES_VERSION,
                    "matrices": {mid: _as_json(r) for mid, r in results},
                }
            )
        else:
            for mid, result in results:
                _show(result, f"{mid} — {MATRICES[mid].title_es} — {quarter}")


@app.command("matrices")
def matrices(as_json: JsonOption = False) -> None:
    """The CRM matrix definitions this version computes."""
    rows: list[dict[str, Any]] = [
        {
            "id": m.id,
            "title_es": m.title_es,
            "title_en": m.title_en,
            "measure": m.measure,
            "dimensions": list(m.dimensions),
            "filters": {k: list(v) for k, v in m.filters.items()},
        }
        for m in MATRICES.values()
    ]
    if as_json:
        print_json({"version": MATRICES_VERSION, "matrices": rows})
        return
    table = FittedTable(title=f"CRM matrices ({MATRICES_VERSION})")
    for column in ("id", "title (es)", "measure", "dimensions"):
        text_column(table, column)
    for r in rows:
        table.add_row(r["id"], r["title_es"], r["measure"], " × ".join(r["dimensions"]))
    console.print(table)
