"""LOC-T5 and T6: the entropy and pointer-fidelity bounds, and the entropy path of the bias dial. [reconstructed]"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import sympy as sp
from hypothesis import strategies as st
from scipy.special import logsumexp

from proofs.locality.strategies import (
    LocRow,
    biased_rows,
    inverse_logits,
    loc_rows,
    log_margin_bound,
    margins,
    split_sums,
)
from proofs.registry import NumericCheck, Theorem, register
from proofs.toolkit import assert_close, bits, floats_in, h2, slack
from reference.mechanisms.locality import (
    attention_rows,
)

# =========================================================================== LOC-T5

_eps, _m, _H_on, _H_off = sp.symbols("epsilon m H_on H_off", positive=True)


def t5_h2(eps: sp.Expr = _eps) -> sp.Expr:
    return -(eps * sp.log(eps) + (1 - eps) * sp.log(1 - eps)) / sp.log(2)


def t5_f() -> sp.Expr:
    """f(ε) = ε log₂(e m/ε), m = n − k*: the excess entropy bound (LOC-T5(b))."""
    return _eps * sp.log(sp.E * _m / _eps, 2)


def t5_phi() -> sp.Expr:
    """φ(ε) = h₂(ε) + (1 − ε)H_on + εH_off: the entropy along the bias dial's path (LOC-T5(d))."""
    return t5_h2() + (1 - _eps) * _H_on + _eps * _H_off


@cache
def _t5_numeric_forms() -> dict[str, Callable[..., Any]]:
    return {
        "h2_plus": sp.lambdify((_eps, _m), t5_h2() + _eps * sp.log(_m, 2), "numpy"),
        "f": sp.lambdify((_eps, _m), t5_f(), "numpy"),
        "eps_star": sp.lambdify((_H_on, _H_off), sp.solve(sp.diff(t5_phi(), _eps), _eps)[0], "numpy"),
        "slope": sp.lambdify((_eps, _H_on, _H_off), sp.log((1 - _eps) / _eps, 2) - _H_on + _H_off, "numpy"),
    }


def _t5_symbolic() -> bool:
    # Scope "lemma": (b) in general, (d)'s ε° and concavity in general, (a)'s grouping identity at 2 + 2 keys.
    a = sp.symbols("a1:5", positive=True)
    on, off = a[0] + a[1], a[2] + a[3]
    lhs = -sum(x * sp.log(x) for x in a)
    rhs = (
        -(on * sp.log(on) + off * sp.log(off))
        - on * sum(x / on * sp.log(x / on) for x in a[:2])
        - off * sum(x / off * sp.log(x / off) for x in a[2:])
    )
    grouping = sp.simplify(sp.expand_log(lhs - rhs, force=True)) == 0
    g = _eps + (1 - _eps) * sp.log(1 - _eps)
    g_ok = g.subs(_eps, 0) == 0 and sp.simplify(sp.diff(g, _eps) + sp.log(1 - _eps)) == 0
    # (b): f − (h₂ + ε log₂ m) = g(ε)/ln 2 ≥ 0.
    bound_b = sp.simplify(sp.expand_log(t5_f() - t5_h2() - _eps * sp.log(_m, 2) - g / sp.log(2), force=True)) == 0
    vanishing = sp.limit(t5_f(), _eps, 0, "+") == 0
    phi = t5_phi()
    stationary = sp.solve(sp.diff(phi, _eps), _eps)
    eps_star = len(stationary) == 1 and sp.simplify(stationary[0] - 1 / (1 + 2 ** (_H_on - _H_off))) == 0
    concave = sp.simplify(sp.diff(phi, _eps, 2) - 1 / (_eps * (_eps - 1) * sp.log(2))) == 0
    return grouping and g_ok and bound_b and vanishing and eps_star and concave


# The registered counter-instance: entropy *rises* with λ while block fidelity rises too.
T5_COUNTER = {
    "eps": (0.9971, 0.9858, 0.9335, 0.7391, 0.3638, 0.1035),
    "bits": (0.0460, 0.1925, 0.7521, 2.3938, 4.7630, 5.8590),
}


@cache
def t5_counter_instance() -> tuple[np.ndarray, np.ndarray]:
    """n = 65: G* = 64 keys at logit 0, one off key at 10; τ = 1, β = 8; λ = 0, 0.2, …, 1 -> (ε, H bits)."""
    z = np.r_[np.zeros(64), 10.0]
    row = LocRow(z, np.r_[np.zeros(64, int), 1], 0, 1.0, 0.0, 8.0, 0.0, 0.1)
    a = biased_rows(row, 8.0 * np.linspace(0, 1, 6))
    return a[:, row.off].sum(axis=1), np.array([bits(p) for p in a])


class T5Case(NamedTuple):
    row: LocRow
    dirichlet: np.ndarray
    log_eps: float
    m: int
    log_a: np.ndarray


@st.composite
def _t5_cases(draw: st.DrawFn) -> T5Case:
    row = draw(loc_rows())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = len(row.z)
    log_a = draw(floats_in(0.1, 10.0)) * rng.standard_normal(n)
    return T5Case(row, rng.dirichlet(np.full(n, draw(floats_in(0.01, 10.0)))), draw(floats_in(-12.0, 0.0)),
                  draw(st.sampled_from([1, 5, 100, 10_000])), log_a - logsumexp(log_a))


def t5_check_row(a: np.ndarray, row: LocRow, what: str, r: float | None = None) -> None:
    """(a), (b) on one row a; (c) with the given R (ε̄ = R/(1 + R))."""
    forms = _t5_numeric_forms()
    eps, on = a[row.off].sum(), a[row.on].sum()
    k_star, m = int(row.on.sum()), int(row.off.sum())
    h = bits(a)
    bound_a = h2(eps, on) + on * math.log2(k_star) + eps * math.log2(m)
    if h > bound_a + slack(h):
        raise AssertionError(f"{what}: T5(a) H = {h:.15g} > h₂(ε) + (1−ε)log₂k* + ε log₂(n−k*) = {bound_a:.15g}")
    excess = float(forms["f"](eps, m)) if eps > 0 else 0.0
    if h - math.log2(k_star) > excess + slack(h):
        raise AssertionError(f"{what}: T5(b) H − log₂k* = {h - math.log2(k_star):.15g} > f(ε) = {excess:.15g}")
    if r is not None and math.isfinite(r):
        eps_bar = r / (1 + r)
        bound_c = math.log2(k_star) + (float(forms["f"](eps_bar, m)) if eps_bar > 0 else 0.0)
        if h > bound_c + slack(h):
            raise AssertionError(f"{what}: T5(c) H = {h:.15g} > log₂k* + ε̄ log₂(e(n−k*)/ε̄) = {bound_c:.15g}")


def _t5_numeric(case: T5Case) -> None:
    row, forms = case.row, _t5_numeric_forms()
    # (b) as a function: h₂(ε) + ε log₂ m ≤ f(ε) on ε ∈ [10⁻¹², 1], m ∈ {1, 5, 100, 10⁴}.
    eps = 10.0**case.log_eps
    lhs, rhs = float(forms["h2_plus"](min(eps, 1 - 1e-16), case.m)), float(forms["f"](eps, case.m))
    if lhs > rhs + slack(rhs):
        raise AssertionError(f"T5(b): h₂(ε) + ε log₂ m = {lhs!r} > f(ε) = {rhs!r} at ε = {eps:.3g}, m = {case.m}")
    # (a), (b) on a Dirichlet row; (a)–(c) on an A3 row (T4's R) and a theory-mode stationary point (T3's R_κ).
    t5_check_row(case.dirichlet, row, "Dirichlet row")
    s_on, s_off = split_sums(row)
    shift = row.lam * row.beta
    a = biased_rows(row, [shift])[0]
    t5_check_row(a, row, "A3 row", s_off / s_on * math.exp(-shift / row.tau))
    stationary = np.exp(case.log_a)
    z = inverse_logits(stationary, row.blocks, row.target, row.kappa, row.tau, "sqrt_size")
    fine, _ = log_margin_bound(margins(row._replace(z=z)), row.kappa, row.tau)
    t5_check_row(stationary, row, "theory-mode row", math.exp(min(fine, 700.0)))
    # (d) the entropy path of the bias dial: the identity, then monotone iff ε(0) ≤ ε°.
    plain = attention_rows(row.z[None], temperature=row.tau)[0]
    h_on = bits(plain[row.on] / plain[row.on].sum())
    h_off = bits(plain[row.off] / plain[row.off].sum()) if plain[row.off].sum() > 0 else 0.0
    eps_a, on_a = a[row.off].sum(), a[row.on].sum()
    assert_close(bits(a), h2(eps_a, on_a) + on_a * h_on + eps_a * h_off, 1e-12, "T5(d) H(λ) path identity", rtol=1e-9)
    eps0, eps_star = plain[row.off].sum(), float(forms["eps_star"](h_on, h_off))
    if row.beta > 0:
        grid = biased_rows(row, row.beta * np.linspace(0, 1, 51))
        path = np.array([bits(p) for p in grid])
        if eps0 <= eps_star and np.any(np.diff(path) > 1e-10 * (1 + path[:-1])):
            raise AssertionError(f"T5(d): ε(0) = {eps0:.6g} ≤ ε° = {eps_star:.6g} but H rises along λ")
        if eps0 > eps_star + 1e-6 and 1e-12 < eps0 < 1 - 1e-12:
            d_eps = -(row.beta / row.tau) * eps0 * plain[row.on].sum()  # dε/dλ at 0 (T4(c))
            slope = float(forms["slope"](eps0, h_on, h_off)) * d_eps
            if not slope > 0:
                raise AssertionError(f"T5(d): ε(0) > ε° but the closed-form dH/dλ at 0 is {slope!r}")
    # The registered counter-instance (n = 65, β = 8).
    eps_path, h_path = t5_counter_instance()
    assert_close(eps_path, np.array(T5_COUNTER["eps"]), 5e-5, "T5 counter-instance ε")
    assert_close(h_path, np.array(T5_COUNTER["bits"]), 5e-5, "T5 counter-instance H")


register(
    Theorem(
        id="LOC-5",
        mechanism="LOC",
        provenance="[reconstructed]",
        statement="entropy: H(a) − log₂k* ≤ ε log₂(e(n−k*)/ε) → 0 exponentially in κ/τ; "
        "on the bias path H(λ) falls iff ε(0) ≤ 1/(1+2^{H_on−H_off})",
        scope="lemma: (b), (d)'s ε° and concavity; (a)'s grouping identity at 2 + 2 keys",
        symbolic=_t5_symbolic,
        numeric=NumericCheck(check=_t5_numeric, strategy=_t5_cases()),
    )
)


# =========================================================================== LOC-T6

_S_on, _S_off, _tau = sp.symbols("S_on S_off tau", positive=True)  # as in LOC-T4
_x, _y = sp.symbols("x y", nonnegative=True)


def _t6_symbolic() -> bool:
    # Scope "lemma": (a)'s identity and the inequality behind (b); (c) (PF rises with λ) is numeric only.
    # (b): 1 − 1/((1 + x)(1 + y)) ≤ x + y, the gap being (x² + xy + y² + x²y + xy²)/((1 + x)(1 + y)) ≥ 0.
    gap = sp.factor(sp.together(_x + _y - (1 - 1 / ((1 + _x) * (1 + _y)))))
    numerator, denominator = sp.fraction(gap)
    expected = _x**2 + _x * _y + _y**2 + _x**2 * _y + _x * _y**2
    sign = sp.expand(numerator - expected) == 0 and sp.expand(denominator - (1 + _x) * (1 + _y)) == 0
    # (a): a_t = e_t/(S_on + S_off g) = (1 − ε)·e_t/S_on.
    e_t, g = sp.symbols("e_t g", positive=True)
    one_minus_eps = _S_on / (_S_on + _S_off * g)
    identity = sp.simplify(e_t / (_S_on + _S_off * g) - one_minus_eps * e_t / _S_on) == 0
    # (b) first part: with k* − 1 rivals at margin Δ_in, softmax_t ≥ 1/(1 + (k* − 1)e^{−Δ_in/τ}).
    k, d = sp.symbols("k d", positive=True)
    rivals = sp.simplify(1 / (1 + (k - 1) * sp.exp(-d / _tau)) - sp.exp(d / _tau) / (sp.exp(d / _tau) + (k - 1))) == 0
    return sign and identity and rivals and expected.is_nonnegative is True


class T6Case(NamedTuple):
    row: LocRow
    subset_seed: int
    log_a: np.ndarray


@st.composite
def _t6_cases(draw: st.DrawFn) -> T6Case:
    row = draw(loc_rows())
    log_a = draw(floats_in(0.1, 10.0)) * np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(len(row.z))
    return T6Case(row, draw(st.integers(0, 2**32 - 1)), log_a - logsumexp(log_a))


def t6_check_row(a: np.ndarray, z: np.ndarray, row: LocRow, targets: np.ndarray, r: float, what: str) -> None:
    """(a) PF_T = (1 − ε) Σ_T softmax(z_G*/τ); (b) for the top target t, both bounds; block fidelity ≥ 1/(1 + R)."""
    on, off = row.on, row.off
    eps, one_minus = a[off].sum(), a[on].sum()
    inside = attention_rows(z[on][None], temperature=row.tau)[0]
    pf = a[targets].sum()
    assert_close(pf, one_minus * inside[targets[on]].sum(), 1e-300, f"{what}: T6(a) PF_T", rtol=1e-9)
    # (b) with a single target t (the best key of G*) and its margin Δ_in over the rest of G*.
    members = np.flatnonzero(on)
    t = members[np.argmax(z[members])]
    rest = members[members != t]
    y = (len(rest)) * math.exp(-(z[t] - z[rest].max()) / row.tau) if rest.size else 0.0
    pf_t = a[t]
    if pf_t < one_minus / (1 + y) * (1 - 1e-12):
        raise AssertionError(f"{what}: T6(b) PF_t = {pf_t:.15g} < (1−ε)/(1 + (k*−1)e^(−Δ_in/τ)) = {one_minus / (1 + y):.15g}")
    not_t = a[np.arange(len(a)) != t].sum()  # 1 − PF_t, summed directly
    if math.isfinite(r) and not_t > (r + y) * (1 + 1e-12) + 1e-300:
        raise AssertionError(f"{what}: T6(b) 1 − PF_t = {not_t:.15g} > R + (k*−1)e^(−Δ_in/τ) = {r + y:.15g}")
    if math.isfinite(r) and one_minus < 1 / (1 + r) * (1 - 1e-12):
        raise AssertionError(f"{what}: T6(b) block fidelity 1 − ε = {one_minus:.15g} < 1/(1 + R) = {1 / (1 + r):.15g}")
    del eps


def _t6_numeric(case: T6Case) -> None:
    row = case.row
    rng = np.random.default_rng(case.subset_seed)
    members = np.flatnonzero(row.on)
    chosen = members[rng.random(len(members)) < 0.5]
    targets = np.zeros(len(row.z), bool)
    targets[chosen if chosen.size else members[:1]] = True
    # A3 rows (bias dial) with R = (S_off/S_on)e^{−s/τ}.
    s_on, s_off = split_sums(row)
    shift = row.lam * row.beta
    a = biased_rows(row, [shift])[0]
    t6_check_row(a, row.z, row, targets, s_off / s_on * math.exp(-shift / row.tau), "A3 row")
    # Theory-mode stationary points (A6's fixed points, by the inverse construction) with R = R_κ.
    stationary = np.exp(case.log_a)
    z = inverse_logits(stationary, row.blocks, row.target, row.kappa, row.tau, "sqrt_size")
    fine, _ = log_margin_bound(margins(row._replace(z=z)), row.kappa, row.tau)
    t6_check_row(stationary, z, row, targets, math.exp(min(fine, 700.0)), "theory-mode row")
    # (c) along the bias dial, PF_T never falls, and rises when S_off > 0.
    if row.beta > 0:
        grid = biased_rows(row, row.beta * np.linspace(0, 1, 11))
        pf = grid[:, targets].sum(axis=1)
        if np.any(np.diff(pf) < -1e-15 * (1 + pf[:-1])):
            raise AssertionError("T6(c): pointer fidelity falls as λ rises")
        eps0 = grid[0][row.off].sum()
        if row.beta / row.tau > 1e-3 and 1e-9 < eps0 < 1 - 1e-9 and not pf[-1] > pf[0]:
            raise AssertionError("T6(c): pointer fidelity does not rise although S_off > 0")


register(
    Theorem(
        id="LOC-6",
        mechanism="LOC",
        provenance="[reconstructed]",
        statement="pointer fidelity: PF_T = (1−ε)Σ_T softmax(z_G*/τ) exactly; 1 − PF_t ≤ R + (k*−1)e^{−Δ_in/τ}; PF rises with λ",
        scope="lemma: (a)'s identity, the inequality behind (b); not (c)",
        symbolic=_t6_symbolic,
        numeric=NumericCheck(check=_t6_numeric, strategy=_t6_cases()),
    )
)
