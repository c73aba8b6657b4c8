"""The toolkit every theorem module shares: symbolic sums, strategies, tolerances.

Symbolic (SymPy):

* ``n`` (the length of the axis a theorem is about), ``i`` (a free position),
  ``j`` (a summation index), and the vectors ``z``, ``x``, ``p``, ``a``, ``d``
  as ``IndexedBase`` objects with their sign assumptions;
* :func:`summation` — Σ_{j<n} over a whole axis of general length n, so a proof
  written with it holds for every size, not for one;
* :func:`reduce_sums` — linearity, sums of constants, canonical summation
  indices and side conditions (such as Σ p_i = 1), then ``simplify``;
  :func:`canonical` is its index-renaming step on its own.

Numeric (NumPy / Hypothesis):

* :func:`per_index` — evaluates a lambdified per-index formula at every position;
* :func:`floats_in`, :func:`arrays_in` — finite float64 strategies;
* :func:`assert_close` — ``|actual − expected| ≤ atol + rtol·|expected|``, one-line failures;
* :func:`slack` — the spec's relative inequality slack (10⁻¹²) and
  :func:`rounding_slack` — a bound on rounding derived from the operands'
  magnitudes, for the few inequalities whose sides are computed through large
  intermediate values (each use says why);
* :func:`bits`, :func:`h2` — entropy and binary entropy in bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.metrics import entropy

# --------------------------------------------------------------------------- symbolic toolkit

n = sp.Symbol("n", integer=True, positive=True)  # length of the axis a theorem is about
i, j = sp.symbols("i j", integer=True)  # a free position and a summation index
_k = sp.Symbol("k", integer=True)  # every Sum is renamed to this index before comparing

z = sp.IndexedBase("z", real=True)  # logits / attention scores
x = sp.IndexedBase("x", real=True)  # LayerNorm inputs
p = sp.IndexedBase("p", positive=True)  # a distribution with full support
a = sp.IndexedBase("a", positive=True)  # convex weights
d = sp.IndexedBase("d", nonnegative=True)  # nonnegative offsets


def summation(term: sp.Expr, index: sp.Symbol) -> sp.Sum:
    """Σ_{index = 0}^{n-1} term, the sum over a whole axis of general length n."""
    return sp.Sum(term, (index, 0, n - 1))


def canonical(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every summation index renamed to one symbol and index-free factors pulled out.

    Σ_i f(i) and Σ_j f(j) are the same number but different SymPy trees; after
    this they are the same tree.
    """

    def rename(s: sp.Sum) -> sp.Expr:
        ((index, lo, hi),) = s.limits
        return sp.factor_terms(sp.Sum(s.function.xreplace({index: _k}), (_k, lo, hi)))

    return expr.replace(lambda e: isinstance(e, sp.Sum), rename)


def reduce_sums(expr: sp.Expr, given: dict[sp.Expr, sp.Expr] | None = None) -> sp.Expr:
    """Simplify an expression with sums over a general axis, under side conditions ``given``.

    Uses linearity (Σ(f + g) = Σf + Σg, Σ c·f = c·Σf), evaluates sums of
    constants (Σ_{i<n} c = n·c), makes summation indices canonical, then
    substitutes ``given`` (e.g. {Σ_i p_i: 1}) and simplifies.
    """
    expanded = sp.expand(expr).replace(lambda e: isinstance(e, sp.Sum), lambda s: sp.factor_terms(s.doit()))
    reduced = canonical(expanded)
    reduced = reduced.subs({canonical(lhs): rhs for lhs, rhs in (given or {}).items()})
    return sp.simplify(reduced)


def per_index(formula: Callable[..., Any], values: np.ndarray, *args: Any) -> np.ndarray:
    """Evaluate a lambdified formula ``formula(values, i, n, *args)`` at every i of the last axis.

    values (..., n) -> (..., n). The lambdified code indexes ``values[j]``
    along its first axis, so the last axis is moved first; the other axes
    are broadcast, i.e. every row is evaluated at once.
    """
    length = values.shape[-1]
    columns = np.moveaxis(values, -1, 0)
    out = [np.broadcast_to(formula(columns, index, length, *args), columns.shape[1:]) for index in range(length)]
    return np.stack(out, axis=-1)


# --------------------------------------------------------------------------- strategies


def floats_in(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Finite float64 values in [lo, hi] (no NaN, no inf, no subnormals)."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def arrays_in(shape: Any, lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` (a tuple or a strategy of tuples) with entries in [lo, hi]."""
    return hnp.arrays(np.float64, shape, elements=floats_in(lo, hi))


# --------------------------------------------------------------------------- tolerances

UNIT_ROUNDOFF = float(np.finfo(np.float64).eps) / 2
"""u = 2⁻⁵³: one correctly rounded float64 operation is off by at most u relative."""


def assert_close(actual: Any, expected: Any, atol: Any, what: str, rtol: float = 0.0) -> None:
    """AssertionError with a one-line message unless |actual − expected| ≤ atol + rtol·|expected|.

    ``atol`` is a float or an array that broadcasts against ``actual`` (a per-row tolerance).
    """
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    # A scalar (or any shape that broadcasts to actual's) is a valid expectation; a mismatch is not.
    if np.broadcast_shapes(actual.shape, expected.shape) != actual.shape:
        raise AssertionError(f"{what}: shape {actual.shape} does not match expected {expected.shape}")
    excess = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    if not np.all(excess <= 0):  # also catches NaN
        worst = float(np.nanmax(np.abs(actual - expected))) if np.any(np.isfinite(actual)) else float("nan")
        raise AssertionError(f"{what}: max |Δ| = {worst:.3g} exceeds atol {np.max(atol):.3g} + rtol {rtol:g}")


def slack(value: float, rel: float = 1e-12) -> float:
    """The spec's slack for inequalities: rel·(1 + |value|), rel = 10⁻¹² unless a theorem's spec says otherwise."""
    return rel * (1.0 + abs(value))


def rounding_slack(*magnitudes: float, ulps: float = 16.0) -> float:
    """A bound on the rounding error of a value computed from operands of these magnitudes: ulps·u·(1 + Σ|m|).

    For a quantity such as ``(κ + Δ)/τ`` or ``log a_j`` whose inputs are large
    while the result is small, a relative slack on the result is meaningless:
    rounding is relative to the *operands*. Each operand contributes at most a
    few units of roundoff u = 2⁻⁵³ of its own magnitude per operation; ``ulps``
    is that count (a generous 16 by default), so this is ε-machine × the
    operands' scale, not a fitted tolerance.
    """
    return ulps * UNIT_ROUNDOFF * (1.0 + sum(abs(float(m)) for m in magnitudes))


# --------------------------------------------------------------------------- information


def bits(probs: np.ndarray) -> float:
    """Entropy of one distribution in bits, by the project's :func:`reference.metrics.entropy`."""
    return float(entropy(probs, base=2))


def h2(eps: float, rest: float) -> float:
    """Binary entropy in bits from ε and 1 − ε given apart (0 log 0 = 0; 1 − ε is never formed by subtraction)."""
    return float(-sum(v * math.log2(v) for v in (eps, rest) if v > 0))
