"""Statistics grants a requester could get round by differencing or averaging answers are
named to the people who sign them (``policy show``), to the holder's operator when installing
(``policy install``) and by ``enlace doctor``; grants with noise that does not cancel are not."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.cli.main import app
from node.clock import ManualClock
from node.demo.federation import create_federation
from node.home import NodeHome
from node.ops.doctor import WARN, open_for_checks, run_checks
from node.runtime import open_runtime
from policies.agreement import (
    Agreement,
    DifferentialPrivacy,
    Disclosure,
    Grant,
    Perturbation,
    Quotas,
)
from policies.signatures import SignedAgreement, dump_signed_agreement, sign_agreement
from policies.weaknesses import (
    DIFFERENCING,
    NO_SECONDARY,
    RENEWING_BUDGET,
    disclosure_weaknesses,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "agreement-pan-cri.yaml"
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _stats(holder: str, requester: str, disclosure: Disclosure) -> Grant:
    return Grant(
        holder=holder,
        requester=requester,
        service="stats",
        datasets=("encounters",),
        purposes=("quarterly_matrices",),
        quotas=Quotas(per_day=100, per_quarter=None),
        dimensions=("nationality", "quarter"),
        disclosure=disclosure,
    )


def _agreement(*grants: Grant, start: dt.datetime = START) -> Agreement:
    return Agreement(
        id="PAN-CRI-STATS",
        version=1,
        parties=("PAN", "CRI"),
        title="t",
        valid_from=start,
        valid_until=start + dt.timedelta(days=60),
        grants=grants,
    )


THRESHOLD = Disclosure(profile="standard", min_cell=5)
DP = DifferentialPrivacy("discrete_laplace", Decimal("0.5"), Decimal("10"))


def test_threshold_alone_is_open_to_differencing_and_noise_closes_it() -> None:
    weak = disclosure_weaknesses(_agreement(_stats("PAN", "CRI", THRESHOLD)))
    assert [(w.grant, w.holder, w.requester, w.problem) for w in weak] == [
        (1, "PAN", "CRI", DIFFERENCING)
    ]
    assert "cell_key" in weak[0].fix
    without_secondary = dataclasses.replace(THRESHOLD, secondary=False)
    problems = [
        w.problem
        for w in disclosure_weaknesses(_agreement(_stats("PAN", "CRI", without_secondary)))
    ]
    assert problems == [NO_SECONDARY, DIFFERENCING]
    noisy = dataclasses.replace(THRESHOLD, perturbation=Perturbation(max_noise=2))
    assert disclosure_weaknesses(_agreement(_stats("PAN", "CRI", noisy))) == []
    capped = dataclasses.replace(DP, budget_total=Decimal("40"))
    assert (
        disclosure_weaknesses(
            _agreement(_stats("PAN", "CRI", dataclasses.replace(THRESHOLD, dp=capped)))
        )
        == []
    )


def test_a_budget_that_renews_for_ever_is_named() -> None:
    grant = _stats("PAN", "CRI", dataclasses.replace(THRESHOLD, dp=DP))
    assert [w.problem for w in disclosure_weaknesses(_agreement(grant))] == [RENEWING_BUDGET]


def test_only_the_holders_own_grants_when_asked() -> None:
    agreement = _agreement(_stats("PAN", "CRI", THRESHOLD), _stats("CRI", "PAN", THRESHOLD))
    assert [w.grant for w in disclosure_weaknesses(agreement)] == [1, 2]
    assert [w.grant for w in disclosure_weaknesses(agreement, holder="CRI")] == [2]
    assert disclosure_weaknesses(agreement, holder="HND") == []


def test_policy_show_warns_below_the_terms_and_in_json() -> None:
    result = CliRunner().invoke(app, ["policy", "show", str(EXAMPLE)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    below = " ".join(result.stdout.split("warnings:", 1)[1].split())
    assert "#4 (CRI → PAN): the privacy budget renews every quarter" in below
    assert "#1" not in below  # cell-key noise: nothing to say
    shown = json.loads(CliRunner().invoke(app, ["policy", "show", str(EXAMPLE), "--json"]).stdout)
    assert [(w["grant"], w["problem"]) for w in shown["warnings"]] == [(4, RENEWING_BUDGET)]


@pytest.fixture
def pan_and_cri(tmp_path: Path):  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    federation = create_federation(tmp_path / "fed", ("PAN", "CRI"), now)
    agreement = _agreement(
        _stats("PAN", "CRI", THRESHOLD),
        _stats("CRI", "PAN", dataclasses.replace(THRESHOLD, perturbation=Perturbation(2))),
        start=now - dt.timedelta(days=1),
    )
    signed = SignedAgreement(agreement)
    for party in ("PAN", "CRI"):
        runtime = open_runtime(federation.homes[party])
        signed = sign_agreement(signed, party, runtime.signing_key)
        runtime.close()
    path = tmp_path / "agreement.yaml"
    path.write_text(dump_signed_agreement(signed), encoding="utf-8")
    return federation, path


def test_install_and_doctor_warn_the_holder_whose_data_is_at_stake(pan_and_cri) -> None:  # type: ignore[no-untyped-def]
    federation, path = pan_and_cri
    runner = CliRunner()
    installed = {}
    for party in ("PAN", "CRI"):
        home = str(federation.homes[party].root)
        result = runner.invoke(app, ["policy", "install", str(path), "--home", home])
        assert result.exit_code == 0, result.output
        installed[party] = " ".join(result.stderr.split())
    assert "warning: #1 (PAN → CRI): threshold suppression only" in installed["PAN"]
    assert installed["CRI"] == ""  # CRI's own grant is perturbed; PAN's is PAN's to mend
    checks = {}
    for party in ("PAN", "CRI"):
        runtime = open_for_checks(
            NodeHome(federation.homes[party].root), ManualClock(dt.datetime.now(dt.UTC))
        )
        try:
            checks[party] = {c.name: c for c in run_checks(runtime, peers=False)}["disclosure"]
        finally:
            runtime.close()
    assert checks["PAN"].status == WARN
    assert "agreement 'PAN-CRI-STATS' (version 1) #1 (PAN → CRI)" in checks["PAN"].detail
    assert "enlace policy new" in checks["PAN"].fix
    assert checks["CRI"].status == "ok", checks["CRI"]
