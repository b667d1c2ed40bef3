"""Statistics grants whose disclosure control protects each answer but not a set of answers.

Why: suppression below a threshold keeps every published table safe on its own, yet a
requester allowed overlapping periods or filters can subtract two answers and read one
person's cell (disclosure-control.md, "what suppression does not protect"). Cell-key noise
does not cancel in a difference, and differential privacy charges every answer to a budget, so
grants with either are not affected. `enlace policy new` drafts grants with cell-key noise, but
agreements written earlier, or by hand, may still rely on the threshold alone. The people who
sign an agreement and the holder's operator should be told, in words, before a requester finds
out; this module says which grants and why. It refuses nothing: the agreement is what both
parties signed, and only a new version changes it.

Invariants:

* Pure: an :class:`~policies.agreement.Agreement` in, :class:`Weakness` values out, in grant
  order; no I/O, no clock.
* Only ``stats`` grants are judged; a grant with no disclosure terms is left to validation.
* Each weakness names its grant by number (from 1, as ``enlace policy show`` does), its holder
  and requester, what can be learnt and the term that would close it.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.agreement import Agreement, Grant

DIFFERENCING = (
    "threshold suppression only: two overlapping answers (periods or filters that differ by "
    "one person) can be subtracted to read that person's cell"
)
DIFFERENCING_FIX = (
    "add cell-key perturbation (perturbation: {method: cell_key, max_noise: 2}) or "
    "differential privacy in a new version of the agreement"
)
NO_SECONDARY = (
    "no secondary suppression: a suppressed cell can be recomputed from the published margins"
)
NO_SECONDARY_FIX = "set secondary: true, or add perturbation, in a new version"
RENEWING_BUDGET = (
    "the privacy budget renews every quarter with no lifetime cap: over enough quarters a "
    "requester can average the noise of a cell away"
)
RENEWING_BUDGET_FIX = "add dp.budget_total, the most it may spend over every quarter"


@dataclass(frozen=True)
class Weakness:
    grant: int  # numbered from 1
    holder: str
    requester: str
    problem: str
    fix: str

    def line(self) -> str:
        return f"#{self.grant} ({self.holder} → {self.requester}): {self.problem} — {self.fix}"

    def to_dict(self) -> dict[str, object]:
        return {
            "grant": self.grant,
            "holder": self.holder,
            "requester": self.requester,
            "problem": self.problem,
            "fix": self.fix,
        }


def _of_grant(number: int, grant: Grant) -> list[Weakness]:
    disclosure = grant.disclosure
    if grant.service != "stats" or disclosure is None:
        return []
    found: list[tuple[str, str]] = []
    if disclosure.dp is not None:
        if disclosure.dp.budget_total is None:
            found.append((RENEWING_BUDGET, RENEWING_BUDGET_FIX))
    elif disclosure.perturbation is None:
        if not disclosure.secondary:
            found.append((NO_SECONDARY, NO_SECONDARY_FIX))
        found.append((DIFFERENCING, DIFFERENCING_FIX))
    return [Weakness(number, grant.holder, grant.requester, p, f) for p, f in found]


def disclosure_weaknesses(agreement: Agreement, *, holder: str | None = None) -> list[Weakness]:
    """The weaknesses of ``agreement``'s statistics grants; with ``holder``, only of the grants
    in which that party's data is released."""
    out: list[Weakness] = []
    for number, grant in enumerate(agreement.grants, start=1):
        if holder is None or grant.holder == holder:
            out.extend(_of_grant(number, grant))
    return out
