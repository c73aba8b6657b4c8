"""LOC-T4: the bias dial in closed form (the default operator). [reconstructed]"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from proofs.locality.concentration import kappa_delta_numeric
from proofs.locality.strategies import (
    LocRow,
    biased_rows,
    loc_rows,
    log_margin_bound,
    log_odds,
    margins,
    row_layout,
    split_sums,
)
from proofs.registry import NumericCheck, Theorem, register
from proofs.toolkit import assert_close, floats_in, slack
from reference.mechanisms.locality import (
    attention_rows,
    locality_bias,
)

# =========================================================================== LOC-T4

_n, _k = sp.symbols("n k", positive=True)  # keys in the row, keys in G*
_delta, _tau = sp.symbols("delta tau", positive=True)
_Delta = sp.Symbol("Delta", real=True)
_S_on, _S_off, _lam, _beta = sp.symbols("S_on S_off lambda beta", positive=True)


def t4_eps() -> sp.Expr:
    """ε(λ) = S_off e^{−λβ/τ}/(S_on + S_off e^{−λβ/τ}) (LOC-T4(a))."""
    g = sp.exp(-_lam * _beta / _tau)
    return _S_off * g / (_S_on + _S_off * g)


def t4_lambda_exact() -> sp.Expr:
    """λ_δ^exact = (τ/β) ln((1 − δ) S_off/(δ S_on)) (LOC-T4(d))."""
    return _tau / _beta * sp.log((1 - _delta) * _S_off / (_delta * _S_on))


@cache
def _t4_numeric_forms() -> dict[str, Callable[..., Any]]:
    args = (_S_on, _S_off, _lam, _beta, _tau)
    return {
        "eps": sp.lambdify(args, t4_eps(), "numpy"),
        "deps": sp.lambdify(args, sp.diff(t4_eps(), _lam), "numpy"),
        "lam_exact": sp.lambdify((_S_on, _S_off, _beta, _tau, _delta), t4_lambda_exact(), "numpy"),
    }


def t4_operator_eps() -> tuple[sp.Expr, dict]:
    """ε of softmax((z − λβ·off)/τ) for blocks of any sizes (k* keys u_j = z_j/τ on G*, m keys v_j off it),
    and the sums S_on, S_off it is to be written in."""
    u, v = sp.IndexedBase("u", real=True), sp.IndexedBase("v", real=True)
    k_on, m_off = sp.symbols("k_on m_off", integer=True, positive=True)
    index = sp.Symbol("j", integer=True)
    # The operator: e^{(z_j − λβ·off_j)/τ} summed over each block (the bias is on the off keys only).
    on = sp.Sum(sp.exp(u[index]), (index, 0, k_on - 1))
    off = sp.Sum(sp.exp(v[index] - _lam * _beta / _tau), (index, 0, m_off - 1))
    # The closed form's sums, of the unbiased e^{z_j/τ}.
    sums = {_S_on: sp.Sum(sp.exp(u[index]), (index, 0, k_on - 1)), _S_off: sp.Sum(sp.exp(v[index]), (index, 0, m_off - 1))}
    return off / (on + off), sums


def _t4_symbolic() -> bool:
    # Scope "general": (a) from the operator for every block size, (c)'s derivative and its sign,
    # and (d)'s exact threshold (the unique root of ε = δ, ε strictly decreasing) — the registered statement.
    eps = t4_eps()
    # (a) the bias −λβ on every off key multiplies S_off by e^{−λβ/τ}: pull it out of the general-length sum.
    operator, sums = t4_operator_eps()
    pulled = (operator - eps.subs(sums)).replace(
        lambda e: isinstance(e, sp.Sum), lambda s: sp.factor_terms(sp.Sum(sp.expand(s.function), *s.limits))
    )
    from_operator = sp.simplify(pulled) == 0
    ratio = sp.simplify(eps / (1 - eps) - _S_off / _S_on * sp.exp(-_lam * _beta / _tau)) == 0
    claimed = -(_beta / _tau) * _S_on * _S_off * sp.exp(_lam * _beta / _tau) / (_S_on * sp.exp(_lam * _beta / _tau) + _S_off) ** 2
    derivative = sp.simplify(sp.diff(eps, _lam) - claimed) == 0 and claimed.is_negative is True
    solved = sp.solve(sp.Eq(eps, _delta), _lam)
    threshold = len(solved) == 1 and sp.simplify(sp.expand_log(solved[0] - t4_lambda_exact(), force=True)) == 0
    vanishes = sp.limit(eps, _lam, sp.oo) == 0
    # Margin form ≥ exact: with S_off/S_on = r ≤ (n − k*)e^{−Δ/τ}, λ_δ − λ_δ^exact = (τ/β) ln((n − k*)e^{−Δ/τ}/r) ≥ 0.
    r = sp.Symbol("r", positive=True)
    margin_form = (_tau * sp.log((_n - _k) * (1 - _delta) / _delta) - _Delta) / _beta
    exact_r = t4_lambda_exact().subs(_S_off, r * _S_on)
    difference = margin_form - exact_r - _tau / _beta * sp.log((_n - _k) * sp.exp(-_Delta / _tau) / r)
    gap = sp.simplify(sp.expand_log(difference, force=True)) == 0
    # The design rule's numbers (τ = 1, n − k* = 127, Δ_min = 0): β = 8 ⇒ ε ≤ 0.0409; δ = 0.01 needs β ≥ 9.44.
    bound = 127 * sp.exp(-8) / (1 + 127 * sp.exp(-8))
    design = abs(sp.N(bound) - sp.Rational(409, 10000)) < sp.Rational(5, 100000)
    design = design and abs(sp.N(sp.log(127 * 99)) - sp.Rational(944, 100)) < sp.Rational(5, 1000)
    return from_operator and ratio and derivative and threshold and vanishes and gap and bool(design)


class T4Case(NamedTuple):
    row: LocRow
    eta: float


@st.composite
def _t4_cases(draw: st.DrawFn) -> T4Case:
    return T4Case(draw(loc_rows()), draw(floats_in(1e-6, 0.1)))





def _t4_numeric(case: T4Case) -> None:
    row = case.row
    forms = _t4_numeric_forms()
    s_on, s_off = split_sums(row)
    shift = row.lam * row.beta
    a = biased_rows(row, [shift])[0]
    eps = a[row.off].sum()
    # (a) the closed form of ε(λ), evaluated as proved (β = s/λ enters only through λβ).
    expected = float(forms["eps"](s_on, s_off, 1.0, shift, row.tau))
    assert_close(eps, expected, 1e-290, "T4(a) ε vs S_off e^{−λβ/τ}/(S_on + S_off e^{−λβ/τ})", rtol=1e-9)
    # (b) the margin bound, in log form.
    m = margins(row)
    fine, crude = log_margin_bound(m, shift, row.tau)
    lhs = log_odds(a, row.off)
    if lhs > fine + slack(fine) or fine > crude + slack(crude):
        raise AssertionError(f"T4(b): log(ε/(1−ε)) = {lhs:.12g}, log R = {fine:.12g}, log (n−k*)e^(−(s+Δ)/τ) = {crude:.12g}")
    # (c) dε/dλ < 0 when S_off > 0, and it is the derivative of what A3 computes.
    if row.beta > 0.05 and 1e-6 < eps < 1 - 1e-6:
        h = 1e-4 * row.tau / row.beta  # a log-odds step of 10⁻⁴: truncation error ~10⁻⁸ relative
        slope = float(forms["deps"](s_on, s_off, row.lam, row.beta, row.tau))
        pair = biased_rows(row, [(row.lam + h) * row.beta, (row.lam - h) * row.beta])
        numeric = (pair[0][row.off].sum() - pair[1][row.off].sum()) / (2 * h)
        if not slope < 0:
            raise AssertionError(f"T4(c): dε/dλ = {slope!r} is not < 0")
        assert_close(numeric, slope, 1e-9 + 1e-4 * abs(slope), "T4(c) dε/dλ vs a central difference of A3")
    # (d) the exact threshold, and the margin form above it; just below, ε > δ.
    if row.beta >= 0.1:
        exact = float(forms["lam_exact"](s_on, s_off, row.beta, row.tau, row.delta))
        margin = (float(kappa_delta_numeric()(len(row.z), m["k_star"], row.delta, row.tau, m["delta"]))) / row.beta
        if margin < exact - 1e-12 * (1 + abs(exact)):
            raise AssertionError(f"T4(d): margin-form λ_δ = {margin!r} below the exact λ_δ = {exact!r}")
        above = biased_rows(row, [(max(exact, 0.0) + case.eta) * row.beta, max(margin, 0.0) * row.beta])
        if above[0][row.off].sum() > row.delta or above[1][row.off].sum() > row.delta * (1 + 1e-12):
            raise AssertionError(f"T4(d): ε > δ = {row.delta:.6g} at λ ≥ λ_δ (exact {exact:.9g}, margin {margin:.9g})")
        if exact - case.eta >= 0:
            below = biased_rows(row, [(exact - case.eta) * row.beta])[0]
            if not below[row.off].sum() > row.delta:
                raise AssertionError(
                    f"T4(d) just below λ_δ^exact = {exact:.9g}: ε = {below[row.off].sum():.9g} ≤ δ = {row.delta:.6g}"
                )
    # (e) the bias rescales the blocks and keeps their insides: a_G*/(1−ε) and a_off/ε are λ-free.
    plain = attention_rows(row.z[None], temperature=row.tau)[0]
    assert_close(a[row.on] / a[row.on].sum(), plain[row.on] / plain[row.on].sum(), 1e-300, "T4(e) inside G*", rtol=1e-9)
    if eps > 1e-200:
        assert_close(a[row.off] / eps, plain[row.off] / plain[row.off].sum(), 1e-300, "T4(e) off G*", rtol=1e-9)
    # λ = 0 is the standard attention bit for bit; β = ∞ is the softmax restricted to G*.
    layout = row_layout(row.blocks, row.target)
    if locality_bias(layout, 0.0, row.beta) is not None:
        raise AssertionError("λ = 0 must add no bias at all")
    if not np.array_equal(attention_rows(row.z[None], bias=np.zeros((1, len(row.z))), temperature=row.tau)[0], plain):
        raise AssertionError("a zero bias changed the pattern")
    hard = attention_rows(row.z[None], bias=locality_bias(layout, 1.0, math.inf)[0, 0, :1], temperature=row.tau)[0]
    if np.any(hard[row.off] != 0.0):
        raise AssertionError("β = ∞ leaves mass off G*")
    assert_close(hard[row.on], attention_rows(row.z[row.on][None], temperature=row.tau)[0], 1e-12, "β = ∞ vs softmax on G*")


register(
    Theorem(
        id="LOC-4",
        mechanism="LOC",
        provenance="[reconstructed]",
        statement="bias dial: ε/(1−ε) = (S_off/S_on)e^{−λβ/τ} exactly, dε/dλ < 0, ε ≤ δ ⇔ λ ≥ (τ/β)ln((1−δ)S_off/(δS_on))",
        scope="general",
        symbolic=_t4_symbolic,
        numeric=NumericCheck(check=_t4_numeric, strategy=_t4_cases()),
    )
)
