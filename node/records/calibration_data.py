"""The figures the flow model is calibrated on, each with its source or marked as assumed.

Why: the published magnitudes (Panama's Darién counts, the DESIGN.md §12 totals) and the model
assumptions (the corridor, direct inflows, seasonality, each member's recording procedures) are
reviewed against their sources far more often than the code that turns them into a model
(:mod:`node.records.calibration`). Keeping them apart makes every number and its provenance
readable in one place, with no logic in between.

Invariants:
* Nothing here reads files at run time. The Darién figures are constants copied from
  ``shared/data/darien_panama_snm_by_nationality.tsv`` (Panama SNM open data as compiled by
  A. Isacson, WOLA, "Darién Gap Migration Through August 2023"); a unit test compares them with
  the TSV whenever the shared directory is available.
* Every other figure is either from DESIGN.md §12 (Honduras 2023: 545,043 irregular entries incl.
  Guinea 12,902 and Senegal 8,964; Mexico 2023: 782,176 events; 10-25 % of African and Haitian
  flows with presumed or unknown nationality) or a model assumption, named ``*_ASSUMED`` or
  commented as such (the corridor, :data:`DIRECT_DETECTION`, :data:`EVENT_MODELS`).
* Year-indexed tuples run over :data:`YEARS` (2014..2024); month indices over :data:`MONTHS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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


#: Detection of persons who enter a member directly, off the corridor (assumed).
DIRECT_DETECTION: Mapping[str, float] = {"DOM": 0.90}


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
