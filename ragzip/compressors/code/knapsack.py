"""0/1 knapsack over token costs: which blocks of a pruned chunk to keep."""

from __future__ import annotations

import numpy as np

__all__ = ["knapsack"]

_MAX_CELLS = 4000  # capacity resolution


def knapsack(values: np.ndarray, weights: np.ndarray, capacity: int) -> list[int]:
    """0/1 knapsack: indices maximizing the value within ``capacity`` (weights >= 0).

    Capacities above a few thousand are rescaled (weights rounded up), so the result always
    fits. Items of zero weight are always taken.
    """
    n = len(values)
    if n == 0 or capacity < 0:
        return []
    scale = max(1.0, capacity / _MAX_CELLS)
    w = np.ceil(np.asarray(weights, dtype=np.float64) / scale).astype(np.int64)
    cap = int(capacity // scale)
    best = np.zeros(cap + 1, dtype=np.float64)
    take = np.zeros((n, cap + 1), dtype=bool)
    for k in range(n):
        if w[k] > cap:
            continue
        candidate = np.full(cap + 1, -np.inf)
        candidate[w[k] :] = best[: cap + 1 - w[k]] + values[k]
        better = candidate > best
        take[k] = better
        best = np.where(better, candidate, best)
    picked = []
    c = cap
    for k in range(n - 1, -1, -1):
        if take[k, c]:
            picked.append(k)
            c -= int(w[k])
    return sorted(picked)
