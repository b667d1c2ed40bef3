"""The Secretariat's outputs: regional matrices (CSV, XLSX, SDMX-CSV 2.0) and the consular
directory, built from what the pulls and rounds stored.

Why from the store: a regional table is rebuilt from the members' latest answers each time it
is written, so a retry that fills in a missing member changes the next output without any
other step, and the output always says which members it lacks.

Invariants:
* Every regional file is written with ``holder="CRM"``, ``regional=True`` and ``N_CONTRIB``
  per cell through :func:`node.stats.export.export_table`; withheld cells are empty, never 0.
* Every output states that regional sums count transits, not unique persons (the XLSX and
  JSON carry it as a note; ``regional-<period>.json`` says it beside each table's status).
* Files are replaced atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.runtime import NodeRuntime
from node.secretariat import consular
from node.secretariat.pull import member_countries
from node.secretariat.regional import (
    TRANSITS_NOTE,
    MemberCell,
    MemberTable,
    PublicationRule,
    RegionalTable,
    from_sums,
    regional_totals,
)
from node.stats.answer import AnsweredCell, StatsAnswer
from node.stats.export import export_answer_rows, export_table, write_sdmx_csv
from node.stats.matrices import MATRICES, matrix
from node.stats.query import canonical_period, parse_period

if TYPE_CHECKING:
    from node.secretariat.office import Secretariat

REGION = "CRM"
EXTENSIONS = {"csv": "csv", "xlsx": "xlsx", "json": "json"}


@dataclass
class RegionalResult:
    """A regional table with what it was built from."""

    table_id: str
    period: str
    measure: str
    table: RegionalTable
    as_of: Any = None
    source: str = "pull"  # or "shares"
    notes: list[str] = field(default_factory=list)

    def answer(self) -> StatsAnswer:
        cells = [
            AnsweredCell(c.key, c.value, c.obs_status, c.conf_status, c.perturbed)
            for c in self.table.cells
        ]
        return StatsAnswer(
            dimensions=self.table.dimensions,
            cells=cells,
            as_of=self.as_of,
            profile="regional",
            method=self.table.rule.describe(),
            suppressed_primary=sum(1 for c in self.table.cells if c.conf_status == "A"),
            suppressed_secondary=sum(1 for c in self.table.cells if c.conf_status == "D"),
            perturbed=sum(1 for c in self.table.cells if c.perturbed),
            epsilon_spent="",
            period=self.period,
            measure=self.measure,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "table": self.table_id,
            "period": self.period,
            "status": self.table.status,
            "source": self.source,
            "contributors": list(self.table.contributors),
            "missing": list(self.table.missing),
            "cells": len(self.table.cells),
            "withheld": self.table.withheld(),
            "rule": self.table.rule.describe(),
            "notes": self.notes,
        }


def _notes(table: RegionalTable) -> list[str]:
    notes = [TRANSITS_NOTE["es"], TRANSITS_NOTE["en"], f"Publication rule: {table.rule.describe()}"]
    if table.missing:
        notes.append("PARCIAL / PARTIAL: sin datos de / no data from " + ", ".join(table.missing))
    bounds = sum(1 for c in table.cells if c.value is not None and c.n_suppressed)
    if bounds:  # E alone reads "estimated": say these are sums of what was published
        notes.append(
            f"LÍMITE INFERIOR / LOWER BOUND: {bounds} cifra(s) marcada(s) E suman solo lo que "
            "los miembros publicaron; al menos uno ocultó su parte (cuadros solo con umbral) / "
            f"{bounds} figure(s) flagged E add up only what members published; at least one "
            "withheld its part (threshold-only tables)"
        )
    return notes


def from_rounds(
    runtime: NodeRuntime, table_id: str, period: str, rule: PublicationRule
) -> RegionalResult | None:
    """The latest summed round of a regional-only table, if any."""
    # Rounds are stored under the canonical period; rows written before that under the
    # text asked for. Compare date ranges, so either spelling finds them.
    canonical = parse_period(period).canonical
    for row in runtime.store.secretariat.rounds(matrix=table_id, limit=500):
        if canonical_period(row["period"]) != canonical:
            continue
        result = row["result"]
        if row["status"] != "summed" or not result:
            continue
        totals = {tuple(k): (int(v), int(n)) for k, v, n in result["cells"]}
        table = from_sums(
            result["dimensions"],
            totals,
            contributors=row["members"],
            missing=member_countries(runtime),
            rule=rule,
        )
        measure = MATRICES[table_id].measure if table_id in MATRICES else "persons"
        return RegionalResult(
            table_id, period, measure, table, source="shares", notes=_notes(table)
        )
    return None


def regional_result(
    runtime: NodeRuntime,
    table_id: str,
    period: str,
    rule: PublicationRule,
    *,
    measure: str = "",
    dimensions: Sequence[str] = (),
) -> RegionalResult:
    """Sum the members' stored answers for (table, period); missing members are named."""
    if table_id in MATRICES:
        measure = measure or matrix(table_id).measure
        dimensions = dimensions or matrix(table_id).dimensions
    expected = member_countries(runtime)
    tables: list[MemberTable] = []
    as_ofs = []
    for row in runtime.store.secretariat.results(table_id=table_id, period=period):
        if row.cells is None or row.member not in expected:
            continue
        cells = {tuple(key): MemberCell(value, bool(perturbed)) for key, value, _o, _c, perturbed
                 in row.cells}  # fmt: skip
        tables.append(MemberTable(row.member, tuple(row.dimensions), cells, row.as_of))
        if row.as_of is not None:
            as_ofs.append(row.as_of)
    table = regional_totals(tables, dimensions=tuple(dimensions), missing=expected, rule=rule)
    return RegionalResult(
        table_id,
        period,
        measure or "persons",
        table,
        as_of=min(as_ofs) if as_ofs else None,
        notes=_notes(table),
    )


def regional_matrix(office: Secretariat, table_id: str, period: str) -> RegionalResult:
    """A regional matrix: from the shares for regional-only ones, else from the pulls."""
    if table_id in office.settings.regional_only:
        found = from_rounds(office.runtime, table_id, period, office.rule)
        if found is not None:
            return found
    return regional_result(office.runtime, table_id, period, office.rule)


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(name, 0o644)  # outputs are meant to be shared
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_regional(
    office: Secretariat,
    period: str,
    *,
    matrices: Sequence[str] | None = None,
    out_dir: Path | None = None,
    formats: Sequence[str] = ("csv", "xlsx", "sdmx"),
) -> list[Path]:
    """Write each regional matrix of ``period``, each in its own SDMX-CSV file too.

    One SDMX file per matrix: the matrix is an attribute (``TABLE_ID``), not part of the
    observation key, so two matrices in one file repeat keys (M01's and M07's Chinese total of
    the quarter) with different values, which a loader keeping the last one silently
    overwrites. Every file is rendered before the first is written: a matrix that cannot be
    exported (a refused code) leaves the folder as it was, not half of a new set."""
    out = (out_dir or office.settings.output_dir(office.runtime.home.root)) / period
    files: list[tuple[Path, bytes]] = []
    summaries = []
    for table_id in matrices or office.settings.matrices:
        result = regional_matrix(office, table_id, period)
        answer = result.answer()
        contrib = result.table.n_contrib
        for fmt in formats:
            if fmt == "sdmx":
                rows = export_answer_rows(
                    answer, holder=REGION, matrix=table_id, regional=True, n_contrib=contrib
                )
                sdmx = write_sdmx_csv(rows, regional=True)
                files.append((out / f"regional-{table_id}-{period}.sdmx.csv", sdmx))
                continue
            data = export_table(
                answer,
                fmt,
                holder=REGION,
                matrix=table_id,
                regional=True,
                n_contrib=contrib,
                notes=result.notes,
            )
            files.append((out / f"regional-{table_id}-{period}.{EXTENSIONS[fmt]}", data))
        summaries.append(result.summary())
    status = {
        "period": period,
        "holder": REGION,
        "note_es": TRANSITS_NOTE["es"],
        "note_en": TRANSITS_NOTE["en"],
        "tables": summaries,
    }
    files.append(
        (
            out / f"regional-{period}.json",
            (json.dumps(status, indent=2, ensure_ascii=False) + "\n").encode(),
        )
    )
    files.append((out / "LEEME-README.txt", _readme(period, summaries).encode("utf-8")))
    for path, data in files:
        atomic_write(path, data)
    return [path for path, _ in files]


def _readme(period: str, summaries: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"Matrices regionales CRM / CRM regional matrices — {period}",
        "",
        TRANSITS_NOTE["es"],
        TRANSITS_NOTE["en"],
        "",
        "Una celda vacía es confidencial (no publicada), nunca cero. N_CONTRIB: países que "
        "contribuyen a la celda.",
        "An empty cell is confidential (not published), never zero. N_CONTRIB: countries "
        "contributing to the cell.",
        "",
    ]
    for s in summaries:
        state = s["status"].upper()
        missing = (
            f" — sin datos de / no data from {', '.join(s['missing'])}" if s["missing"] else ""
        )
        lines.append(f"{s['table']}: {state}, {len(s['contributors'])} países/countries{missing}")
    return "\n".join(lines) + "\n"


def write_consular(office: Secretariat, out_dir: Path | None = None) -> list[Path]:
    """Collect and merge the members' consular entries; write CSV and JSON."""
    collection = consular.collect(office.runtime, policy=office.policy)
    out = out_dir or office.settings.output_dir(office.runtime.home.root)
    csv_path = out / "consular-directory.csv"
    json_path = out / "consular-directory.json"
    atomic_write(csv_path, consular.to_csv(collection.entries))
    atomic_write(json_path, consular.to_json(collection))
    return [csv_path, json_path]
