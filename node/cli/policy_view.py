"""How ``enlace policy show`` lays out an agreement's grants: the table, and every term of
each grant that the table has no room for (dimensions, disclosure profile, follow-ups).

Why apart from :mod:`node.cli.policy_cmd`: the commands parse, sign, install and fetch; this is
only what the people who sign an agreement read, and tests render it without a node home.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from node.cli.common import FittedTable, text_column
from policies.agreement import Agreement, disclosure_fields
from policies.diff import describe_disclosure
from policies.weaknesses import Weakness


def grant_rows(agreement: Agreement) -> list[dict[str, Any]]:
    return [
        {
            "grant": i + 1,
            "holder": g.holder,
            "requester": g.requester,
            "service": g.service,
            "datasets": list(g.datasets),
            "purposes": list(g.purposes),
            "dimensions": list(g.dimensions),
            "attributes": list(g.attributes),
            "per_day": g.quotas.per_day,
            "per_quarter": g.quotas.per_quarter,
            "min_cell": g.disclosure.min_cell if g.disclosure else None,
            "disclosure": disclosure_fields(g.disclosure) if g.disclosure else None,
            "followup_requires_approval": g.followup_requires_approval,
        }
        for i, g in enumerate(agreement.grants)
    ]


def _quota(count: int | None, per: str) -> str:
    return f"{count}/{per}" if count is not None else f"unlimited/{per}"


def grants_table(grants: list[dict[str, Any]]) -> FittedTable:
    """The grants of an agreement, one a row (``grant_rows``). On a narrow terminal the
    quotas are listed below the table, by grant number, rather than break words."""
    table = FittedTable(key="#")
    for column in ("#", "holder → requester", "service", "datasets", "purposes"):
        text_column(table, column)
    text_column(table, "quotas", drop=1)
    for g in grants:
        table.add_row(
            str(g["grant"]),
            f"{g['holder']} → {g['requester']}",
            g["service"],
            ", ".join(g["datasets"]),
            ", ".join(g["purposes"]),
            f"{_quota(g['per_day'], 'day')}, {_quota(g['per_quarter'], 'quarter')}",
        )
    return table


def grant_terms(agreement: Agreement) -> list[Text]:
    """What each grant allows beyond the table's columns, a line per term: the statistics'
    dimensions and disclosure profile (threshold, perturbation, differential privacy and its
    budgets), the follow-up attributes and whether an operator approves each one."""
    lines: list[Text] = []
    for number, grant in enumerate(agreement.grants, start=1):
        terms: list[str] = []
        if grant.dimensions:
            terms.append(f"dimensions {', '.join(grant.dimensions)}")
        if grant.disclosure is not None:
            terms.append("; ".join(describe_disclosure(grant.disclosure)))
        if grant.attributes:
            terms.append(f"attributes released {', '.join(grant.attributes)}")
        if grant.service == "followup":
            terms.append(
                "each follow-up approved by an operator"
                if grant.followup_requires_approval
                else "follow-ups answered without an operator's approval"
            )
        lines.extend(Text(f"  #{number}: {term}") for term in terms)
    return [Text("terms:"), *lines] if lines else []


def weakness_lines(weaknesses: list[Weakness]) -> list[Text]:
    """What a requester could learn beyond each answer (:mod:`policies.weaknesses`), in the
    warning colour, after the terms."""
    if not weaknesses:
        return []
    return [Text("warnings:", style="yellow")] + [
        Text(f"  {w.line()}", style="yellow") for w in weaknesses
    ]
