"""DDCL-T1 … T4 and T6: the prototype block's identities, gradients, critical temperature, descent, reinforcement.

Theorem ids are ours (DDC-1 = DDCL-T1, …); every statement is [reconstructed] from the companions'
abstracts (specs/03-ddcl-incrt.md §4). Numeric checks run the package's own code
(:mod:`reference.mechanisms.ddc.block`, :mod:`~reference.mechanisms.ddc.theory`) on drawn instances.
Strategy (§4): float64; d ∈ [2, 8], K ∈ [2, 6], n ∈ [2, 40]; entries uniform in [−10, 10];
τ log-uniform in [10⁻², 10²] × mean d_tk.
"""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
import sympy as sp
from hypothesis import assume
from hypothesis import strategies as st

from proofs.registry import NumericCheck, Theorem, register
from proofs.toolkit import arrays_in, rounding_slack
from reference.mechanisms.ddc.block import (
    ddcl_backward,
    ddcl_forward,
    decomposition,
    losses,
    lq_tau_grad,
    lq_weights,
    sq_dists,
)
from reference.mechanisms.ddc.theory import (
    covariance,
    curvature_fd,
    curvature_formula,
    descend,
    loss_grad_p,
    loss_sum,
    separation,
)


@st.composite
def blocks(draw, n_lo: int = 2, n_hi: int = 40):
    """(z (n, d), P (K, d), τ): entries in [−10, 10], τ = 10^u × mean d_tk, u ∈ [−2, 2]."""
    n, d, k = draw(st.integers(n_lo, n_hi)), draw(st.integers(2, 8)), draw(st.integers(2, 6))
    z = draw(arrays_in((n, d), -10, 10))
    p = draw(arrays_in((k, d), -10, 10))
    mean_d = float(np.mean(sq_dists(z, p)))
    assume(mean_d > 1e-6)
    return z, p, mean_d * 10 ** draw(st.floats(-2, 2))


# =========================================================================== DDC-1 (DDCL-T1)


def _t1_symbolic() -> bool:
    z = sp.symbols("z1:3", real=True)
    ps = [sp.symbols(f"p{k}_1:3", real=True) for k in range(3)]
    q1, q2 = sp.symbols("q1 q2", real=True)
    q = (q1, q2, 1 - q1 - q2)
    sq = lambda a, b: sum((ai - bi) ** 2 for ai, b_i in zip(a, b) for bi in [b_i])  # noqa: E731
    y = [sum(q[k] * ps[k][i] for k in range(3)) for i in range(2)]
    lq = sum(q[k] * sq(z, ps[k]) for k in range(3))
    ols = sq(z, y)
    v = sum(q[k] * sq(ps[k], y) for k in range(3))
    pairwise = sum(q[j] * q[k] * sq(ps[j], ps[k]) for j in range(3) for k in range(3))
    return sp.expand(lq - ols - v) == 0 and sp.expand(v - sp.Rational(1, 2) * pairwise) == 0


@st.composite
def _t1_cases(draw):
    z, p, tau = draw(blocks())
    kind = draw(st.sampled_from(["softmax", "dirichlet", "onehot"]))
    rs = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    if kind == "softmax":
        q = losses(z, p, tau)["q"]
    elif kind == "dirichlet":
        q = rs.dirichlet(np.ones(p.shape[0]), size=z.shape[0])
    else:
        q = np.eye(p.shape[0])[rs.integers(0, p.shape[0], z.shape[0])]
    return z, p, q, kind


def _t1_numeric(case) -> None:
    z, p, q, kind = case
    out = decomposition(z, p, q)
    scale = float(np.max(np.abs(z))) ** 2 + float(np.max(np.abs(p))) ** 2 + 1.0
    err = np.abs(out["lq"] - out["ols"] - out["v"])
    assert np.all(err <= 1e-9 * np.maximum(1.0, out["lq"])), f"|L_q − L_OLS − V| = {err.max():.3g}"
    assert np.all(np.abs(out["v"] - out["pairwise"]) <= 1e-9 * np.maximum(1.0, out["lq"])), "pairwise form"
    assert np.all(out["v"] >= -1e-12 * scale), f"V = {out['v'].min():.3g} < 0"
    if kind == "onehot":
        assert np.all(np.abs(out["v"]) <= 1e-12 * scale), "one-hot q must give V = 0"


register(Theorem(
    "DDC-1", "DDC", "[companion]",
    "DDCL-T1: for any q in the simplex, Σq_k‖z−p_k‖² = ‖z−ȳ‖² + Σq_k‖p_k−ȳ‖² and V = ½Σ_{j,k}q_jq_k‖p_j−p_k‖² ≥ 0",
    "instance: d = 2, K = 3, q symbolic on the simplex", _t1_symbolic, NumericCheck(_t1_numeric, _t1_cases()),
))


# =========================================================================== DDC-2 (DDCL-T2)


def _t2_symbolic() -> bool:
    d1, d2 = sp.symbols("d1 d2", real=True)
    tau = sp.symbols("tau", positive=True)
    e1, e2 = sp.exp(-d1 / tau), sp.exp(-d2 / tau)
    q1, q2 = e1 / (e1 + e2), e2 / (e1 + e2)
    db = q1 * d1 + q2 * d2
    monotone = sp.simplify(sp.diff(q1 * d1 + q2 * d2, tau) - (q1 * (d1 - db) ** 2 + q2 * (d2 - db) ** 2) / tau**2) == 0
    f = -tau * sp.log(e1 + e2)
    h = -(q1 * sp.log(q1) + q2 * sp.log(q2))
    free = sp.simplify(sp.expand_log(q1 * d1 + q2 * d2 - f - tau * h, force=True)) == 0
    return monotone and free


@st.composite
def _t2_cases(draw):
    z, p, tau = draw(blocks(2, 12))
    rs = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    return z, p, tau, rs.standard_normal(z.shape), draw(st.floats(0, 5)), draw(st.sampled_from([0.0, 1.0]))


def _t2_numeric(case) -> None:
    z, p, tau, g, beta, gamma = case
    lt = np.full(1, np.log(tau))

    def total(z_, p_, lt_):
        rec = {}

        def hook(name, value):
            rec[name] = value
            return value

        y, _ = ddcl_forward({"prototypes": p_, "log_tau": lt_}, z_, hook)
        return anp.sum(y * g) + beta * rec["lq"] + gamma * rec["free_energy"]

    oracle = autograd.grad(total, (0, 1, 2))(z, p, lt)
    _, cache = ddcl_forward({"prototypes": p, "log_tau": lt}, z)
    dz, grads = ddcl_backward(cache, g, {"lq": beta, "free_energy": gamma})
    ours = (dz, grads["prototypes"], grads["log_tau"])
    scale = max(float(np.max(np.abs(o))) for o in oracle)
    # ∂L/∂log τ = τ⁻¹ Σ q b (d − d̄) cancels: when the d_tk of a row (nearly) coincide both sides hold rounding noise of
    # the operands' size, ε-machine × τ⁻¹ Σ q |b| (|d| + d̄) (rounding_slack), not of the result's.
    q, d = cache["q"], cache["d"]
    b_abs = np.abs(g @ p.T) + beta * d + gamma
    tau_noise = rounding_slack(float(np.sum(q * b_abs * (d + np.sum(q * d, axis=-1, keepdims=True)))) / tau)
    for name, a, b in zip(("z", "P", "log τ"), ours, oracle):
        diff = float(np.max(np.abs(a - b)))
        rel = diff / max(float(np.max(np.abs(b))), 1e-6 * scale, 1e-300)
        assert rel <= 1e-8 or (name == "log τ" and diff <= tau_noise), f"∂L/∂{name}: relative error {rel:.3g} vs autograd"
    out = losses(z, p, tau)
    w = lq_weights(out["q"], out["d"], tau)
    assert np.max(np.abs(w.sum(-1) - 1)) <= 1e-9 * max(1.0, float(np.max(np.abs(w)))), "Σ_k w_tk ≠ 1"
    sc = max(1.0, float(np.max(out["lq"])), tau * np.log(p.shape[0]))
    assert np.max(np.abs(out["lq"] - out["f"] - tau * out["h"])) <= 1e-9 * sc, "L_q ≠ F + τH"
    assert lq_tau_grad(out["q"], out["d"], tau) >= -1e-12, "∂L_q/∂τ < 0"


register(Theorem(
    "DDC-2", "DDC", "[reconstructed]",
    "DDCL-T2: the §2.2 backward is the gradient (P, Z, τ); Σ_k w_tk = 1; ∂L_q/∂τ = τ⁻²Σ_t Var_q(d_t) ≥ 0; L_q = F + τΣH",
    "instance: K = 2 (the τ-derivative and the free-energy identity)", _t2_symbolic, NumericCheck(_t2_numeric, _t2_cases()),
))


# =========================================================================== DDC-3 (DDCL-T3)


def _t3_symbolic() -> bool:
    a, tau = sp.symbols("a tau", positive=True)
    eps = sp.symbols("epsilon", real=True)
    pts, protos = (a, -a), (eps, -eps)
    dist = [[(z - p) ** 2 for p in protos] for z in pts]
    f = sum(-tau * sp.log(sum(sp.exp(-dd / tau) for dd in row)) for row in dist)
    lq = 0
    for row in dist:
        e = [sp.exp(-dd / tau) for dd in row]
        lq += sum(ei * dd for ei, dd in zip(e, row)) / sum(e)
    f2 = sp.simplify(sp.diff(f, eps, 2).subs(eps, 0))
    lq2 = sp.simplify(sp.diff(lq, eps, 2).subs(eps, 0))
    return sp.simplify(f2 + 4 * (2 * a**2 - tau) / tau) == 0 and sp.simplify(lq2 + 4 * (4 * a**2 - tau) / tau) == 0


@st.composite
def _t3_cases(draw):
    n, d, k = draw(st.integers(10, 80)), draw(st.integers(2, 8)), draw(st.integers(2, 6))
    rs = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    z = rs.standard_normal((n, d)) * rs.uniform(0.3, 3.0, d)
    lam = float(np.linalg.eigvalsh(covariance(z))[-1])
    tau = lam * 10 ** draw(st.floats(-0.7, 1.3))
    return z, rs.standard_normal((k, d)), tau, draw(st.sampled_from(["lq", "f"]))


def _t3_numeric(case) -> None:
    z, v, tau, kind = case
    want, got = curvature_formula(z, v, tau, kind), curvature_fd(z, v, tau, kind)
    scale = 2 * z.shape[0] * float(np.sum(v * v)) * (1 + 4 * float(np.linalg.eigvalsh(covariance(z))[-1]) / tau)
    assert abs(got - want) <= 1e-5 * scale, f"{kind}: finite difference {got:.6g} vs formula {want:.6g}"
    mu = z.mean(axis=0)
    g = loss_grad_p(z, np.tile(mu, (v.shape[0], 1)), tau, kind)
    assert float(np.max(np.abs(g))) <= 1e-9 * scale, "collapse is not stationary"


register(Theorem(
    "DDC-3", "DDC", "[reconstructed]",
    "DDCL-T3: collapse p_k = μ is stationary; its curvature is 2n‖v̄‖² + (2n/K)Σ(‖w_k‖² − (c/τ)w_kᵀΣw_k), c = 4 (L_q), 2 (F)",
    "instance: n = 2 points ±a in 1-D, K = 2 prototypes ±ε", _t3_symbolic, NumericCheck(_t3_numeric, _t3_cases()),
))


# =========================================================================== DDC-4 (DDCL-T4)


def _t4_symbolic() -> bool:
    t, n, mu = sp.symbols("t n mu", positive=True)
    p = sp.Function("p")
    sol = sp.dsolve(sp.Eq(p(t).diff(t), -2 * n * (p(t) - mu)), p(t)).rhs
    const = [s for s in sol.free_symbols if s.name.startswith("C")]
    return len(const) == 1 and sp.simplify(sol - (mu + const[0] * sp.exp(-2 * n * t))) == 0


@st.composite
def _t4_cases(draw):
    n, d, k = draw(st.integers(2, 40)), draw(st.integers(2, 8)), draw(st.integers(2, 6))
    rs = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    z = rs.uniform(-10, 10, (n, d))
    p = rs.dirichlet(np.ones(n), size=k) @ z                      # in the data's convex hull
    diam = float(np.max(sq_dists(z, z)))
    tau = max(diam, 1e-6) * 10 ** draw(st.floats(-2, 2))
    return z, p, tau, diam, draw(st.sampled_from(["lq", "f"]))


def _t4_numeric(case) -> None:
    z, p, tau, diam, kind = case
    n = z.shape[0]
    if kind == "f":
        lr = min(1 / (2 * n), 0.5 / (2 * n + 4 * n * diam / tau))
    else:
        lr = 0.5 / (2 * n + 8 * n * diam / tau + 8 * n * diam**2 / tau**2)
    _, trace = descend(z, p, tau, 200, lr, kind, mean=False)
    trace = np.array(trace)
    rises = (trace[1:] - trace[:-1]) / np.maximum(np.abs(trace[:-1]), 1e-300)
    assert float(np.max(rises)) <= 1e-12, f"{kind} rose by {float(np.max(rises)):.3g} (relative) in a step"
    if kind == "f":
        lower = float(np.sum(sq_dists(z, p).min(axis=1))) - tau * n * np.log(p.shape[0])
        assert loss_sum(z, p, tau, "f") >= lower - 1e-9 * (1 + abs(lower)), "F below Σ min d − τ n log K"


register(Theorem(
    "DDC-4", "DDC", "[companion]",
    "DDCL-T4: with frozen inputs, gradient steps within the stated step rules never increase L_q or F (Lyapunov descent)",
    "instance: K = 1 flow ṗ = −2n(p − μ) solves to μ + Ce^{−2nt}", _t4_symbolic, NumericCheck(_t4_numeric, _t4_cases()),
))


# =========================================================================== DDC-6 (DDCL-T6)


@st.composite
def _t6_cases(draw):
    d, blocks_, width, k = draw(st.integers(4, 12)), draw(st.integers(2, 3)), draw(st.integers(1, 2)), draw(st.integers(2, 6))
    assume(blocks_ * width <= d)
    rs = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    return d, blocks_, width, k, rs


def _t6_numeric(case) -> None:
    d, nb, width, k, rs = case
    q_full, _ = np.linalg.qr(rs.standard_normal((d, d)))
    us = [q_full[:, i * width:(i + 1) * width] for i in range(nb)]
    coeffs = [rs.standard_normal((k, width)) * 3 for _ in range(nb)]
    p = sum(u @ c.T for u, c in zip(us, coeffs)).T                # (K, d)
    q = rs.dirichlet(np.ones(k), size=5)
    total = decomposition(np.zeros((5, d)), p, q)["pairwise"]
    parts = sum(decomposition(np.zeros((5, width)), c, q)["pairwise"] for c in coeffs)
    scale = float(np.max(np.abs(p))) ** 2 + 1
    assert np.max(np.abs(total - parts)) <= 1e-10 * scale, "(a) V is not additive over orthogonal blocks"
    sep_total = separation(p)
    assert abs(sep_total - sum(separation(c) for c in coeffs)) <= 1e-10 * scale, "(a) separation not additive"
    b = rs.standard_normal((d, d))
    c = b @ b.T
    e, _ = np.linalg.qr(rs.standard_normal((d, rs.integers(0, d - 1))))
    proj = np.eye(d) - e @ e.T
    pi = rs.dirichlet(np.ones(k))
    centred = p - pi @ p
    scatter = (centred * pi[:, None]).T @ centred
    w, vecs = np.linalg.eigh(proj @ c @ proj)
    v = vecs[:, -1]
    grown = np.linalg.eigvalsh(proj @ (c + scatter) @ proj)[-1]
    bound = w[-1] + v @ proj @ scatter @ proj @ v
    assert grown >= bound - 1e-10 * (np.linalg.norm(c, 2) + np.linalg.norm(scatter, 2)), "(b) λ_max bound"


register(Theorem(
    "DDC-6", "DDC", "[reconstructed]",
    "DDCL-T6: V and sep add over orthogonal prototype blocks; adding scatter B ⪰ 0 raises λ_max(Π⊥CΠ⊥) by ≥ vᵀΠ⊥BΠ⊥v",
    "none", None, NumericCheck(_t6_numeric, _t6_cases()),
))
