"""Pearson and Spearman correlation, the usual STS evaluation, in numpy.

Spearman's rho is Pearson's r of the ranks, with tied values sharing their average
rank (as `scipy.stats.spearmanr` does); STS gold scores are heavily tied.
"""

from __future__ import annotations

import numpy as np


def pearson(x, y):
    """Pearson's r of two equally long sequences (nan when either is constant).

    Example:
    ```python
    pearson([1, 2, 3], [2, 4, 7])  # 0.993...
    ```
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"pearson needs two 1-D sequences of one length, got {x.shape}, {y.shape}")
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def average_ranks(values):
    """1-based ranks; tied values get the mean of the ranks they span."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values, and each element's run.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    run = np.repeat(np.arange(len(starts)), ends - starts)
    ranks = np.empty(len(values))
    ranks[order] = (starts + ends + 1)[run] / 2.0  # mean of ranks start+1 .. end
    return ranks


def spearman(x, y):
    """Spearman's rho: Pearson's r of the average ranks.

    Example:
    ```python
    spearman([1, 2, 3], [2, 4, 7])  # 1.0
    ```
    """
    return pearson(average_ranks(x), average_ranks(y))
