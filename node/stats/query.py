"""A statistics query, validated: what is counted, by which dimensions, over which period.

Invariants:
* Every dimension and filter names one of :data:`DIMENSIONS`; every period lies in 2014 or
  later (the members' records are harmonised from 2014 on) and parses to a half-open date
  interval; errors name the request field and say how to fix it. A period's ``canonical``
  text depends on its date range only, never on how it was spelt.
* Every filter value is one the records can hold: a code of the dimension's code list, or a
  year, quarter or month spelt as the answers label them. A value that is neither is refused
  with the close codes, never counted as zero (``sex=Female`` would otherwise read as
  "nobody").
* At most one multi-valued dimension (``care_provided`` or ``vulnerability``) per query: a
  record with several codes is counted once under each, so such tables are not additive
  across that dimension (documented in docs/statistics.md).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from node.errors import EnlaceError, InvalidArgumentError

FIRST_YEAR = 2014
MEASURES = ("persons", "events")
TIME_DIMENSIONS = ("year", "quarter", "month")
RECORD_DIMENSIONS = (
    "event_type",
    "nationality",
    "nationality_basis",
    "sex",
    "age_group",
    "border_post",
)
CODE_DIMENSIONS = {"care_provided": "care", "vulnerability": "vulnerability"}
DIMENSIONS = (*TIME_DIMENSIONS, *RECORD_DIMENSIONS, *CODE_DIMENSIONS)
TOTAL = "_T"
MAX_DIMENSIONS = 3

_YEAR = re.compile(r"^(\d{4})$", re.ASCII)
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.ASCII)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$", re.ASCII)
#: How a filter on a time dimension is written (as the answers label the cells).
_TIME_FILTERS = {
    "year": (re.compile(r"^\d{4}$", re.ASCII), "2023"),
    "quarter": (re.compile(r"^\d{4}-?Q[1-4]$", re.ASCII | re.IGNORECASE), "2023-Q3"),
    "month": (re.compile(r"^\d{4}-?(0[1-9]|1[0-2])$", re.ASCII), "2023-07"),
}
#: The code list of each coded dimension (``border_post`` holds the members' own post codes).
_FILTER_CODELISTS = {
    **{name: name for name in RECORD_DIMENSIONS if name != "border_post"},
    **CODE_DIMENSIONS,
}


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in calendar dates, with the text it was parsed from."""

    text: str
    start: dt.date
    end: dt.date

    def contains(self, day: dt.date) -> bool:
        return self.start <= day < self.end

    @property
    def canonical(self) -> str:
        """One spelling per date range: ``first-month..last-month`` (``2024-04..2024-06``).

        Every accepted period is a run of whole months, so this names the range exactly, and
        ``2024Q2``, ``2024-04..2024-06`` and ``2024q2`` share it. Anything keyed by period
        where two spellings must not count as two periods (the rounds of regional-only
        tables) is keyed by this text; it parses back to the same range.
        """
        last = self.end - dt.timedelta(days=1)
        return f"{self.start:%Y-%m}..{last:%Y-%m}"


def _one_period(text: str) -> tuple[dt.date, dt.date]:
    if m := _YEAR.match(text):
        year = int(m[1])
        return dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    if m := _QUARTER.match(text):
        year, quarter = int(m[1]), int(m[2])
        start = dt.date(year, 3 * quarter - 2, 1)
        end = dt.date(year + 1, 1, 1) if quarter == 4 else dt.date(year, 3 * quarter + 1, 1)
        return start, end
    if m := _MONTH.match(text):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise ValueError(text)
        start = dt.date(year, month, 1)
        end = dt.date(year + 1, 1, 1) if month == 12 else dt.date(year, month + 1, 1)
        return start, end
    raise ValueError(text)


def parse_period(text: str) -> Period:
    """``2023``, ``2023Q3``, ``2023-07`` or a range ``2023Q1..2023Q4``."""
    cleaned = text.strip().upper()
    try:
        if ".." in cleaned:
            first, last = cleaned.split("..", 1)
            start, _ = _one_period(first)
            _, end = _one_period(last)
        else:
            start, end = _one_period(cleaned)
    except ValueError:
        raise InvalidArgumentError(
            f"{text!r} is not a period",
            field="period",
            hint="use a year (2023), a quarter (2023Q3), a month (2023-07) or A..B",
        ) from None
    if start.year < FIRST_YEAR:
        raise InvalidArgumentError(
            f"{text!r} starts before {FIRST_YEAR}",
            field="period",
            hint=f"harmonised data start in {FIRST_YEAR}",
        )
    if end <= start:
        raise InvalidArgumentError(f"{text!r} ends before it starts", field="period")
    return Period(cleaned, start, end)


@dataclass(frozen=True)
class StatsQuery:
    dataset: str
    measure: str
    dimensions: tuple[str, ...]
    period: Period
    filters: Mapping[str, frozenset[str]] = field(default_factory=dict)
    margins: bool = False
    matrix: str = ""

    @property
    def code_dimension(self) -> str | None:
        found = [d for d in self.dimensions if d in CODE_DIMENSIONS]
        return found[0] if found else None


def canonical_period(text: str) -> str:
    """``text``'s date range (:attr:`Period.canonical`), or '' if it is not one period (a stored
    pull of several periods, or text from before periods were stored canonically)."""
    try:
        return parse_period(text).canonical
    except EnlaceError:
        return ""


def build_query(
    *,
    dataset: str,
    measure: str,
    dimensions: Sequence[str],
    period: str,
    filters: Mapping[str, Sequence[str]],
    margins: bool,
    matrix: str = "",
) -> StatsQuery:
    """Validate every part of a request; raise :class:`InvalidArgumentError` naming the field."""
    if dataset not in ("encounters", "matrices"):
        raise InvalidArgumentError(
            f"unknown dataset {dataset!r}", field="dataset", hint="use encounters or matrices"
        )
    if measure not in MEASURES:
        raise InvalidArgumentError(
            f"unknown measure {measure!r}", field="measure", hint="use persons or events"
        )
    dims = tuple(dimensions)
    if not dims:
        raise InvalidArgumentError("name at least one dimension", field="dimensions")
    if len(dims) > MAX_DIMENSIONS:
        raise InvalidArgumentError(
            f"{len(dims)} dimensions; at most {MAX_DIMENSIONS}", field="dimensions"
        )
    if len(set(dims)) != len(dims):
        raise InvalidArgumentError("a dimension is repeated", field="dimensions")
    for name in [*dims, *filters]:
        if name not in DIMENSIONS:
            raise InvalidArgumentError(
                f"unknown dimension {name!r}",
                field="dimensions",
                hint=f"choose from {', '.join(DIMENSIONS)}",
            )
    if sum(d in CODE_DIMENSIONS for d in dims) > 1:
        raise InvalidArgumentError(
            "at most one of care_provided, vulnerability per query", field="dimensions"
        )
    clean_filters: dict[str, frozenset[str]] = {}
    for name, values in filters.items():
        if not values:
            raise InvalidArgumentError(f"filter on {name} lists no value", field="filters")
        clean_filters[name] = frozenset(_filter_value(name, str(v)) for v in values)
    return StatsQuery(
        dataset=dataset,
        measure=measure,
        dimensions=dims,
        period=parse_period(period),
        filters=clean_filters,
        margins=margins,
        matrix=matrix,
    )


def _filter_value(name: str, value: str) -> str:
    """``value`` if a record can hold it under ``name``; otherwise refuse, saying what can."""
    if name in _TIME_FILTERS:
        pattern, example = _TIME_FILTERS[name]
        if pattern.fullmatch(value):
            return value
        raise InvalidArgumentError(
            f"filter {name}={value!r} is not a {name}",
            field="filters",
            hint=f"write it as {example}",
        )
    listed = _FILTER_CODELISTS.get(name)
    if listed is None:
        return value
    from node.records.codelists import codelist, suggest_codes

    codes = codelist(listed)
    if value in codes:
        return value
    named = value.casefold()
    close = [
        c for c, e in codes.codes.items() if named in (e.label_en.casefold(), e.label_es.casefold())
    ]
    close += suggest_codes(value, codes)
    close = list(dict.fromkeys(close))[:3]
    raise InvalidArgumentError(
        f"filter {name}={value!r}: {value!r} is not a code of {listed}",
        field="filters",
        hint=(f"did you mean {', '.join(close)}? " if close else "")
        + f"the codes of {listed} are listed in docs/code-lists.md",
    )
