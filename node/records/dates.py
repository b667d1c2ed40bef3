"""Partial dates: dates of birth whose month or day may be unknown.

Why: migration records routinely carry a date of birth known only to the year ("1990-00-00" in
many national systems, ``90<<<<`` in an MRZ). Treating the unknown parts as January 1st would
create false matches and wrong ages, so the unknown parts are kept as ``None`` and every consumer
decides what "known enough" means.

Invariants:
* A :class:`PartialDate` always has a year; a day is known only when the month is known; the
  known parts always form a real calendar date (no 30 February).
* :meth:`PartialDate.iso` and :func:`parse_partial_date` round-trip; ``YYYY-00-00`` and
  ``YYYY-MM-00`` parse to the same value as ``YYYY`` and ``YYYY-MM``.
* Two-digit MRZ years are resolved only through :func:`resolve_century`, which takes the
  reference year as a parameter (time is injected): a birth year is never after the reference
  year; an expiry year lies in the 100-year window starting 50 years before it.
* Every failure raises :class:`InvalidDateError`, which is both a :class:`ValueError` and the
  node's :class:`~node.errors.InvalidArgumentError`, and carries a hint saying how to fix it.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from node.errors import InvalidArgumentError

DateKind = Literal["birth", "expiry"]

MIN_YEAR = 1800
MAX_YEAR = 2199

_ISO_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$", re.ASCII)
_MRZ_RE = re.compile(r"^[0-9<]{6}$")


class InvalidDateError(InvalidArgumentError, ValueError):
    """A date that cannot exist or cannot be read; ``hint`` says how to fix it."""

    def __init__(self, message: str, *, field: str = "date", hint: str = "") -> None:
        super().__init__(message, field=field, hint=hint)


@dataclass(frozen=True, order=False)
class PartialDate:
    """A date whose month and/or day may be unknown (``None``)."""

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if not MIN_YEAR <= self.year <= MAX_YEAR:
            raise InvalidDateError(
                f"year {self.year} is outside {MIN_YEAR}-{MAX_YEAR}",
                hint="check the year; use four digits",
            )
        if self.month is None:
            if self.day is not None:
                raise InvalidDateError(
                    f"day {self.day} given without a month in year {self.year}",
                    hint="give the month too, or leave the day unknown",
                )
            return
        if not 1 <= self.month <= 12:
            raise InvalidDateError(
                f"month {self.month} does not exist",
                hint="months are 01-12; write 00 if the month is unknown",
            )
        if self.day is None:
            return
        days = calendar.monthrange(self.year, self.month)[1]
        if not 1 <= self.day <= days:
            name = calendar.month_name[self.month]
            raise InvalidDateError(
                f"{self.year:04d}-{self.month:02d}-{self.day:02d} is not a calendar date: "
                f"{name} {self.year} has {days} days",
                hint=f"check the day, or write {self.year:04d}-{self.month:02d}-00 "
                "if the day is unknown",
            )

    @property
    def is_complete(self) -> bool:
        return self.month is not None and self.day is not None

    def iso(self) -> str:
        """``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``: only the known parts."""
        if self.month is None:
            return f"{self.year:04d}"
        if self.day is None:
            return f"{self.year:04d}-{self.month:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"

    def mrz(self) -> str:
        """The six-character MRZ form ``YYMMDD`` with ``<<`` for unknown parts."""
        month = "<<" if self.month is None else f"{self.month:02d}"
        day = "<<" if self.day is None else f"{self.day:02d}"
        return f"{self.year % 100:02d}{month}{day}"

    def bounds(self) -> tuple[date, date]:
        """The earliest and latest calendar dates this partial date can stand for."""
        if self.month is None:
            return date(self.year, 1, 1), date(self.year, 12, 31)
        if self.day is None:
            last = calendar.monthrange(self.year, self.month)[1]
            return date(self.year, self.month, 1), date(self.year, self.month, last)
        exact = date(self.year, self.month, self.day)
        return exact, exact

    def age_on(self, on: date) -> int | None:
        """Completed years on ``on``, or ``None`` when the unknown parts leave it ambiguous."""
        earliest, latest = self.bounds()
        if earliest > on:
            raise InvalidDateError(
                f"born {self.iso()}, after the reference date {on.isoformat()}",
                hint="check the date of birth and the reference date",
            )
        oldest = _completed_years(earliest, on)
        youngest = _completed_years(min(latest, on), on)
        return oldest if oldest == youngest else None

    def __str__(self) -> str:
        return self.iso()


def _completed_years(born: date, on: date) -> int:
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return years


def resolve_century(yy: int, reference_year: int, kind: DateKind) -> int:
    """Turn a two-digit MRZ year into a four-digit one.

    ``birth``: the latest year ending in ``yy`` that is not after ``reference_year`` (so
    nobody is born in the future; people aged 100 or more are read a century too young).
    ``expiry``: the year ending in ``yy`` in ``[reference_year - 50, reference_year + 49]``.
    """
    if not 0 <= yy <= 99:
        raise InvalidDateError(f"two-digit year {yy} is outside 00-99", hint="check the MRZ")
    if kind == "birth":
        return reference_year - ((reference_year - yy) % 100)
    if kind == "expiry":
        start = reference_year - 50
        return start + ((yy - start) % 100)
    raise InvalidDateError(f"unknown date kind {kind!r}", hint="use 'birth' or 'expiry'")


def parse_mrz_date(text: str, *, reference_year: int, kind: DateKind) -> PartialDate:
    """Read an MRZ ``YYMMDD`` date whose unknown month or day is ``<<``."""
    if not _MRZ_RE.match(text):
        raise InvalidDateError(
            f"MRZ date {text!r} must be six characters of digits and '<'",
            hint="an MRZ date is YYMMDD with '<<' for an unknown month or day",
        )
    yy, mm, dd = text[0:2], text[2:4], text[4:6]
    parts = (yy, mm, dd)
    if any("<" in p and p != "<<" for p in parts):
        raise InvalidDateError(
            f"MRZ date {text!r} mixes digits and '<' inside one part",
            hint="each of YY, MM, DD is either two digits or '<<'",
        )
    if yy == "<<":
        raise InvalidDateError(
            f"MRZ date {text!r} has no year",
            hint="a date without a known year cannot be used; record it as unknown",
        )
    year = resolve_century(int(yy), reference_year, kind)
    month = None if mm == "<<" else int(mm)
    day = None if dd == "<<" else int(dd)
    if month == 0:
        month = None
    if day == 0:
        day = None
    return PartialDate(year, month, day)


def parse_partial_date(
    text: str, *, reference_year: int | None = None, kind: DateKind = "birth"
) -> PartialDate:
    """Parse ``YYYY-MM-DD``, ``YYYY-MM``, ``YYYY`` (``00`` = unknown) or an MRZ ``YYMMDD``.

    The MRZ form needs ``reference_year`` (and ``kind``) to choose the century.
    """
    cleaned = text.strip()
    match = _ISO_RE.match(cleaned)
    if match:
        year = int(match.group(1))
        month = int(match.group(2)) if match.group(2) is not None else None
        day = int(match.group(3)) if match.group(3) is not None else None
        if month == 0:
            if day not in (None, 0):
                raise InvalidDateError(
                    f"{cleaned!r} gives a day but an unknown month",
                    hint=f"write {year:04d}-00-00 when the month is unknown",
                )
            month, day = None, None
        if day == 0:
            day = None
        return PartialDate(year, month, day)
    if _MRZ_RE.match(cleaned):
        if reference_year is None:
            raise InvalidDateError(
                f"{cleaned!r} looks like an MRZ date (YYMMDD) but no reference year was given",
                hint="pass reference_year= so the century can be resolved",
            )
        return parse_mrz_date(cleaned, reference_year=reference_year, kind=kind)
    raise InvalidDateError(
        f"{text!r} is not a date",
        hint="use YYYY-MM-DD, YYYY-MM or YYYY, with 00 for unknown parts",
    )
