"""What the monthly brief says, as text and tables, before it becomes HTML or PDF.

The HTML template and the PDF builder read the same :class:`BriefView`, so both formats show the
same figures, in the same order, with the same wording; only the layout differs. Building the
view is pure: :class:`~node.secretariat.brief_data.BriefData` in, strings out.

Invariants:
* Every figure in a table is formatted by :mod:`node.secretariat.i18n`; an unpublished value
  becomes "—" and never 0. A change is shown only when both months are published.
* The coverage table lists every member, in the order of ``BriefData.members``, whether or
  not the Secretariat recorded a coverage row for it.
* The fixed notes (transits, not persons; confidential cells; partial pulls) always come
  first, before the notes of the period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from node.secretariat.brief_data import BriefData, Language, MemberStatus, shift_month
from node.secretariat.charts import MAX_LINES, Chart, publishes, ranked, reporting_name
from node.secretariat.i18n import (
    capitalise,
    country_name,
    format_change,
    format_datetime,
    format_int,
    format_share,
    format_short_date,
    month_label,
    month_tick,
    t,
)

FIXED_NOTES = ("note_transits", "note_confidential", "note_partial")
TOP_NATIONALITIES = 3


@dataclass(frozen=True)
class Table:
    """Header, rows of formatted cells, which columns are numeric, and a class per row."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    row_classes: tuple[str, ...] = ()

    def row_class(self, index: int) -> str:
        return self.row_classes[index] if index < len(self.row_classes) else ""


@dataclass(frozen=True)
class Section:
    """One numbered section: a chart (absent when nothing is published) and its table."""

    key: str
    title: str
    caption: str
    chart: Chart | None
    table: Table | None
    empty: str = ""


@dataclass(frozen=True)
class BriefView:
    language: Language
    title: str
    subtitle: str
    secretariat: str
    generated: str
    period_label: str
    summary: tuple[str, ...]
    highlights: tuple[str, ...]
    sections: tuple[Section, ...]
    coverage: Table
    notes: tuple[str, ...]
    annex: tuple[tuple[str, Table], ...] = field(default_factory=tuple)
    labels: Mapping[str, str] = field(default_factory=dict)


def _value(series: Sequence[tuple[str, int | None]], month: str) -> int | None:
    return dict(series).get(month)


def _comparison(
    lang: Language,
    series: Mapping[str, Sequence[tuple[str, int | None]]],
    codes: Sequence[str],
    names: Mapping[str, str],
    first_column: str,
    period: str,
) -> Table:
    previous = shift_month(period, -1)
    rows = []
    for code in codes:
        now, before = _value(series[code], period), _value(series[code], previous)
        rows.append(
            (
                names[code],
                format_int(lang, before),
                format_int(lang, now),
                format_change(lang, now, before),
            )
        )
    header = (
        first_column,
        month_label(lang, previous, short=True),
        month_label(lang, period, short=True),
        t(lang, "col_change"),
    )
    return Table(header, tuple(rows), (False, True, True, True))


def _monthly(
    lang: Language,
    series: Mapping[str, Sequence[tuple[str, int | None]]],
    codes: Sequence[str],
    names: Mapping[str, str],
    first_column: str,
    months: Sequence[str],
) -> Table:
    header = (first_column, *(month_tick(lang, m, first=i == 0) for i, m in enumerate(months)))
    rows = tuple(
        (names[c], *(format_int(lang, _value(series[c], m)) for m in months)) for c in codes
    )
    return Table(header, rows, (False, *(True for _ in months)))


def matrices_label(codes: Sequence[str]) -> str:
    """``M01, M02, M03, M05`` → ``M01–M03, M05``: runs of consecutive numbers are joined."""
    parsed: list[tuple[str, int, str]] = []
    for code in codes:
        stem = code.rstrip("0123456789")
        digits = code[len(stem) :]
        parsed.append((stem, int(digits) if digits else -1, code))
    parts: list[str] = []
    i = 0
    while i < len(parsed):
        j = i
        while (
            j + 1 < len(parsed)
            and parsed[i][1] >= 0
            and parsed[j + 1][0] == parsed[i][0]
            and parsed[j + 1][1] == parsed[j][1] + 1
        ):
            j += 1
        parts.append(parsed[i][2] if j - i < 2 else f"{parsed[i][2]}–{parsed[j][2]}")
        if j - i == 1:
            parts.append(parsed[j][2])
        i = j + 1
    return ", ".join(parts)


def _status_text(lang: Language, member: MemberStatus) -> str:
    text = t(lang, f"status_{member.status}")
    return f"{text}, {t(lang, 'late')}" if member.late else text


def _coverage(data: BriefData) -> Table:
    lang = data.language
    rows, classes = [], []
    for member in data.members:
        row = data.coverage_for(member.country)
        received = matrices_label(row.matrices_received) if row else ""
        as_of = row.as_of if row and row.as_of else member.as_of
        rows.append(
            (
                reporting_name(data, member.country),
                _status_text(lang, member),
                received or t(lang, "none_received"),
                format_short_date(lang, as_of),
                row.notes if row else "",
            )
        )
        classes.append(f"status-{member.status}" + (" late" if member.late else ""))
    header = tuple(
        t(lang, k) for k in ("col_country", "col_status", "col_matrices", "col_as_of", "col_notes")
    )
    return Table(header, tuple(rows), (False,) * 5, tuple(classes))


def _summary(data: BriefData, trend_codes: Sequence[str]) -> tuple[list[str], list[str]]:
    lang, period = data.language, data.period
    members = data.members
    summary = [
        t(
            lang,
            "summary_coverage",
            total=len(members),
            complete=sum(m.status == "complete" for m in members),
            partial=sum(m.status == "partial" for m in members),
            missing=sum(m.status == "missing" for m in members),
            late=sum(m.late for m in members),
        )
    ]
    previous = shift_month(period, -1)
    published = [
        (code, value)
        for code in trend_codes
        if (value := _value(data.trend[code], period)) is not None
    ]
    published.sort(key=lambda cv: (-cv[1], cv[0]))
    highlights = []
    for code, value in published[:TOP_NATIONALITIES]:
        before = _value(data.trend[code], previous)
        name, figure = country_name(lang, code), format_int(lang, value)
        if before is None or before == 0:
            highlights.append(t(lang, "highlight_plain", name=name, value=figure))
            continue
        highlights.append(
            t(
                lang,
                "highlight",
                name=name,
                value=figure,
                change=format_change(lang, value, before),
                previous=month_label(lang, previous),
            )
        )
    label = month_label(lang, period)
    if highlights:
        summary.append(t(lang, "summary_top", period=label))
    else:
        summary.append(t(lang, "summary_none", period=label))
    share = dict(data.unknown_presumed_share).get(period)
    if share is not None:
        summary.append(t(lang, "summary_share", period=label, share=format_share(lang, share)))
    return summary, highlights


def build_view(data: BriefData, charts: Mapping[str, Chart]) -> BriefView:
    """Everything the brief prints, in the brief's language."""
    lang, period, months = data.language, data.period, data.months
    label = month_label(lang, period)
    nat_codes = ranked(data.trend, months)
    nat_names = {c: country_name(lang, c) for c in nat_codes}
    country_codes = ranked(data.by_country, months)
    country_names = {code: reporting_name(data, code) for code in country_codes}

    no_data = t(lang, "no_data")
    sections = [
        Section(
            "trend",
            t(lang, "sec_trend"),
            t(
                lang,
                "cap_trend",
                shown=min(sum(publishes(data.trend[c], months) for c in nat_codes), MAX_LINES),
            )
            + " "
            + t(lang, "cap_gaps"),
            charts.get("trend"),
            _comparison(lang, data.trend, nat_codes, nat_names, t(lang, "col_nationality"), period)
            if nat_codes
            else None,
            no_data,
        ),
        Section(
            "country",
            t(lang, "sec_country"),
            t(lang, "cap_country") + " " + t(lang, "cap_gaps"),
            charts.get("country"),
            _comparison(
                lang, data.by_country, country_codes, country_names, t(lang, "col_country"), period
            )
            if country_codes
            else None,
            no_data,
        ),
    ]
    stranded_codes = sorted(
        data.stranded, key=lambda c: (data.stranded[c] is None, -(data.stranded[c] or 0), c)
    )
    sections.append(
        Section(
            "stranded",
            t(lang, "sec_stranded"),
            t(lang, "cap_stranded", period=label) + " " + t(lang, "cap_bars"),
            charts.get("stranded"),
            Table(
                (t(lang, "col_nationality"), t(lang, "col_persons")),
                tuple(
                    (country_name(lang, c), format_int(lang, data.stranded[c]))
                    for c in stranded_codes
                ),
                (False, True),
            )
            if stranded_codes
            else None,
            no_data,
        )
    )
    share = dict(data.unknown_presumed_share)
    sections.append(
        Section(
            "unknown",
            t(lang, "sec_unknown"),
            t(lang, "cap_unknown") + " " + t(lang, "cap_gaps"),
            charts.get("unknown"),
            Table(
                (
                    t(lang, "col_month"),
                    *(month_tick(lang, m, i == 0) for i, m in enumerate(months)),
                ),
                ((t(lang, "col_share"), *(format_share(lang, share.get(m)) for m in months)),),
                (False, *(True for _ in months)),
            )
            if share
            else None,
            no_data,
        )
    )
    annex = []
    if nat_codes:
        annex.append(
            (
                t(lang, "sec_trend"),
                _monthly(
                    lang, data.trend, nat_codes, nat_names, t(lang, "col_nationality"), months
                ),
            )
        )
    if country_codes:
        annex.append(
            (
                t(lang, "sec_country"),
                _monthly(
                    lang,
                    data.by_country,
                    country_codes,
                    country_names,
                    t(lang, "col_country"),
                    months,
                ),
            )
        )
    summary, highlights = _summary(data, nat_codes)
    notes = tuple(t(lang, k) for k in FIXED_NOTES) + tuple(data.notes)
    return BriefView(
        language=lang,
        title=data.title or t(lang, "title"),
        subtitle=t(lang, "subtitle", period=label),  # "— septiembre de 2024": a month, lower case
        secretariat=data.secretariat,
        generated=t(lang, "generated", date=format_datetime(lang, data.generated_at)),
        period_label=capitalise(label),
        summary=tuple(summary),
        highlights=tuple(highlights),
        sections=tuple(sections),
        coverage=_coverage(data),
        notes=notes,
        annex=tuple(annex),
        labels={
            k: t(lang, k) for k in ("summary", "sec_coverage", "sec_notes", "sec_annex", "page")
        },
    )
