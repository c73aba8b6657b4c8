"""DDCL-T7 … T12: the INCRT gate's operator, spectral ordering, finite growth, minimality, pruning safety, convergence.

Ids ours (DDC-7 = DDCL-T7, …); statements [reconstructed] from the INCRT companion's abstract and the
author's code (specs/03-ddcl-incrt.md §4). Numeric checks run the package's gate
(:mod:`reference.mechanisms.ddc.gate`, :mod:`~reference.mechanisms.ddc.frozen`) on drawn operators:
symmetric S = (B + Bᵀ)/2, PSD C = BBᵀ, orthonormal E by QR of Gaussians; "scale" = the largest norm.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from hypothesis import assume
from hypothesis import strategies as st

from proofs.registry import NumericCheck, Theorem, register
from reference.mechanisms.ddc.config import DDCConfig
from reference.mechanisms.ddc.frozen import events, frozen_gate
from reference.mechanisms.ddc.gate import (
    dwell,
    exin_step,
    gaps,
    head_strength,
    oja_step,
    projector,
    residual_operator,
    sym,
    unit,
)

seeds = st.integers(0, 2**31 - 1)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _sym(rs: np.random.Generator, d: int) -> np.ndarray:
    b = rs.uniform(-10, 10, (d, d))
    return (b + b.T) / 2


def _orthonormal(rs: np.random.Generator, d: int, m: int) -> np.ndarray:
    return np.linalg.qr(rs.standard_normal((d, m)))[0] if m else np.zeros((d, 0))


def _pos_trace(s: np.ndarray) -> float:
    """tr(S₊) = Σ max(λ_i, 0)."""
    return float(np.sum(np.maximum(np.linalg.eigvalsh(s), 0.0)))


# =========================================================================== DDC-7 (DDCL-T7)


def _t7_symbolic() -> bool:
    c11, c12, c13, c22, c23, c33, a, b, c = sp.symbols("c11 c12 c13 c22 c23 c33 a b c", real=True)
    cm = sp.Matrix([[c11, c12, c13], [c12, c22, c23], [c13, c23, c33]])
    ma = sp.Matrix([[0, a, b], [-a, 0, c], [-b, -c, 0]])
    s = (cm * ma + (cm * ma).T) / 2
    return sp.simplify(s - (cm * ma - ma * cm) / 2) == sp.zeros(3) and sp.simplify(s.trace()) == 0


def _t7_numeric(case) -> None:
    d, m, seed = case
    rs = _rng(seed)
    b = rs.uniform(-10, 10, (d, d))
    c = b @ b.T
    ma = rs.uniform(-10, 10, (d, d))
    ma = (ma - ma.T) / 2
    s = residual_operator(c, ma, np.zeros((d, 0)))
    scale = np.linalg.norm(c) * np.linalg.norm(ma)
    assert np.max(np.abs(s - (c @ ma - ma @ c) / 2)) <= 1e-12 * scale, "sym(CM_a) ≠ ½[C, M_a]"
    assert abs(np.trace(s)) <= 1e-12 * scale, "trace ≠ 0"
    assert np.max(np.abs(residual_operator(3.0 * np.eye(d), ma, np.zeros((d, 0))))) <= 1e-12 * np.linalg.norm(ma), "C = cI"
    lam = np.linalg.eigvalsh(residual_operator(c, ma, _orthonormal(rs, d, m % d)))
    assert lam[-1] >= -1e-12 * scale and lam[0] <= 1e-12 * scale, "λ_max(A_res) ≥ 0 ≥ λ_min(A_res) fails"


register(Theorem(
    "DDC-7", "DDC", "[reconstructed]",
    "DDCL-T7: for C = Cᵀ, M_aᵀ = −M_a: sym(CM_a) = ½[C, M_a] is symmetric and traceless, 0 for C = cI; λ_max(A_res) ≥ 0 ≥ λ_min",
    "instance: d = 3, generic C (6 symbols) and M_a (3 symbols)", _t7_symbolic,
    NumericCheck(_t7_numeric, st.tuples(st.integers(2, 12), st.integers(0, 11), seeds)),
))


# =========================================================================== DDC-8 (DDCL-T8)


def _t8_symbolic() -> bool:
    l1, l2, l3 = sp.symbols("l1 l2 l3", real=True)
    s = sp.diag(l1, l2, l3)
    v = sp.Matrix([1, 0, 0])
    p = sp.eye(3) - v * v.T
    return sp.simplify(p * s * p - sp.diag(0, l2, l3)) == sp.zeros(3)


@st.composite
def _simple_spectrum(draw):
    """Traceless symmetric S = U diag(λ) Uᵀ (the class of every commutator operator, DDCL-T7; λ_d < 0 < φ_w, so the
    gate's λ̂_min condition never vetoes), d ∈ [3, 8], gaps ≥ 10⁻³‖S‖₂, θ_w_frac ∈ [0.02, 0.5] (θ_w = frac·‖S‖_F)."""
    d = draw(st.integers(3, 8))
    rs = _rng(draw(seeds))
    lam = np.sort(rs.uniform(-1, 1, d))[::-1]
    lam -= lam.mean()
    assume(np.min(lam[:-1] - lam[1:]) >= 1e-3 * np.max(np.abs(lam)))
    u = _orthonormal(rs, d, d)
    frac = draw(st.floats(0.02, 0.5))
    theta = frac * float(np.linalg.norm(lam))
    assume(np.min(np.abs(lam - theta)) >= 1e-6)
    return u @ np.diag(lam) @ u.T, lam, frac


def _t8_numeric(case) -> None:
    s, lam, frac = case
    cfg = DDCConfig(d_model=s.shape[0], d_k=1, max_heads=s.shape[0], gate_estimator="exact", gate_operator="psd",
                    dwell_fixed=1, theta_w_frac=frac, prune_enabled=False)
    # the "psd" operator form A_res = Π⊥SΠ⊥ takes any symmetric S directly (T7 makes every commutator operator one)
    rows, state = frozen_gate(s, np.zeros_like(s), cfg, 3 * s.shape[0] + 3)
    grown = events(rows)
    k_star = int(np.sum(lam > state.theta_w))
    norm = float(np.max(np.abs(lam)))
    assert len(grown) == k_star, f"{len(grown)} growths, K* = {k_star}"
    triggers = np.array([e["trigger"] for e in grown])
    assert np.all(np.abs(triggers - lam[:k_star]) <= 1e-10 * norm), "triggers are not the top eigenvalues in order"
    if k_star:
        top = np.linalg.eigh(s)[1][:, ::-1][:, :k_star]
        assert np.linalg.norm(top - state.e @ (state.e.T @ top)) <= 1e-8, "span E ≠ top-K* eigenspace"
    v = np.linalg.eigh(s)[1][:, -1]
    deflated = np.sort(np.linalg.eigvalsh(projector(v[:, None], s.shape[0]) @ s @ projector(v[:, None], s.shape[0])))
    assert np.allclose(deflated, np.sort(np.append(lam[1:], 0.0)), atol=1e-10 * norm, rtol=0), "deflated spectrum"


register(Theorem(
    "DDC-8", "DDC", "[reconstructed]",
    "DDCL-T8: with exact capture, triggers are λ_1 ≥ … ≥ λ_K*, growth stops after K* = #{λ_i > θ_w}, span E = top-K* eigenspace",
    "lemma: deflating S = diag(λ1, λ2, λ3) by its top eigenvector leaves spectrum {0, λ2, λ3}", _t8_symbolic,
    NumericCheck(_t8_numeric, _simple_spectrum()),
))


# =========================================================================== DDC-9 (DDCL-T9)


def _t9_symbolic() -> bool:
    a, b = sp.symbols("a b", real=True)
    s = sp.Matrix([[a, b], [b, -a]])
    evs = list(s.eigenvals())
    pos = sp.sqrt(a**2 + b**2)
    fro = sp.sqrt(sum(x**2 for x in s))
    return sp.simplify(sum(e**2 for e in evs) - 2 * pos**2) == 0 and sp.simplify(pos - sp.sqrt(2) / 2 * fro) == 0


def _t9_numeric(case) -> None:
    d, traceless, sigma, seed = case
    rs = _rng(seed)
    s = _sym(rs, d)
    if traceless:
        s -= np.trace(s) / d * np.eye(d)
    norm = np.linalg.norm(s, 2)
    v = unit(rs.standard_normal(d))
    p = projector(v[:, None], d)
    drop = _pos_trace(s) - _pos_trace(p @ s @ p)
    assert drop >= max(float(v @ s @ v), 0.0) - 1e-12 * norm, f"tr(S₊) dropped by {drop:.3g} < vᵀSv"
    theta = 0.1 * float(np.linalg.norm(s))
    e = np.zeros((d, 0))
    count = 0
    for _ in range(4 * d):
        a = sym(projector(e, d) @ s @ projector(e, d))
        w, vecs = np.linalg.eigh(a)
        if w[-1] <= theta:
            break
        cand = unit(projector(e, d) @ (vecs[:, -1] + sigma * rs.standard_normal(d)))
        if float(cand @ a @ cand) <= theta:
            continue
        e = np.column_stack([e, cand])
        count += 1
    assert count <= math.floor(_pos_trace(s) / theta + 1e-9), f"{count} growths > ⌊tr(S₊)/θ_w⌋"
    assert count <= math.floor((5 if traceless else 10) * math.sqrt(d)), "count above ⌊5√d⌋ (traceless) / ⌊10√d⌋"


register(Theorem(
    "DDC-9", "DDC", "[reconstructed]",
    "DDCL-T9: each growth by a unit v ⊥ E with vᵀA_res v > θ_w lowers tr(A_res₊) by ≥ vᵀA_res v, so #growths ≤ ⌊tr(S₊)/θ_w⌋",
    "instance: d = 2 traceless S, tr(S₊) = ½√d‖S‖_F", _t9_symbolic,
    NumericCheck(_t9_numeric, st.tuples(st.integers(2, 8), st.booleans(), st.floats(0, 0.5), seeds)),
))


# =========================================================================== DDC-10 (DDCL-T10)


def _t10_symbolic() -> bool:
    a, b, c, th = sp.symbols("a b c theta", real=True)
    alpha = (a - c) / 2
    s = sp.Matrix([[a, b], [b, c]])
    w = sp.Matrix([-sp.sin(th), sp.cos(th)])
    form = sp.simplify((w.T * s * w)[0] - ((a + c) / 2 - alpha * sp.cos(2 * th) - b * sp.sin(2 * th)))
    ident = sp.simplify((alpha**2 + b**2) - (alpha * sp.cos(2 * th) + b * sp.sin(2 * th)) ** 2
                        - (alpha * sp.sin(2 * th) - b * sp.cos(2 * th)) ** 2)
    return form == 0 and ident == 0


@st.composite
def _t10_cases(draw):
    s, lam, frac = draw(_simple_spectrum())
    theta = frac * float(np.linalg.norm(lam))
    k_star = int(np.sum(lam > theta))
    assume(1 <= k_star < len(lam))
    return s, lam, theta, k_star, draw(st.floats(0, 0.5)), draw(seeds)


def _t10_numeric(case) -> None:
    s, lam, theta, k_star, sigma, seed = case
    rs, d = _rng(seed), s.shape[0]
    norm = float(np.max(np.abs(lam)))
    vecs = np.linalg.eigh(s)[1][:, ::-1]
    for m in range(k_star):
        e = _orthonormal(rs, d, m)
        top = np.linalg.eigvalsh(projector(e, d) @ s @ projector(e, d))[-1]
        assert top >= lam[m] - 1e-12 * norm, f"(a) m = {m}: λ_max = {top:.6g} < λ_(m+1) = {lam[m]:.6g}"
        exact = np.linalg.eigvalsh(projector(vecs[:, :m], d) @ s @ projector(vecs[:, :m], d))[-1]
        assert abs(exact - max(lam[m], 0.0)) <= 1e-12 * norm * d, "(a) equality for eigenvectors"
    u = vecs[:, :k_star]
    rest = np.linalg.eigvalsh(projector(u, d) @ s @ projector(u, d))[-1]
    assert rest <= theta + 1e-12 * norm, "(b) top-K* eigenvectors are not sufficient"
    e = np.linalg.qr(u + sigma * rs.standard_normal(u.shape))[0]
    if np.linalg.eigvalsh(projector(e, d) @ s @ projector(e, d))[-1] <= theta:
        sin2 = 1.0 - float(np.min(np.linalg.svd(u.T @ e, compute_uv=False))) ** 2
        bound = (theta - lam[-1]) / (lam[k_star - 1] - lam[-1])
        assert sin2 <= bound + 1e-10, f"(d) sin²Θ = {sin2:.6g} > {bound:.6g}"


register(Theorem(
    "DDC-10", "DDC", "[reconstructed]",
    "DDCL-T10: < K* captured directions leave λ_max > θ_w; the top-K* eigenvectors suffice; sufficient E obey the sin²Θ bound",
    "lemma: 2×2 core — wᵀSw = (a+c)/2 − α cos 2θ − b sin 2θ with (α cos 2θ + b sin 2θ)² ≤ α² + b²", _t10_symbolic,
    NumericCheck(_t10_numeric, _t10_cases()),
))


# =========================================================================== DDC-11 (DDCL-T11)


def _t11_symbolic() -> bool:
    y = sp.Matrix(3, 3, sp.symbols("y0:9", real=True))
    sy, an = (y + y.T) / 2, (y - y.T) / 2
    sq = lambda m: sum(x**2 for x in m)  # noqa: E731
    return sp.expand(sq(y) - sq(sy) - sq(an)) == 0


def _t11_numeric(case) -> None:
    d, n_heads, dk, m, seed = case
    rs = _rng(seed)
    b = rs.standard_normal((d, d))
    c = b @ b.T
    mats = []
    for _ in range(n_heads):
        wq, wk = rs.standard_normal((d, dk)), rs.standard_normal((d, dk))
        mats.append((wq @ wk.T - wk @ wq.T) / 2 * rs.choice([1.0, 1e-3]))
    e = _orthonormal(rs, d, min(m, d - 1))
    full = np.linalg.eigvalsh(residual_operator(c, sum(mats), e))
    scale = np.linalg.norm(c) * sum(np.linalg.norm(x) for x in mats)
    for h, mh in enumerate(mats):
        rest = sum(mats[:h] + mats[h + 1:]) if n_heads > 1 else np.zeros((d, d))
        less = np.linalg.eigvalsh(residual_operator(c, rest, e))
        bound = np.linalg.norm(sym(c @ mh), 2)
        assert bound <= head_strength(c, mh) + 1e-12 * scale, "‖sym(CM_a,h)‖₂ > G_h"
        assert abs(less[-1] - full[-1]) <= bound + 1e-10 * scale, "|Δλ_max| > ‖sym(C M_a,h)‖₂"
        assert abs(less[0] - full[0]) <= bound + 1e-10 * scale, "|Δλ_min| > ‖sym(C M_a,h)‖₂"


register(Theorem(
    "DDC-11", "DDC", "[reconstructed]",
    "DDCL-T11: removing head h moves λ_max and λ_min of Π⊥sym(CM_a)Π⊥ by ≤ ‖sym(CM_a,h)‖₂ ≤ G_h = ‖CM_a,h‖_F (E unchanged)",
    "lemma: ‖Y‖_F² = ‖sym Y‖_F² + ‖asym Y‖_F² (d = 3), so ‖sym Y‖ ≤ ‖Y‖", _t11_symbolic,
    NumericCheck(_t11_numeric, st.tuples(st.integers(2, 8), st.integers(1, 4), st.integers(1, 3), st.integers(0, 3), seeds)),
))


# =========================================================================== DDC-12 (DDCL-T12)


@st.composite
def _t12_cases(draw):
    """Symmetric or PSD A, d ∈ [3, 6], normalised top gap Δ⁺ ≥ 0.5 (a cheaper slice of the spec's Δ⁺ ≥ 0.2)."""
    d = draw(st.integers(3, 6))
    rs = _rng(draw(seeds))
    rest = rs.uniform(-1, 1, d - 1) if draw(st.booleans()) else rs.uniform(0, 1, d - 1)
    top = float(np.max(np.abs(rest))) + draw(st.floats(0.5, 1.5))
    lam = np.append(top, rest)
    u = _orthonormal(rs, d, d)
    a = u @ np.diag(lam) @ u.T * draw(st.floats(0.1, 10))
    return a, draw(seeds)


def _t12_numeric(case) -> None:
    a, seed = case
    d = a.shape[0]
    lam = np.sort(np.linalg.eigvalsh(a))[::-1]
    s = float(np.max(np.abs(lam)))
    at = a / s
    dp, _, gamma = gaps(lam / s)
    assume(dp >= 0.2)
    cfg = DDCConfig(d_model=d, d_k=1)
    calls = 5 * dwell(cfg.eta, dp, cfg.replace(dwell_cap=10**7))
    rs = _rng(seed)
    up = unit(rs.standard_normal(d))
    um = rs.standard_normal(d)
    um = unit(um - (um @ up) * up)
    for _ in range(calls):
        up = oja_step(up, um, at, cfg.eta, gamma)
        um = exin_step(um, up, at, cfg.eta * cfg.gate_eta_minus_ratio, gamma)
    err = abs(float(up @ at @ up) - lam[0] / s)
    assert err <= 1e-3, f"after {calls} calls |u⁺ᵀÃu⁺ − λ_1/‖A‖₂| = {err:.3g}"


register(Theorem(
    "DDC-12", "DDC", "[reconstructed]",
    "DDCL-T12: on a fixed symmetric A with normalised gap Δ⁺ ≥ 0.2, 5·T_d coupled Oja/EXIN calls give |u⁺ᵀÃu⁺ − λ_1/‖A‖₂| ≤ 10⁻³",
    "none", None, NumericCheck(_t12_numeric, _t12_cases()),
))
