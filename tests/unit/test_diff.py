"""Diffs between agreement versions, as sentences for the people who sign them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from policies.agreement import Agreement
from policies.diff import country_name, diff_agreements, human_date, who


def base() -> dict[str, Any]:
    return {
        "format": "enlace-agreement/1",
        "id": "CRI-MEX-PAN",
        "version": 1,
        "title": "Intercambio regional",
        "parties": ["MEX", "CRI"],
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-06-30T00:00:00Z",
        "grants": [
            {
                "holder": "MEX",
                "requester": "CRI",
                "service": "stats",
                "datasets": ["matrices"],
                "purposes": ["quarterly_matrices"],
                "dimensions": ["sex"],
                "disclosure": {"profile": "standard"},
                "quotas": {"per_day": 100, "per_quarter": None},
            },
            {
                "holder": "CRI",
                "requester": "MEX",
                "service": "match",
                "datasets": ["travel_documents"],
                "purposes": ["identity_verification"],
                "quotas": {"per_day": 10000, "per_quarter": 200000},
            },
            {
                "holder": "MEX",
                "requester": "CRI",
                "service": "followup",
                "datasets": ["travel_documents"],
                "purposes": ["identity_verification"],
                "attributes": ["event_type"],
                "quotas": {"per_day": 5, "per_quarter": None},
            },
        ],
    }


def changed(mutate: Callable[[dict[str, Any]], None]) -> list[str]:
    old = base()
    new = copy.deepcopy(old)
    new["version"] = 2
    mutate(new)
    sentences = diff_agreements(Agreement.from_document(old), Agreement.from_document(new))
    assert sentences[0] == "Version 2 replaces version 1."
    return sentences[1:]


def test_identical_agreements_have_no_differences() -> None:
    a = Agreement.from_document(base())
    assert diff_agreements(a, Agreement.from_document(base())) == []


CASES: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    (
        "validity-end",
        lambda d: d.update(valid_until="2027-12-31T00:00:00Z"),
        ["The validity now ends on 31 December 2027 instead of 30 June 2027."],
    ),
    (
        "validity-start-with-time",
        lambda d: d.update(valid_from="2026-02-01T12:30:00Z"),
        ["The validity now starts on 1 February 2026 at 12:30:00 UTC instead of 1 January 2026."],
    ),
    (
        "new-dataset",
        lambda d: d["grants"][0]["datasets"].append("encounters"),
        [
            "Costa Rica may now also ask Mexico for statistics on dataset 'encounters' "
            "for purpose 'quarterly_matrices'."
        ],
    ),
    (
        "dataset-and-purpose-removed",
        lambda d: d["grants"][1].update(purposes=["document_fraud"]),
        [
            "Mexico may now also ask Costa Rica for document and identity matching on dataset "
            "'travel_documents' for purpose 'document_fraud'.",
            "Mexico may no longer ask Costa Rica for document and identity matching on dataset "
            "'travel_documents' for purpose 'identity_verification'.",
        ],
    ),
    (
        "daily-quota-falls",
        lambda d: d["grants"][1]["quotas"].update(per_day=5000),
        [
            "The daily quota for document and identity matching by Mexico against Costa Rica "
            "falls from 10,000 to 5,000 elements."
        ],
    ),
    (
        "quarterly-quota-lifted",
        lambda d: d["grants"][1]["quotas"].update(per_quarter=None),
        [
            "The quarterly quota for document and identity matching by Mexico against Costa Rica "
            "is lifted (it was 200,000 elements; now unlimited)."
        ],
    ),
    (
        "quota-introduced",
        lambda d: d["grants"][0]["quotas"].update(per_quarter=1500),
        [
            "The quarterly quota for statistics by Costa Rica against Mexico is now limited to "
            "1,500 queries (it was unlimited)."
        ],
    ),
    (
        "dimension-added",
        lambda d: d["grants"][0]["dimensions"].extend(["nationality", "age_group"]),
        [
            "Statistics from Mexico to Costa Rica may now also be broken down by 'age_group' and "
            "'nationality'."
        ],
    ),
    (
        "attribute-removed",
        lambda d: d["grants"][2].update(attributes=[]),
        ["Follow-up answers from Mexico to Costa Rica may no longer include 'event_type'."],
    ),
    (
        "approval-dropped",
        lambda d: d["grants"][2].update(followup_requires_approval=False),
        ["Follow-up requests by Costa Rica to Mexico no longer need a human approval at Mexico."],
    ),
    (
        "min-cell-raised",
        lambda d: d["grants"][0]["disclosure"].update(min_cell=10),
        [
            "For statistics from Mexico to Costa Rica, the smallest published count rises from "
            "5 to 10 (smaller counts are suppressed)."
        ],
    ),
    (
        "dp-added",
        lambda d: d["grants"][0]["disclosure"].update(
            dp={
                "mechanism": "discrete_gaussian",
                "epsilon_per_query": "0.25",
                "budget_per_period": "4",
                "period": "quarter",
            }
        ),
        [
            "Statistics from Mexico to Costa Rica now use differential privacy (discrete "
            "Gaussian, epsilon 0.25 per query, budget 4 per quarter)."
        ],
    ),
    (
        "dp-added-with-a-total",
        lambda d: d["grants"][0]["disclosure"].update(dp={**_DP, "budget_total": "20"}),
        [
            "Statistics from Mexico to Costa Rica now use differential privacy (discrete "
            "Gaussian, epsilon 0.25 per query, budget 4 per quarter, at most 20 in total over "
            "every period, never reset)."
        ],
    ),
    (
        "service-withdrawn",
        lambda d: d["grants"].pop(1),
        ["Mexico may no longer ask Costa Rica for document and identity matching at all."],
    ),
    (
        "service-granted",
        lambda d: d["grants"].append(
            {
                "holder": "CRI",
                "requester": "MEX",
                "service": "directory",
                "datasets": ["consular_directory"],
                "purposes": ["consular_assistance"],
                "quotas": {"per_day": None, "per_quarter": 50},
            }
        ),
        [
            "Mexico may now ask Costa Rica for consular directory data on dataset "
            "'consular_directory' for purpose 'consular_assistance'.",
            "There is no daily quota for consular directory data by Mexico against Costa Rica.",
            "The quarterly quota for consular directory data by Mexico against Costa Rica is "
            "50 queries.",
        ],
    ),
    (
        "grant-order-only",
        lambda d: d["grants"].reverse(),
        ["Only the order of the grants changes; what each country may ask is the same."],
    ),
]


_DP = {
    "mechanism": "discrete_gaussian",
    "epsilon_per_query": "0.25",
    "budget_per_period": "4",
    "period": "quarter",
}


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_change_reads_as_a_sentence(
    mutate: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    assert changed(mutate) == expected


def test_set_order_in_the_yaml_is_not_a_change() -> None:
    def shuffle(d: dict[str, Any]) -> None:
        d["grants"][0]["dimensions"] = ["sex"]
        d["grants"][1]["datasets"].reverse()

    assert changed(shuffle) == []


def test_title_and_parties() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["title"] = "Nuevo título"
        d["parties"] = ["CRI", "MEX"]

    assert changed(mutate) == [
        'The title changes from "Intercambio regional" to "Nuevo título".',
        "The parties are now listed as Costa Rica and Mexico (no change in meaning).",
    ]


def test_country_names_fall_back_to_the_code() -> None:
    assert country_name("PAN") == "Panama"
    assert country_name("CRM") == "the CRM Technical Secretariat"
    assert country_name("XYZ") == "XYZ"
    assert who("DOM") == "the Dominican Republic (DOM)"
    assert who("XYZ") == "XYZ"


def test_unknown_parties_are_named_by_code() -> None:
    old = base()
    for g in old["grants"]:
        for role in ("holder", "requester"):
            g[role] = "XAA" if g[role] == "MEX" else g[role]
    old["parties"] = ["XAA", "CRI"]
    new = copy.deepcopy(old)
    new["grants"][1]["quotas"]["per_day"] = 20000
    sentences = diff_agreements(Agreement.from_document(old), Agreement.from_document(new))
    assert sentences == [
        "The daily quota for document and identity matching by XAA against Costa Rica rises "
        "from 10,000 to 20,000 elements."
    ]


def test_human_date() -> None:
    a = Agreement.from_document(base())
    assert human_date(a.valid_from) == "1 January 2026"


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (
            None,
            "20",
            "The privacy budget for statistics from Mexico to Costa Rica now also has a total: "
            "at most 20 over every period, never reset (it was renewed every period without "
            "a total).",
        ),
        (
            "20",
            "12.5",
            "The total privacy budget for statistics from Mexico to Costa Rica falls from 20 to "
            "12.5 (over every period, never reset).",
        ),
        (
            "20",
            None,
            "The total privacy budget for statistics from Mexico to Costa Rica is no longer "
            "capped (it was 20).",
        ),
    ],
)
def test_a_change_of_the_total_privacy_budget_alone_reads_as_one_sentence(
    before: str | None, after: str | None, expected: str
) -> None:
    def with_total(total: str | None) -> dict[str, Any]:
        doc = base()
        dp = dict(_DP) if total is None else {**_DP, "budget_total": total}
        doc["grants"][0]["disclosure"]["dp"] = dp
        return doc

    old, new = with_total(before), with_total(after)
    new["version"] = 2
    assert diff_agreements(Agreement.from_document(old), Agreement.from_document(new)) == [
        "Version 2 replaces version 1.",
        expected,
    ]
