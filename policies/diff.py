"""What changes between two versions of an agreement, in sentences a legal officer can read.

Why: directorates amend agreements by signing a new version, and the person who signs is
rarely the person who edited the YAML. ``enlace policy diff`` shows them, in plain English,
every change in what each country may ask the other, for how long, how much, and under
which disclosure control, before they sign. This module also holds the small vocabulary
(country and service names) used by every human-facing message of :mod:`policies`.

Invariants:
* Pure and deterministic: the same two agreements always give the same sentences, in the
  order: identity, validity, then grants by direction and service in document order.
* Complete for what is enforced: any change of the canonical body that changes a decision,
  a quota or disclosure control yields at least one sentence; identical bodies yield ``[]``.
* Sentences never depend on the order of set-like lists in the YAML.
* Countries are named from :data:`COUNTRY_NAMES`; an unknown code is shown as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from policies.agreement import Agreement, Disclosure, Grant
from policies.canonical import canonical_json, decimal_text
from policies.quota import QUOTA_UNITS

#: ISO 3166-1 alpha-3 codes of the eleven CRM members, and ``CRM`` for the Technical
#: Secretariat's node (the Conference's own acronym, used as its code in the federation).
COUNTRY_NAMES: Mapping[str, str] = {
    "BLZ": "Belize",
    "CAN": "Canada",
    "CRI": "Costa Rica",
    "SLV": "El Salvador",
    "GTM": "Guatemala",
    "HND": "Honduras",
    "MEX": "Mexico",
    "NIC": "Nicaragua",
    "PAN": "Panama",
    "DOM": "the Dominican Republic",
    "USA": "the United States",
    "CRM": "the CRM Technical Secretariat",
}

SERVICE_NAMES: Mapping[str, str] = {
    "stats": "statistics",
    "match": "document and identity matching",
    "biometric": "biometric matching",
    "followup": "follow-up details after a hit",
    "directory": "consular directory data",
}

_MECHANISMS = {"discrete_laplace": "discrete Laplace", "discrete_gaussian": "discrete Gaussian"}
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def country_name(code: str) -> str:
    """``PAN`` → ``Panama``; unknown codes are returned unchanged."""
    return COUNTRY_NAMES.get(code, code)


def who(code: str) -> str:
    """``PAN`` → ``Panama (PAN)``, for messages that must be both readable and exact."""
    name = COUNTRY_NAMES.get(code)
    return f"{name} ({code})" if name else code


def service_name(service: str) -> str:
    return SERVICE_NAMES.get(service, service)


def human_date(value: datetime) -> str:
    """``31 December 2027``, with the UTC time only when it is not midnight."""
    text = f"{value.day} {_MONTHS[value.month - 1]} {value.year}"
    if (value.hour, value.minute, value.second, value.microsecond) != (0, 0, 0, 0):
        text += f" at {value.strftime('%H:%M:%S')} UTC"
    return text


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _names(values: Iterable[str]) -> str:
    items = [f"'{v}'" for v in sorted(values)]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _noun(word: str, values: Sequence[str] | set[str] | frozenset[str]) -> str:
    return word if len(values) == 1 else f"{word}s"


def _pairs(grants: Sequence[Grant]) -> set[tuple[str, str]]:
    return {(d, p) for g in grants for d in g.datasets for p in g.purposes}


def _grouped(pairs: set[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
    """Group (dataset, purpose) pairs into (datasets, purposes) blocks with equal purposes."""
    by_dataset: dict[str, frozenset[str]] = {}
    for dataset in sorted({d for d, _ in pairs}):
        by_dataset[dataset] = frozenset(p for d, p in pairs if d == dataset)
    blocks: dict[frozenset[str], list[str]] = {}
    for dataset, purposes in by_dataset.items():
        blocks.setdefault(purposes, []).append(dataset)
    return [(datasets, sorted(purposes)) for purposes, datasets in blocks.items()]


def _scope_sentences(
    holder: str, requester: str, service: str, old: Sequence[Grant], new: Sequence[Grant]
) -> list[str]:
    req, hol, svc = country_name(requester), country_name(holder), service_name(service)
    if old and not new:
        return [f"{_cap(req)} may no longer ask {hol} for {svc} at all."]
    out: list[str] = []
    old_pairs, new_pairs = _pairs(old), _pairs(new)
    if not old and not new_pairs:
        out.append(
            f"{_cap(req)} is given a grant for {svc} from {hol} that lists no datasets or "
            "no purposes, so it allows nothing."
        )
    verb = "may now also ask" if old else "may now ask"
    for datasets, purposes in _grouped(new_pairs - old_pairs):
        out.append(
            f"{_cap(req)} {verb} {hol} for {svc} on {_noun('dataset', datasets)} "
            f"{_names(datasets)} for {_noun('purpose', purposes)} {_names(purposes)}."
        )
    for datasets, purposes in _grouped(old_pairs - new_pairs):
        out.append(
            f"{_cap(req)} may no longer ask {hol} for {svc} on {_noun('dataset', datasets)} "
            f"{_names(datasets)} for {_noun('purpose', purposes)} {_names(purposes)}."
        )
    also = " also" if old else ""
    for attr, phrase in (("dimensions", "be broken down by"), ("attributes", "include")):
        before = {v for g in old for v in getattr(g, attr)}
        after = {v for g in new for v in getattr(g, attr)}
        subject = (
            f"Statistics from {hol} to {req}"
            if attr == "dimensions"
            else f"Follow-up answers from {hol} to {req}"
        )
        if after - before:
            out.append(f"{subject} may now{also} {phrase} {_names(after - before)}.")
        if before - after:
            out.append(f"{subject} may no longer {phrase} {_names(before - after)}.")
    if old and new and len(old) != len(new):
        out.append(
            f"The number of separate grants for {svc} from {hol} to {req} changes from "
            f"{len(old)} to {len(new)}."
        )
    return out


def _quota_sentences(old: Grant | None, new: Grant) -> list[str]:
    out: list[str] = []
    unit = QUOTA_UNITS.get(new.service, "units")
    subject_tail = (
        f"for {service_name(new.service)} by {country_name(new.requester)} "
        f"against {country_name(new.holder)}"
    )
    for label, attr in (("daily", "per_day"), ("quarterly", "per_quarter")):
        after: int | None = getattr(new.quotas, attr)
        subject = f"The {label} quota {subject_tail}"
        if old is None:
            if after is None:
                out.append(f"There is no {label} quota {subject_tail}.")
            else:
                out.append(f"{subject} is {after:,} {unit}.")
            continue
        before: int | None = getattr(old.quotas, attr)
        if before == after:
            continue
        if before is None:
            out.append(f"{subject} is now limited to {after:,} {unit} (it was unlimited).")
        elif after is None:
            out.append(f"{subject} is lifted (it was {before:,} {unit}; now unlimited).")
        else:
            trend = "rises" if after > before else "falls"
            out.append(f"{subject} {trend} from {before:,} to {after:,} {unit}.")
    return out


def describe_disclosure(d: Disclosure) -> list[str]:
    parts = [f"disclosure profile '{d.profile}'", f"smallest published count {d.min_cell}"]
    parts.append("secondary suppression" if d.secondary else "no secondary suppression")
    if d.perturbation is not None:
        parts.append(f"cell-key perturbation of at most ±{d.perturbation.max_noise}")
    if d.dp is not None:
        parts.append(_describe_dp(d))
    return parts


def _describe_dp(d: Disclosure) -> str:
    assert d.dp is not None
    total = "" if d.dp.budget_total is None else f", {_total(d.dp.budget_total)}"
    return (
        f"differential privacy ({_MECHANISMS.get(d.dp.mechanism, d.dp.mechanism)}, epsilon "
        f"{decimal_text(d.dp.epsilon_per_query)} per query, budget "
        f"{decimal_text(d.dp.budget_per_period)} per {d.dp.period}"
        f"{total})"
    )


def _total(budget_total: Decimal) -> str:
    return f"at most {decimal_text(budget_total)} in total over every period, never reset"


def _ref(value: str | None) -> str:
    return f"'{value}'" if value else "none"


def _disclosure_sentences(old: Grant | None, new: Grant) -> list[str]:
    d_new = new.disclosure
    if d_new is None:
        return []
    subject = f"statistics from {country_name(new.holder)} to {country_name(new.requester)}"
    d_old = old.disclosure if old is not None else None
    if d_old is None:
        return [f"{_cap(subject)} use {', '.join(describe_disclosure(d_new))}."]
    out: list[str] = []
    if d_old.profile != d_new.profile:
        out.append(
            f"The disclosure profile for {subject} changes from '{d_old.profile}' "
            f"to '{d_new.profile}'."
        )
    if d_old.min_cell != d_new.min_cell:
        trend = "rises" if d_new.min_cell > d_old.min_cell else "falls"
        out.append(
            f"For {subject}, the smallest published count {trend} from {d_old.min_cell} to "
            f"{d_new.min_cell} (smaller counts are suppressed)."
        )
    if d_old.secondary != d_new.secondary:
        state = "now" if d_new.secondary else "no longer"
        out.append(f"Secondary suppression is {state} applied to {subject}.")
    p_old, p_new = d_old.perturbation, d_new.perturbation
    if p_old != p_new:
        if p_new is None:
            out.append(f"Cell-key perturbation is no longer applied to {subject}.")
        elif p_old is None or p_old.max_noise != p_new.max_noise:
            was = f" (it was ±{p_old.max_noise})" if p_old is not None else ""
            out.append(
                f"Cell-key perturbation of at most ±{p_new.max_noise} is now applied to "
                f"{subject}{was}."
            )
        if p_old is not None and p_new is not None and p_old.secret_ref != p_new.secret_ref:
            out.append(
                f"The cell-key secret named for {subject} changes from "
                f"{_ref(p_old.secret_ref)} to {_ref(p_new.secret_ref)}; the node perturbs with "
                "one secret for every agreement, so the released values do not change."
            )
    if d_old.dp != d_new.dp:
        if d_new.dp is None:
            out.append(f"Differential privacy is no longer applied to {subject}.")
        elif d_old.dp is not None and replace(d_old.dp, budget_total=None) == replace(
            d_new.dp, budget_total=None
        ):
            out.append(_total_sentence(subject, d_old.dp.budget_total, d_new.dp.budget_total))
        else:
            was = f" (it was {_describe_dp(d_old)})" if d_old.dp is not None else ""
            out.append(f"{_cap(subject)} now use {_describe_dp(d_new)}{was}.")
    return out


def _total_sentence(subject: str, before: Decimal | None, after: Decimal | None) -> str:
    """Only the total privacy budget changed (so at most one of the two is ``None``)."""
    if before is None or after is None:
        if before is not None:
            return (
                f"The total privacy budget for {subject} is no longer capped "
                f"(it was {decimal_text(before)})."
            )
        assert after is not None
        return (
            f"The privacy budget for {subject} now also has a total: at most "
            f"{decimal_text(after)} over every period, never reset (it was renewed every "
            "period without a total)."
        )
    trend = "rises" if after > before else "falls"
    return (
        f"The total privacy budget for {subject} {trend} from {decimal_text(before)} to "
        f"{decimal_text(after)} (over every period, never reset)."
    )


def _approval_sentences(old: Grant | None, new: Grant) -> list[str]:
    if new.service != "followup":
        return []
    if old is not None and old.followup_requires_approval == new.followup_requires_approval:
        return []
    req, hol = country_name(new.requester), country_name(new.holder)
    if new.followup_requires_approval:
        state = "now need" if old is not None else "need"
    else:
        state = "no longer need" if old is not None else "do not need"
    return [f"Follow-up requests by {req} to {hol} {state} a human approval at {hol}."]


def diff_agreements(old: Agreement, new: Agreement) -> list[str]:
    """Every change from ``old`` to ``new`` as an English sentence; ``[]`` if none."""
    out: list[str] = []
    if old.id != new.id:
        out.append(f"These are different agreements: '{old.id}' and '{new.id}'.")
    if old.version != new.version:
        out.append(f"Version {new.version} replaces version {old.version}.")
    if old.title != new.title:
        out.append(f'The title changes from "{old.title}" to "{new.title}".')
    if set(old.parties) != set(new.parties):
        before = " and ".join(country_name(p) for p in old.parties)
        after = " and ".join(country_name(p) for p in new.parties)
        out.append(f"The parties change from {before} to {after}.")
    if old.valid_from != new.valid_from:
        out.append(
            f"The validity now starts on {human_date(new.valid_from)} "
            f"instead of {human_date(old.valid_from)}."
        )
    if old.valid_until != new.valid_until:
        out.append(
            f"The validity now ends on {human_date(new.valid_until)} "
            f"instead of {human_date(old.valid_until)}."
        )
    keys: dict[tuple[str, str, str], None] = {}
    for g in (*old.grants, *new.grants):
        keys.setdefault((g.holder, g.requester, g.service), None)
    for holder, requester, service in keys:
        key = (holder, requester, service)
        old_grants = [g for g in old.grants if (g.holder, g.requester, g.service) == key]
        new_grants = [g for g in new.grants if (g.holder, g.requester, g.service) == key]
        out.extend(_scope_sentences(holder, requester, service, old_grants, new_grants))
        for i, grant in enumerate(new_grants):
            previous = old_grants[i] if i < len(old_grants) else None
            out.extend(_quota_sentences(previous, grant))
            out.extend(_disclosure_sentences(previous, grant))
            out.extend(_approval_sentences(previous, grant))
    if old.parties != new.parties and set(old.parties) == set(new.parties):
        out.append(
            "The parties are now listed as "
            + " and ".join(country_name(p) for p in new.parties)
            + " (no change in meaning)."
        )
    old_docs = [canonical_json(g) for g in old.to_document()["grants"]]
    new_docs = [canonical_json(g) for g in new.to_document()["grants"]]
    if old_docs != new_docs and sorted(old_docs) == sorted(new_docs):
        out.append("Only the order of the grants changes; what each country may ask is the same.")
    if not out and old.canonical_bytes() != new.canonical_bytes():
        out.append("The documents differ in form only; what each country may ask is the same.")
    return out
