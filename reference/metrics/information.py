"""Information-theoretic measures shared by the mechanisms and the proofs. [standard]

Shannon entropy today; the KL, mutual-information and clustering-agreement
estimators (ARI / NMI / Cramér's V) that NEU and MSA share go here too.
Functions take their array namespace from their inputs, like the layers, so
they run on NumPy, CuPy and autograd arrays alike.
"""

from __future__ import annotations

import math
from typing import Any

from reference.backend import namespace


def entropy(p: Any, axis: int = -1, base: float | None = None) -> Any:
    """Shannon entropy H(p) = −Σ_i p_i log p_i along ``axis``. [standard]

    p (..., T, ...) nonnegative, summing to 1 along ``axis`` (not checked, not
    renormalised) -> H with ``axis`` removed, e.g. (B, H, T, T) -> (B, H, T)
    for attention patterns.

    Units: nats by default, bits with ``base=2`` (any base > 0, ≠ 1).
    Zero probabilities contribute 0, the limit of p log p as p -> 0⁺
    (0 · log 0 = 0), so masked attention entries need no special case.
    0 ≤ H(p) ≤ log T, with H = log T exactly for the uniform distribution
    (theorem CORE-3 in ``proofs/core.py``).
    """
    if base is not None and (base <= 0 or base == 1):
        raise ValueError(f"entropy base: {base!r} is not a number > 0 and != 1 (use 2 for bits, None for nats)")
    if not hasattr(p, "shape"):  # a list or a scalar; arrays (and autograd boxes) pass through
        p = namespace(p).asarray(p, dtype=float)
    xp = namespace(p)
    positive = p > 0
    # log is taken of 1 where p = 0, so no -inf (and no warning) is ever formed.
    plogp = xp.where(positive, p * xp.log(xp.where(positive, p, 1.0)), 0.0)
    h = -xp.sum(plogp, axis=axis)
    return h if base is None else h / math.log(base)
