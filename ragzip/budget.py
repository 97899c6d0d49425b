"""Budget allocation across documents by relevance (the coarse stage of coarse-to-fine)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["allocate", "standardize"]


def standardize(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Z-scores; constant input gives zeros."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.size == 0:
        return arr
    std = arr.std()
    return (arr - arr.mean()) / std if std > 1e-9 else np.zeros_like(arr)


def allocate(
    scores: Sequence[float],
    sizes: Sequence[int],
    total: int,
    *,
    temperature: float = 0.1,
    min_score: float | None = None,
) -> list[int]:
    """Splits ``total`` tokens across documents in proportion to ``softmax(score / temperature)``.

    As in LongLLMLingua, more relevant documents receive more of the budget; a document never
    receives more than its size, and what a small document cannot use flows to the next most
    relevant ones. Documents scoring under ``min_score`` receive nothing.

    Returns:
        Tokens per document, summing to at most ``total``.
    """
    n = len(scores)
    if n == 0 or total <= 0:
        return [0] * n
    arr = np.asarray(scores, dtype=np.float64)
    eligible = np.ones(n, dtype=bool) if min_score is None else arr >= min_score
    share = np.zeros(n, dtype=np.int64)
    caps = np.asarray(sizes, dtype=np.int64)
    left = total
    while left > 0:
        open_ = eligible & (share < caps)
        if not open_.any():
            break
        logits = arr[open_] / max(temperature, 1e-6)
        weights = np.exp(logits - logits.max())
        weights /= weights.sum()
        grant = np.floor(weights * left).astype(np.int64)
        idx = np.flatnonzero(open_)
        if grant.sum() == 0:  # rounding left crumbs: give them to the best open document
            grant[int(np.argmax(weights))] = left
        room = caps[idx] - share[idx]
        grant = np.minimum(grant, room)
        share[idx] += grant
        left -= int(grant.sum())
    return [int(s) for s in share]
