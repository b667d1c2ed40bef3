"""Collect the monthly brief's figures from the members and hand them to the renderer.

Why: the brief (:mod:`node.secretariat.brief`) renders a :class:`BriefData`; this module
decides what to ask the members for, pulls it like any other table (purpose
``regional_brief``), builds the regional figures under the publication rule, and fills the
data class. Nothing here draws or formats.

What is pulled for month ``M`` (twelve months ``M-11 … M``):
* ``BRIEF-TREND``: persons by nationality and month (arrival events) → the regional trend of
  the leading nationalities, and each reporting country's monthly total (its own margin);
* ``BRIEF-BASIS``: persons by nationality basis and month → the share of presumed or unknown
  nationality per month;
* ``M05`` for the month → stranded persons by nationality (through the helper when M05 is
  regional-only).

Invariants:
* Every regional figure comes from :mod:`node.secretariat.regional` (N_CONTRIB and the
  publication rule); a withheld figure reaches the brief as ``None``, never as 0.
* A member that did not answer is listed as ``missing``, and the notes say the brief is
  partial; the brief is still produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.secretariat.brief_data import (
    BriefData,
    CoverageRow,
    MemberStatus,
    Status,
    months_ending,
)
from node.secretariat.freshness import assess, period_end
from node.secretariat.outputs import RegionalResult, regional_matrix, regional_result
from node.secretariat.pull import PullItem, PullReport, member_countries, run_pull
from node.secretariat.regional import TRANSITS_NOTE
from node.secretariat.rounds import RoundReport, run_round
from node.stats.matrices import ARRIVAL_EVENTS

if TYPE_CHECKING:
    from node.secretariat.office import Secretariat

TREND, BASIS, STRANDED = "BRIEF-TREND", "BRIEF-BASIS", "M05"
TOP_NATIONALITIES = 8
TOP_STRANDED = 12
PURPOSE = "regional_brief"


@dataclass
class BriefOutcome:
    data: BriefData
    html: Path | None
    pdf: Path | None
    pull: PullReport | None
    round: RoundReport | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.data.period,
            "language": self.data.language,
            "html": str(self.html) if self.html else None,
            "pdf": str(self.pdf) if self.pdf else None,
            "pull": self.pull.to_dict() if self.pull else None,
            "round": self.round.to_dict() if self.round else None,
            "members": {m.country: m.status for m in self.data.members},
        }


def brief_items(month: str) -> list[PullItem]:
    months = months_ending(month, 12)
    span = f"{months[0]}..{months[-1]}"
    arrivals = {"event_type": ARRIVAL_EVENTS}
    return [
        PullItem(TREND, span, dimensions=("nationality", "month"), filters=arrivals),
        PullItem(BASIS, span, dimensions=("nationality_basis", "month"), filters=arrivals),
    ]


def collect_brief_tables(
    office: Secretariat, month: str, *, trigger: str = "manual"
) -> tuple[PullReport, RoundReport | None]:
    items = brief_items(month)
    shared = STRANDED in office.settings.regional_only
    if not shared:
        items.append(PullItem(STRANDED, month, matrix=STRANDED))
    report = run_pull(
        office.runtime,
        items,
        purpose=PURPOSE,
        trigger=trigger,
        policy=office.policy,
        sleep=office.sleep,
    )
    round_report = None
    if shared:
        round_report = run_round(
            office.runtime,
            STRANDED,
            month,
            purpose=PURPOSE,
            helper=office.settings.helper,
            policy=office.policy,
            rule=office.rule,
            sleep=office.sleep,
        )
    return report, round_report


def _cell(result: RegionalResult, key: tuple[str, ...]) -> int | None:
    found = result.table.cell(key)
    if found is None:  # nobody had anyone there (or nobody answered)
        return 0 if result.table.contributors else None
    return found.value


def _trend(
    result: RegionalResult, months: tuple[str, ...]
) -> dict[str, list[tuple[str, int | None]]]:
    totals = {
        c.key[0]: c.value
        for c in result.table.cells
        if c.key[1] == "_T" and c.key[0] != "_T" and c.value is not None
    }
    leaders = sorted(totals, key=lambda n: (-(totals[n] or 0), n))[:TOP_NATIONALITIES]
    return {n: [(m, _cell(result, (n, m))) for m in months] for n in leaders}


def _shares(result: RegionalResult, months: tuple[str, ...]) -> list[tuple[str, float | None]]:
    out: list[tuple[str, float | None]] = []
    for m in months:
        total = _cell(result, ("_T", m))
        parts = [_cell(result, (basis, m)) for basis in ("presumed", "unknown")]
        if not total or any(p is None for p in parts):
            out.append((m, None))
        else:
            out.append((m, min(1.0, sum(p or 0 for p in parts) / total)))
    return out


def _stranded(result: RegionalResult) -> dict[str, int | None]:
    cells = [c for c in result.table.cells if c.key[0] != "_T"]
    cells.sort(key=lambda c: (c.value is None, -(c.value or 0), c.key))
    return {c.key[0]: c.value for c in cells[:TOP_STRANDED]}


def build_brief_data(office: Secretariat, month: str, language: str) -> BriefData:
    """The brief of ``month`` from what the store holds now."""
    runtime = office.runtime
    months = months_ending(month, 12)
    span = f"{months[0]}..{months[-1]}"
    trend = regional_result(runtime, TREND, span, office.rule, dimensions=("nationality", "month"))
    basis = regional_result(
        runtime, BASIS, span, office.rule, dimensions=("nationality_basis", "month")
    )
    stranded = regional_matrix(office, STRANDED, month)
    now = runtime.clock.now()
    directory = runtime.directory.current(now)
    end = period_end(month)
    members, coverage = [], []
    by_country: dict[str, list[tuple[str, int | None]]] = {}
    for country in member_countries(runtime):
        rows = {
            r.table_id: r
            for r in runtime.store.secretariat.results(member=country)
            if r.period in (span, month) and r.table_id in (TREND, BASIS, STRANDED)
        }
        received = sorted(t for t, r in rows.items() if r.cells is not None)
        as_of = max((r.as_of for r in rows.values() if r.as_of is not None), default=None)
        wanted = 2 if STRANDED in office.settings.regional_only else 3
        status: Status
        if not received:
            status = "missing"
        elif len(received) < wanted or as_of is None or as_of < end:
            status = "partial"
        else:
            status = "complete"
        late = assess(country, month, as_of, now, office.freshness_rule).late
        members.append(MemberStatus(country, directory.member(country).name, as_of, status, late))
        errors = "; ".join(sorted({r.last_error for r in rows.values() if r.last_error}))
        coverage.append(CoverageRow(country, tuple(received), as_of, errors[:300]))
        trend_row = rows.get(TREND)
        if trend_row is not None and trend_row.cells is not None:
            own = {key[1]: v for key, v, *_ in trend_row.cells if key[0] == "_T"}
            by_country[country] = [(m, own.get(m)) for m in months]
    notes = [TRANSITS_NOTE[language], office.rule.describe()]
    missing = sorted(m.country for m in members if m.status == "missing")
    if missing:
        notes.append(
            ("Parcial: faltan datos de " if language == "es" else "Partial: no data from ")
            + ", ".join(missing)
        )
    return BriefData(
        period=month,
        language="en" if language == "en" else "es",
        generated_at=now,
        secretariat=runtime.config.name,
        members=members,
        trend=_trend(trend, months),
        by_country=by_country,
        stranded=_stranded(stranded),
        unknown_presumed_share=_shares(basis, months),
        coverage=coverage,
        notes=notes,
    )


def monthly_brief(
    office: Secretariat,
    month: str,
    *,
    trigger: str = "manual",
    language: str | None = None,
    out_dir: Path | None = None,
    pull: bool = True,
) -> BriefOutcome:
    """Pull the brief's tables (unless ``pull`` is False), build the data, render HTML+PDF."""
    from node.secretariat.brief import render_brief

    report, round_report = (
        collect_brief_tables(office, month, trigger=trigger)
        if pull
        else (
            None,
            None,
        )
    )
    data = build_brief_data(office, month, language or office.settings.language)
    target = (out_dir or office.settings.output_dir(office.runtime.home.root)) / "briefs"
    html, pdf = render_brief(data, target)
    return BriefOutcome(data, html, pdf, report, round_report)
