"""The demo's peer statistics step: Costa Rica pulls a protected matrix from Mexico.

While the nodes run, :func:`peer_matrix_step` has Costa Rica ask Mexico, over the network and
under their agreement ``MEX-CRI-STATS``, for one CRM matrix of one quarter, exactly as
``enlace stats query --peer MEX --matrix M03`` does. Mexico protects the table at its own node
with the agreement's disclosure profile (cell-key noise, small cells suppressed and their
complements too) before anything leaves; the step prints a few rows with their SDMX flags and
the counts of what was suppressed and perturbed.

Invariants: only the CLI's client path is used; what is printed is what Costa Rica received
(never the holder's exact figures); a suppressed cell is shown as ``—``, never as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from enlace.v1 import stats_pb2
from node.client import PeerClient
from node.runtime import NodeRuntime
from node.stats.matrices import matrix
from node.stats.service import SERVICE

REQUESTER = "CRI"
HOLDER = "MEX"
AGREEMENT = "MEX-CRI-STATS"
MATRIX = "M03"
QUARTER = "2024Q3"
PURPOSE = "quarterly_matrices"
#: Rows printed: the largest released cells, a few primary and secondary suppressions, and
#: the grand total.
SHOWN = 3

Say = Callable[[str], None]


def _flags(cell: stats_pb2.Cell) -> str:
    return f"{cell.obs_status}/{cell.conf_status}" + (" ~" if cell.perturbed else "")


def _sample(cells: list[stats_pb2.Cell]) -> list[stats_pb2.Cell]:
    """The :data:`SHOWN` largest released inner cells, the first two primary and the first
    secondary suppressions (of any cell, margins included), and the grand total."""
    inner = [c for c in cells if "_T" not in c.key]
    released = sorted((c for c in inner if c.has_value), key=lambda c: -c.value)[:SHOWN]
    primary = [c for c in cells if not c.has_value and c.conf_status != "D"][:2]
    secondary = [c for c in cells if not c.has_value and c.conf_status == "D"][:1]
    total = [c for c in cells if c.key and all(k == "_T" for k in c.key)][:1]
    return [*released, *primary, *secondary, *total]


def peer_matrix_step(runtimes: dict[str, NodeRuntime], say: Say) -> dict[str, Any]:
    """From Costa Rica: ask Mexico for a protected CRM matrix; print a few flagged rows."""
    if REQUESTER not in runtimes or HOLDER not in runtimes:
        say(f"   (no matrix pulled: that needs {REQUESTER} and {HOLDER} in --countries)")
        return {}
    definition = matrix(MATRIX)
    request = stats_pb2.AggregateRequest(
        dataset="encounters", period=QUARTER, margins=True, matrix=MATRIX
    )
    say(
        f"   A peer pulls a protected matrix: {REQUESTER} asks {HOLDER} for {MATRIX} "
        f"({definition.title_en}), {QUARTER}, for {PURPOSE}"
    )
    with PeerClient(runtimes[REQUESTER], HOLDER, timeout=30.0) as client:
        reply = client.call(
            f"/{SERVICE}/Aggregate",
            request,
            stats_pb2.AggregateResponse,
            purpose=PURPOSE,
            agreement=AGREEMENT,
        )
    answer, coverage = reply.message, reply.message.coverage
    cells = list(answer.cells)
    dimensions = list(answer.dimensions)
    width = [max(len(d), 8) for d in dimensions]
    profile, _, method = coverage.disclosure_profile.partition(" (")
    method = method.rstrip(")")
    say(
        f"   {HOLDER} answers under {reply.header.agreement}, disclosure profile {profile}"
        + (f" ({method})" if method and method != profile else "")
        + f": {len(cells)} cells, among them"
    )
    say("     " + "  ".join(d.ljust(w) for d, w in zip(dimensions, width, strict=True))
        + "   value  flags")  # fmt: skip
    for cell in _sample(cells):
        shown = f"{cell.value:,}" if cell.has_value else "—"
        keys = "  ".join(k.ljust(w) for k, w in zip(cell.key, width, strict=True))
        say(f"     {keys}  {shown:>6}  {_flags(cell)}")
    say(
        f"   {coverage.suppressed_primary} primary and {coverage.suppressed_secondary} "
        f"secondary suppressions, {coverage.perturbed} cells perturbed; — means "
        "confidential, not zero (SDMX flags: Q/A small cell, Q/D suppressed to protect "
        "another, E/F ~ released with cell-key noise)"
    )
    return {
        "requester": REQUESTER,
        "holder": HOLDER,
        "matrix": MATRIX,
        "period": QUARTER,
        "agreement": reply.header.agreement,
        "profile": coverage.disclosure_profile,
        "dimensions": dimensions,
        "cells": len(cells),
        "released": sum(1 for c in cells if c.has_value),
        "suppressed_primary": coverage.suppressed_primary,
        "suppressed_secondary": coverage.suppressed_secondary,
        "perturbed": coverage.perturbed,
    }
