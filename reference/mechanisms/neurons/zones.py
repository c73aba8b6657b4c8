"""Eligible tokens, core sets and activation zones (specs/01-intraneuronal.md §2.2–§2.3, A2, A4). [reconstructed]"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from reference.config import ConfigError

SPECIAL_NAMES = ("<bos>", "<pad>", "<eos>", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")
"""Tokens never analysed (§2.2): begin/end markers, padding and BERT's specials."""


def eligible(counts: Any, categories: Any, special: Any, min_count: int, uncategorised: str = "exclude"
             ) -> tuple[np.ndarray, np.ndarray]:
    """A2: V_elig (N,) ids in ascending order and their categories c (N,). [reconstructed §2.2]

    counts (V,) occurrences n(v); categories (V,) int, −1 = none; special (V,) bool. v is eligible
    iff n(v) ≥ ``min_count``, v is not special, and v has a category — or, with ``uncategorised
    = "own"``, every other non-special token joins one extra category (id = max category + 1).
    """
    counts, cats, special = np.asarray(counts), np.asarray(categories, dtype=np.int64), np.asarray(special, bool)
    cats = cats.copy()
    if uncategorised == "own":
        cats[(cats < 0) & ~special] = int(cats.max(initial=-1)) + 1
    ok = (counts >= min_count) & ~special & (cats >= 0)
    ids = np.flatnonzero(ok)
    return ids.astype(np.int64), cats[ids]


def core_size(n_eligible: int, core_size: int, core_fraction: float, zones: int) -> int:
    """K = min(core_size, ⌊core_fraction·N⌋); a ConfigError on ``core_size`` when K < 2Z (§2.3)."""
    k = min(int(core_size), int(math.floor(core_fraction * n_eligible)))
    if k < 2 * zones:
        raise ConfigError(f"neurons.core_size: K = {k} (N = {n_eligible} eligible tokens, core_size {core_size}, "
                          f"core_fraction {core_fraction}) is below 2Z = {2 * zones}; lower zones or analyse more tokens")
    return k


def core_order(abar: Any, ids: Any) -> np.ndarray:
    """Positions of V_elig ordered by (−ā, id): ``np.lexsort((ids, -abar))`` (§2.3)."""
    return np.lexsort((np.asarray(ids), -np.asarray(abar, dtype=np.float64)))


def rank_zones(k: int, z: int) -> np.ndarray:
    """z(r) = ⌊r·Z/K⌋ for ranks r = 0 … K−1 (zone 0 most active; sizes differ by ≤ 1, NEU-T1)."""
    return (np.arange(k, dtype=np.int64) * z) // k


def value_zones(abar_core: Any, z: int) -> np.ndarray:
    """z(v) = min(Z − 1, ⌊Z·(ā_max − ā(v))/(ā_max − ā_min)⌋), extremes over T, float64, in this order.

    abar_core (K,) in rank order (descending). Requires ā_max > ā_min (constant cores are skipped).
    """
    a = np.asarray(abar_core, dtype=np.float64)
    hi, lo = a.max(), a.min()
    return np.minimum(z - 1, np.floor(z * (hi - a) / (hi - lo))).astype(np.int64)


class Core(NamedTuple):
    """A neuron's core set: positions ``pos`` (K,) into V_elig in rank order, zones ``zone`` (K,)."""

    pos: np.ndarray
    zone: np.ndarray


def core_zones(abar: Any, ids: Any, cats: Any, k: int, z: int, mode: str = "rank", site: str = "post"
               ) -> Core | str:
    """A4: the core set T and its zones, or the skip reason ("dead", "constant", "single_category").

    abar (N,) float64 type activations over V_elig, ids (N,), cats (N,). "dead": site post and
    max ā ≤ 0; "constant": ā constant on T; "single_category": one category in T. [reconstructed §2.3]
    """
    a = np.asarray(abar, dtype=np.float64)
    if site == "post" and a.max() <= 0:
        return "dead"
    pos = core_order(a, ids)[:k]
    core = a[pos]
    if core.max() == core.min():
        return "constant"
    if np.unique(np.asarray(cats)[pos]).size < 2:
        return "single_category"
    zone = rank_zones(k, z) if mode == "rank" else value_zones(core, z)
    return Core(pos, zone)
