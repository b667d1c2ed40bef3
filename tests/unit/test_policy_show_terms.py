"""``enlace policy show``: the people who sign an agreement see every term it grants.

Why: the grants table has room for the parties, service, datasets and purposes; the terms that
decide what a peer can learn — a statistics grant's dimensions and disclosure profile
(threshold, cell-key perturbation, differential privacy and its budgets), a follow-up grant's
attributes and whether an operator approves each one — were shown nowhere, not even in
``--json`` (only ``min_cell``).
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.cli.main import app
from node.cli.policy_view import grant_terms
from policies.signatures import load_signed_agreement

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "agreement-pan-cri.yaml"


def test_show_lists_each_grants_terms_below_the_table() -> None:
    result = CliRunner().invoke(app, ["policy", "show", str(EXAMPLE)], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    below = result.stdout.split("terms:", 1)[1]
    flat = " ".join(below.split())
    assert "#1: dimensions age_group, event_type, nationality, nationality_basis" in flat
    assert "#1: disclosure profile 'standard'; smallest published count 5" in flat
    assert "cell-key perturbation of at most ±2" in flat
    assert "#3: attributes released event_type, first_seen_quarter, nationality_basis" in flat
    assert "#3: each follow-up approved by an operator" in flat
    assert "#4: disclosure profile 'strict'; smallest published count 10" in flat
    assert "differential privacy (discrete Laplace, epsilon 0.5 per query, budget 10" in flat
    assert "#2:" not in flat and "#5:" not in flat  # match grants carry no further terms


def test_json_carries_the_whole_disclosure_profile() -> None:
    result = CliRunner().invoke(app, ["policy", "show", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    grants = json.loads(result.stdout)["grants"]
    assert grants[3]["disclosure"]["dp"] == {
        "mechanism": "discrete_laplace",
        "epsilon_per_query": "0.5",
        "budget_per_period": "10",
        "period": "quarter",
    }
    assert grants[0]["disclosure"]["perturbation"]["max_noise"] == 2
    assert grants[1]["disclosure"] is None  # a match grant has no disclosure profile


def test_a_total_privacy_budget_is_named() -> None:
    agreement = load_signed_agreement(EXAMPLE.read_text(encoding="utf-8")).agreement
    grants = list(agreement.grants)
    disclosure = grants[3].disclosure
    assert disclosure is not None and disclosure.dp is not None
    capped = dataclasses.replace(disclosure.dp, budget_total=Decimal("40"))
    grants[3] = dataclasses.replace(
        grants[3], disclosure=dataclasses.replace(disclosure, dp=capped)
    )
    lines = [t.plain for t in grant_terms(dataclasses.replace(agreement, grants=tuple(grants)))]
    assert any("at most 40 in total over every period, never reset" in line for line in lines)


def test_a_fetched_agreement_must_be_the_one_asked_for_between_us() -> None:
    """``policy fetch ID --install``: the peer's document is that agreement, with both nodes as
    parties, before it is written to ``--out`` or installed."""
    from node.cli.policy_cmd import _check_fetched
    from node.errors import PeerError

    agreement = load_signed_agreement(EXAMPLE.read_text(encoding="utf-8")).agreement
    _check_fetched(agreement, agreement.id, "CRI", "PAN")
    with pytest.raises(PeerError, match="it is agreement 'PAN-CRI-2026-01', not 'PAN-CRI-2027'"):
        _check_fetched(agreement, "PAN-CRI-2027", "CRI", "PAN")
    with pytest.raises(PeerError, match="its parties are PAN, CRI, not HND and PAN"):
        _check_fetched(agreement, agreement.id, "HND", "PAN")


def test_a_drafted_statistics_grant_adds_cell_key_noise(tmp_path: Path) -> None:
    """With a threshold alone, two overlapping queries difference to one person's cell; the
    draft operators start from protects against that unless they remove it on purpose."""
    draft = tmp_path / "draft.yaml"
    args = ["policy", "new", "--id", "PAN-CRI-2027-01", "--parties", "PAN,CRI", "--out", draft]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    agreement = load_signed_agreement(draft.read_text(encoding="utf-8")).agreement
    stats = [g for g in agreement.grants if g.service == "stats"]
    assert stats and all(
        g.disclosure is not None
        and g.disclosure.perturbation is not None
        and g.disclosure.perturbation.method == "cell_key"
        and g.disclosure.perturbation.max_noise == 2
        for g in stats
    )
