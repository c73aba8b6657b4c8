"""Core theorems: the facts about softmax, entropy, LayerNorm, GELU, cross-entropy
and attention that every transformer reference relies on. [standard]

Each theorem is checked twice, independently:

* **symbolically**, in SymPy, for a general length n wherever possible: a vector
  is an ``IndexedBase`` and a sum is ``Sum(..., (j, 0, n - 1))``, so the proof
  is not for one size but for all of them. An identity is reduced to zero;
  an inequality is rewritten as an identity plus a term of known sign.
* **numerically**, with Hypothesis, on the project's own functions in
  ``reference/``. Where it makes sense the check first evaluates, through
  ``lambdify``, the very SymPy formula that was proved and compares the
  project's output with it, then checks the property on the project's output.
  So a pass says: the code computes the proved formula, and the theorem holds
  for the code in floating point.

Each record's ``scope`` says what its SymPy part proves: the statement itself
for every size (``general``), an ingredient of it (``lemma: ...``) or one size
(``instance: ...``). The shared helpers (``summation``, ``reduce_sums``,
``per_index``, ``floats_in``, ``assert_close`` ...) live in :mod:`proofs.toolkit`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import sympy as sp
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from proofs.registry import NumericCheck, Theorem, register
from proofs.toolkit import (
    a,
    arrays_in,
    assert_close,
    canonical,
    d,
    floats_in,
    i,
    j,
    n,
    p,
    per_index,
    reduce_sums,
    summation,
    x,
    z,
)
from reference.layers.attention import attention_forward, softmax
from reference.layers.layernorm import layernorm_forward
from reference.layers.loss import cross_entropy_forward
from reference.layers.mlp import gelu
from reference.metrics import entropy

# --------------------------------------------------------------------------- softmax


def softmax_formula(shift: sp.Expr = sp.S.Zero) -> sp.Expr:
    """Component i of softmax(z + shift) over a length-n axis: exp(z_i + c) / Σ_j exp(z_j + c)."""
    return sp.exp(z[i] + shift) / summation(sp.exp(z[j] + shift), j)


@cache
def _softmax_numeric() -> Callable[..., Any]:
    # (z, i, n) -> component i; evaluates the Sum as a Python loop over j.
    return sp.lambdify((z, i, n), softmax_formula(), "numpy")


class ShiftCase(NamedTuple):
    """z (..., T) logits and c (..., 1) one constant per row."""

    z: np.ndarray
    c: np.ndarray


@st.composite
def _shift_cases(draw: st.DrawFn) -> ShiftCase:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=8))
    logits = draw(arrays_in(shape, -50.0, 50.0))
    shifts = draw(arrays_in(shape[:-1] + (1,), -100.0, 100.0))
    return ShiftCase(logits, shifts)


def _softmax_shift_symbolic() -> bool:
    c = sp.Symbol("c", real=True)
    return sp.simplify(softmax_formula(c) - softmax_formula()) == 0


def _softmax_shift_numeric(case: ShiftCase) -> None:
    probs = softmax(case.z)
    # |z| ≤ 50, so the unshifted formula cannot overflow and can be evaluated as proved.
    assert_close(probs, per_index(_softmax_numeric(), case.z), 1e-15, "softmax(z) vs exp(z_i)/Σ exp(z_j)", rtol=1e-12)
    # z + c is rounded at |c|·2⁻⁵³ ≤ 1.2e-14, which moves a probability by at most ~2.5e-14.
    assert_close(softmax(case.z + case.c), probs, 1e-12, "softmax(z + c) vs softmax(z)")


register(
    Theorem(
        id="CORE-1",
        mechanism="CORE",
        provenance="[standard]",
        statement="softmax is shift invariant: softmax(z + c) = softmax(z) for every constant c",
        scope="general",
        symbolic=_softmax_shift_symbolic,
        numeric=NumericCheck(check=_softmax_shift_numeric, strategy=_shift_cases()),
    )
)


class MaskedCase(NamedTuple):
    """scores (B, T, T), visible (T, T) bool, with at least one visible key per row."""

    scores: np.ndarray
    visible: np.ndarray


@st.composite
def _masked_cases(draw: st.DrawFn) -> MaskedCase:
    batch, length = draw(st.integers(1, 3)), draw(st.integers(1, 8))
    scores = draw(arrays_in((batch, length, length), -50.0, 50.0))
    if draw(st.booleans()):
        visible = np.tril(np.ones((length, length), dtype=bool))  # the causal mask
    else:
        visible = draw(hnp.arrays(bool, (length, length)))
        visible[np.arange(length), draw(hnp.arrays(np.int64, length, elements=st.integers(0, length - 1)))] = True
    return MaskedCase(scores, visible)


def _simplex_symbolic() -> bool:
    component = softmax_formula()
    positive = component.is_positive is True
    sums_to_one = reduce_sums(summation(component, i) - 1) == 0
    # A masked logit w -> -∞: its probability -> 0 and the others renormalise
    # over the visible keys, whose exponentials sum to some R > 0.
    w, z0 = sp.Symbol("w", real=True), sp.Symbol("z_0", real=True)
    rest = sp.Symbol("R", positive=True)
    masked_to_zero = sp.limit(sp.exp(w) / (sp.exp(w) + rest), w, -sp.oo) == 0
    renormalised = sp.simplify(sp.limit(sp.exp(z0) / (sp.exp(w) + rest), w, -sp.oo) - sp.exp(z0) / rest) == 0
    return positive and sums_to_one and masked_to_zero and renormalised


def _simplex_numeric(case: MaskedCase) -> None:
    probs = softmax(np.where(case.visible, case.scores, -np.inf))
    hidden = np.broadcast_to(~case.visible, probs.shape)
    if not np.all(probs[hidden] == 0.0):
        raise AssertionError(f"masked entries are not exactly 0: max {np.max(probs[hidden]):.3g}")
    # Visible logits differ by at most 100, so every visible probability is ≥ e⁻¹⁰⁰/T > 0.
    if not np.all(probs[~hidden] > 0.0):
        raise AssertionError("a visible entry has probability ≤ 0")
    assert_close(probs.sum(axis=-1), 1.0, 1e-12, "row sums")
    formula = _softmax_numeric()
    for row in range(case.visible.shape[0]):
        keys = case.visible[row]
        expected = per_index(formula, case.scores[:, row, keys])
        assert_close(probs[:, row, keys], expected, 1e-15, f"row {row} vs the formula on its visible keys", rtol=1e-12)


register(
    Theorem(
        id="CORE-2",
        mechanism="CORE",
        provenance="[standard]",
        statement="softmax rows lie on the simplex (≥ 0, sum 1); with a −∞ mask, masked entries are exactly 0",
        scope="general",
        symbolic=_simplex_symbolic,
        numeric=NumericCheck(check=_simplex_numeric, strategy=_masked_cases()),
    )
)


# --------------------------------------------------------------------------- entropy

_t = sp.Symbol("t", positive=True)
gibbs_term = _t - 1 - sp.log(_t)
"""f(t) = t − 1 − log t: ≥ 0 for t > 0, = 0 only at t = 1 (the 'log t ≤ t − 1' behind Gibbs' inequality)."""


def entropy_formula() -> sp.Expr:
    """H(p) = −Σ_i p_i log p_i over a length-n axis."""
    return -summation(p[i] * sp.log(p[i]), i)


def entropy_gap_formula() -> sp.Expr:
    """log n − H(p) written as Σ_i p_i f(1/(n p_i)), a sum of nonnegative terms."""
    return summation(p[i] * gibbs_term.subs(_t, 1 / (n * p[i])), i)


@cache
def _entropy_gap_numeric() -> Callable[..., Any]:
    return sp.lambdify((p, n), entropy_gap_formula(), "numpy")


def _entropy_bound_symbolic() -> bool:
    # 1. f ≥ 0 with equality only at 1: its only stationary point is t = 1,
    #    f(1) = 0, and f'' = 1/t² > 0, so t = 1 is the unique global minimum.
    only_stationary_point_is_one = sp.solve(sp.diff(gibbs_term, _t), _t) == [1]
    minimum_is_zero = gibbs_term.subs(_t, 1) == 0
    convex = sp.diff(gibbs_term, _t, 2).is_positive is True
    # 2. log n − H(p) = Σ p_i f(1/(n p_i)) whenever Σ p_i = 1 (an identity): so
    #    H ≤ log n, with equality iff every 1/(n p_i) = 1, i.e. p is uniform.
    #    (Zero entries: H is continuous on the simplex with 0·log 0 = 0, and
    #    restricting to the support gives H ≤ log |support| < log n — the same
    #    identity at the general length |support|; so the scope is "general".)
    identity = sp.expand_log(entropy_gap_formula() - (sp.log(n) - entropy_formula()), force=True)
    holds = reduce_sums(identity, given={summation(p[i], i): 1}) == 0
    return only_stationary_point_is_one and minimum_is_zero and convex and holds


class DistributionCase(NamedTuple):
    """p (B, T): rows are distributions, some with zero entries."""

    p: np.ndarray


@st.composite
def _distributions(draw: st.DrawFn) -> DistributionCase:
    batch, length = draw(st.integers(1, 4)), draw(st.integers(1, 16))
    weights = draw(arrays_in((batch, length), 0.0, 1.0))
    weights[:, draw(st.integers(0, length - 1))] += draw(floats_in(1e-3, 1.0))  # every row has mass
    if draw(st.booleans()):
        weights = weights ** draw(floats_in(1.0, 30.0))  # sharpen toward one-hot
    return DistributionCase(weights / weights.sum(axis=-1, keepdims=True))


def _entropy_bound_numeric(case: DistributionCase) -> None:
    probs = case.p
    length = probs.shape[-1]
    h = entropy(probs)
    if not np.all((h >= -1e-12) & (h <= math.log(length) + 1e-12)):
        raise AssertionError(f"H(p) outside [0, log T = {math.log(length):.6g}]: {h}")
    # Equality at the uniform distribution, to rounding.
    assert_close(entropy(np.full(length, 1.0 / length)), math.log(length), 1e-12, "H(uniform) vs log T")
    # "Only if", quantitatively: Pinsker's inequality KL(p‖u) ≥ ½‖p − u‖₁², and KL(p‖u) = log T − H(p).
    tv_l1 = np.abs(probs - 1.0 / length).sum(axis=-1)
    if not np.all(math.log(length) - h >= 0.5 * tv_l1**2 - 1e-12):
        raise AssertionError("log T − H(p) < ½‖p − u‖₁² (Pinsker): H does not fall away from uniform")
    # The proved identity, evaluated as proved, on rows with full support.
    full = np.all(probs > 1e-12, axis=-1)
    if np.any(full):
        gap = _entropy_gap_numeric()(probs[full].T, length)
        assert_close(math.log(length) - h[full], gap, 1e-10, "log T − H(p) vs Σ p_i f(1/(T p_i))")
    # Units and axes: bits are nats / log 2, and the axis argument is honoured.
    assert_close(entropy(probs, base=2), h / math.log(2), 1e-12, "H in bits vs H in nats / log 2")
    assert_close(entropy(probs.T, axis=0), h, 1e-15, "entropy along axis 0 of the transpose")


register(
    Theorem(
        id="CORE-3",
        mechanism="CORE",
        provenance="[standard]",
        statement="entropy H(p) ≤ log T over T outcomes, with equality iff p is uniform",
        scope="general",
        symbolic=_entropy_bound_symbolic,
        numeric=NumericCheck(check=_entropy_bound_numeric, strategy=_distributions()),
    )
)


# --------------------------------------------------------------------------- LayerNorm

epsilon = sp.Symbol("epsilon", positive=True)


def layernorm_formula() -> dict[str, sp.Expr]:
    """Row mean μ, biased variance v and output y_i = (x_i − μ)/√(v + ε) (unit gain, zero bias)."""
    mean = summation(x[j], j) / n
    variance = summation((x[j] - mean) ** 2, j) / n
    return {"mean": mean, "variance": variance, "y": (x[i] - mean) / sp.sqrt(variance + epsilon)}


@cache
def _layernorm_numeric() -> Callable[..., Any]:
    return sp.lambdify((x, i, n, epsilon), layernorm_formula()["y"], "numpy")


def _layernorm_symbolic() -> bool:
    f = layernorm_formula()
    mean_y = reduce_sums(summation(f["y"], i) / n)
    # With the proved mean 0, var(y) = Σ (y_i − 0)² / n; the index-free 1/(v + ε)
    # comes out of the sum, leaving Σ (x_i − μ)² / n = v.
    var_y = sp.factor_terms(summation((f["y"] - mean_y) ** 2, i) / n)
    expected = f["variance"] / (f["variance"] + epsilon)
    return mean_y == 0 and sp.simplify(canonical(var_y) - canonical(expected)) == 0


class LayerNormCase(NamedTuple):
    """x (B, D), gain and bias (D,), eps > 0."""

    x: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    eps: float


@st.composite
def _layernorm_cases(draw: st.DrawFn) -> LayerNormCase:
    batch, width = draw(st.integers(1, 4)), draw(st.integers(1, 12))
    scale = draw(st.sampled_from([1e-3, 1.0, 100.0]))  # rows whose variance is far below / above eps
    x_ = draw(arrays_in((batch, width), -1.0, 1.0)) * scale + draw(floats_in(-10.0, 10.0))
    gain, bias = draw(arrays_in(width, -3.0, 3.0)), draw(arrays_in(width, -3.0, 3.0))
    return LayerNormCase(x_, gain, bias, draw(st.sampled_from([1e-12, 1e-5, 1e-2, 1.0])))


def _layernorm_numeric_check(case: LayerNormCase) -> None:
    width = case.x.shape[-1]
    unit = {"g": np.ones(width), "b": np.zeros(width)}
    y, _ = layernorm_forward(unit, case.x, case.eps)
    v = case.x.var(axis=-1)
    # Rounding the row mean costs up to ~D·u·max|x| in every centred entry, and LayerNorm
    # divides that by √(v + ε): on a near-constant row with a tiny ε, y is mostly this noise.
    # The identities hold exactly in ℝ; in floating point they hold up to it.
    noise = 8 * width * np.finfo(float).eps * np.abs(case.x).max(axis=-1) / np.sqrt(v + case.eps) + 1e-12
    expected_y = per_index(_layernorm_numeric(), case.x, case.eps)
    assert_close(y, expected_y, noise[:, None], "y vs (x − μ)/√(v + ε)", rtol=1e-12)
    assert_close(y.mean(axis=-1), 0.0, noise, "row mean of y")
    var_noise = 2 * np.abs(y).max(axis=-1) * noise + noise**2
    assert_close(y.var(axis=-1), v / (v + case.eps), var_noise, "row variance of y vs v/(v + ε)", rtol=1e-9)
    # Gain and bias act afterwards, per feature: y = g ⊙ ŷ + b.
    y_affine, _ = layernorm_forward({"g": case.gain, "b": case.bias}, case.x, case.eps)
    assert_close(y_affine, y * case.gain + case.bias, 1e-12, "g ⊙ ŷ + b", rtol=1e-12)


register(
    Theorem(
        id="CORE-4",
        mechanism="CORE",
        provenance="[standard]",
        statement="LayerNorm (unit gain, zero bias) gives rows of mean 0 and variance v/(v + eps), v the input's row variance",
        scope="general",
        symbolic=_layernorm_symbolic,
        numeric=NumericCheck(check=_layernorm_numeric_check, strategy=_layernorm_cases()),
    )
)


# --------------------------------------------------------------------------- GELU

u = sp.Symbol("u", real=True)
gelu_erf_formula = u / 2 * (1 + sp.erf(u / sp.sqrt(2)))
gelu_tanh_formula = u / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (u + sp.Rational(44715, 10**6) * u**3)))

GELU_TANH_GAP = 4.74e-4
"""Bound on |gelu_tanh − gelu_erf|. The gap peaks at 4.73236e-4 at u ≈ ±2.6989
(located here with SymPy's nsolve at 30 digits)."""


@cache
def _gelu_numeric() -> dict[str, Callable[..., Any]]:
    return {
        "erf": sp.lambdify(u, gelu_erf_formula, ["scipy", "numpy"]),
        "tanh": sp.lambdify(u, gelu_tanh_formula, "numpy"),
    }


def _gelu_symbolic() -> bool:
    # Scope "lemma": the odd-part identity is proved for every u; the gap bound is not —
    # SymPy shows the gap is even and vanishes at ∞, and evaluates it at one located
    # stationary point. That the point is the global maximum is left to the numeric check.
    # gelu(u) − gelu(−u) = u for both forms (Φ(u) + Φ(−u) = 1 and tanh is odd);
    # so the gap is even, and one limit and one stationary point cover both sides.
    odd_parts = all(sp.simplify(g - g.subs(u, -u) - u) == 0 for g in (gelu_erf_formula, gelu_tanh_formula))
    gap = gelu_tanh_formula - gelu_erf_formula
    even = sp.simplify(gap - gap.subs(u, -u)) == 0
    vanishes = sp.limit(gap, u, sp.oo) == 0
    # The bound's constant: the gap at its stationary point near 2.7 is below it.
    # (A located maximum, not a certified global one: the numeric check probes the rest.)
    peak = sp.nsolve(sp.diff(gap, u), u, 2.7, prec=30)
    below = abs(gap.subs(u, peak).evalf(30)) <= GELU_TANH_GAP
    return odd_parts and even and vanishes and bool(below)


class GeluCase(NamedTuple):
    """u (N,) inputs, some near the gap's peak at ±2.7."""

    u: np.ndarray


@st.composite
def _gelu_cases(draw: st.DrawFn) -> GeluCase:
    size = draw(st.integers(1, 32))
    values = draw(hnp.arrays(np.float64, size, elements=st.one_of(floats_in(-12.0, 12.0), floats_in(2.6, 2.8))))
    return GeluCase(values * draw(st.sampled_from([1.0, -1.0])))


def _gelu_numeric_check(case: GeluCase) -> None:
    values, formulas = case.u, _gelu_numeric()
    scale = 1.0 + np.abs(values)
    outputs = {form: gelu(values, form) for form in ("erf", "tanh")}
    for form, out in outputs.items():
        assert_close(out / scale, formulas[form](values) / scale, 1e-14, f"gelu {form} vs its formula")
        odd_part = out - gelu(-values, form)
        assert_close(odd_part / scale, values / scale, 1e-14, f"gelu {form}: gelu(u) − gelu(−u) vs u")
    gap = np.max(np.abs(outputs["tanh"] - outputs["erf"]))
    if gap > GELU_TANH_GAP:
        raise AssertionError(f"|gelu_tanh − gelu_erf| = {gap:.6g} > {GELU_TANH_GAP:g}")


register(
    Theorem(
        id="CORE-5",
        mechanism="CORE",
        provenance="[standard]",
        statement=f"GELU: gelu(u) − gelu(−u) = u for both forms, and |gelu_tanh − gelu_erf| ≤ {GELU_TANH_GAP:g}",
        scope="lemma: gelu(u) − gelu(−u) = u; the gap only at its stationary point near 2.7",
        symbolic=_gelu_symbolic,
        numeric=NumericCheck(check=_gelu_numeric_check, strategy=_gelu_cases()),
    )
)


# --------------------------------------------------------------------------- cross-entropy

target = sp.Symbol("t", integer=True)  # the target's position on the vocabulary axis


def cross_entropy_formula() -> sp.Expr:
    """−log softmax(z)_t over a length-n vocabulary."""
    return -sp.log(softmax_formula().subs(i, target))


@cache
def _cross_entropy_numeric() -> Callable[..., Any]:
    return sp.lambdify((z, target, n), cross_entropy_formula(), "numpy")


def _cross_entropy_symbolic() -> bool:
    # −log p_t = log Σ_j exp(z_j) − z_t (an identity) ...
    log_sum_exp = sp.log(summation(sp.exp(z[j]), j)) - z[target]
    identity = sp.simplify(sp.expand_log(cross_entropy_formula(), force=True) - log_sum_exp) == 0
    # ... and, splitting Σ_j exp(z_j) = exp(z_t) + R with R ≥ 0 the other terms,
    # −log p_t = log(1 + R·exp(−z_t)), a log of something ≥ 1: known sign ≥ 0.
    z_t, rest = sp.Symbol("z_t", real=True), sp.Symbol("R", nonnegative=True)
    split = -sp.log(sp.exp(z_t) / (sp.exp(z_t) + rest))
    known_sign = sp.log(1 + rest * sp.exp(-z_t))
    rewritten = sp.simplify(sp.expand_log(split, force=True) - known_sign) == 0
    return identity and rewritten and known_sign.is_nonnegative is True


class CrossEntropyCase(NamedTuple):
    """logits (B, T, V), targets (B, T) in [−1, V) with at least one counted (≠ −1)."""

    logits: np.ndarray
    targets: np.ndarray


@st.composite
def _cross_entropy_cases(draw: st.DrawFn) -> CrossEntropyCase:
    batch, length, vocab = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 10))
    logits = draw(arrays_in((batch, length, vocab), -30.0, 30.0))
    targets = draw(hnp.arrays(np.int64, (batch, length), elements=st.integers(-1, vocab - 1)))
    targets[0, 0] = draw(st.integers(0, vocab - 1))
    return CrossEntropyCase(logits, targets)


def _cross_entropy_numeric_check(case: CrossEntropyCase) -> None:
    loss, _ = cross_entropy_forward(case.logits, case.targets)
    formula = _cross_entropy_numeric()
    vocab = case.logits.shape[-1]
    counted = [(row, int(t)) for row, t in zip(case.logits.reshape(-1, vocab), case.targets.reshape(-1)) if t != -1]
    per_position = [formula(row, t, vocab) for row, t in counted]
    if not float(loss) >= 0.0:
        raise AssertionError(f"loss {float(loss)!r} is not ≥ 0")
    assert_close(loss, np.mean(per_position), 1e-12, "loss vs mean of −log p_target over counted positions", rtol=1e-12)


register(
    Theorem(
        id="CORE-6",
        mechanism="CORE",
        provenance="[standard]",
        statement="cross-entropy is −log p_target = logsumexp(z) − z_target ≥ 0, averaged over non-ignored targets",
        scope="general",
        symbolic=_cross_entropy_symbolic,
        numeric=NumericCheck(check=_cross_entropy_numeric_check, strategy=_cross_entropy_cases()),
    )
)


# --------------------------------------------------------------------------- attention


class AttentionCase(NamedTuple):
    """x (B, T, D) with D = H·d_h, attention params, an optional additive bias (B, H, T, T)."""

    x: np.ndarray
    params: dict
    n_heads: int
    causal: bool
    bias: np.ndarray | None
    temperature: float


@st.composite
def _attention_cases(draw: st.DrawFn, identity_output: bool) -> AttentionCase:
    batch, length = draw(st.integers(1, 2)), draw(st.integers(1, 6))
    heads, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    width = heads * head_dim
    params = {name: draw(arrays_in((width, width), -2.0, 2.0)) for name in ("w_q", "w_k", "w_v", "w_o")}
    params |= {name: draw(arrays_in(width, -1.0, 1.0)) for name in ("b_q", "b_k", "b_v", "b_o")}
    if identity_output:
        # W_o = I and b_o = 0 make the output the heads' outputs side by side.
        params["w_o"], params["b_o"] = np.eye(width), np.zeros(width)
    bias = draw(st.none() | arrays_in((batch, heads, length, length), -5.0, 5.0))
    return AttentionCase(
        x=draw(arrays_in((batch, length, width), -3.0, 3.0)),
        params=params,
        n_heads=heads,
        causal=draw(st.booleans()),
        bias=bias,
        temperature=draw(st.sampled_from([0.25, 1.0, 4.0])),
    )


def convex_combination_formula() -> tuple[sp.Expr, sp.Symbol]:
    """(Σ_i a_i v_i, m) with v_i = m + d_i, d_i ≥ 0: every value is at least m (their minimum)."""
    m = sp.Symbol("m", real=True)
    return summation(a[i] * (m + d[i]), i), m


def _convex_symbolic() -> bool:
    # With a_i > 0 and Σ a_i = 1 (the pattern rows, CORE-2):
    # Σ a_i v_i − m reduces to Σ a_i d_i, a sum of nonnegative terms: out ≥ min.
    # The upper bound is the same statement for −v (max v − out ≥ 0).
    out, m = convex_combination_formula()
    above_min = reduce_sums(out - m, given={summation(a[i], i): 1})
    return above_min == canonical(summation(a[i] * d[i], i)) and above_min.is_nonnegative is True


def _values(case: AttentionCase) -> np.ndarray:
    """v (B, H, T, d_h) computed from the parameters, independently of the layer."""
    batch, length, width = case.x.shape
    v = case.x @ case.params["w_v"] + case.params["b_v"]
    return v.reshape(batch, length, case.n_heads, width // case.n_heads).transpose(0, 2, 1, 3)


def _convex_numeric(case: AttentionCase) -> None:
    out, cache_ = attention_forward(
        case.params, case.x, case.n_heads, causal=case.causal, bias=case.bias, temperature=case.temperature
    )
    pattern, v = cache_["pattern"], _values(case)
    batch, heads, length, head_dim = v.shape
    visible = np.tril(np.ones((length, length), dtype=bool)) if case.causal else np.ones((length, length), dtype=bool)
    if not (np.all(pattern >= 0) and np.all(pattern[..., ~visible] == 0.0)):
        raise AssertionError("pattern has a negative or a non-zero masked weight")
    assert_close(pattern.sum(axis=-1), 1.0, 1e-12, "pattern row sums")
    heads_out = out.reshape(batch, length, heads, head_dim).transpose(0, 2, 1, 3)  # (B, H, T, d_h)
    scale = 1.0 + np.max(np.abs(v))
    assert_close(heads_out / scale, (pattern @ v) / scale, 1e-12, "out vs Σ_s pattern[t, s] v_s")
    for t in range(length):
        keys = visible[t]
        low, high = v[:, :, keys].min(axis=2), v[:, :, keys].max(axis=2)  # (B, H, d_h)
        tol = 1e-12 * scale
        if not (np.all(heads_out[:, :, t] >= low - tol) and np.all(heads_out[:, :, t] <= high + tol)):
            raise AssertionError(f"position {t}: an output coordinate leaves [min, max] of the visible values")


register(
    Theorem(
        id="CORE-7",
        mechanism="CORE",
        provenance="[standard]",
        statement="attention output is a convex combination of the visible values: min_s v_s ≤ out_t ≤ max_s v_s per coordinate",
        scope="general",
        symbolic=_convex_symbolic,
        numeric=NumericCheck(check=_convex_numeric, strategy=_attention_cases(identity_output=True)),
    )
)


def causal_outputs(length: int) -> list[sp.Expr]:
    """Scalar causal attention over ``length`` positions, in SymPy: [out_0, ..., out_{length-1}].

    s_q_k stands for the score of query q on key k (q_q·k_k / √d_h, a function
    of x_q and x_k) and v_k for the value at k (a function of x_k); keys k > q
    get the logit −∞, and SymPy evaluates exp(−∞) to 0.
    """
    values = [sp.Symbol(f"v_{key}", real=True) for key in range(length)]
    outputs = []
    for query in range(length):
        logits = [sp.Symbol(f"s_{query}_{key}", real=True) if key <= query else -sp.oo for key in range(length)]
        weights = [sp.exp(logit) for logit in logits]
        outputs.append(sum(w * v for w, v in zip(weights, values)) / sum(weights))
    return outputs


def _causal_symbolic() -> bool:
    # Scope "instance": T = 1 … 5, not every T (the numeric check draws T ≤ 6).
    # For every length up to 5, out_q's free symbols are among s_q_k and v_k with k ≤ q:
    # nothing computed from a later token appears in it.
    for length in range(1, 6):
        for query, out in enumerate(causal_outputs(length)):
            allowed = {sp.Symbol(f"s_{query}_{key}", real=True) for key in range(query + 1)}
            allowed |= {sp.Symbol(f"v_{key}", real=True) for key in range(query + 1)}
            if not out.free_symbols <= allowed or out.has(sp.nan):
                return False
    return True


class CausalCase(NamedTuple):
    """An attention case, a cut position and replacement inputs for the positions after it."""

    case: AttentionCase
    cut: int
    future: np.ndarray


@st.composite
def _causal_cases(draw: st.DrawFn) -> CausalCase:
    case = draw(_attention_cases(identity_output=False))._replace(causal=True)
    cut = draw(st.integers(0, case.x.shape[1] - 1))
    return CausalCase(case, cut, draw(arrays_in(case.x.shape, -3.0, 3.0)))


def _causal_numeric(example: CausalCase) -> None:
    case, cut = example.case, example.cut
    changed = case.x.copy()
    changed[:, cut + 1 :] = example.future[:, cut + 1 :]
    outputs = [
        attention_forward(case.params, inputs, case.n_heads, causal=True, bias=case.bias, temperature=case.temperature)[0]
        for inputs in (case.x, changed)
    ]
    original, perturbed = (o[:, : cut + 1] for o in outputs)
    assert_close(perturbed, original, 1e-12, f"outputs at positions ≤ {cut} after changing later tokens", rtol=1e-12)


register(
    Theorem(
        id="CORE-8",
        mechanism="CORE",
        provenance="[standard]",
        statement="causal attention: the output at position t does not depend on the tokens after t",
        scope="instance: lengths T = 1 … 5",
        symbolic=_causal_symbolic,
        numeric=NumericCheck(check=_causal_numeric, strategy=_causal_cases()),
    )
)
