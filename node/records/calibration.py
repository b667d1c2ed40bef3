"""Calibration of the synthetic population: real magnitudes, routes, regimes and recording.

Why: the synthetic generator (:mod:`node.records.generate`) must produce files shaped like the
members' real records (who crosses where, when, and how much of it each country records), so
that statistics, disclosure control and matching are exercised on realistic cells: a few huge
ones (Venezuelans in Panama in 2023) and a long tail of tiny ones (one Nepali in Belize in 2014).

Invariants:
* Nothing here reads files at run time. The Darién figures are constants copied from
  ``shared/data/darien_panama_snm_by_nationality.tsv`` (Panama SNM open data as compiled by
  A. Isacson, WOLA, "Darién Gap Migration Through August 2023"); a unit test compares them with
  the TSV whenever the shared directory is available.
* Every other figure is either from DESIGN.md §12 (Honduras 2023: 545,043 irregular entries incl.
  Guinea 12,902 and Senegal 8,964; Mexico 2023: 782,176 events; 10-25 % of African and Haitian
  flows with presumed or unknown nationality) or a model assumption: the ``*_ASSUMED`` tables,
  the corridor (:data:`CORRIDOR`), event, nationality-basis and demography models, document
  formats and the hand-written identity pools at the end of this module.
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

FIRST_YEAR, LAST_YEAR = 2014, 2024
YEARS: tuple[int, ...] = tuple(range(FIRST_YEAR, LAST_YEAR + 1))
MONTHS = 12 * len(YEARS)

# --- Panama SNM, Darién crossings by nationality (persons per calendar year, blank = 0) ------
DARIEN_SOURCE = "shared/data/darien_panama_snm_by_nationality.tsv (Panama SNM via WOLA)"
DARIEN_COLUMNS: tuple[str, ...] = (*(str(y) for y in range(2010, 2023)), "2023_JanAug")
DARIEN_SNM: Mapping[str, tuple[int, ...]] = {
    "VEN": (0, 0, 0, 0, 0, 2, 6, 18, 65, 78, 69, 2819, 150327, 201288),
    "HTI_BRA_CHL": (0, 1, 0, 2, 2, 8, 16742, 40, 420, 10490, 5331, 101072, 27287, 42959),
    "ECU": (0, 15, 18, 4, 1, 14, 93, 50, 51, 31, 40, 387, 29356, 43536),
    "CUB": (79, 18, 1154, 2010, 5026, 24623, 7383, 736, 329, 2691, 245, 18600, 5961, 700),
    "COL": (0, 65, 24, 26, 9, 32, 16, 36, 13, 23, 21, 169, 5064, 11276),
    "CHN": (268, 9, 11, 1, 0, 1, 0, 6, 0, 0, 3, 77, 2005, 12979),
    "IND": (12, 11, 48, 0, 1, 1, 20, 1127, 2962, 1920, 39, 592, 4094, 3338),
    "NPL": (29, 9, 213, 297, 468, 2426, 1619, 2138, 868, 254, 56, 523, 1631, 1659),
    "BGD": (53, 45, 89, 398, 377, 559, 580, 506, 1525, 911, 123, 1657, 1884, 1158),
    "OTHER": (118, 110, 220, 313, 291, 1623, 3601, 2119, 2988, 5704, 538, 7830, 20675, 14811),
}
#: The TSV's 2023 column covers January-August; the model annualises it.
DARIEN_2023_ANNUALISATION = 12 / 8
#: 2024 is not in the TSV: an order-of-magnitude assumption (about 300,000 crossings, two thirds
#: Venezuelan), used only to give 2024 a plausible shape.
DARIEN_2024_ASSUMED: Mapping[str, int] = {
    "VEN": 201_000, "HTI_BRA_CHL": 13_000, "ECU": 16_000, "CUB": 1_500, "COL": 14_000,
    "CHN": 18_000, "IND": 4_000, "NPL": 1_500, "BGD": 1_200, "OTHER": 31_000,
}  # fmt: skip
#: Children of Haitians registered as Chilean or Brazilian nationals (the TSV's combined row).
HAITIAN_ROW_SPLIT: Mapping[str, float] = {"HTI": 0.88, "CHL": 0.08, "BRA": 0.04}

# --- DESIGN.md §12 -----------------------------------------------------------------------
HONDURAS_2023_IRREGULAR_ENTRIES = 545_043
HONDURAS_2023_BY_NATIONALITY: Mapping[str, int] = {"GIN": 12_902, "SEN": 8_964}
MEXICO_2023_EVENTS = 782_176
PRESUMED_OR_UNKNOWN_SHARE = (0.10, 0.25)  # of African and Haitian flows

# --- the long tail of the Darién "OTHER" row: (nationality, weight, regime) --------------------
DARIEN_TAIL: tuple[tuple[str, float, str], ...] = (
    ("CMR", 10, "af"), ("COD", 8, "af"), ("AGO", 6, "af"), ("ERI", 4, "af"), ("GHA", 3, "af"),
    ("SOM", 3, "af"), ("ETH", 2, "af"), ("NGA", 2, "af"), ("CIV", 1.5, "af"), ("BFA", 1, "af"),
    ("TGO", 1, "af"), ("COG", 1, "af"), ("SLE", 0.8, "af"), ("KEN", 0.5, "af"),
    ("UGA", 0.4, "af"), ("SDN", 0.4, "af"), ("BEN", 0.3, "af"), ("GAB", 0.2, "af"),
    ("PAK", 5, "sa"), ("LKA", 3, "sa"), ("AFG", 6, "afg"), ("UZB", 4, "ca"), ("RUS", 2, "ca"),
    ("TUR", 2, "ca"), ("KAZ", 0.6, "ca"), ("TJK", 0.5, "ca"), ("KGZ", 0.5, "ca"),
    ("GEO", 0.3, "ca"), ("ARM", 0.2, "ca"), ("SYR", 1, "me"), ("IRN", 0.8, "me"),
    ("EGY", 0.7, "me"), ("IRQ", 0.6, "me"), ("YEM", 0.5, "me"), ("MAR", 0.3, "me"),
    ("JOR", 0.2, "me"), ("LBN", 0.2, "me"), ("VNM", 1, "as"), ("PHL", 0.4, "as"),
    ("MMR", 0.3, "as"), ("IDN", 0.2, "as"), ("PER", 6, "am"), ("DOM", 3, "am"),
    ("BOL", 0.5, "am"), ("GUY", 0.3, "am"), ("ARG", 0.3, "am"), ("URY", 0.2, "am"),
    ("PRY", 0.2, "am"), ("SUR", 0.2, "am"), ("JAM", 0.1, "am"), ("TTO", 0.1, "am"),
)  # fmt: skip
#: Year regimes of the tail (2014..2024), an assumption shaped after the rows above: Africans
#: and South Asians 2016-2019, Afghans from 2021, Central Asians and Russians 2022-2024.
TAIL_REGIMES_ASSUMED: Mapping[str, tuple[float, ...]] = {
    "af": (0.3, 0.5, 1.5, 1.5, 1.6, 2.5, 0.8, 0.6, 0.7, 0.8, 0.8),
    "sa": (0.6, 0.8, 1.0, 2.0, 2.0, 1.5, 0.6, 0.8, 1.0, 1.0, 1.0),
    "afg": (0.0, 0.0, 0.0, 0.1, 0.1, 0.1, 0.1, 1.5, 3.0, 2.0, 1.0),
    "ca": (0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.5, 2.0, 3.0, 3.0),
    "me": (0.5, 0.5, 0.8, 0.8, 0.8, 0.8, 0.5, 0.8, 1.0, 1.0, 1.0),
    "as": (0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.8, 1.0, 1.5, 1.5),
    "am": (0.2, 0.2, 0.3, 0.3, 0.3, 0.5, 0.5, 1.0, 1.5, 1.5, 1.2),
}

# --- Air arrivals in Nicaragua (Africans, Cubans, Haitians from late 2021) --------------------
#: Composition of the air flow other than Guinea and Senegal (whose volumes come from §12).
AIR_NICARAGUA_COMPOSITION_ASSUMED: Mapping[str, float] = {
    "CUB": 0.34, "HTI": 0.30, "MRT": 0.10, "MLI": 0.04, "BFA": 0.03, "SLE": 0.03, "CMR": 0.03,
    "GMB": 0.02, "NGA": 0.02, "GHA": 0.02, "CIV": 0.02, "IND": 0.02, "AGO": 0.01, "COD": 0.01,
    "TCD": 0.005, "NER": 0.005, "TGO": 0.005, "BEN": 0.005,
}  # fmt: skip
AIR_NICARAGUA_YEARS_ASSUMED: Mapping[int, float] = {2021: 0.12, 2022: 0.55, 2023: 1.0, 2024: 0.45}

# --- Direct inflows into a member (not via an earlier member): 2023 persons, composition, shape -
_STEADY = (0.6, 0.7, 0.8, 0.8, 0.9, 1.0, 0.4, 0.7, 0.9, 1.0, 1.0)
_MEXICO_SHAPE = (0.16, 0.25, 0.24, 0.12, 0.17, 0.23, 0.11, 0.39, 0.57, 1.0, 1.2)
_DOM_SHAPE = (0.15, 0.2, 0.2, 0.2, 0.25, 0.3, 0.2, 0.35, 0.7, 1.0, 1.1)
_CAN_SHAPE = (0.1, 0.12, 0.16, 0.36, 0.4, 0.45, 0.15, 0.2, 0.65, 1.0, 1.2)
_CA = {"GTM": 26, "HND": 26, "SLV": 7, "NIC": 6}
DIRECT_FLOWS_ASSUMED: Mapping[str, tuple[int, Mapping[str, float], tuple[float, ...]]] = {
    # Mexico's 2023 volume is solved from MEXICO_2023_EVENTS; 0 here is a placeholder.
    "MEX": (0, {**_CA, "COL": 6, "ECU": 5, "VEN": 5, "HTI": 5, "CUB": 4, "PER": 2, "BRA": 1,
                "CHL": 1, "IND": 1, "CHN": 1, "DOM": 1, "RUS": 0.5, "TUR": 0.5, "UZB": 0.3,
                "GHA": 0.2, "PAK": 0.2}, _MEXICO_SHAPE),
    "USA": (60_000, {"IND": 20, "CHN": 15, "RUS": 8, "TUR": 8, "COL": 6, "VEN": 5, "HTI": 5,
                     "CUB": 5, "ECU": 4, "PER": 4, "BRA": 4, "GEO": 2, "UZB": 2, "MRT": 2,
                     "SEN": 1, "AFG": 1, "KGZ": 0.5, "NPL": 0.5}, _MEXICO_SHAPE),
    "CAN": (140_000, {"IND": 18, "NGA": 8, "HTI": 8, "COL": 7, "TUR": 6, "MEX": 6, "IRN": 5,
                      "PAK": 5, "AFG": 4, "CHN": 4, "BGD": 3, "KEN": 3, "ETH": 2, "ERI": 2,
                      "SOM": 2, "GHA": 2, "LKA": 2, "SYR": 2, "CMR": 2, "COD": 1, "UGA": 1,
                      "VNM": 0.5, "YEM": 0.5}, _CAN_SHAPE),
    "DOM": (250_000, {"HTI": 93, "VEN": 3, "CUB": 1, "COL": 0.5, "CHN": 0.5, "IND": 0.5,
                      "NGA": 0.2, "PAK": 0.1}, _DOM_SHAPE),
    "GTM": (15_000, {"HND": 40, "SLV": 25, "NIC": 10, "CUB": 5, "VEN": 5, "HTI": 5, "CHN": 3,
                     "IND": 3, "BGD": 1, "NPL": 1}, _STEADY),
    "HND": (8_000, {"NIC": 30, "SLV": 15, "GTM": 15, "CUB": 10, "VEN": 10, "HTI": 10, "CHN": 2,
                    "IND": 2, "ECU": 3, "COL": 3}, _STEADY),
    "CRI": (10_000, {"NIC": 50, "VEN": 15, "COL": 10, "CUB": 8, "HTI": 5, "CHN": 3, "DOM": 3,
                     "IND": 1}, _STEADY),
    "PAN": (10_000, {"COL": 40, "VEN": 20, "CUB": 10, "HTI": 10, "CHN": 5, "IND": 5, "DOM": 5,
                     "ECU": 3, "NPL": 1, "BGD": 1}, _STEADY),
    "SLV": (4_000, {"HND": 30, "GTM": 20, "NIC": 15, "CUB": 8, "VEN": 8, "IND": 5, "HTI": 4,
                    "CHN": 3, "ECU": 2}, _STEADY),
    "NIC": (2_000, {"HND": 30, "CRI": 20, "CUB": 20, "VEN": 10, "HTI": 10, "CHN": 3}, _STEADY),
    "BLZ": (3_000, {"GTM": 40, "HND": 25, "SLV": 15, "NIC": 5, "CHN": 5, "IND": 4, "NPL": 2,
                    "BGD": 1, "CUB": 1, "HTI": 1, "TWN": 1}, _STEADY),
}  # fmt: skip

#: Monthly seasonality (January..December), an assumption: dry-season lull around the new year,
#: peak crossings August-October.
SEASONALITY_ASSUMED = (0.78, 0.80, 0.92, 0.96, 1.00, 0.98, 1.04, 1.12, 1.18, 1.15, 1.05, 0.84)


@dataclass(frozen=True)
class Step:
    """One country on a route: reached with ``reach`` (from the previous step), recorded with
    ``detect``, ``delay`` days after the previous step. Missing an ``optional`` step (a detour)
    does not end the journey; missing any other step does (the person stopped, was returned or
    took another way)."""

    country: str
    reach: float
    detect: float
    delay: tuple[int, int]
    optional: bool = False
    first_event: str | None = None


#: Corridor attenuation (assumed): flows shrink from Panama northwards; Nicaragua records little.
CORRIDOR: tuple[Step, ...] = (
    Step("PAN", 1.00, 0.98, (0, 0)),
    Step("CRI", 0.97, 0.85, (1, 3)),
    Step("NIC", 0.96, 0.08, (1, 3)),
    Step("HND", 0.95, 0.90, (1, 4)),
    Step("SLV", 0.03, 0.60, (1, 3), optional=True),
    Step("GTM", 0.92, 0.40, (2, 6)),
    Step("BLZ", 0.015, 0.50, (2, 10), optional=True),
    Step("MEX", 0.93, 0.70, (3, 25)),
    Step("USA", 0.80, 0.92, (10, 90)),
    Step("CAN", 0.02, 0.95, (30, 365), optional=True),
)


def corridor_from(country: str) -> tuple[Step, ...]:
    """The corridor from ``country`` onwards (the first step always reached, no delay)."""
    steps = [s.country for s in CORRIDOR]
    if country not in steps:
        return (Step(country, 1.0, DIRECT_DETECTION[country], (0, 0)),)
    rest = CORRIDOR[steps.index(country) :]
    return (replace(rest[0], reach=1.0, delay=(0, 0), optional=False), *rest[1:])


DIRECT_DETECTION: Mapping[str, float] = {"DOM": 0.90}


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


# --- Population: documents, nationality basis, demography, events --------------------------
def words(text: str) -> tuple[str, ...]:
    """``"A B C"`` -> ``("A", "B", "C")``: keeps long code tables readable."""
    return tuple(text.split())


AFRICAN: frozenset[str] = frozenset(
    words(
        "AGO BEN BFA CIV CMR COD COG EGY ERI ETH GAB GHA GIN GMB KEN MAR MLI MRT NER NGA SDN "
        "SEN SLE SOM TCD TGO UGA"
    )
)


@dataclass(frozen=True)
class BasisModel:
    """How a nationality gets recorded: ``has_document`` (the person carries one), ``shows``
    (it is used as the basis when carried); otherwise declared / presumed / unknown."""

    has_document: float
    shows: float
    declared: float
    presumed: float
    unknown: float

    def presumed_or_unknown(self) -> float:
        return (1 - self.has_document * self.shows) * (self.presumed + self.unknown)


#: African and Haitian flows: 19 % presumed or unknown, inside the 10-25 % of DESIGN.md §12.
BASIS_AFRICAN_HAITIAN = BasisModel(0.60, 0.95, 0.55, 0.30, 0.15)
BASIS_OTHER = BasisModel(0.82, 0.95, 0.80, 0.15, 0.05)


def basis_model(nationality: str) -> BasisModel:
    return BASIS_AFRICAN_HAITIAN if nationality in AFRICAN or nationality == "HTI" else BASIS_OTHER


#: (share of minors, share of men among adults) by demographic profile (assumed).
DEMOGRAPHY: Mapping[str, tuple[float, float]] = {
    "family": (0.25, 0.55), "child": (0.85, 0.5), "mixed": (0.12, 0.62), "male": (0.05, 0.86),
}  # fmt: skip
_FAMILY = words("VEN ECU COL PER HTI DOM BOL GTM HND SLV NIC CRI PAN")
_MIXED = words("CUB CHN VNM RUS TUR UZB KAZ KGZ TJK GEO ARM MEX TWN PHL IDN MMR ARG URY PRY SUR")
_MIXED += words("GUY JAM TTO")


def demography(nationality: str) -> tuple[float, float]:
    if nationality in ("BRA", "CHL"):
        return DEMOGRAPHY["child"]  # in this flow mostly children of Haitians
    if nationality in _FAMILY:
        return DEMOGRAPHY["family"]
    return DEMOGRAPHY["mixed" if nationality in _MIXED else "male"]


#: Passport (TD3) number formats: ``a`` letter, ``d`` digit, ``n`` digit 1-9, others literal.
PASSPORT_FORMATS: Mapping[str, str] = {
    "VEN": "nddddddd", "CUB": "adddddd", "HTI": "aaddddddd", "ECU": "Addddddd",
    "COL": "aadddddd", "PER": "nddddddd", "CHN": "Edddddddd", "IND": "addddddd",
    "NPL": "ndddddddd", "BGD": "aaddddddd", "PAK": "aaddddddd", "LKA": "Nddddddd",
    "AFG": "Pdddddddd", "CMR": "aadddddd", "COD": "OPddddddd", "AGO": "Nddddddd",
    "SEN": "Adddddddd", "GIN": "Rddddddd", "RUS": "7nddddddd", "TUR": "Udddddddd",
    "UZB": "FAddddddd", "MEX": "Gdddddddd", "BRA": "aadddddd", "CHL": "Fdddddddd",
}  # fmt: skip
DEFAULT_PASSPORT_FORMAT = "aaddddddd"
#: Identity cards (TD1) accepted as travel documents in the region, with the share of holders
#: who carry one. Numbers over nine characters use the TD1 overflow.
ID_CARD_FORMATS: Mapping[str, tuple[str, float]] = {
    "ECU": ("nddddddddd", 0.3), "COL": ("nddddddddd", 0.3), "PER": ("dddddddd", 0.3),
    "VEN": ("nddddddd", 0.3), "DOM": ("nddddddddd", 0.2), "HND": ("ndddddddddddd", 0.5),
    "GTM": ("ndddddddddddd", 0.5), "SLV": ("ndddddddd", 0.5), "NIC": ("ndddddddddddda", 0.5),
    "CRI": ("ndddddddd", 0.5), "CHN": ("ndddddddddddddddd", 0.05), "SEN": ("ndddddddddddd", 0.15),
}  # fmt: skip
PASSPORT_VALIDITY_YEARS: Mapping[str, int] = {"CUB": 6, "VEN": 5, "HTI": 5}


@dataclass(frozen=True)
class Stage:
    """After the first event: at most one of ``outcomes`` (event type -> probability), only for
    persons who already have event ``requires``, ``delay`` days after their previous event."""

    outcomes: Mapping[str, float]
    delay: tuple[int, int]
    requires: str | None = None


EventModel = tuple[Mapping[str, float], tuple[Stage, ...]]
_ASYLUM_OUTCOME = Stage({"asylum_granted": 0.45, "asylum_rejected": 0.3}, (60, 300),
                        "asylum_application")  # fmt: skip
#: First event and follow-ups by recording country (assumed, after each member's procedures).
EVENT_MODELS: Mapping[str, EventModel] = {
    "PAN": ({"irregular_entry": 1.0}, (
        Stage({"stranded": 0.02, "asylum_application": 0.01, "deportation": 0.005}, (5, 60)),)),
    "CRI": ({"irregular_entry": 0.9, "encounter": 0.1}, (
        Stage({"stranded": 0.02, "asylum_application": 0.02}, (3, 60)), _ASYLUM_OUTCOME)),
    "NIC": ({"encounter": 1.0}, (Stage({"deportation": 0.05}, (1, 15)),)),
    "HND": ({"irregular_entry": 1.0}, (Stage({"asylum_application": 0.005}, (1, 10)),)),
    "SLV": ({"irregular_entry": 0.6, "encounter": 0.4}, (Stage({"deportation": 0.05}, (1, 20)),)),
    "GTM": ({"encounter": 1.0}, (Stage({"deportation": 0.15}, (1, 10)),)),
    "BLZ": ({"encounter": 1.0}, (Stage({"detention": 0.3}, (0, 2)),
                                 Stage({"deportation": 0.6}, (5, 40), "detention"))),
    "MEX": ({"encounter": 1.0}, (
        Stage({"detention": 0.3}, (0, 3)), Stage({"asylum_application": 0.14}, (1, 60)),
        _ASYLUM_OUTCOME,
        Stage({"deportation": 0.08, "assisted_voluntary_return": 0.05, "stranded": 0.03},
              (3, 60)))),
    "USA": ({"encounter": 1.0}, (
        Stage({"detention": 0.35}, (0, 3)), Stage({"asylum_application": 0.25}, (5, 120)),
        _ASYLUM_OUTCOME, Stage({"deportation": 0.12}, (10, 200)))),
    "CAN": ({"asylum_application": 1.0}, (
        Stage({"asylum_granted": 0.6, "asylum_rejected": 0.25}, (90, 600)),
        Stage({"deportation": 0.3}, (30, 300), "asylum_rejected"))),
    "DOM": ({"detention": 0.7, "encounter": 0.3}, (Stage({"deportation": 0.85}, (1, 10)),)),
}  # fmt: skip


def mean_events(country: str) -> float:
    """Expected events per recorded person in ``country`` under :data:`EVENT_MODELS`."""
    first, stages = EVENT_MODELS[country]
    present = dict(first)
    for stage in stages:
        gate = 1.0 if stage.requires is None else present.get(stage.requires, 0.0)
        for event, p in stage.outcomes.items():
            present[event] = present.get(event, 0.0) + gate * p
    return sum(present.values())


# --- Identity pools (written by hand, modest): surnames | female | male given names ----------
# "_" joins words of one name. Spellings keep their accents and hyphens so that normalisation is
# exercised; CYRILLIC gives local-script spellings that transliterate back exactly.
NAME_POOLS: Mapping[str, tuple[str, str, str, float]] = {
    "hispanic": (
        "García Rodríguez Martínez Hernández López González Pérez Sánchez Ramírez Torres Flores "
        "Rivera Gómez Díaz Reyes Morales Cruz Ortiz Gutiérrez Chávez Ramos Mendoza Castillo "
        "Jiménez Vásquez Romero Herrera Medina Aguilar Núñez Peña Rojas Guerrero Suárez Castro "
        "Méndez Salazar De_la_Cruz Quintero Colmenares Briceño Zambrano Carrillo Ibáñez",
        "María Ana Carmen Yusleidy Daniela Gabriela Valentina Andrea Yuliana Mariela Yolanda "
        "Luisa Camila Isabel Dayana Rosa Fernanda Lucía Milagros Yanet Begoña",
        "José Luis Carlos Juan Jesús Miguel Yoel Jorge Pedro Rafael Alejandro Daniel Andrés "
        "Yonathan Víctor Ángel Julio Eduardo Manuel Francisco Yordan", 0.6),
    "haitian": (
        "Jean-Baptiste Pierre Joseph Saint-Fleur Désir Louis Charles Étienne Dorvil Augustin "
        "Bien-Aimé Célestin Toussaint Jean-Louis Cadet Delva Exantus Fils-Aimé Jeune Laguerre "
        "Lamour Métellus Noël Petit-Frère Pierre-Louis Romélus Saint-Jean Thélusma Zéphir",
        "Marie Nadège Fabiola Wideline Jocelyne Rosemène Lovely Ketly Guerline Mirlande Roseline "
        "Judith Esther Nathalie Manoucheka Sabine",
        "Jean Wilson Jimmy Mackenson Dieunel Stanley Frantz Wesner Jean-Claude Ricardo Peterson "
        "Wilner Emmanuel Kervens Jean-Robert Fritznel", 0.4),
    "haitian_kids": (
        "Jean-Baptiste Pierre Joseph Désir Louis Charles Étienne Augustin Célestin Toussaint "
        "Cadet Delva Exantus Jeune Lamour Noël Saint-Jean Zéphir",
        "Vitória Sofía Isabella Emanuelly Valentina Camila Ana_Clara Antonella Josefa",
        "Davi Matheus João Benjamín Agustín Thiago Vicente Gabriel Lucas", 0.3),
    "indian": (
        "Singh Patel Kumar Sharma Yadav Gupta Shah Chaudhary Rana Reddy Das Verma Kaur Gill "
        "Sandhu Dhillon Mehta Joshi Thakur Bhatt",
        "Harpreet Gurpreet Manpreet Priya Pooja Jaspreet Simran Neha Anjali Kiran",
        "Rajesh Amit Sunil Vikram Sandeep Mehul Gurjeet Harjit Rohit Ankit Vijay Jaswinder", 0.2),
    "nepali": (
        "Shrestha Gurung Tamang Thapa Magar Rai Limbu Karki Adhikari Bhattarai Poudel Khadka "
        "Sherpa Basnet", "Sunita Kamala Sarita Anita Sabina Gita Manisha Bishnu",
        "Bikash Suman Ramesh Sagar Anil Prakash Dipendra Rajendra Santosh Kiran", 0.15),
    "bangladeshi": (
        "Hossain Rahman Islam Ahmed Uddin Akter Begum Chowdhury Miah Sarkar Khan Alam Mollah "
        "Sheikh", "Nasrin Fatema Shirin Rupa Sumaiya Taslima",
        "Mohammad Abdul Rafiq Shahidul Jahid Sohel Rubel Mizanur Kamrul Jahangir", 0.3),
    "pakistani": (
        "Khan Ahmed Ali Hussain Butt Malik Qureshi Chaudhry Iqbal Raza Shah Akhtar",
        "Ayesha Fatima Sana Hina Nadia", "Muhammad Imran Bilal Usman Faisal Tariq Asif Kashif",
        0.3),
    "srilankan": (
        "Perera Fernando De_Silva Jayasinghe Sivakumar Rajapaksha Wickramasinghe Bandara Kumara "
        "Senanayake Tharmalingam", "Nuwani Dilani Kavitha Tharushi Priyanka",
        "Nuwan Chaminda Tharindu Kasun Suresh Niroshan", 0.3),
    "chinese": (
        "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo Lü He Gao Lin "
        "Zheng Xie Luo", "Fang Jing Min Yan Xiuying Haiyan Lina Xiaomei Yuxin Zihan Ting",
        "Wei Jun Lei Yang Jianhua Zhiqiang Hao Yuxuan Qiang Bo Tao Peng", 0.0),
    "vietnamese": (
        "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ",
        "Thị_Hương Thị_Lan Ngọc_Anh Thu_Trang Thị_Mai", "Văn_Hùng Minh_Tuấn Đức_Anh Quang_Huy "
        "Văn_Nam", 0.0),
    "southeast_asian": (
        "Aung Kyaw Win Htun Santoso Wijaya Pratama Dela_Cruz Bautista Santos",
        "Siti Dewi Thandar Aye Rosalie Maricel", "Aung Ko Budi Agus Joel Mark", 0.2),
    "cameroonian": (
        "Mbarga Nkoulou Fotso Tchoumi Ndongo Essomba Kamga Nana Tchakounté Ngono Abena "
        "Atangana Fokou Njoya Ewane", "Aurélie Christelle Sandrine Brigitte Clarisse Mireille",
        "Jean-Pierre Ghislain Brice Hervé Yannick Landry Blaise Arnaud Serge", 0.3),
    "congolese": (
        "Mukendi Kalonji Tshibangu Ilunga Mbuyi Kabongo Lukusa Ngalula Mutombo Kasongo Nsimba "
        "Mulumba Kapinga Lumbala", "Divine Grâce Merveille Ornella Bénédicte Naomie",
        "Patrick Glody Plamedi Exaucé Héritier Christian Benjamin Trésor Jonathan", 0.3),
    "angolan": (
        "Dos_Santos Da_Silva Domingos Sebastião Kiala Lutumba Mavinga Cassoma Chipenda "
        "Kambala Tavares Neto", "Feliciana Domingas Teresa Isabel Esperança Luzia",
        "Adilson Edson Nelson Eduardo Joaquim Valdemar Osvaldo Mateus", 0.4),
    "senegalese": (
        "Diop Ndiaye Fall Sow Diallo Ba Sarr Faye Gueye Mbaye Sy Cissé Niang Thiam Ndour Seck "
        "N'Diaye", "Aminata Fatou Awa Khady Mariama Ndèye Coumba Astou",
        "Mamadou Moussa Ousmane Cheikh Ibrahima Abdoulaye Modou Babacar Serigne Pape Lamine",
        0.2),
    "west_francophone": (
        "Diallo Barry Bah Camara Condé Keïta Sylla Touré Soumah Baldé Kourouma Traoré "
        "Coulibaly Ouédraogo Koné Sanogo Kaboré Dembélé",
        "Mariama Kadiatou Fanta Aissatou Hawa Salimata Djénéba Oumou",
        "Alpha Ibrahima Thierno Oumar Sekou Boubacar Mamadou Amadou Souleymane Issiaka Adama",
        0.3),
    "mauritanian": (
        "Ould_Ahmed Ould_Mohamed Ould_Sidi Ould_Cheikh Ould_Brahim Kane Wane Sy Ba",
        "Aïcha Mariem Fatimetou Khadijetou Zeinebou",
        "Mohamed Ahmed Sidi Cheikh Moulaye Lemine Brahim Mohamed_Salem", 0.2),
    "anglophone_african": (
        "Mensah Owusu Boateng Asante Adeyemi Okafor Okonkwo Bello Kamara Conteh Koroma Ochieng "
        "Otieno Mugisha Okello Eze", "Ama Akosua Ngozi Chiamaka Fatmata Grace Blessing Wanjiru",
        "Kwame Kofi Chinedu Emeka Ibrahim Samuel Joseph Brian Kelvin", 0.3),
    "horn_of_africa": (
        "Tesfay Gebremedhin Haile Berhane Tesfamariam Abdi Warsame Osman Yohannes Girma "
        "Mengistu Hassan", "Senait Hodan Hiwet Selam Fatuma Meron Ikram Rahel",
        "Yonas Abdirahman Filimon Mebrahtu Dawit Abdullahi Tekle Bereket Mustafa", 0.2),
    "afghan": (
        "Ahmadi Hakimi Rahimi Noori Karimi Popal Stanekzai Hashimi Sadat Mohammadi Azizi "
        "Haidari Amiri Sultani Safi", "Zahra Mariam Nasrin Fereshta Madina Shabnam Zarghona",
        "Ahmad Mohammad Abdul Farid Hamid Shafiq Wahid Jawad Naveed Ajmal", 0.2),
    "middle_eastern": (
        "Al-Hassan Haddad Khalil Mansour Saleh Hosseini Moradi Rezaei Abdallah Ibrahim Nasser "
        "El_Amrani Benali Al-Sayed Farouk", "Layla Fatemeh Nour Yasmin Rania Samira Maryam",
        "Omar Khaled Reza Ali Youssef Hassan Karim Mehdi", 0.2),
    "turkish": (
        "Yılmaz Kaya Demir Şahin Çelik Öztürk Aydın Arslan Doğan Koç Kılıç Yıldız",
        "Ayşe Emine Fatma Zeynep Elif Büşra", "Mehmet Mustafa Ahmet Emre Hüseyin Murat Oğuz",
        0.2),
    "central_asian": (
        "Karimov Rakhimov Tursunov Nazarov Sadykov Abdullaev Iusupov Ermekov Mirzaev Saidov "
        "Rashidov Aliev", "Dilnoza Gulnara Aziza Madina Zarina Nodira",
        "Aziz Bekzod Timur Rustam Jasur Sardor Farrukh Ulugbek", 0.1),
    "slavic_caucasian": (
        "Ivanov Petrov Smirnov Kuznetsov Popov Sokolov Volkov Morozov Beridze Kapanadze "
        "Petrosian Hovhannisyan", "Anna Elena Olga Natalia Tatiana Nino Ani",
        "Aleksandr Dmitrii Sergei Andrei Maksim Giorgi Aram Nikolai", 0.1),
    "caribbean": (
        "Williams Brown Campbell Thomas Clarke Henry Persaud Ramdin Baptiste O'Neil Mohammed",
        "Shanice Keisha Tamika Ashley Latoya Nadia", "Andre Marlon Dwayne Kevin Richard Shane",
        0.3),
}  # fmt: skip
NAME_GROUPS: Mapping[str, tuple[str, ...]] = {
    "hispanic": words("VEN CUB ECU COL PER DOM BOL ARG URY PRY GTM HND SLV NIC MEX CRI PAN"),
    "haitian": ("HTI",), "haitian_kids": ("BRA", "CHL"), "indian": ("IND",),
    "nepali": ("NPL",), "bangladeshi": ("BGD",), "pakistani": ("PAK",),
    "srilankan": ("LKA",), "chinese": ("CHN", "TWN"), "vietnamese": ("VNM",),
    "southeast_asian": ("PHL", "IDN", "MMR"), "cameroonian": ("CMR", "GAB", "COG", "TCD"),
    "congolese": ("COD",), "angolan": ("AGO",), "senegalese": ("SEN", "GMB"),
    "west_francophone": words("GIN MLI BFA NER CIV TGO BEN"), "mauritanian": ("MRT",),
    "anglophone_african": words("GHA NGA SLE KEN UGA"),
    "horn_of_africa": words("ERI ETH SOM SDN"), "afghan": ("AFG",),
    "middle_eastern": words("SYR IRQ YEM EGY JOR LBN MAR IRN"), "turkish": ("TUR",),
    "central_asian": words("UZB KAZ KGZ TJK"), "slavic_caucasian": words("RUS GEO ARM"),
    "caribbean": words("JAM TTO GUY SUR"),
}  # fmt: skip
CYRILLIC: Mapping[str, str] = {
    "Ivanov": "Иванов", "Petrov": "Петров", "Smirnov": "Смирнов", "Kuznetsov": "Кузнецов",
    "Popov": "Попов", "Sokolov": "Соколов", "Volkov": "Волков", "Morozov": "Морозов",
    "Karimov": "Каримов", "Rakhimov": "Рахимов", "Tursunov": "Турсунов", "Nazarov": "Назаров",
    "Sadykov": "Садыков", "Abdullaev": "Абдуллаев", "Iusupov": "Юсупов", "Aliev": "Алиев",
    "Anna": "Анна", "Elena": "Елена", "Olga": "Ольга", "Natalia": "Наталья",
    "Aleksandr": "Александр", "Dmitrii": "Дмитрий", "Sergei": "Сергей", "Andrei": "Андрей",
    "Timur": "Тимур", "Aziz": "Азиз", "Rustam": "Рустам", "Madina": "Мадина",
}  # fmt: skip


def name_group(nationality: str) -> str:
    for group, members in NAME_GROUPS.items():
        if nationality in members:
            return group
    raise KeyError(f"no name pool for nationality {nationality}")
