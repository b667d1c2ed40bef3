"""Additive shares over Z_(2^64): the ST's share alone says nothing; both give the sum."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.stats import chisquare, ks_2samp

from node.errors import InvalidArgumentError
from node.secretariat.shares import (
    WORD,
    add,
    cell_layout,
    decode,
    encode,
    from_vector,
    mask,
    split,
    to_vector,
)
from node.stats.query import parse_period


def test_layout_is_the_code_lists_product_and_names_its_digest() -> None:
    layout = cell_layout(("sex", "quarter"), parse_period("2024Q1..2024Q2"))
    assert layout.keys == (
        ("F", "2024-Q1"), ("F", "2024-Q2"), ("M", "2024-Q1"), ("M", "2024-Q2"),
        ("X", "2024-Q1"), ("X", "2024-Q2"), ("U", "2024-Q1"), ("U", "2024-Q2"),
    )  # fmt: skip
    assert layout.sha256 == cell_layout(("sex", "quarter"), parse_period("2024Q1..2024Q2")).sha256
    assert layout.sha256 != cell_layout(("sex", "quarter"), parse_period("2024Q2")).sha256
    with pytest.raises(InvalidArgumentError):
        cell_layout(("border_post",), parse_period("2024Q2"))


def test_the_st_share_does_not_depend_on_the_cells() -> None:
    """Same randomness, two very different tables: the ST receives the very same bytes."""
    layout = cell_layout(("nationality",), parse_period("2024Q2"))
    seed = os.urandom(32)
    small = to_vector(layout, {("HTI",): 1})
    large = to_vector(layout, {("HTI",): 90_000, ("SEN",): 7, ("IND",): 400})
    st_small, helper_small = split(small, seed)
    st_large, helper_large = split(large, seed)
    assert encode(st_small) == encode(st_large)
    assert encode(helper_small) != encode(helper_large)


def test_st_shares_are_uniform_whatever_the_secret() -> None:
    """Statistical check: the ST's words for an all-zero table and for a table of large counts
    have the same (uniform) distribution of their top byte and of their low bits."""
    layout = cell_layout(("nationality",), parse_period("2024Q2"))
    zeros = to_vector(layout, {})
    counts = to_vector(layout, {k: 10_000 + i for i, k in enumerate(layout.keys)})
    words_a = np.concatenate([split(zeros, os.urandom(32))[0] for _ in range(40)])
    words_b = np.concatenate([split(counts, os.urandom(32))[0] for _ in range(40)])
    for words in (words_a, words_b):
        top = (words >> np.uint64(56)).astype(np.int64)
        observed = np.bincount(top, minlength=256)
        assert chisquare(observed).pvalue > 1e-4  # uniform over 256 values
        low = (words & np.uint64(1)).astype(np.int64)
        assert abs(low.mean() - 0.5) < 0.05
    assert ks_2samp(words_a.astype(np.float64), words_b.astype(np.float64)).pvalue > 1e-4


def test_both_shares_reconstruct_and_sums_of_shares_give_the_regional_sum() -> None:
    layout = cell_layout(("nationality",), parse_period("2024Q2"))
    tables = [
        {("HTI",): 40, ("SEN",): 3},
        {("HTI",): 12},
        {("HTI",): 9, ("SEN",): 1, ("IND",): 5},
    ]
    pairs = [split(to_vector(layout, t), os.urandom(32)) for t in tables]
    words = 2 * layout.cells
    st_sum = add([decode(encode(st), words) for st, _ in pairs], words)
    helper_sum = add([h for _, h in pairs], words)
    cells = from_vector(layout, st_sum + helper_sum)
    assert cells[("HTI",)] == (61, 3)
    assert cells[("SEN",)] == (4, 2)
    assert cells[("IND",)] == (5, 1)
    assert cells[("CHN",)] == (0, 0)
    # the ST's sum alone is not the regional sum
    assert from_vector_safe(layout, st_sum) != cells


def from_vector_safe(layout: object, vector: np.ndarray) -> object:
    try:
        return from_vector(layout, vector)  # type: ignore[arg-type]
    except InvalidArgumentError:
        return None


def test_inputs_are_checked() -> None:
    layout = cell_layout(("sex",), parse_period("2024Q2"))
    with pytest.raises(InvalidArgumentError):
        to_vector(layout, {("Q",): 1})
    with pytest.raises(InvalidArgumentError):
        decode(b"\x00" * 7, 1)
    with pytest.raises(InvalidArgumentError):
        mask(b"short", 4)
    with pytest.raises(InvalidArgumentError):
        add([np.zeros(3, dtype=WORD)], 4)
