"""Deterministic synthetic records for one member, consistent across the whole federation.

Why: nodes, the importer, statistics, disclosure control and matching all need realistic local
files, and matching needs the *same* people to appear in several countries' files. Persons who
journey through the region are drawn from a federation-wide stream (``federation_seed``): person
``g`` has the same route, dates, names, documents and face-template base vector whichever
country is generated. Each country scans a prefix of that stream for the persons it records and
fills the rest of its file with local persons drawn with its own seed from the same calibrated
distribution (:mod:`node.records.calibration`).

Invariants:
* ``generate(country, n, seed, ...)`` writes byte-identical files for the same arguments; the
  encounters file has exactly ``n`` data rows.
* Federation attributes of person ``g`` are counter-based hashes of ``(federation_seed, g,
  field)``: they depend neither on the country asking nor on how far it scans.
* Everything written validates against :mod:`node.records.datasets`. Document numbers are
  canonical ICAO numbers (the encounters file types a few of them loosely, as officers do);
  ``ground_truth.csv`` holds the canonical ``STATE|NUMBER`` keys of what each country recorded.
* Rows are produced in bounded batches (numpy columns joined into lines; no generated field
  holds a comma, quote or line break, which is checked for the name pools): memory does not
  grow with ``n``.

Layout: :mod:`node.records.synthetic_tables` compiles the calibrated model into arrays,
:mod:`node.records.synthetic_people` samples who is recorded,
:mod:`node.records.synthetic_encounters` turns persons into rows,
:mod:`node.records.synthetic_registers` writes the alerts, persons of interest and consular
directory, and :mod:`node.records.synthetic_csv` owns the files. This module validates the
arguments, sizes the scan of the federation stream and orders the batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from node.errors import InvalidArgumentError
from node.records.calibration import mean_events
from node.records.codelists import REGIONAL_MEMBERS
from node.records.synthetic_csv import GROUND_TRUTH_COLUMNS, OUTPUT_FILES, OutputFiles
from node.records.synthetic_encounters import EncounterEmitter
from node.records.synthetic_people import (
    D_BIO,
    concat_batches,
    draw_locals,
    hashed_uniforms,
    scan_journeying,
)
from node.records.synthetic_registers import (
    write_consular_directory,
    write_persons_of_interest,
    write_random_alerts,
)
from node.records.synthetic_tables import sampling_tables

__all__ = [
    "DEFAULT_FEDERATION_SEED", "D_BIO", "GROUND_TRUTH_COLUMNS", "OUTPUT_FILES",
    "GenerationSummary", "generate", "hashed_uniforms",
]  # fmt: skip

DEFAULT_FEDERATION_SEED = 20_260_101
JOURNEY_SHARE = 0.5  # target share of a file's events that belong to journeying persons
MAX_SCAN_FACTOR = 8  # scan at most this many stream persons per requested encounter
SCAN_CHUNK = 1 << 15
LOCAL_CHUNK = 1 << 15


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` wrote."""

    country: str
    encounters: int
    seed: int
    federation_seed: int
    templates_fraction: float
    out_dir: Path
    rows: Mapping[str, int]
    persons: int
    journeying_persons: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "out_dir": str(self.out_dir),
            "rows": dict(self.rows),
        }


def generate(
    country: str,
    encounters: int,
    seed: int,
    out_dir: Path,
    *,
    federation_seed: int | None = None,
    templates_fraction: float = 0.05,
    progress: Callable[[int], None] | None = None,
) -> GenerationSummary:
    """Write one member's synthetic files into ``out_dir``; see the module docstring.

    ``progress`` is called after each batch with the number of encounter rows written so far.
    Journeying persons get a face template when their federation-wide draw is below
    ``templates_fraction``, so countries generated with the same fraction share templates.
    """
    if country not in REGIONAL_MEMBERS:
        raise InvalidArgumentError(
            f"{country!r} is not a member",
            field="country",
            hint="use one of " + ", ".join(REGIONAL_MEMBERS),
        )
    if encounters < 1:
        raise InvalidArgumentError("must be at least 1", field="encounters")
    if not 0.0 <= templates_fraction <= 1.0:
        raise InvalidArgumentError("must be between 0 and 1", field="templates_fraction")
    fed = DEFAULT_FEDERATION_SEED if federation_seed is None else federation_seed
    out_dir.mkdir(parents=True, exist_ok=True)
    t, ci = sampling_tables(), REGIONAL_MEMBERS.index(country)
    out = OutputFiles(out_dir)
    try:
        em = EncounterEmitter(t, ci, seed, fed, templates_fraction, out)
        per_event = mean_events(country)
        rate = t.model.recorded_weights(country).sum() / t.model.weights.sum() * per_event
        scan = min(
            math.ceil(JOURNEY_SHARE * encounters / rate), MAX_SCAN_FACTOR * encounters + SCAN_CHUNK
        )
        expected = scan * rate
        local_ratio = max(encounters - expected, 0.0) / expected
        written, g = 0, 0
        while g < scan and written < encounters:
            journeying = scan_journeying(t, ci, fed, g, min(g + SCAN_CHUNK, scan))
            g += SCAN_CHUNK
            batch = concat_batches(
                [journeying, draw_locals(t, ci, em.rng, round(len(journeying) * local_ratio))]
            )
            written += em.emit(batch.take(em.rng.permutation(len(batch))), encounters - written)
            if progress is not None:
                progress(written)
        while written < encounters:
            need = encounters - written
            size = min(LOCAL_CHUNK, math.ceil(need / per_event) + 16)
            written += em.emit(draw_locals(t, ci, em.rng, size), need)
            if progress is not None:
                progress(written)
        write_random_alerts(em, encounters)
        write_persons_of_interest(em, encounters)
        write_consular_directory(em)
    finally:
        out.close()
    return GenerationSummary(
        country=country,
        encounters=encounters,
        seed=seed,
        federation_seed=fed,
        templates_fraction=templates_fraction,
        out_dir=out_dir,
        rows=dict(out.rows),
        persons=em.persons,
        journeying_persons=em.journeying,
    )
