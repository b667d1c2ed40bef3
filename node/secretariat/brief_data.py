"""The input of the monthly regional brief: what the Secretariat has, already protected.

The CRM members asked the Technical Secretariat (2016) for a *brief monthly regional report on
migration flows*. This module is the contract between the code that pulls and sums the members'
matrices (:mod:`node.secretariat.regional`) and the renderer (:mod:`node.secretariat.brief`):
plain, frozen dataclasses, no I/O, no computation beyond validation.

Invariants (checked on construction; a violation raises :class:`InvalidArgumentError` naming
the field):

* ``None`` means *not published* (suppressed by the publication rule or not received). It is
  never replaced by 0 anywhere downstream; the renderer shows it as "—" and charts leave a gap.
* Every value has already passed the regional publication rule; the brief adds no new figures
  except the period-over-period changes and coverage counts derived from published values.
* Months are ``YYYY-MM``; series are strictly increasing in month and never go past
  ``period``. Months absent from a series are treated as not published.
* Counts are non-negative integers; shares lie in ``[0, 1]``.
* ``generated_at`` and every ``as_of`` are timezone-aware.
* Country and nationality codes are upper-case ISO 3166 alpha-3 (or ICAO ``XXA``…``XXX``).
* Mappings keep their insertion order; the renderer sorts for display, not this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias

from node.errors import InvalidArgumentError

Language: TypeAlias = Literal["es", "en"]
Status: TypeAlias = Literal["complete", "partial", "missing"]
MonthValue: TypeAlias = tuple[str, int | None]
MonthShare: TypeAlias = tuple[str, float | None]

LANGUAGES: tuple[Language, ...] = ("es", "en")
STATUSES: tuple[Status, ...] = ("complete", "partial", "missing")

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$", re.ASCII)
_CODE = re.compile(r"^[A-Z]{3}$")


def parse_month(value: str, *, field_name: str = "month") -> tuple[int, int]:
    """``"2026-10"`` → ``(2026, 10)``; anything else is rejected with the field named."""
    m = _MONTH.match(value) if isinstance(value, str) else None
    if m is None:
        raise InvalidArgumentError(
            f"{value!r} is not a month", field=field_name, hint="write it as YYYY-MM"
        )
    return int(m.group(1)), int(m.group(2))


def shift_month(month: str, delta: int) -> str:
    """The month ``delta`` months after ``month`` (negative goes back)."""
    year, mon = parse_month(month)
    index = year * 12 + (mon - 1) + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_ending(period: str, count: int = 12) -> tuple[str, ...]:
    """The ``count`` months that end with ``period``, oldest first."""
    return tuple(shift_month(period, -k) for k in range(count - 1, -1, -1))


def _aware(value: datetime | None, field_name: str) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise InvalidArgumentError(
            "naive datetime", field=field_name, hint="pass a timezone-aware (UTC) datetime"
        )


def _code(value: str, field_name: str) -> None:
    if not isinstance(value, str) or not _CODE.match(value):
        raise InvalidArgumentError(
            f"{value!r} is not an alpha-3 code", field=field_name, hint="use e.g. 'HTI', 'XXX'"
        )


def _count(value: int | None, field_name: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(
            f"{value!r} is not a non-negative integer",
            field=field_name,
            hint="use None for a cell that is not published, never a negative or 0 stand-in",
        )


def _series(
    raw: Sequence[tuple[str, int | None]], period: str, field_name: str
) -> tuple[MonthValue, ...]:
    out: list[MonthValue] = []
    previous = ""
    for i, (month, value) in enumerate(raw):
        where = f"{field_name}[{i}]"
        parse_month(month, field_name=where)
        if month <= previous:
            raise InvalidArgumentError(
                f"month {month} after {previous}", field=where, hint="strictly increasing months"
            )
        if month > period:
            raise InvalidArgumentError(f"month {month} is after the period {period}", field=where)
        _count(value, where)
        out.append((month, value))
        previous = month
    return tuple(out)


@dataclass(frozen=True)
class MemberStatus:
    """How much of the period one member has delivered, and whether it is late."""

    country: str
    name: str
    as_of: datetime | None
    status: Status
    late: bool = False

    def __post_init__(self) -> None:
        _code(self.country, "members.country")
        if not self.name.strip():
            raise InvalidArgumentError("empty", field=f"members[{self.country}].name")
        if self.status not in STATUSES:
            raise InvalidArgumentError(
                f"{self.status!r}",
                field=f"members[{self.country}].status",
                hint="one of complete, partial, missing",
            )
        _aware(self.as_of, f"members[{self.country}].as_of")


@dataclass(frozen=True)
class CoverageRow:
    """What the Secretariat received from one member for the period."""

    country: str
    matrices_received: tuple[str, ...] = ()
    as_of: datetime | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        _code(self.country, "coverage.country")
        object.__setattr__(self, "matrices_received", tuple(self.matrices_received))
        _aware(self.as_of, f"coverage[{self.country}].as_of")


@dataclass(frozen=True)
class BriefData:
    """Everything the monthly brief shows, for one period and one language.

    ``title`` empty means the standard title of the language. ``trend`` and ``by_country``
    hold the regional figures (persons or transits as the matrices define them) for the
    twelve months ending with ``period``; ``stranded`` holds the period's figure per
    nationality; ``unknown_presumed_share`` the share of records whose nationality is
    unknown or only presumed, per month.
    """

    period: str
    language: Language
    generated_at: datetime
    secretariat: str
    members: Sequence[MemberStatus]
    trend: Mapping[str, Sequence[tuple[str, int | None]]]
    by_country: Mapping[str, Sequence[tuple[str, int | None]]]
    stranded: Mapping[str, int | None]
    unknown_presumed_share: Sequence[tuple[str, float | None]]
    coverage: Sequence[CoverageRow] = ()
    notes: Sequence[str] = ()
    title: str = ""

    def __post_init__(self) -> None:
        parse_month(self.period, field_name="period")
        if self.language not in LANGUAGES:
            raise InvalidArgumentError(
                f"{self.language!r}", field="language", hint="'es' (default) or 'en'"
            )
        _aware(self.generated_at, "generated_at")
        if not self.secretariat.strip():
            raise InvalidArgumentError("empty", field="secretariat")
        members = tuple(self.members)
        seen = [m.country for m in members]
        if len(set(seen)) != len(seen):
            raise InvalidArgumentError("a member is listed twice", field="members")
        trend = {}
        for code, series in self.trend.items():
            _code(code, "trend")
            trend[code] = _series(series, self.period, f"trend[{code}]")
        by_country = {}
        for code, series in self.by_country.items():
            _code(code, "by_country")
            by_country[code] = _series(series, self.period, f"by_country[{code}]")
        stranded = {}
        for code, value in self.stranded.items():
            _code(code, "stranded")
            _count(value, f"stranded[{code}]")
            stranded[code] = value
        shares: list[MonthShare] = []
        previous = ""
        for i, (month, share) in enumerate(self.unknown_presumed_share):
            where = f"unknown_presumed_share[{i}]"
            parse_month(month, field_name=where)
            if month <= previous or month > self.period:
                raise InvalidArgumentError(
                    f"month {month} out of order or after {self.period}", field=where
                )
            if share is not None and (
                isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1
            ):
                raise InvalidArgumentError(
                    f"{share!r} is not a share", field=where, hint="a fraction in [0, 1] or None"
                )
            shares.append((month, None if share is None else float(share)))
            previous = month
        coverage = tuple(self.coverage)
        covered = [row.country for row in coverage]
        if len(set(covered)) != len(covered):
            raise InvalidArgumentError("a member has two coverage rows", field="coverage")
        unknown = sorted(set(covered) - set(seen))
        if unknown:
            raise InvalidArgumentError(
                f"coverage rows for non-members {', '.join(unknown)}",
                field="coverage",
                hint="list every reporting country in members",
            )
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "trend", trend)
        object.__setattr__(self, "by_country", by_country)
        object.__setattr__(self, "stranded", stranded)
        object.__setattr__(self, "unknown_presumed_share", tuple(shares))
        object.__setattr__(self, "coverage", coverage)
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def months(self) -> tuple[str, ...]:
        """The twelve months the charts show, oldest first, ending with ``period``."""
        return months_ending(self.period, 12)

    def member(self, country: str) -> MemberStatus | None:
        """The member entry for ``country``, if it is listed."""
        return next((m for m in self.members if m.country == country), None)

    def coverage_for(self, country: str) -> CoverageRow | None:
        """The coverage row of ``country``, if the Secretariat recorded one."""
        return next((r for r in self.coverage if r.country == country), None)
