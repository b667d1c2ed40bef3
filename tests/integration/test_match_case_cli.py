"""``enlace match person --case`` through the real command against a real federation: which
hits are followed up, and how a follow-up that is not made is shown and exits.

Why: a follow-up is what the operator asked for with ``--case``. One the agreement cannot allow
is not asked (as ``enlace screen manifest --case`` does) and says why; one that fails is in the
table and in the JSON (``status: failed`` with the reason, not only a line on stderr), and the
command exits 1 so a script cannot take the case as followed up.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from cli_support import enlace
from match_support import (
    holder,
    install,
    load_records,
    match_agreement,
    outbound,
    read_csv,
    synthetic,
)

from node.matching.peers import FOLLOW_UP
from policies.agreement import Quotas


def _federation(factory: Callable[..., Any], root: Any, **agreement: Any) -> Any:
    """PAN serves 300 generated records' identities to CRI under ``agreement``."""
    live = factory(("PAN", "CRI"))
    now = live.clocks["PAN"].now()
    live.files = synthetic(root, "PAN", 300, 29)
    load_records(live.runtimes["PAN"], live.files, now)
    holder(live.runtimes["PAN"]).rebuild(now, ["identities"])
    made = match_agreement("PAN", "CRI", now, datasets=("identities",), **agreement)
    install(live.runtimes, made, now)
    live.serve("PAN")
    return live


def _person(live: Any, *extra: str) -> Any:
    row = next(r for r in read_csv(live.files / "encounters.csv") if r["birth_date"])
    home = str(live.federation.homes["CRI"].root)
    return enlace("match", "person", "--home", home, "--name",
                  f"{row['surname']}, {row['given_names']}", "--birth-date", row["birth_date"],
                  "--dataset", "identities", "--case", "CRI-X-1", *extra)  # fmt: skip


def _followups_served(live: Any) -> int:
    return sum(
        1
        for e in live.runtimes["PAN"].store.iter_audit()
        if e.record.direction == "inbound" and e.record.method == FOLLOW_UP
    )


def test_a_grant_without_follow_up_attributes_is_not_asked_and_says_so(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The follow-up grant names only an attribute of document_alerts: none of identities.
    live = _federation(
        live_federation_factory, tmp_path_factory.getbasetemp(), attributes=("alert_type",)
    )
    table = _person(live)
    assert table.exit_code == 0, table.output
    assert "HIT" in table.output and "not asked" in table.output
    assert "our agreement with PAN grants" in table.output  # the reason, in the table
    assert "are not a list of distinct" not in table.output

    as_json = _person(live, "--json")
    assert as_json.exit_code == 0
    (entry,) = json.loads(as_json.stdout)["followups"]
    assert (entry["peer"], entry["dataset"], entry["status"]) == ("PAN", "identities", "not asked")
    assert "grants no follow-up attribute" in entry["reason"]
    assert _followups_served(live) == 0  # never called
    assert outbound(live.runtimes["CRI"]) == []


def test_a_failed_follow_up_is_in_the_table_and_the_json_and_exits_1(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    live = live_federation_factory(("PAN", "CRI"))
    now = live.clocks["PAN"].now()
    live.files = synthetic(tmp_path_factory.getbasetemp(), "PAN", 300, 29)
    load_records(live.runtimes["PAN"], live.files, now)
    holder(live.runtimes["PAN"]).rebuild(now, ["identities"])
    agreement = match_agreement("PAN", "CRI", now, datasets=("identities",))
    match, followup = agreement.grants
    one_a_day = dataclasses.replace(followup, quotas=Quotas(per_day=1, per_quarter=None))
    install(live.runtimes, dataclasses.replace(agreement, grants=(match, one_a_day)), now)
    live.serve("PAN")

    first = _person(live, "--json")
    assert first.exit_code == 0, first.output
    (released,) = json.loads(first.stdout)["followups"]
    assert released["status"] == "released"

    again = _person(live, "--json")  # the day's one follow-up is spent: PAN refuses
    assert again.exit_code == 1
    report = json.loads(again.stdout)
    assert [r["peer"] for r in report["results"] if r["result"] == "hit"] == ["PAN"]
    (failed,) = report["followups"]
    assert (failed["peer"], failed["dataset"], failed["status"]) == ("PAN", "identities", "failed")
    assert "quota" in failed["reason"].lower()

    table = _person(live)
    assert table.exit_code == 1
    assert "Follow-ups (case CRI-X-1)" in table.output and "failed" in table.output
    assert "1 of 1 follow-up(s) failed" in " ".join(table.output.split())
