"""Attacks a peer can mount with repeated or overlapping queries, and what they get.

* Differencing: two queries whose populations differ by one person. Without noise the
  difference of the released cells is exactly 1 — the person is revealed. Under cell-key
  perturbation it is 1 only when two independent noises happen to coincide (about one time
  in ``2·max_noise + 1``); under differential privacy the likelihood ratio of any output is
  bounded by ``exp(epsilon)``.
* Averaging: repeating an identical query under cell-key returns identical values, so the
  average of any number of answers is the first answer, never the truth.
* Budget: a peer cannot repeat a DP query beyond its period's budget.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from decimal import Decimal
from fractions import Fraction

import pytest

from policies.agreement import DifferentialPrivacy, Disclosure, Perturbation
from policies.disclosure import (
    BudgetExhausted,
    BudgetLedger,
    Dimension,
    Mechanism,
    Table,
    protect,
)

SECRET = bytes(range(100, 132))
NAT = Dimension("nationality", ("HTI", "SEN"))
MAX_NOISE = 2
CELL_KEY = Disclosure(profile="ck", perturbation=Perturbation(max_noise=MAX_NOISE))


def population(rnd: random.Random) -> dict[tuple[str, ...], list[str]]:
    return {
        ("HTI",): [f"p{rnd.getrandbits(64):016x}" for _ in range(rnd.randint(10, 60))],
        ("SEN",): [f"p{rnd.getrandbits(64):016x}" for _ in range(rnd.randint(10, 60))],
    }


def release(people: dict[tuple[str, ...], list[str]], profile: Disclosure) -> dict:
    table = Table.from_counts([NAT], {c: len(ids) for c, ids in people.items()})
    return protect(table, profile, record_keys_per_cell=people, secret=SECRET).values()


def differences(profile: Disclosure, trials: int) -> Counter[int]:
    """Released(HTI with one more person) - released(HTI), over random populations."""
    rnd = random.Random(20260314)
    seen: Counter[int] = Counter()
    for _ in range(trials):
        before = population(rnd)
        after = {**before, ("HTI",): [*before[("HTI",)], f"p{rnd.getrandbits(64):016x}"]}
        seen[release(after, profile)[("HTI",)] - release(before, profile)[("HTI",)]] += 1
    return seen


def test_without_noise_differencing_reveals_the_person_every_time() -> None:
    seen = differences(Disclosure(profile="plain"), 50)
    assert seen == Counter({1: 50})


def test_cell_key_differencing_is_right_only_when_two_noises_coincide() -> None:
    trials = 400
    seen = differences(CELL_KEY, trials)
    # Two independent noises uniform on -2..2 are equal with probability 1/5.
    hit_rate = seen[1] / trials
    assert abs(hit_rate - 1 / 5) < 4 * math.sqrt(0.2 * 0.8 / trials)
    assert hit_rate < 0.5
    assert set(seen) == set(range(1 - 2 * MAX_NOISE, 2 + 2 * MAX_NOISE))
    # the difference is an unbiased but useless estimate: its spread is two noises' spread
    mean = sum(d * n for d, n in seen.items()) / trials
    assert abs(mean - 1) < 0.3


def test_averaging_repeated_cell_key_queries_gains_nothing() -> None:
    rnd = random.Random(77)
    people = population(rnd)
    table = Table.from_counts([NAT], {c: len(ids) for c, ids in people.items()})
    answers = []
    for _ in range(20):
        shuffled = {c: rnd.sample(ids, len(ids)) for c, ids in people.items()}
        answers.append(release(shuffled, CELL_KEY))
    first = answers[0]
    assert all(answer == first for answer in answers)
    for coord in table.coords():
        average = Fraction(sum(a[coord] for a in answers), len(answers))
        assert average == first[coord]
    moved = [c for c in table.coords() if first[c] != table[c]]
    assert moved, "with these records some released cell differs from the truth"


def test_discrete_laplace_likelihood_ratio_is_bounded_by_exp_epsilon() -> None:
    epsilon = Fraction(1, 2)
    mechanism = Mechanism("discrete_laplace", epsilon)
    rng = random.Random(5).randrange
    n = 15_000
    worlds = [Counter(x + mechanism.sample(rng) for _ in range(n)) for x in (20, 21)]
    checked = 0
    for y in set(worlds[0]) & set(worlds[1]):
        a, b = worlds[0][y], worlds[1][y]
        if min(a, b) < 300:
            continue
        checked += 1
        slack = 4 * math.sqrt(1 / a + 1 / b)
        assert abs(math.log(a / b)) <= float(epsilon) + slack
    assert checked >= 5


def test_dp_differencing_through_protect_beats_guessing_only_by_the_dp_bound() -> None:
    epsilon = Decimal("0.5")
    profile = Disclosure(
        profile="dp", dp=DifferentialPrivacy("discrete_laplace", epsilon, Decimal("1000"))
    )
    rng = random.Random(8).randrange
    n = 1_500
    correct = 0
    for extra in (0, 1):
        table = Table.from_counts([NAT], {("HTI",): 30 + extra, ("SEN",): 40}, margins=False)
        for _ in range(n):
            answer = protect(
                table, profile, budget_state=BudgetLedger(), rng=rng, peer="MEX", period="2026-Q1"
            )
            guess = 1 if (answer.values()[("HTI",)] or 0) >= 31 else 0
            correct += guess == extra
    bound = math.exp(0.5) / (1 + math.exp(0.5))
    assert correct / (2 * n) <= bound + 4 * math.sqrt(0.25 / (2 * n))
    assert correct / (2 * n) > 0.5  # the bound is about right, not vacuous


def test_a_peer_cannot_repeat_a_dp_query_past_its_budget() -> None:
    profile = Disclosure(
        profile="dp",
        dp=DifferentialPrivacy("discrete_gaussian", Decimal("0.25"), Decimal("1")),
    )
    table = Table.from_counts([NAT], {("HTI",): 30, ("SEN",): 40})
    rng = random.Random(3).randrange
    ledger = BudgetLedger()
    for _ in range(4):
        ledger = protect(
            table, profile, budget_state=ledger, rng=rng, peer="MEX", period="2026-Q1"
        ).budget_state
        assert ledger is not None
    with pytest.raises(BudgetExhausted) as caught:
        protect(table, profile, budget_state=ledger, rng=rng, peer="MEX", period="2026-Q1")
    assert caught.value.spent == 1
    # another peer, or the next quarter, has its own budget
    protect(table, profile, budget_state=ledger, rng=rng, peer="GTM", period="2026-Q1")
    protect(table, profile, budget_state=ledger, rng=rng, peer="MEX", period="2026-Q2")
