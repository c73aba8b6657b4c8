"""Strategies shared by the NEU theorems and tests (specs/01-intraneuronal.md §4). [reconstructed]

* :func:`label_pairs` — n ∈ [2, 200], ≤ 6 zone and ≤ 8 category labels (compacted), with forced
  special draws: equal up to relabelling, one refining the other, a single block, all singletons
  (n ≤ 20).
* :func:`small_tables` — n ∈ [4, 9] (10 under ``thorough``), 2–3 labels per side: the multisets
  whose distinct arrangements theorems enumerate.
* :func:`neuron_cases` — N ∈ [16, 400], k ∈ [2, 8], ā continuous or on a grid of ≤ 6 values
  (ties), Z ∈ [2, 6], K ∈ [2Z, N], B ∈ {19, 99}.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st


def compact(labels: np.ndarray) -> np.ndarray:
    """Relabel to 0 … m−1 in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse].astype(np.int64)


class LabelPair(NamedTuple):
    zones: np.ndarray  # (n,) int, compacted
    cats: np.ndarray  # (n,) int, compacted
    kind: str


@st.composite
def label_pairs(draw: st.DrawFn, max_n: int = 200) -> LabelPair:
    """Two labelings of n items; ``kind`` names the forced special case (or "random")."""
    kind = draw(st.sampled_from(["random", "random", "random", "relabel", "refine", "single", "singletons"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rs = np.random.default_rng(seed)
    if kind == "singletons":
        n = draw(st.integers(2, 20))
    else:
        n = draw(st.integers(2, max_n))
    rz, rk = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    cats = rs.integers(0, rk, n)
    if kind == "random":
        zones = rs.integers(0, rz, n)
    elif kind == "relabel":
        perm = rs.permutation(rk)
        zones = perm[cats]
    elif kind == "refine":  # zones refine the categories: each category split into ≤ 2 zones
        zones = cats * 2 + rs.integers(0, 2, n)
    elif kind == "single":
        zones = np.zeros(n, np.int64)
    else:
        zones = np.arange(n)
        cats = rs.integers(0, rk, n) if draw(st.booleans()) else np.arange(n)[rs.permutation(n)]
    return LabelPair(compact(zones), compact(cats), kind)


def small_n_max() -> int:
    """10 under the ``thorough`` profile (400 examples), 9 otherwise (§4 strategy ``small_tables``)."""
    return 10 if settings.default.max_examples >= 400 else 9


class SmallTable(NamedTuple):
    zones: np.ndarray  # (n,) the fixed row labels, sorted
    cats: np.ndarray  # (n,) one arrangement of the column labels (multiset enumerated by theorems)


@st.composite
def small_tables(draw: st.DrawFn) -> SmallTable:
    n = draw(st.integers(4, small_n_max()))
    r, k = draw(st.integers(2, 3)), draw(st.integers(2, 3))
    zones = np.sort(np.array([i % r for i in range(n)]))
    extra = draw(st.lists(st.integers(0, k - 1), min_size=n - k, max_size=n - k))
    cats = np.sort(np.array(list(range(k)) + extra, dtype=np.int64))
    return SmallTable(zones.astype(np.int64), cats)


class NeuronCase(NamedTuple):
    abar: np.ndarray  # (N,) type activations
    cats: np.ndarray  # (N,) categories 0 … k−1
    zones: int
    core: int
    perms: int
    seed: int


@st.composite
def neuron_cases(draw: st.DrawFn, max_n: int = 400) -> NeuronCase:
    n_types = draw(st.integers(16, max_n))
    k = draw(st.integers(2, 8))
    z = draw(st.integers(2, 6))
    z = min(z, n_types // 2)
    core = draw(st.integers(2 * z, n_types))
    seed = draw(st.integers(0, 2**32 - 1))
    rs = np.random.default_rng(seed)
    cats = rs.integers(0, k, n_types)
    cats[:k] = np.arange(k)  # every category present in V_elig
    if draw(st.booleans()):
        abar = rs.standard_normal(n_types) + 0.5 * cats
    else:
        grid = rs.standard_normal(draw(st.integers(1, 6)))
        abar = grid[rs.integers(0, grid.size, n_types)]
    return NeuronCase(abar, cats.astype(np.int64), z, core, draw(st.sampled_from([19, 99])), seed)
