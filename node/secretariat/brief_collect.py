"""Collect the monthly brief's figures from the members and hand them to the renderer.

Why: the brief (:mod:`node.secretariat.brief`) renders a :class:`BriefData`; this module
decides what to ask the members for, pulls it like any other table (purpose
``regional_brief``), builds the regional figures under the publication rule, and fills the
data class. Nothing here draws or formats.

What is pulled for month ``M`` (twelve months ``M-11 … M``), in two steps so that no member
has to protect a large nationality × month table:
* ``BRIEF-NAT``: persons by nationality over the twelve months (arrival events) → the
  leading nationalities by regional total;
* ``BRIEF-BASIS``: persons by nationality basis and month → each reporting country's monthly
  total (its own margin) and the regional monthly total;
* ``BRIEF-UNKNOWN``: persons of presumed or unknown nationality by month → with the regional
  monthly total, the share of presumed or unknown nationality;
* ``M05`` for the month → stranded persons by nationality (through the helper when M05 is
  regional-only);
* then ``BRIEF-TREND``: persons by nationality and month, for the leading nationalities only
  → the regional trend.

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
from node.secretariat.rounds import RoundReport, run_round
from node.stats.matrices import ARRIVAL_EVENTS

if TYPE_CHECKING:
    from node.secretariat.office import Secretariat

NATIONALITIES, TREND, BASIS, STRANDED = "BRIEF-NAT", "BRIEF-TREND", "BRIEF-BASIS", "M05"
UNKNOWN = "BRIEF-UNKNOWN"
TABLES = (NATIONALITIES, TREND, BASIS, UNKNOWN, STRANDED)
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


def _span(month: str) -> str:
    months = months_ending(month, 12)
    return f"{months[0]}..{months[-1]}"


def brief_items(month: str) -> list[PullItem]:
    """The first step: nationalities over the year, and nationality basis by month."""
    arrivals = {"event_type": ARRIVAL_EVENTS}
    span = _span(month)
    return [
        PullItem(NATIONALITIES, span, dimensions=("nationality",), filters=arrivals),
        PullItem(BASIS, span, dimensions=("nationality_basis", "month"), filters=arrivals),
        PullItem(
            UNKNOWN,
            span,
            dimensions=("month",),
            filters={**arrivals, "nationality_basis": ("presumed", "unknown")},
        ),
    ]


def trend_item(month: str, nationalities: list[str]) -> PullItem:
    """The second step: the leading nationalities by month."""
    filters = {"event_type": ARRIVAL_EVENTS, "nationality": tuple(nationalities)}
    return PullItem(TREND, _span(month), dimensions=("nationality", "month"), filters=filters)


def leading_nationalities(office: Secretariat, month: str) -> list[str]:
    result = regional_result(
        office.runtime, NATIONALITIES, _span(month), office.rule, dimensions=("nationality",)
    )
    published = {
        c.key[0]: c.value for c in result.table.cells if not c.key[0].startswith("_") and c.value
    }
    return sorted(published, key=lambda n: (-(published[n] or 0), n))[:TOP_NATIONALITIES]


def collect_brief_tables(
    office: Secretariat, month: str, *, trigger: str = "manual"
) -> tuple[PullReport, RoundReport | None]:
    items = brief_items(month)
    shared = STRANDED in office.settings.regional_only
    if not shared:
        items.append(PullItem(STRANDED, month, matrix=STRANDED))

    def pull(batch: list[PullItem]) -> PullReport:
        return run_pull(
            office.runtime,
            batch,
            purpose=PURPOSE,
            trigger=trigger,
            policy=office.policy,
            sleep=office.sleep,
        )

    report = pull(items)
    leaders = leading_nationalities(office, month)
    if leaders:
        second = pull([trend_item(month, leaders)])
        for country, outcome in second.members.items():
            merged = report.members[country]
            merged.received += outcome.received
            merged.stale += outcome.stale
            merged.failed.update(outcome.failed)
            merged.settle()
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
        if c.key[1] == "_T" and not c.key[0].startswith("_") and c.value is not None
    }
    leaders = sorted(totals, key=lambda n: (-(totals[n] or 0), n))[:TOP_NATIONALITIES]
    return {n: [(m, _cell(result, (n, m))) for m in months] for n in leaders}


def _shares(
    basis: RegionalResult, unknown: RegionalResult, months: tuple[str, ...]
) -> list[tuple[str, float | None]]:
    out: list[tuple[str, float | None]] = []
    for m in months:
        total, part = _cell(basis, ("_T", m)), _cell(unknown, (m,))
        if not total or part is None:
            out.append((m, None))
        else:
            out.append((m, min(1.0, part / total)))
    return out


def _stranded(result: RegionalResult) -> dict[str, int | None]:
    cells = [c for c in result.table.cells if not c.key[0].startswith("_")]
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
    unknown = regional_result(runtime, UNKNOWN, span, office.rule, dimensions=("month",))
    stranded = regional_matrix(office, STRANDED, month)
    now = runtime.clock.now()
    directory = runtime.directory.current(now)
    end = period_end(month)
    members, coverage = [], []
    by_country: dict[str, list[tuple[str, int | None]]] = {}
    trend_asked = any(r.table_id == TREND for r in runtime.store.secretariat.results(period=span))
    for country in member_countries(runtime):
        rows = {
            r.table_id: r
            for r in runtime.store.secretariat.results(member=country)
            if r.period in (span, month) and r.table_id in TABLES
        }
        received = sorted(t for t, r in rows.items() if r.cells is not None)
        as_of = max((r.as_of for r in rows.values() if r.as_of is not None), default=None)
        wanted = len(TABLES) - (1 if STRANDED in office.settings.regional_only else 0)
        wanted -= 0 if trend_asked else 1  # no leading nationality (a month without records)
        status: Status
        if not received:
            status = "missing"
        elif len(received) < wanted or as_of is None or as_of < end:
            status = "partial"
        else:
            status = "complete"
        late = assess(country, month, as_of, now, office.freshness_rule).late
        members.append(MemberStatus(country, directory.member(country).name, as_of, status, late))
        # A public document: the failure's status code, in the brief's language, and only
        # while it matters (a pull completed on retry is complete); never the raw error text,
        # which names internal addresses and is in English.
        codes = sorted({_status_code(r.last_error) for r in rows.values() if r.last_error})
        errors = "" if status == "complete" or not codes else (
            ("sin respuesta: " if language == "es" else "no answer: ") + ", ".join(codes)
        )  # fmt: skip
        coverage.append(CoverageRow(country, tuple(received), as_of, errors[:300]))
        basis_row = rows.get(BASIS)
        if basis_row is not None and basis_row.cells is not None:
            own = {key[1]: v for key, v, *_ in basis_row.cells if key[0] == "_T"}
            by_country[country] = [(m, own.get(m)) for m in months]
    notes: list[str] = []  # the renderer states the transits note and the publication rule
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
        unknown_presumed_share=_shares(basis, unknown, months),
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


def _status_code(error: str) -> str:
    """``UNAVAILABLE`` of "UNAVAILABLE: MEX: failed to connect …" (or of "not tried: …", a
    table not asked of a member found unreachable), else ``error``."""
    head = error.removeprefix("not tried:").strip().split(":", 1)[0].strip()
    return head if head.isupper() and head.replace("_", "").isalpha() else "error"
