"""Exact discrete samplers, calibration, and the per-peer, per-period privacy budget."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from policies.agreement import DifferentialPrivacy, Disclosure
from policies.disclosure import (
    TOTAL_PERIOD,
    BudgetExhausted,
    BudgetLedger,
    Dimension,
    DisclosureError,
    Mechanism,
    Table,
    charge,
    discrete_gaussian,
    discrete_laplace,
    period_resets_at,
    protect,
)
from policies.disclosure.dp import bernoulli, bernoulli_exp
from policies.errors import PolicyError


def seeded(seed: int) -> Callable[[int], int]:
    """A reproducible ``randbelow``."""
    return random.Random(seed).randrange


def exhaustive(n: int) -> Iterator[int]:
    """Every output of randbelow(n), in turn."""
    return iter(range(n))


def test_bernoulli_is_exact_over_every_outcome_of_the_source() -> None:
    p = Fraction(3, 7)
    outcomes = exhaustive(7)
    assert sum(bernoulli(p, lambda n: next(outcomes)) for _ in range(7)) == 3
    with pytest.raises(ValueError):
        bernoulli(Fraction(3, 2), seeded(0))


@pytest.mark.parametrize("gamma", [Fraction(1, 3), Fraction(1), Fraction(5, 2)])
def test_bernoulli_exp_has_probability_exp_minus_gamma(gamma: Fraction) -> None:
    rng = seeded(1)
    n = 20_000
    hits = sum(bernoulli_exp(gamma, rng) for _ in range(n))
    expected = math.exp(-gamma)
    assert abs(hits / n - expected) < 4 * math.sqrt(expected * (1 - expected) / n)


def laplace_variance(scale: Fraction) -> float:
    q = math.exp(-1 / float(scale))
    return 2 * q / (1 - q) ** 2


def gaussian_variance(sigma2: Fraction) -> float:
    weights = {x: math.exp(-(x * x) / (2 * float(sigma2))) for x in range(-200, 201)}
    total = sum(weights.values())
    return sum(x * x * w for x, w in weights.items()) / total


@pytest.mark.parametrize("scale", [Fraction(1), Fraction(5, 2)])
def test_discrete_laplace_has_mean_zero_and_the_theoretical_variance(scale: Fraction) -> None:
    rng = seeded(2)
    n = 12_000
    samples = [discrete_laplace(scale, rng) for _ in range(n)]
    variance = laplace_variance(scale)
    mean = sum(samples) / n
    assert abs(mean) < 4 * math.sqrt(variance / n)
    observed = sum(x * x for x in samples) / n
    assert abs(observed - variance) / variance < 0.08
    assert all(isinstance(x, int) for x in samples)


def test_discrete_laplace_probabilities_decay_by_exp_minus_one_over_scale() -> None:
    rng = seeded(3)
    n = 20_000
    samples = [discrete_laplace(Fraction(1), rng) for _ in range(n)]
    q = math.exp(-1)
    for x in (0, 1, -1, 2):
        expected = (1 - q) / (1 + q) * q ** abs(x)
        assert abs(samples.count(x) / n - expected) < 4 * math.sqrt(expected / n)


@pytest.mark.parametrize("sigma2", [Fraction(1), Fraction(9, 2)])
def test_discrete_gaussian_has_mean_zero_and_the_theoretical_variance(sigma2: Fraction) -> None:
    rng = seeded(4)
    n = 8_000
    samples = [discrete_gaussian(sigma2, rng) for _ in range(n)]
    variance = gaussian_variance(sigma2)
    assert abs(sum(samples) / n) < 4 * math.sqrt(variance / n)
    assert abs(sum(x * x for x in samples) / n - variance) / variance < 0.08


def test_samplers_are_reproducible_with_the_same_source_and_refuse_bad_parameters() -> None:
    for sampler, parameter in ((discrete_laplace, Fraction(2)), (discrete_gaussian, Fraction(3))):
        first, second = seeded(5), seeded(5)
        runs = [[sampler(parameter, rng) for _ in range(50)] for rng in (first, second)]
        assert runs[0] == runs[1]
        assert len(set(runs[0])) > 3
    with pytest.raises(ValueError):
        discrete_laplace(Fraction(0), seeded(0))
    with pytest.raises(ValueError):
        discrete_gaussian(Fraction(-1), seeded(0))


def test_mechanism_calibration_follows_epsilon_and_sensitivity() -> None:
    dp = DifferentialPrivacy("discrete_laplace", Decimal("0.5"), Decimal("2"))
    assert Mechanism.from_profile(dp).scale == 2
    assert Mechanism.from_profile(dp, sensitivity=3).scale == 6
    gauss = Mechanism("discrete_gaussian", Fraction(1, 4))
    assert gauss.sigma2 == 16
    with pytest.raises(DisclosureError):
        Mechanism("gaussian", Fraction(1))
    with pytest.raises(DisclosureError):
        Mechanism("discrete_laplace", Fraction(0))


# --- budget ----------------------------------------------------------------------------------


def test_charges_add_up_exactly_and_leave_the_old_ledger_untouched() -> None:
    ledger = BudgetLedger()
    for _ in range(10):
        ledger = charge(ledger, "CRI", "2026-Q1", Decimal("0.1"), Decimal("1"))
    assert ledger.spent_for("CRI", "2026-Q1") == 1
    assert ledger.remaining("CRI", "2026-Q1", Decimal("1")) == 0
    assert BudgetLedger().spent_for("CRI", "2026-Q1") == 0


def test_a_spent_budget_refuses_with_what_was_spent_and_when_it_resets() -> None:
    ledger = charge(BudgetLedger(), "CRI", "2026-Q4", Decimal("0.75"), Decimal("1"))
    with pytest.raises(BudgetExhausted) as caught:
        charge(ledger, "CRI", "2026-Q4", Decimal("0.5"), Decimal("1"))
    error = caught.value
    assert isinstance(error, PolicyError)
    assert error.status_name == "RESOURCE_EXHAUSTED"
    assert (error.spent, error.limit, error.requested) == (
        Fraction(3, 4),
        Fraction(1),
        Fraction(1, 2),
    )
    assert error.resets_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert "2027-01-01" in str(error)
    # what is left can still be spent
    assert (
        charge(ledger, "CRI", "2026-Q4", Decimal("0.25"), Decimal("1")).spent_for("CRI", "2026-Q4")
        == 1
    )


def test_budgets_are_per_peer_and_per_period() -> None:
    ledger = charge(BudgetLedger(), "CRI", "2026-Q1", 1, 1)
    ledger = charge(ledger, "GTM", "2026-Q1", 1, 1)
    ledger = charge(ledger, "CRI", "2026-Q2", 1, 1)
    with pytest.raises(BudgetExhausted):
        charge(ledger, "CRI", "2026-Q1", Fraction(1, 1000), 1)
    assert set(ledger) == {("CRI", "2026-Q1"), ("GTM", "2026-Q1"), ("CRI", "2026-Q2")}


def test_charge_refuses_nonsense() -> None:
    with pytest.raises(DisclosureError):
        charge(BudgetLedger(), "CRI", "2026-Q1", 0, 1)
    with pytest.raises(DisclosureError):
        charge(BudgetLedger(), "", "2026-Q1", 1, 1)
    with pytest.raises(DisclosureError):
        charge(BudgetLedger(), "CRI", "2026-Q1", 0.5, 1)  # type: ignore[arg-type]


def test_a_total_budget_refuses_across_periods_and_never_resets() -> None:
    ledger = BudgetLedger()
    for period in ("2026-Q1", "2026-Q1", "2026-Q2"):
        ledger = charge(ledger, "CRI", period, Decimal("0.5"), Decimal("1"), total=Decimal("1.5"))
    assert ledger.spent_for("CRI", TOTAL_PERIOD) == Fraction(3, 2)
    assert ledger.spent_for("CRI", "2026-Q2") == Fraction(1, 2)
    # The third quarter's budget is untouched, but the total is spent.
    with pytest.raises(BudgetExhausted) as caught:
        charge(ledger, "CRI", "2026-Q3", Decimal("0.5"), Decimal("1"), total=Decimal("1.5"))
    error = caught.value
    assert error.status_name == "RESOURCE_EXHAUSTED"
    assert (error.limit_name, error.period, error.resets_at) == ("budget_total", "total", None)
    assert (error.spent, error.limit, error.requested) == (
        Fraction(3, 2),
        Fraction(3, 2),
        Fraction(1, 2),
    )
    assert "budget_total" in str(error) and "does not reset" in str(error)
    assert "resets at" not in str(error)
    # Without the total (an agreement without the field) the quarter alone decides.
    assert charge(ledger, "CRI", "2026-Q3", Decimal("0.5"), Decimal("1")).spent_for(
        "CRI", "2026-Q3"
    ) == Fraction(1, 2)


def test_the_period_still_refuses_under_a_total_and_names_itself() -> None:
    ledger = charge(BudgetLedger(), "CRI", "2026-Q1", 1, 1, total=10)
    with pytest.raises(BudgetExhausted) as caught:
        charge(ledger, "CRI", "2026-Q1", Fraction(1, 1000), 1, total=10)
    assert caught.value.limit_name == "budget_per_period"
    assert caught.value.resets_at == datetime(2026, 4, 1, tzinfo=UTC)
    assert "2026-Q1" in str(caught.value) and "2026-04-01" in str(caught.value)


def test_when_both_limits_refuse_the_total_is_named() -> None:
    ledger = charge(BudgetLedger(), "CRI", "2026-Q1", 1, 1, total=1)
    with pytest.raises(BudgetExhausted) as caught:
        charge(ledger, "CRI", "2026-Q1", 1, 1, total=1)
    assert caught.value.limit_name == "budget_total"


def test_the_total_is_not_a_period() -> None:
    with pytest.raises(DisclosureError):
        charge(BudgetLedger(), "CRI", TOTAL_PERIOD, 1, 1)
    assert period_resets_at(TOTAL_PERIOD) is None


def test_period_resets_at_the_next_quarter() -> None:
    assert period_resets_at("2026-Q1") == datetime(2026, 4, 1, tzinfo=UTC)
    assert period_resets_at("2026-Q3") == datetime(2026, 10, 1, tzinfo=UTC)
    assert period_resets_at("2026-03") is None


# --- protect with DP -------------------------------------------------------------------------

AGE = Dimension("age", ("0-17", "18-59", "60+"))
SEX = Dimension("sex", ("F", "M"))
COUNTS = {
    ("0-17", "F"): 12,
    ("0-17", "M"): 9,
    ("18-59", "F"): 140,
    ("18-59", "M"): 210,
    ("60+", "F"): 2,
    ("60+", "M"): 30,
}


def dp_profile(mechanism: str = "discrete_laplace") -> Disclosure:
    return Disclosure(
        profile="dp",
        dp=DifferentialPrivacy(mechanism, Decimal("0.5"), Decimal("1")),
    )


@pytest.mark.parametrize("mechanism", ["discrete_laplace", "discrete_gaussian"])
def test_protect_charges_the_budget_and_releases_an_additive_noisy_table(mechanism: str) -> None:
    table = Table.from_counts([AGE, SEX], COUNTS)
    answer = protect(
        table,
        dp_profile(mechanism),
        budget_state=BudgetLedger(),
        rng=seeded(6),
        peer="HND",
        period="2026-Q2",
    )
    assert answer.coverage.epsilon_spent == Decimal("0.5")
    assert answer.coverage.method == f"dp:{mechanism}"
    assert answer.budget_state is not None
    assert answer.budget_state.spent_for("HND", "2026-Q2") == Fraction(1, 2)
    for cell in answer.cells.values():
        assert cell.value is None or (cell.perturbed and cell.obs_status == "E")
        assert cell.value is None or cell.value >= 5 or cell.value == 0
    values = answer.values()
    for sex in SEX.codes:
        column = [values[(age, sex)] for age in AGE.codes]
        if None not in column and values[("_T", sex)] is not None:
            assert sum(column) == values[("_T", sex)]  # type: ignore[arg-type]


def test_protect_refuses_before_drawing_any_noise_once_the_budget_is_spent() -> None:
    table = Table.from_counts([AGE, SEX], COUNTS)
    spent = charge(BudgetLedger(), "HND", "2026-Q2", 1, 1)

    def no_randomness(n: int) -> int:
        raise AssertionError("noise drawn for a refused query")

    with pytest.raises(BudgetExhausted):
        protect(
            table,
            dp_profile(),
            budget_state=spent,
            rng=no_randomness,
            peer="HND",
            period="2026-Q2",
        )


def test_protect_needs_a_ledger_peer_and_period_for_dp() -> None:
    table = Table.from_counts([AGE, SEX], COUNTS)
    with pytest.raises(DisclosureError, match="budget ledger"):
        protect(table, dp_profile(), peer="HND", period="2026-Q2")
    with pytest.raises(DisclosureError, match="budget ledger"):
        protect(table, dp_profile(), budget_state=BudgetLedger(), period="2026-Q2")


def test_protect_charges_the_total_when_the_profile_caps_it() -> None:
    table = Table.from_counts([AGE, SEX], COUNTS)
    capped = Disclosure(
        profile="dp",
        dp=DifferentialPrivacy(
            "discrete_laplace", Decimal("1"), Decimal("1"), "quarter", Decimal("2")
        ),
    )
    ledger = BudgetLedger()
    for period in ("2026-Q1", "2026-Q2"):
        released = protect(
            table, capped, budget_state=ledger, rng=seeded(1), peer="HND", period=period
        )
        assert released.budget_state is not None
        ledger = released.budget_state
    assert ledger.spent_for("HND", TOTAL_PERIOD) == 2
    with pytest.raises(BudgetExhausted) as caught:
        protect(table, capped, budget_state=ledger, rng=seeded(1), peer="HND", period="2026-Q3")
    assert caught.value.limit_name == "budget_total"
