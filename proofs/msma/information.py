"""MSA-3 (Gaussian MI), MSA-5 (chaining maps, TV), MSA-6 (DV; the unshuffled form), MSA-7 (InfoNCE ≤ ln N), MSA-8 (maps and MI).

Specs/04-msma.md §4 T3, T5–T8. Numeric checks call the shared estimators
(:mod:`reference.metrics.information`, :mod:`reference.metrics.estimators`) and the code critic
of :mod:`reference.mechanisms.msma.panel`.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from hypothesis import assume
from hypothesis import strategies as st

from proofs.msma.strategies import exact_moments, haar
from proofs.registry import NumericCheck, Theorem, register
from reference.mechanisms.msma.panel import code_critic, code_critic_values
from reference.metrics.estimators import infonce_value, mine_unshuffled
from reference.metrics.information import canonical_correlations, gaussian_mi, mi_gauss, mi_gauss_plugin, mi_hist, mi_ksg

SEEDS = st.integers(0, 2**31 - 1)


# --------------------------------------------------------------------------- MSA-3


def t3_symbolic() -> bool:
    """2 × 2: σx²σy²/det Σ = 1/(1 − ρ²), so ½ ln(det Σx det Σy/det Σ) = −½ ln(1 − ρ²); and the Schur determinant
    identity det [[A, B], [Bᵀ, C]] = det A · det(C − BᵀA⁻¹B) on 2 + 2 symbolic blocks (the general form of (a))."""
    sx, sy = sp.symbols("sigma_x sigma_y", positive=True)
    rho = sp.Symbol("rho", real=True)
    s = sp.Matrix([[sx**2, rho * sx * sy], [rho * sx * sy, sy**2]])
    ok1 = sp.simplify(sx**2 * sy**2 / s.det() - 1 / (1 - rho**2)) == 0
    a = sp.Matrix(2, 2, sp.symbols("a0:4"))
    a = (a + a.T) / 2
    b = sp.Matrix(2, 2, sp.symbols("b0:4"))
    c = sp.Matrix(2, 2, sp.symbols("c0:4"))
    c = (c + c.T) / 2
    m = sp.Matrix(sp.BlockMatrix([[a, b], [b.T, c]]))
    ok2 = sp.simplify(m.det() - a.det() * (c - b.T * a.inv() * b).det()) == 0
    return bool(ok1 and ok2)


def t3_numeric(example) -> None:
    kx, ky, seed = example
    gen = np.random.default_rng(seed)
    g = gen.standard_normal((kx + ky + 2, kx + ky))
    cov = g.T @ g / g.shape[0] + 0.1 * np.eye(kx + ky)
    z = exact_moments(200, gen.normal(0, 1, kx + ky), cov, gen)
    x, y = z[:, :kx], z[:, kx:]
    want = 0.5 * (np.linalg.slogdet(cov[:kx, :kx])[1] + np.linalg.slogdet(cov[kx:, kx:])[1] - np.linalg.slogdet(cov)[1])
    got = mi_gauss_plugin(x, y)
    assert abs(got - want) <= 1e-10 * max(want, 1e-12) + 1e-12, "(c) plug-in ≠ closed form on exact moments"
    a, b = gen.standard_normal((kx, kx)) + 2 * np.eye(kx), gen.standard_normal((ky, ky)) + 2 * np.eye(ky)
    assume(np.linalg.cond(a) <= 1e6 and np.linalg.cond(b) <= 1e6)
    # (b) through the QR-based canonical correlations: the determinant form squares κ (κ(B) = 1.9·10⁵ gives a
    # relative error of 10⁻⁶ in slogdet), the QR form does not, so the spec's rtol 10⁻⁹ at κ ≤ 10⁶ holds there.
    base = gaussian_mi(canonical_correlations(x, y))
    moved = gaussian_mi(canonical_correlations(x @ a + 1.0, y @ b - 2.0))
    assert abs(moved - base) <= 1e-9 * max(base, 1e-12) + 1e-11, "(b) not invariant under invertible affine maps"
    assert abs(base - want) <= 1e-9 * max(want, 1e-12) + 1e-11, "(a) −½Σ ln(1 − ρ²) ≠ the determinant form"
    unc = mi_gauss(x, y, dim=32, bias_correct=False)["mi"]
    assert abs(unc - want) <= 1e-10 * max(want, 1e-12) + 1e-12, "(a) CCA form ≠ determinant form"


# --------------------------------------------------------------------------- MSA-5


def t5_symbolic() -> bool:
    """Pinsker on Bernoulli: g(p) = KL(p‖q) − 2(p − q)² has g(q) = g′(q) = 0 and g″ = 1/(p(1 − p)) − 4 ≥ 0 (p(1 − p) ≤ ¼)."""
    p, q = sp.symbols("p q", positive=True)
    g = p * sp.log(p / q) + (1 - p) * sp.log((1 - p) / (1 - q)) - 2 * (p - q) ** 2
    ok = sp.simplify(g.subs(p, q)) == 0 and sp.simplify(sp.diff(g, p).subs(p, q)) == 0
    ok2 = sp.simplify(sp.diff(g, p, 2) - (1 / (p * (1 - p)) - 4)) == 0
    ok3 = sp.simplify(sp.Rational(1, 4) - p * (1 - p) - (p - sp.Rational(1, 2)) ** 2) == 0
    return bool(ok and ok2 and ok3)


def t5_numeric(example) -> None:
    k, alpha, seed = example
    gen = np.random.default_rng(seed)
    pg, pi, pl = (gen.dirichlet(np.full(k, alpha)) + 1e-9 for _ in range(3))
    pg, pi, pl = pg / pg.sum(), pi / pi.sum(), pl / pl.sum()
    k1 = gen.dirichlet(np.full(k, alpha), size=k) + 1e-9
    k2 = gen.dirichlet(np.full(k, alpha), size=k) + 1e-9
    k1, k2 = k1 / k1.sum(1, keepdims=True), k2 / k2.sum(1, keepdims=True)
    tv = lambda a, b: 0.5 * np.abs(a - b).sum()  # noqa: E731
    kl = lambda a, b: float(np.sum(a * np.log(a / b)))  # noqa: E731
    lhs = tv(pg @ k1 @ k2, pl)
    mid = tv(pg @ k1, pi) + tv(pi @ k2, pl)
    rhs = math.sqrt(kl(pg @ k1, pi) / 2) + math.sqrt(kl(pi @ k2, pl) / 2)
    assert lhs <= mid + 1e-12 and mid <= rhs + 1e-12, f"chain {lhs} ≤ {mid} ≤ {rhs} fails"


# --------------------------------------------------------------------------- MSA-6


def t6_symbolic() -> bool:
    """N = 2: ((eᵃ + eᵇ)/2)·e^{−(a+b)/2} = cosh((a − b)/2), so the unshuffled gap is ln cosh((a − b)/2) ≥ 0."""
    a, b = sp.symbols("a b", real=True)
    return bool(sp.simplify(((sp.exp(a) + sp.exp(b)) / 2 * sp.exp(-(a + b) / 2) - sp.cosh((a - b) / 2)).rewrite(sp.exp)) == 0)


def t6_numeric(example) -> None:
    n, scale, d, seed = example
    gen = np.random.default_rng(seed)
    t = gen.uniform(-scale, scale, n)
    assert mine_unshuffled(t) <= 1e-12, "(b) the unshuffled DV is positive"
    assert abs(mine_unshuffled(np.full(n, t[0]))) <= 1e-12, "(b) equality for constant t"
    x = gen.standard_normal((64, d))
    y = x @ gen.standard_normal((d, d)) + 0.1 * gen.standard_normal((64, d))
    vals = code_critic_values(code_critic(d, gen), x, y)
    assert mine_unshuffled(vals) <= 1e-12, "(b) the code critic's unshuffled value is positive"


# --------------------------------------------------------------------------- MSA-7


def t7_symbolic() -> bool:
    """The Bayes posterior of the positive index: p1q2/(p1q2 + p2q1) = (p1/q1)/(p1/q1 + p2/q2)."""
    p1, p2, q1, q2 = sp.symbols("p1 p2 q1 q2", positive=True)
    return bool(sp.simplify(p1 * q2 / (p1 * q2 + p2 * q1) - (p1 / q1) / (p1 / q1 + p2 / q2)) == 0)


def t7_numeric(example) -> None:
    n, scale, seed = example
    s = np.random.default_rng(seed).uniform(-scale, scale, (n, n))
    assert infonce_value(s) <= math.log(n) + 1e-12, "(a) InfoNCE above ln N"


# --------------------------------------------------------------------------- MSA-8


def t8_symbolic() -> bool:
    """corr(aX + c, bY + e) = sign(ab)·corr(X, Y) (the 1-D form of (a)/(c))."""
    a, b = sp.symbols("a b", nonzero=True, real=True)
    cxy, vx, vy = sp.symbols("c_xy v_x v_y", positive=True)
    lhs = a * b * cxy / sp.sqrt(a**2 * vx * b**2 * vy)
    return bool(sp.simplify(lhs - sp.sign(a * b) * cxy / sp.sqrt(vx * vy)) == 0)


def t8_numeric(example) -> None:
    kx, ky, seed = example
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((300, kx))
    y = x[:, :1] @ gen.standard_normal((1, ky)) + gen.standard_normal((300, ky))
    base = mi_gauss(x, y, dim=32)["mi"]
    a = gen.standard_normal((kx, kx)) + 2 * np.eye(kx)
    assume(np.linalg.cond(a) <= 1e6)
    moved = mi_gauss(x @ a + 3.0, y @ haar(ky, gen) - 1.0, dim=32)["mi"]
    assert abs(moved - base) <= 1e-9 * max(abs(base), 1e-12) + 1e-12, "(c) gauss not affine invariant"
    r = haar(kx, gen)
    k0 = mi_ksg(x[:200], y[:200], dim=4, seed=1)
    k1 = mi_ksg(x[:200] @ r + 2.0, y[:200], dim=4, seed=1)
    assert abs(k1 - k0) <= 1e-6, f"(c) ksg changed under a rotation: {k0} vs {k1}"
    # (d) hist is coordinate agreement: iid coordinates, a derangement -> near 0, although I(X; XΠ) = I(X; X)
    d = 16
    z = gen.standard_normal((1024, d))
    perm = np.roll(np.arange(d), 1)
    assert mi_hist(z, z[:, perm]) <= 0.03 + 2048 / z.size, "(d) hist of a coordinate permutation is not ≈ 0"
    assert mi_hist(z, z) >= 3.0, "(d) hist(X, X) should be near H(binned X)"


register(Theorem(
    "MSA-3", "MSA", "[classical]",
    "Gaussian MI: ½ ln(det Σx det Σy/det Σ) = −½Σ ln(1 − ρ_i²), affine invariant, exact on exact-moment samples.",
    scope="lemma: the 2 × 2 identity and the Schur determinant formula on 2 + 2 blocks", symbolic=t3_symbolic,
    numeric=NumericCheck(t3_numeric, st.tuples(st.integers(1, 4), st.integers(1, 4), SEEDS)),
))
register(Theorem(
    "MSA-5", "MSA", "[reconstructed]",
    "Chaining two maps: TV(f_IL∘f_GI # P_G, P_L) ≤ TV(f_GI # P_G, P_I) + TV(f_IL # P_I, P_L) ≤ Σ √(KL/2).",
    scope="lemma: Pinsker's inequality on Bernoulli pairs", symbolic=t5_symbolic,
    numeric=NumericCheck(t5_numeric, st.tuples(st.integers(2, 12), st.floats(0.1, 5.0), SEEDS)),
))
register(Theorem(
    "MSA-6", "MSA", "[classical]",
    "Donsker–Varadhan with the same joint pairs in both terms (the code's MINE) is ≤ 0 for every critic and batch (Jensen).",
    scope="instance: N = 2", symbolic=t6_symbolic,
    numeric=NumericCheck(t6_numeric, st.tuples(st.integers(1, 4096), st.floats(0.0, 50.0), st.integers(1, 6), SEEDS)),
))
register(Theorem(
    "MSA-7", "MSA", "[classical]",
    "InfoNCE is capped: ln N + mean_b[s_bb − logsumexp_c s_bc] ≤ ln N for any scores.",
    scope="lemma: the optimal critic is the Bayes posterior of the positive index (N = 2)", symbolic=t7_symbolic,
    numeric=NumericCheck(t7_numeric, st.tuples(st.integers(2, 256), st.floats(0.0, 50.0), SEEDS)),
))
register(Theorem(
    "MSA-8", "MSA", "[classical]",
    "Invertible maps keep MI; gauss and ksg do not see rotations or affine maps; hist measures coordinate agreement, not MI.",
    scope="instance: one coordinate per side (correlation under affine maps)", symbolic=t8_symbolic,
    numeric=NumericCheck(t8_numeric, st.tuples(st.integers(1, 4), st.integers(1, 4), SEEDS)),
))
