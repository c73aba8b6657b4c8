"""MSA-1 (Procrustes), MSA-2 (diagonal-Gaussian KL), MSA-4 (the geometric loss bounds the diagonal KL), MSA-10 (moment arm).

Specs/04-msma.md §4 T1, T2, T4, T10. Numeric checks call the project's own code: A3
(:func:`~reference.mechanisms.msma.maps.procrustes`), ``kl_diag``, ``kl_gauss`` and the
moment arm (:func:`~reference.mechanisms.msma.fit.moment_map`).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from hypothesis import assume
from hypothesis import strategies as st

from proofs.msma.strategies import exact_moments, haar
from proofs.registry import NumericCheck, Theorem, register
from reference.mechanisms.msma.fit import moment_map
from reference.mechanisms.msma.maps import procrustes
from reference.metrics.information import kl_diag, kl_diag_moments, kl_gauss, kl_gauss_moments

SEEDS = st.integers(0, 2**31 - 1)


# --------------------------------------------------------------------------- MSA-1


def t1_symbolic() -> bool:
    """d = 2: tr(R(θ)ᵀM) = (m11 + m22)cos θ + (m21 − m12)sin θ peaks at √((m11 + m22)² + (m12 − m21)²), and that
    square equals ‖M‖_F² + 2 det M, i.e. (σ1 + σ2)² for det M ≥ 0 — the SO(2) case of (c)."""
    m11, m12, m21, m22, th = sp.symbols("m11 m12 m21 m22 theta", real=True)
    r = sp.Matrix([[sp.cos(th), -sp.sin(th)], [sp.sin(th), sp.cos(th)]])
    m = sp.Matrix([[m11, m12], [m21, m22]])
    tr = sp.expand((r.T * m).trace())
    a, b = m11 + m22, m21 - m12
    peak = sp.sqrt(a**2 + b**2)
    at_peak = tr.subs({sp.cos(th): a / peak, sp.sin(th): b / peak})
    ident = sp.expand(a**2 + b**2 - (m11**2 + m12**2 + m21**2 + m22**2 + 2 * (m11 * m22 - m12 * m21)))
    return bool(sp.simplify(at_peak - peak) == 0 and ident == 0 and sp.simplify(tr - (a * sp.cos(th) + b * sp.sin(th))) == 0)


@st.composite
def matrices(draw):
    """d ∈ [1, 8], N ∈ [d, 120], column scales log-uniform [0.1, 10], Haar R₀, B = AR₀ + ηN(0, 1), η ∈ {0} ∪ [10⁻⁶, 1]."""
    d = draw(st.integers(1, 8))
    n = draw(st.integers(d, 120))
    eta = draw(st.sampled_from([0.0, 1e-6, 1e-3, 0.1, 1.0]))
    return d, n, eta, draw(SEEDS)


def t1_numeric(example) -> None:
    d, n, eta, seed = example
    gen = np.random.default_rng(seed)
    a = gen.standard_normal((n, d)) * np.exp(gen.uniform(np.log(0.1), np.log(10), d))
    r0 = haar(d, gen)
    b = a @ r0 + eta * gen.standard_normal((n, d))
    p = procrustes(a - a.mean(0), b - b.mean(0))
    r = p["R"]
    ac, bc = a - a.mean(0), b - b.mean(0)
    assert np.max(np.abs(r.T @ r - np.eye(d))) <= 1e-12, "R*ᵀR* ≠ I"
    obj = np.sum((ac @ r - bc) ** 2)
    scale = np.sum(ac * ac) + np.sum(bc * bc)
    for _ in range(8):
        assert obj <= np.sum((ac @ haar(d, gen) - bc) ** 2) + 1e-12 * scale, "a Haar draw beats R*"
    m = ac.T @ bc
    sym = r.T @ m
    assert np.max(np.abs(sym - sym.T)) <= 1e-10 * max(np.linalg.norm(m), 1e-300), "R*ᵀM is not symmetric"
    assert np.min(np.linalg.eigvalsh(0.5 * (sym + sym.T))) >= -1e-10 * max(np.linalg.norm(m), 1e-300), "R*ᵀM is not PSD"
    assert abs(obj - (scale - 2 * np.sum(p["sv"]))) <= 1e-9 * scale, "minimum formula"
    if eta == 0.0 and np.linalg.cond(ac) <= 1e3 and n > d:
        assert np.max(np.abs(r - r0)) <= 1e-8, "planted rotation not recovered"


# --------------------------------------------------------------------------- MSA-2


def t2_symbolic() -> bool:
    """(a) per coordinate: E_{P₁}[ln p₁ − ln p₂] = ½[s₁/s₂ + (μ₁ − μ₂)²/s₂ − 1 + ln(s₂/s₁)] (E x = μ₁, E x² = s₁ + μ₁²);
    (b) h(r) = r − 1 − ln r has h(1) = 0, h′ = 1 − 1/r, h″ = 1/r² > 0; (f) the 45° instance exactly."""
    x, m1, m2 = sp.symbols("x mu1 mu2", real=True)
    s1, s2, r = sp.symbols("s1 s2 r", positive=True)
    lp = lambda m, s: -sp.log(2 * sp.pi * s) / 2 - (x - m) ** 2 / (2 * s)  # noqa: E731
    diff = sp.expand(lp(m1, s1) - lp(m2, s2))
    poly = sp.Poly(diff, x)
    coeffs = {k[0]: v for k, v in zip(poly.monoms(), poly.coeffs())}
    expect = coeffs.get(2, 0) * (s1 + m1**2) + coeffs.get(1, 0) * m1 + coeffs.get(0, 0)
    k = sp.Rational(1, 2) * (s1 / s2 + (m1 - m2) ** 2 / s2 - 1 + sp.log(s2 / s1))
    ok_a = sp.simplify(sp.expand_log(expect - k, force=True)) == 0
    h = r - 1 - sp.log(r)
    ok_b = h.subs(r, 1) == 0 and sp.simplify(sp.diff(h, r) - (1 - 1 / r)) == 0 and sp.simplify(sp.diff(h, r, 2) - 1 / r**2) == 0
    before = sp.Rational(1, 2) * (4 - 1 - sp.log(4)) + sp.Rational(1, 2) * (1 - 1 - sp.log(1))
    after = 2 * sp.Rational(1, 2) * (sp.Rational(5, 2) - 1 - sp.log(sp.Rational(5, 2)))
    ok_f = sp.simplify(before - sp.Rational(1, 2) * (3 - sp.log(4))) == 0
    ok_f = ok_f and sp.simplify(after - (sp.Rational(3, 2) - sp.log(sp.Rational(5, 2)))) == 0
    return bool(ok_a and ok_b and ok_f)


def t2_numeric(example) -> None:
    d, seed = example
    gen = np.random.default_rng(seed)
    a = gen.standard_normal((64, d)) * np.exp(gen.uniform(-1, 1, d)) + gen.normal(0, 1, d)
    b = gen.standard_normal((80, d)) * np.exp(gen.uniform(-1, 1, d)) + gen.normal(0, 1, d)
    k0 = kl_diag(a, b, eps=0.0)
    assert k0 >= -1e-12, "(b) K < 0"
    assert kl_diag(a, b, eps=float(gen.uniform(0, 1))) <= k0 + 1e-12 * max(1.0, k0), "(c) ε raised K"
    scale, perm, shift = gen.uniform(0.5, 2, d) * gen.choice([-1, 1], d), gen.permutation(d), gen.normal(0, 1, d)
    ka = kl_diag(a[:, perm] * scale + shift, b[:, perm] * scale + shift, eps=0.0)
    assert abs(ka - k0) <= 1e-10 * max(k0, 1e-12), "(d) coordinate map changed K"
    r = haar(d, gen)
    kg = kl_gauss(a, b, dim=d)
    assert abs(kl_gauss(a @ r, b @ r, dim=d) - kg) <= 1e-8 * max(kg, 1e-12), "(e) kl_gauss not rotation invariant"
    if d == 2:
        e1 = exact_moments(500, np.zeros(2), np.diag([4.0, 1.0]), gen)
        e2 = exact_moments(500, np.zeros(2), np.eye(2), gen)
        rot = np.array([[1, -1], [1, 1]]) / math.sqrt(2)
        assert abs(kl_diag(e1 @ rot, e2 @ rot, eps=0.0) - (1.5 - math.log(2.5))) <= 1e-10, "(f) instance"


# --------------------------------------------------------------------------- MSA-4


def _phi(u):
    return u * u - 2 * u - 2 * np.log1p(-u)


def t4_symbolic() -> bool:
    """φ(u) = u² − 2u − 2ln(1 − u) = 2u² + 2u³/3 + u⁴/2 + …; g(1 − u) − g(1 + u) = 4(artanh u − u) for g(r) = r² − 1 − 2ln r;
    2φ(½) = ln 16 − 3/2 (the constant C of (b))."""
    u = sp.Symbol("u", positive=True)
    phi = u**2 - 2 * u - 2 * sp.log(1 - u)
    ser = sp.series(phi, u, 0, 7).removeO()
    ok1 = sp.simplify(ser - (2 * u**2 + 2 * u**3 / 3 + u**4 / 2 + 2 * u**5 / 5 + u**6 / 3)) == 0
    g = lambda r: r**2 - 1 - 2 * sp.log(r)  # noqa: E731
    gap = (g(1 - u) - g(1 + u) - 4 * (sp.atanh(u) - u)).rewrite(sp.log)
    ok2 = sp.simplify(sp.expand_log(gap, force=True)) == 0
    ok3 = sp.simplify(2 * phi.subs(u, sp.Rational(1, 2)) - (sp.log(16) - sp.Rational(3, 2))) == 0
    return bool(ok1 and ok2 and ok3)


def t4_numeric(example) -> None:
    d, n, err_scale, correlated, seed = example
    gen = np.random.default_rng(seed)
    y = gen.standard_normal((n, d)) * np.exp(gen.uniform(-1, 1, d)) + gen.normal(0, 2, d)
    e = err_scale * gen.standard_normal((n, d)) * y.std(0)
    if correlated:
        e = e + err_scale * (y - y.mean(0)) * gen.uniform(-1, 1, d)
    e = e + err_scale * gen.normal(0, 1, d) * y.std(0)
    x = y - e
    b = y.std(0)
    m, u = (y - x).mean(0) / b, (y - x).std(0) / b
    k = kl_diag(x, y, eps=0.0)
    if u.max() < 1:
        bound = 0.5 * np.sum(_phi(u) + m**2)
        assert k <= bound * (1 + 1e-12) + 1e-12, f"(a) K {k} > bound {bound}"
    lgeo = np.sum(np.mean((y - x) ** 2, 0) / b**2)
    if lgeo <= 0.25:
        c = 4 * math.log(2) - 1.5
        assert k <= c * lgeo * (1 + 1e-12) + 1e-12, f"(b) K {k} > C·L_geo {c * lgeo}"
        assert kl_diag(x, y, eps=1e-6) <= c * lgeo * (1 + 1e-12) + 1e-12, "(c) the ε-floored K breaks the bound"


# --------------------------------------------------------------------------- MSA-10


def t10_symbolic() -> bool:
    """1-D: f(X) = μ_Y + (σ_Y/σ_X)(X − μ_X) has mean μ_Y and variance σ_Y², so the KL formula gives 0."""
    mx, my = sp.symbols("mu_x mu_y", real=True)
    sx, sy = sp.symbols("sigma_x sigma_y", positive=True)
    mean_f = my + (sy / sx) * (mx - mx)
    var_f = (sy / sx) ** 2 * sx**2
    k = sp.Rational(1, 2) * (var_f / sy**2 + (mean_f - my) ** 2 / sy**2 - 1 + sp.log(sy**2 / var_f))
    return bool(sp.simplify(k) == 0)


def t10_numeric(example) -> None:
    d, n, seed = example
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((n, d)) @ gen.standard_normal((d, d)) + gen.normal(0, 3, d)
    y = gen.standard_normal((n, d)) * np.exp(gen.uniform(-2, 2, d)) + gen.normal(0, 3, d)
    assume(np.linalg.cond(np.cov(x.T, bias=True).reshape(d, d)) < 1e8)
    y_perm = y[gen.permutation(n)]
    m = moment_map(x, y_perm)
    fx = x @ m["A"] + m["c"]
    assert kl_diag(fx, y, eps=0.0) <= 1e-10, "moment arm leaves a diagonal KL"
    cx, cy = np.cov(x.T, bias=True).reshape(d, d), np.cov(y.T, bias=True).reshape(d, d)
    lx, ly = np.linalg.cholesky(cx), np.linalg.cholesky(cy)
    g = y.mean(0) + np.linalg.solve(lx, (x - x.mean(0)).T).T @ ly.T
    kg = kl_gauss_moments(g.mean(0), np.cov(g.T, bias=True).reshape(d, d), y.mean(0), cy)
    assert kg <= 1e-9 * d, f"full-covariance KL {kg} after the Cholesky map"
    assert kl_diag_moments(np.zeros(1), np.ones(1), np.zeros(1), np.ones(1)) == 0.0


register(Theorem(
    "MSA-1", "MSA", "[classical]",
    "Orthogonal Procrustes: R* = UVᵀ minimises ‖AR − B‖_F over O(d), R*ᵀM is symmetric PSD, a planted rotation is recovered.",
    scope="instance: d = 2 (the SO(2) peak and (σ1 ± σ2)² = ‖M‖² ± 2|det M|)", symbolic=t1_symbolic,
    numeric=NumericCheck(t1_numeric, matrices()),
))
register(Theorem(
    "MSA-2", "MSA", "[classical]",
    "Diagonal-Gaussian KL: the closed form is E[ln p1 − ln p2] ≥ 0, ε never raises it, coordinate maps keep it, rotations do not.",
    scope="lemma: the per-coordinate identity (a), the convexity of h (b) and the 45° instance (f)", symbolic=t2_symbolic,
    numeric=NumericCheck(t2_numeric, st.tuples(st.integers(1, 6), SEEDS)),
))
register(Theorem(
    "MSA-4", "MSA", "[reconstructed]",
    "The normalised squared error bounds the diagonal KL: K ≤ ½Σ[φ(u_j) + m_j²/b_j²]; K ≤ (4 ln 2 − 3/2)·L_geo if L_geo ≤ ¼.",
    scope="lemma: the series of φ, the Minkowski-interval gap g(1−u) − g(1+u) and the constant C", symbolic=t4_symbolic,
    numeric=NumericCheck(t4_numeric, st.tuples(st.integers(1, 40), st.integers(4, 300), st.sampled_from([0.01, 0.1, 0.3, 1.0]),
                                                st.booleans(), SEEDS)),
))
register(Theorem(
    "MSA-10", "MSA", "[reconstructed]",
    "Moment-based KLs are zeroed without pairing: the per-coordinate moment map gives diagonal KL 0, the Cholesky map full KL 0.",
    scope="instance: one coordinate", symbolic=t10_symbolic,
    numeric=NumericCheck(t10_numeric, st.tuples(st.integers(1, 8), st.integers(20, 200), SEEDS)),
))
