"""Statistics over seeds and over intervention pairs (specs/04-msma.md §5.7). [classical; choices reconstructed]

Paired t (two-sided, p by the regularised incomplete beta in mpmath), Wilcoxon signed-rank
(exact by dynamic programming on doubled ranks for n ≤ 25, else normal with tie and continuity
corrections), Holm's step-down adjustment, percentile bootstrap, and the effect sizes d_z,
Cohen's d (pooled sd √((sd₁² + sd₂²)/2)) and Cliff's δ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mpmath
import numpy as np


def mean_sd_min_max(values: Sequence[float]) -> dict[str, float | None]:
    """mean, sd (ddof 1; None for one value), min, max."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else None,
            "min": float(v.min()), "max": float(v.max())}


def paired_t(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """t = mean Δ/(sd Δ/√n), p = I_{ν/(ν+t²)}(ν/2, ½), ν = n − 1 (Δ = a − b). sd Δ = 0: p = 0 if mean Δ ≠ 0, else 1."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    n = d.size
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if sd == 0.0:
        return {"mean_diff": mean, "t": math.copysign(math.inf, mean) if mean else 0.0, "p_t": 0.0 if mean else 1.0}
    t = mean / (sd / math.sqrt(n))
    nu = n - 1
    p = float(mpmath.betainc(nu / 2.0, 0.5, 0, nu / (nu + t * t), regularized=True))
    return {"mean_diff": mean, "t": t, "p_t": min(1.0, p)}


def _midranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    sorted_v = values[order]
    i = 0
    while i < values.size:
        j = i
        while j + 1 < values.size and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def wilcoxon(d: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p of the differences d (zeros dropped, midranks). n = 0: p = 1."""
    d = np.asarray(d, np.float64)
    d = d[d != 0]
    n = d.size
    if n == 0:
        return 1.0
    ranks = _midranks(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    if n <= 25:
        doubled = np.rint(2 * ranks).astype(int)
        total = int(doubled.sum())
        counts = np.zeros(total + 1)
        counts[0] = 1.0
        for r in doubled:  # the number of sign patterns with each doubled W+
            counts[r:] = counts[r:] + counts[:-r]  # the right side is built before the assignment
        probs = counts / counts.sum()
        w2 = int(round(2 * w_plus))
        lo = probs[: w2 + 1].sum()
        hi = probs[w2:].sum()
        return float(min(1.0, 2 * min(lo, hi)))
    mean = n * (n + 1) / 4.0
    _, tie_counts = np.unique(ranks, return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24.0 - np.sum(tie_counts**3 - tie_counts) / 48.0
    if var <= 0:
        return 1.0
    z = (abs(w_plus - mean) - 0.5) / math.sqrt(var)
    return float(min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None entries kept as None)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    order = sorted(idx, key=lambda i: pvalues[i])
    m, out, running = len(idx), list(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def bootstrap_mean_ci(values: Sequence[float], n_boot: int, seed: Any) -> list[float] | None:
    """95 % percentile interval of the mean over ``n_boot`` resamples (None without resamples)."""
    v = np.asarray(values, np.float64)
    if n_boot < 1 or v.size < 2:
        return None
    idx = np.random.default_rng(seed).integers(0, v.size, (n_boot, v.size))
    means = v[idx].mean(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def effect_sizes(intervened: Sequence[float], base: Sequence[float]) -> dict[str, float | None]:
    """d_z = mean Δ/sd Δ, Cohen's d (pooled sd), Cliff's δ over cross pairs, percent change, Wilcoxon p."""
    a, b = np.asarray(intervened, np.float64), np.asarray(base, np.float64)
    d = a - b
    sd_d = float(d.std(ddof=1)) if d.size > 1 else 0.0
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2) if a.size > 1 else 0.0
    greater = np.sum(a[:, None] > b[None, :]) - np.sum(a[:, None] < b[None, :])
    base_mean = float(b.mean())
    return {
        "base_mean": base_mean, "int_mean": float(a.mean()),
        "pct_change": 100.0 * (float(a.mean()) - base_mean) / abs(base_mean) if base_mean else None,
        "d_z": float(d.mean()) / sd_d if sd_d > 0 else None,
        "cohen_d": (float(a.mean()) - base_mean) / pooled if pooled > 0 else None,
        "cliff_delta": float(greater) / (a.size * b.size), "p_wilcoxon": wilcoxon(d), "n_pairs": int(d.size),
    }
