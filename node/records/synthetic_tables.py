"""The calibrated model compiled into arrays that the samplers index.

Why: persons are sampled in vectorised batches, so the model's route chains, the per-nationality
population parameters, the document number formats and the name pools are turned once per
process into dense arrays (:func:`sampling_tables`). Doing that in one place keeps the
samplers (:mod:`node.records.synthetic_people`) and the row writers
(:mod:`node.records.synthetic_encounters`) free of lookups by code, and gives them the shared
inverse-CDF helpers :func:`cumulative` and :func:`pick`.

Invariants:
* Built only from :mod:`node.records.calibration` and :mod:`node.records.population`; cached and
  never mutated. :class:`SamplingTables` compares by identity, which the derived caches below
  (:func:`format_classes`, :func:`recording_positions`, :func:`recorded_cumulative`) key on.
* Days are counted from :data:`EPOCH` (2014-01-01); nothing is recorded after :data:`END_DAY`
  (2024-12-31).
* Chain arrays are ``(chains, steps)`` with country -1 as padding; the last nationality code is
  ``"XXX"`` (unknown).
* The name pools hold no comma, quote or line break: rows are written unquoted, so building the
  tables fails otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from node.records.calibration import FlowModel, flow_model
from node.records.calibration_data import LAST_YEAR, YEARS
from node.records.codelists import REGIONAL_MEMBERS, codelist
from node.records.names import normalise_name
from node.records.population import (
    AFRICAN,
    CYRILLIC,
    DEFAULT_PASSPORT_FORMAT,
    ID_CARD_FORMATS,
    NAME_POOLS,
    PASSPORT_FORMATS,
    PASSPORT_VALIDITY_YEARS,
    basis_model,
    demography,
    name_group,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

EPOCH = np.datetime64("2014-01-01", "D")
END_DAY = int((np.datetime64("2024-12-31", "D") - EPOCH).astype(np.int64))


def pick(cum: F64, u: F64) -> I64:
    """Index of the category each uniform ``u`` falls in, under cumulative weights ``cum``."""
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1).astype(np.int64)


def cumulative(weights: F64 | tuple[float, ...]) -> F64:
    """Weights normalised to a cumulative distribution ending at 1, for :func:`pick`."""
    c: F64 = np.cumsum(np.asarray(weights, dtype=np.float64))
    out: F64 = c / c[-1]
    return out


@dataclass(frozen=True, eq=False)
class SamplingTables:
    """Arrays indexed by chain, step, nationality or pool entry (see the module docstring)."""

    model: FlowModel
    nat_codes: tuple[str, ...]  # model nationalities, then "XXX"
    cum_global: F64
    month_start: I64
    month_len: I64
    chain_flat: I64
    country: I64  # (chains, steps) member index, -1 padding
    reach: F64
    detect: F64
    optional: Bools
    dlo: I64
    dspan: I64
    first_event: I64  # (chains, steps) event index or -1
    per_nat: Mapping[str, npt.NDArray[Any]]
    formats: tuple[str, ...]
    names: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    african: I64  # decoy nationalities for presumed/declared mistakes
    common: I64


#: Event type codes; chains and emitted events hold indices into this tuple.
EVENTS: tuple[str, ...] = tuple(codelist("event_type"))


@functools.cache
def sampling_tables() -> SamplingTables:
    """The tables, built once per process (solving the flow model on first use)."""
    model = flow_model()
    nats = model.nationalities
    days = np.array(
        [np.datetime64(f"{y}-{m:02d}-01", "D") for y in YEARS for m in range(1, 13)]
        + [np.datetime64(f"{LAST_YEAR + 1}-01-01")]
    )
    offsets = (days - EPOCH).astype(np.int64)
    steps = max(len(c) for c in model.chains)
    shape = (len(model.chains), steps)
    country = np.full(shape, -1, np.int64)
    reach, detect = np.zeros(shape), np.zeros(shape)
    optional = np.zeros(shape, np.bool_)
    dlo, dspan, first = np.zeros(shape, np.int64), np.ones(shape, np.int64), np.full(shape, -1)
    for i, chain in enumerate(model.chains):
        for s, step in enumerate(chain):
            country[i, s] = REGIONAL_MEMBERS.index(step.country)
            reach[i, s], detect[i, s], optional[i, s] = step.reach, step.detect, step.optional
            dlo[i, s], dspan[i, s] = step.delay[0], step.delay[1] - step.delay[0] + 1
            first[i, s] = EVENTS.index(step.first_event) if step.first_event else -1
    pools: list[str] = []
    per: dict[str, list[Any]] = {
        k: []
        for k in (
            "minor",
            "male",
            "has_doc",
            "shows",
            "declared",
            "presumed",
            "id_share",
            "validity",
            "pfmt",
            "ifmt",
            "sur_off",
            "sur_cnt",
            "fem_off",
            "fem_cnt",
            "mal_off",
            "mal_cnt",
            "second",
        )
    }
    offsets_by_group: dict[str, tuple[int, int, int, int, int, int, float]] = {}
    for group, (sur, fem, mal, second) in NAME_POOLS.items():
        spans = []
        for text in (sur, fem, mal):
            entries = [w.replace("_", " ") for w in text.split()]
            spans += [len(pools), len(entries)]
            pools += entries
        offsets_by_group[group] = (*spans, second)  # type: ignore[assignment]
    formats = sorted(
        {
            *PASSPORT_FORMATS.values(),
            DEFAULT_PASSPORT_FORMAT,
            *(f for f, _ in ID_CARD_FORMATS.values()),
        }
    )
    for n in nats:
        minor, male = demography(n)
        b = basis_model(n)
        rest = b.declared + b.presumed + b.unknown
        id_fmt, id_share = ID_CARD_FORMATS.get(n, ("", 0.0))
        so, sc, fo, fc, mo, mc, second = offsets_by_group[name_group(n)]
        values = (
            minor,
            male,
            b.has_document,
            b.shows,
            b.declared / rest,
            b.presumed / rest,
            id_share,
            PASSPORT_VALIDITY_YEARS.get(n, 10),
            formats.index(PASSPORT_FORMATS.get(n, DEFAULT_PASSPORT_FORMAT)),
            formats.index(id_fmt) if id_fmt else -1,
            so,
            sc,
            fo,
            fc,
            mo,
            mc,
            second,
        )
        for key, value in zip(per, values, strict=True):
            per[key].append(value)
    if any(c in entry for entry in pools for c in ',"\r\n'):
        raise ValueError("name pools must not contain commas, quotes or line breaks")
    written = tuple(pools)
    upper = tuple(p.upper() for p in pools)
    mrz = tuple(normalise_name(p) for p in pools)
    native = tuple(CYRILLIC.get(p, p) for p in pools)
    african = np.array([nats.index(n) for n in nats if n in AFRICAN], np.int64)
    common = np.array([nats.index(n) for n in ("VEN", "COL", "ECU", "HTI", "CUB", "PER")])
    w = model.weights.ravel()
    return SamplingTables(
        model,
        (*nats, "XXX"),
        cumulative(w),
        offsets[:-1],
        np.diff(offsets),
        model.chain_of.ravel(),
        country,
        reach,
        detect,
        optional,
        dlo,
        dspan,
        first,
        {k: np.asarray(v) for k, v in per.items()},
        tuple(formats),
        (written, upper, mrz, native),
        african,
        common,
    )


@functools.cache
def format_classes(t: SamplingTables) -> tuple[I64, I64]:
    """Per format and position: class (0 literal or padding, 1 letter, 2 digit, 3 digit 1-9)
    and the literal character code (0 pads, and numpy drops trailing NULs)."""
    width = max(len(f) for f in t.formats)
    kinds = np.zeros((len(t.formats), width), np.int64)
    literal = np.zeros((len(t.formats), width), np.int64)
    for i, pattern in enumerate(t.formats):
        for j, c in enumerate(pattern):
            kinds[i, j] = {"a": 1, "d": 2, "n": 3}.get(c, 0)
            literal[i, j] = 0 if c in "adn" else ord(c)
    return kinds, literal


@functools.cache
def recording_positions(t: SamplingTables, ci: int) -> I64:
    """Per chain, the step at which member ``ci`` can record a person (-1: never on it)."""
    hits = t.country == ci
    return np.where(hits.any(axis=1), hits.argmax(axis=1), -1).astype(np.int64)


@functools.cache
def recorded_cumulative(t: SamplingTables, ci: int) -> F64:
    """Cumulative distribution of the persons member ``ci`` records, over the model's cells."""
    return cumulative(t.model.recorded_weights(REGIONAL_MEMBERS[ci]).ravel())
