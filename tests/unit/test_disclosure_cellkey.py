"""Cell-key perturbation: record keys, cell keys, the noise lookup and its use in protect()."""

from __future__ import annotations

import hashlib
import hmac
import random
from fractions import Fraction

import pytest

from policies.agreement import Disclosure, Perturbation
from policies.disclosure import (
    OBS_ESTIMATED,
    TOTAL,
    Dimension,
    DisclosureError,
    Table,
    cell_key,
    noise,
    noise_distribution,
    perturb,
    protect,
    record_key,
)
from policies.disclosure.cellkey import KEY_SPACE, cell_keys_for, noise_bound

SECRET = bytes(range(32))
NAT = Dimension("nationality", ("HTI", "CUB", "AGO"))
EVENT = Dimension("event", ("encounter", "return"))
COUNTS = {
    ("HTI", "encounter"): 40,
    ("HTI", "return"): 3,
    ("CUB", "encounter"): 17,
    ("CUB", "return"): 0,
    ("AGO", "encounter"): 8,
    ("AGO", "return"): 11,
}
PROFILE = Disclosure(profile="ck", perturbation=Perturbation(max_noise=2))


def ids_for(
    counts: dict[tuple[str, ...], int], prefix: str = "r"
) -> dict[tuple[str, ...], list[str]]:
    return {c: [f"{prefix}-{'-'.join(c)}-{i}" for i in range(n)] for c, n in counts.items()}


def test_record_key_is_an_hmac_of_the_identifier_truncated_to_32_bits() -> None:
    key = record_key(SECRET, "PAN-2026-000123")
    mac = hmac.new(SECRET, b"enlace/1 cell-key record\x00PAN-2026-000123", hashlib.sha256)
    assert key == int.from_bytes(mac.digest()[:4], "big")
    assert 0 <= key < KEY_SPACE
    assert record_key(SECRET, "PAN-2026-000123") == key
    assert record_key(SECRET, "PAN-2026-000124") != key
    assert record_key(bytes(32), "PAN-2026-000123") != key


def test_record_key_refuses_a_short_secret_or_an_empty_identifier() -> None:
    with pytest.raises(DisclosureError, match="at least 16 bytes"):
        record_key(b"short", "id")
    with pytest.raises(DisclosureError):
        record_key(SECRET, "")


def test_cell_key_is_the_sum_modulo_two_to_the_32_in_any_order() -> None:
    keys = [KEY_SPACE - 1, 5, 7]
    assert cell_key(keys) == (KEY_SPACE - 1 + 12) % KEY_SPACE == 11
    assert cell_key(reversed(keys)) == 11
    assert cell_key([]) == 0
    with pytest.raises(DisclosureError):
        cell_key([KEY_SPACE])
    with pytest.raises(DisclosureError):
        cell_key([-1])


def test_the_lookup_buckets_run_from_minus_k_to_plus_k_across_the_key_range() -> None:
    assert noise(50, 0, 2) == -2
    assert noise(50, KEY_SPACE - 1, 2) == 2
    assert noise(50, KEY_SPACE // 2, 2) == 0
    seen = {noise(50, key, 2) for key in range(0, KEY_SPACE, KEY_SPACE // 64)}
    assert seen == {-2, -1, 0, 1, 2}


def test_zero_is_never_perturbed_and_positive_counts_never_reach_zero() -> None:
    rnd = random.Random(5)
    for _ in range(2000):
        value, key, max_noise = rnd.randrange(0, 12), rnd.randrange(KEY_SPACE), rnd.randrange(1, 6)
        released = value + noise(value, key, max_noise)
        assert abs(released - value) <= max_noise
        assert (released == 0) == (value == 0)
        assert released >= 0


def test_noise_bound_shrinks_for_small_values() -> None:
    assert [noise_bound(v, 3) for v in range(6)] == [0, 0, 1, 2, 3, 3]
    with pytest.raises(DisclosureError):
        noise_bound(-1, 3)


@pytest.mark.parametrize(
    ("value", "max_noise"), [(1, 3), (2, 3), (3, 3), (50, 1), (50, 2), (50, 5)]
)
def test_the_documented_distribution_has_mean_exactly_zero(value: int, max_noise: int) -> None:
    distribution = noise_distribution(value, max_noise)
    assert sum(distribution.values()) == 1
    assert sum(d * p for d, p in distribution.items()) == 0
    k = noise_bound(value, max_noise)
    assert set(distribution) == set(range(-k, k + 1))
    for d in range(1, k + 1):
        assert distribution[d] == distribution[-d]
        assert abs(distribution[d] - Fraction(1, 2 * k + 1)) < Fraction(1, 10**8)


def test_noise_over_random_keys_follows_the_documented_distribution() -> None:
    rnd = random.Random(9)
    samples = [noise(30, rnd.randrange(KEY_SPACE), 2) for _ in range(10_000)]
    for d, p in noise_distribution(30, 2).items():
        assert abs(samples.count(d) / len(samples) - float(p)) < 0.02
    assert abs(sum(samples) / len(samples)) < 0.05


def test_margins_get_the_key_of_exactly_the_records_they_count() -> None:
    table = Table.from_counts([NAT, EVENT], COUNTS)
    ids = ids_for(COUNTS)
    keys = cell_keys_for(table, ids, SECRET)
    row = cell_key(record_key(SECRET, r) for c in NAT.codes for r in ids[(c, "encounter")])
    assert keys[(TOTAL, "encounter")] == row
    everyone = [r for cell in ids.values() for r in cell]
    assert keys[(TOTAL, TOTAL)] == cell_key(record_key(SECRET, r) for r in everyone)


def test_perturb_adds_each_cells_own_noise_so_margins_need_not_add_up() -> None:
    table = Table.from_counts([NAT, EVENT], COUNTS)
    keys = cell_keys_for(table, ids_for(COUNTS), SECRET)
    released = perturb(table, keys, 2)
    for coord, value in table.cells.items():
        assert released[coord] == value + noise(value, keys[coord], 2)
    with pytest.raises(DisclosureError, match="no cell key"):
        perturb(table, {}, 2)


def test_record_identifiers_must_match_the_counts() -> None:
    table = Table.from_counts([NAT, EVENT], COUNTS)
    ids = ids_for(COUNTS)
    ids[("HTI", "return")] = ids[("HTI", "return")][:2]
    with pytest.raises(DisclosureError, match="counts 3"):
        cell_keys_for(table, ids, SECRET)
    ids = ids_for(COUNTS)
    ids[("AGO", "encounter")] = ["same"] * 8
    with pytest.raises(DisclosureError, match="distinct"):
        cell_keys_for(table, ids, SECRET)
    with pytest.raises(DisclosureError, match="non-interior"):
        cell_keys_for(table, {**ids_for(COUNTS), ("HTI", TOTAL): ["x"]}, SECRET)


def test_protect_perturbs_every_published_cell_and_still_suppresses_small_ones() -> None:
    table = Table.from_counts([NAT, EVENT], COUNTS)
    answer = protect(table, PROFILE, record_keys_per_cell=ids_for(COUNTS), secret=SECRET)
    assert answer.coverage.method == "cell_key"
    hidden = answer.cells[("HTI", "return")]
    assert hidden.value is None and hidden.conf_status == "A" and not hidden.perturbed
    published = {c: cell for c, cell in answer.cells.items() if cell.value is not None}
    assert published
    for coord, cell in published.items():
        assert cell.obs_status == OBS_ESTIMATED and cell.perturbed
        assert abs(cell.value - table[coord]) <= 2
    assert answer.coverage.perturbed == len(published)
    # with these records and this secret at least one published cell moved
    assert any(cell.value != table[c] for c, cell in published.items())


def test_protect_is_deterministic_and_independent_of_record_order() -> None:
    table = Table.from_counts([NAT, EVENT], COUNTS)
    ids = ids_for(COUNTS)
    first = protect(table, PROFILE, record_keys_per_cell=ids, secret=SECRET)
    shuffled = {c: list(reversed(v)) for c, v in ids.items()}
    again = protect(table, PROFILE, record_keys_per_cell=shuffled, secret=SECRET)
    assert again.cells == first.cells
    other = protect(table, PROFILE, record_keys_per_cell=ids, secret=bytes(32))
    assert other.cells != first.cells


def test_protect_needs_the_records_and_the_secret_for_cell_key() -> None:
    table = Table.from_counts([NAT, EVENT], COUNTS)
    with pytest.raises(DisclosureError, match="record identifiers"):
        protect(table, PROFILE, secret=SECRET)
    with pytest.raises(DisclosureError, match="record identifiers"):
        protect(table, PROFILE, record_keys_per_cell=ids_for(COUNTS))
