"""Relevance-based budget allocation across documents."""

from __future__ import annotations

import numpy as np
import pytest

from ragzip.budget import allocate, standardize


@pytest.mark.parametrize(
    ("scores", "sizes", "total"),
    [
        ([0.9, 0.5, 0.1], [100, 100, 100], 120),
        ([0.9, 0.5, 0.1], [10, 100, 100], 120),
        ([0.3, 0.3, 0.3], [50, 50, 50], 100),
        ([0.9, 0.5, 0.1], [10, 10, 10], 1000),
        ([0.2, 0.8], [0, 40], 25),
        ([0.7], [5], 3),
        ([0.5, 0.4, 0.3, 0.2, 0.1, 0.0], [7, 3, 11, 2, 5, 13], 17),
    ],
)
@pytest.mark.parametrize("temperature", [0.01, 0.1, 1.0, 100.0])
def test_shares_sum_within_total_and_respect_caps(
    scores: list[float], sizes: list[int], total: int, temperature: float
) -> None:
    shares = allocate(scores, sizes, total, temperature=temperature)
    assert len(shares) == len(scores)
    assert all(type(s) is int and s >= 0 for s in shares)
    assert sum(shares) <= total
    assert all(s <= cap for s, cap in zip(shares, sizes, strict=True))
    # Nothing is left unused while some document still has room.
    assert sum(shares) == min(total, sum(sizes))


def test_higher_scores_receive_more() -> None:
    shares = allocate([0.2, 0.9, 0.5], [100, 100, 100], 90, temperature=0.1)
    assert shares[1] > shares[2] > shares[0]
    # A soft temperature spreads the budget; a sharp one concentrates it.
    soft = allocate([0.2, 0.9, 0.5], [100, 100, 100], 90, temperature=10.0)
    assert max(soft) - min(soft) < max(shares) - min(shares)
    sharp = allocate([0.2, 0.9, 0.5], [100, 100, 100], 90, temperature=0.001)
    assert sharp == [0, 90, 0]


def test_what_a_small_document_cannot_use_flows_to_the_next() -> None:
    shares = allocate([0.9, 0.5, 0.1], [10, 100, 100], 60, temperature=0.01)
    assert shares[0] == 10 and shares[1] == 50 and shares[2] == 0


def test_equal_scores_split_evenly() -> None:
    shares = allocate([0.4, 0.4, 0.4, 0.4], [100] * 4, 80)
    assert sorted(shares) == [20, 20, 20, 20]


def test_min_score_excludes_documents() -> None:
    shares = allocate([0.9, 0.5, 0.1], [100, 100, 100], 150, temperature=1.0, min_score=0.4)
    assert shares[2] == 0 and shares[0] + shares[1] == 150
    assert allocate([0.1, 0.2], [10, 10], 10, min_score=0.5) == [0, 0]


@pytest.mark.parametrize(("total", "expected"), [(0, [0, 0]), (-5, [0, 0])])
def test_no_budget_gives_nothing(total: int, expected: list[int]) -> None:
    assert allocate([0.5, 0.1], [10, 10], total) == expected


def test_empty_input() -> None:
    assert allocate([], [], 100) == []


def test_zero_temperature_is_safe() -> None:
    shares = allocate([0.9, 0.1], [50, 50], 60, temperature=0.0)
    assert shares == [50, 10]


def test_standardize() -> None:
    z = standardize([1.0, 2.0, 3.0])
    assert np.allclose(z, [-1.224744871, 0.0, 1.224744871])
    assert np.allclose(standardize([5.0, 5.0]), [0.0, 0.0])
    assert standardize([]).size == 0
    assert standardize(np.array([1, 2], dtype=np.float32)).dtype == np.float64
