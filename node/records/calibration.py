"""Calibration of the synthetic population: routes, regimes and what each member records.

Why: the synthetic generator (:mod:`node.records.generate`) must produce files shaped like the
members' real records (who crosses where, when, and how much of it each country records), so
that statistics, disclosure control and matching are exercised on realistic cells: a few huge
ones (Venezuelans in Panama in 2023) and a long tail of tiny ones (one Nepali in Belize in 2014).
This module turns the sourced and assumed figures of :mod:`node.records.calibration_data` into
that model; who the persons are (documents, demography, names) is :mod:`node.records.population`.
Both are re-exported here, so ``calibration`` stays the one import for the model and its inputs.

Invariants:
* Nothing here reads files at run time (see :mod:`node.records.calibration_data` for sources).
* :func:`flow_model` solves the Nicaragua air-route and Mexico-direct volumes so that the
  *expected* Honduras 2023 records and Mexico 2023 events equal the published totals (each person
  attributed to the month their journey starts; transit days are ignored in that balance).
* Persons move along routes (:class:`Step` chains); a country records a person only if the
  person reaches it and is detected there. The same chains drive the analytic expectations here
  and the sampling in the generator, so the two cannot drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from node.records.calibration_data import (
    AIR_NICARAGUA_COMPOSITION_ASSUMED,
    AIR_NICARAGUA_YEARS_ASSUMED,
    CORRIDOR,
    DARIEN_2023_ANNUALISATION,
    DARIEN_2024_ASSUMED,
    DARIEN_COLUMNS,
    DARIEN_SNM,
    DARIEN_SOURCE,
    DARIEN_TAIL,
    DIRECT_DETECTION,
    DIRECT_FLOWS_ASSUMED,
    EVENT_MODELS,
    FIRST_YEAR,
    HAITIAN_ROW_SPLIT,
    HONDURAS_2023_BY_NATIONALITY,
    HONDURAS_2023_IRREGULAR_ENTRIES,
    LAST_YEAR,
    MEXICO_2023_EVENTS,
    MONTHS,
    PRESUMED_OR_UNKNOWN_SHARE,
    SEASONALITY_ASSUMED,
    TAIL_REGIMES_ASSUMED,
    YEARS,
    EventModel,
    Stage,
    Step,
)
from node.records.population import (
    AFRICAN,
    BASIS_AFRICAN_HAITIAN,
    BASIS_OTHER,
    CYRILLIC,
    DEFAULT_PASSPORT_FORMAT,
    DEMOGRAPHY,
    ID_CARD_FORMATS,
    NAME_GROUPS,
    NAME_POOLS,
    PASSPORT_FORMATS,
    PASSPORT_VALIDITY_YEARS,
    BasisModel,
    basis_model,
    demography,
    name_group,
    words,
)

__all__ = [
    "AFRICAN", "AIR_NICARAGUA_COMPOSITION_ASSUMED", "AIR_NICARAGUA_YEARS_ASSUMED",
    "BASIS_AFRICAN_HAITIAN", "BASIS_OTHER", "CORRIDOR", "CYRILLIC", "DARIEN_2023_ANNUALISATION",
    "DARIEN_2024_ASSUMED", "DARIEN_COLUMNS", "DARIEN_SNM", "DARIEN_SOURCE", "DARIEN_TAIL",
    "DEFAULT_PASSPORT_FORMAT", "DEMOGRAPHY", "DIRECT_DETECTION", "DIRECT_FLOWS_ASSUMED",
    "EVENT_MODELS", "FIRST_YEAR", "HAITIAN_ROW_SPLIT", "HONDURAS_2023_BY_NATIONALITY",
    "HONDURAS_2023_IRREGULAR_ENTRIES", "ID_CARD_FORMATS", "LAST_YEAR", "MEXICO_2023_EVENTS",
    "MONTHS", "NAME_GROUPS", "NAME_POOLS", "PASSPORT_FORMATS", "PASSPORT_VALIDITY_YEARS",
    "PRESUMED_OR_UNKNOWN_SHARE", "SEASONALITY_ASSUMED", "TAIL_REGIMES_ASSUMED", "YEARS",
    "BasisModel", "EventModel", "FlowModel", "Stage", "Step", "basis_model", "corridor_from",
    "demography", "flow_model", "mean_events", "name_group", "record_probability", "words",
]  # fmt: skip


def corridor_from(country: str) -> tuple[Step, ...]:
    """The corridor from ``country`` onwards (the first step always reached, no delay)."""
    steps = [s.country for s in CORRIDOR]
    if country not in steps:
        return (Step(country, 1.0, DIRECT_DETECTION[country], (0, 0)),)
    rest = CORRIDOR[steps.index(country) :]
    return (replace(rest[0], reach=1.0, delay=(0, 0), optional=False), *rest[1:])


def _air_nicaragua() -> tuple[Step, ...]:
    nic = next(s for s in CORRIDOR if s.country == "NIC")
    after = corridor_from("NIC")[1:]
    transit = Step("SLV", 0.30, 0.50, (0, 0), optional=True)  # stop-over at San Salvador
    return (transit, replace(nic, reach=1.0, delay=(0, 1)), *after)


def _cuban_crisis_2015() -> tuple[Step, ...]:
    """Nov 2015-Mar 2016: Nicaragua closed its border; Cubans stranded in Costa Rica were flown
    to El Salvador and went on by land through Guatemala."""
    by = {s.country: s for s in CORRIDOR}
    return (
        by["PAN"],
        replace(by["CRI"], detect=1.0, first_event="stranded"),
        Step("SLV", 0.97, 0.95, (20, 110)),
        replace(by["GTM"], reach=1.0),
        by["MEX"],
        by["USA"],
        by["CAN"],
    )


def _haitians_to_canada_2017() -> tuple[Step, ...]:
    return (*CORRIDOR[:-1], replace(CORRIDOR[-1], reach=0.25))


def record_probability(chain: tuple[Step, ...], country: str) -> float:
    """P(a person on ``chain`` is recorded by ``country``)."""
    alive = 1.0
    for step in chain:
        here = alive * step.reach
        if step.country == country:
            return here * step.detect
        if not step.optional:
            alive = here
    return 0.0


def _month_weights(annual: float, year: int) -> npt.NDArray[np.float64]:
    season = np.asarray(SEASONALITY_ASSUMED)
    out = np.zeros(MONTHS)
    start = 12 * (year - FIRST_YEAR)
    out[start : start + 12] = annual * season / season.sum()
    return out


@dataclass(frozen=True, eq=False)
class FlowModel:
    """Persons starting a journey, by route x nationality x start month, and their chains."""

    routes: tuple[str, ...]
    nationalities: tuple[str, ...]
    chains: tuple[tuple[Step, ...], ...]
    weights: npt.NDArray[np.float64]  # (routes, nationalities, MONTHS) persons
    chain_of: npt.NDArray[np.int64]  # same shape: index into ``chains``

    def record_probabilities(self, country: str) -> npt.NDArray[np.float64]:
        return np.array([record_probability(c, country) for c in self.chains])

    def recorded_weights(self, country: str) -> npt.NDArray[np.float64]:
        """Expected persons recorded by ``country``, by route x nationality x start month."""
        return self.weights * self.record_probabilities(country)[self.chain_of]

    def expected_records(self, country: str, year: int | None = None) -> float:
        w = self.recorded_weights(country)
        if year is not None:
            w = w[:, :, 12 * (year - FIRST_YEAR) : 12 * (year - FIRST_YEAR + 1)]
        return float(w.sum())

    def expected_by_nationality(self, country: str, year: int) -> dict[str, float]:
        w = self.recorded_weights(country)[:, :, 12 * (year - FIRST_YEAR) :][:, :, :12]
        totals = w.sum(axis=(0, 2))
        return {n: float(t) for n, t in zip(self.nationalities, totals, strict=True) if t > 0}


def _darien_annual() -> dict[str, dict[int, float]]:
    flows: dict[str, dict[int, float]] = {}
    tail_weight = sum(w for _, w, _ in DARIEN_TAIL)
    for row, values in DARIEN_SNM.items():
        by_year = {y: float(values[y - 2010]) for y in range(FIRST_YEAR, 2023)}
        by_year[2023] = values[-1] * DARIEN_2023_ANNUALISATION
        by_year[2024] = float(DARIEN_2024_ASSUMED[row])
        if row == "OTHER":
            for y, total in by_year.items():
                i = y - FIRST_YEAR
                mix = {n: w * TAIL_REGIMES_ASSUMED[g][i] for n, w, g in DARIEN_TAIL}
                norm = sum(mix.values()) or tail_weight
                for n, w in mix.items():
                    flows.setdefault(n, {})[y] = flows.get(n, {}).get(y, 0.0) + total * w / norm
        else:
            split = HAITIAN_ROW_SPLIT if row == "HTI_BRA_CHL" else {row: 1.0}
            for n, share in split.items():
                for y, total in by_year.items():
                    flows.setdefault(n, {})[y] = flows.get(n, {}).get(y, 0.0) + total * share
    return flows


class _Builder:
    """Collects (route, nationality, monthly persons) cells before they become arrays."""

    def __init__(self) -> None:
        self.cells: list[tuple[str, str, npt.NDArray[np.float64]]] = []

    def add(self, route: str, flows: Mapping[str, Mapping[int, float]]) -> None:
        for nat, by_year in flows.items():
            months = sum((_month_weights(v, y) for y, v in by_year.items()), np.zeros(MONTHS))
            self.cells.append((route, nat, months))


def _months(first: tuple[int, int], last: tuple[int, int]) -> tuple[int, int]:
    """Month indices ``[lo, hi)`` from ``(year, month)`` to ``(year, month)`` inclusive."""
    return 12 * (first[0] - FIRST_YEAR) + first[1] - 1, 12 * (last[0] - FIRST_YEAR) + last[1]


@functools.cache
def flow_model() -> FlowModel:
    """The calibrated model (computed once per process)."""
    b = _Builder()
    b.add("darien", _darien_annual())
    for country, (persons, mix, shape) in DIRECT_FLOWS_ASSUMED.items():
        if country != "MEX":
            total = sum(mix.values())
            b.add(f"direct:{country}", _shaped(persons, mix, total, shape))
    routes = ["darien", "air_nicaragua", *(f"direct:{c}" for c in DIRECT_FLOWS_ASSUMED)]
    model = _assemble(b, routes)
    # Solve the Nicaragua air flow so that Honduras 2023 matches §12.
    air = _air_nicaragua()
    p_hnd = record_probability(air, "HND")
    residual = HONDURAS_2023_IRREGULAR_ENTRIES - model.expected_records("HND", 2023)
    fixed = {n: v / p_hnd for n, v in HONDURAS_2023_BY_NATIONALITY.items()}
    rest = residual / p_hnd - sum(fixed.values())
    mix = AIR_NICARAGUA_COMPOSITION_ASSUMED
    air_2023 = {**{n: rest * s / sum(mix.values()) for n, s in mix.items()}, **fixed}
    b.add(
        "air_nicaragua", {n: _by_year(v, AIR_NICARAGUA_YEARS_ASSUMED) for n, v in air_2023.items()}
    )
    model = _assemble(b, routes)
    # Solve Mexico's direct inflow so that Mexico's 2023 events match §12.
    events = model.expected_records("MEX", 2023) * mean_events("MEX")
    _, mix, shape = DIRECT_FLOWS_ASSUMED["MEX"]
    direct = (MEXICO_2023_EVENTS - events) / mean_events("MEX") / corridor_from("MEX")[0].detect
    b.add("direct:MEX", _shaped(direct, mix, sum(mix.values()), shape))
    return _assemble(b, routes)


def _by_year(value_2023: float, shape: Mapping[int, float]) -> dict[int, float]:
    return {y: value_2023 * m for y, m in shape.items()}


def _shaped(
    persons: float, mix: Mapping[str, float], total: float, shape: tuple[float, ...]
) -> dict[str, dict[int, float]]:
    ref = shape[2023 - FIRST_YEAR]
    return {
        n: {y: persons * w / total * shape[y - FIRST_YEAR] / ref for y in YEARS}
        for n, w in mix.items()
    }


def _assemble(b: _Builder, routes: list[str]) -> FlowModel:
    nats = tuple(dict.fromkeys(n for _, n, _ in b.cells))
    weights = np.zeros((len(routes), len(nats), MONTHS))
    for route, nat, months in b.cells:
        weights[routes.index(route), nats.index(nat)] += months
    defaults = {
        "darien": corridor_from("PAN"),
        "air_nicaragua": _air_nicaragua(),
        **{f"direct:{c}": corridor_from(c) for c in DIRECT_FLOWS_ASSUMED},
    }
    chains: list[tuple[Step, ...]] = [defaults[r] for r in routes]
    chain_of = np.repeat(np.arange(len(routes)), len(nats) * MONTHS).reshape(weights.shape)
    overrides = (
        ("darien", "CUB", _months((2015, 11), (2016, 3)), _cuban_crisis_2015()),
        ("darien", "HTI", _months((2017, 1), (2017, 12)), _haitians_to_canada_2017()),
    )
    for route, nat, (lo, hi), chain in overrides:
        if nat in nats:
            chains.append(chain)
            chain_of[routes.index(route), nats.index(nat), lo:hi] = len(chains) - 1
    return FlowModel(tuple(routes), nats, tuple(chains), weights, chain_of)


def mean_events(country: str) -> float:
    """Expected events per recorded person in ``country`` under :data:`EVENT_MODELS`."""
    first, stages = EVENT_MODELS[country]
    present = dict(first)
    for stage in stages:
        gate = 1.0 if stage.requires is None else present.get(stage.requires, 0.0)
        for event, p in stage.outcomes.items():
            present[event] = present.get(event, 0.0) + gate * p
    return sum(present.values())
