"""VDS-6 … VDS-9 (the spec's VDS-P6 … P9): cosine logits, their gradients, x-exp saturation, size. [reconstructed]

Numeric checks run the project's :mod:`~reference.mechanisms.vds.similarity`,
:mod:`~reference.mechanisms.vds.losses` and :mod:`~reference.mechanisms.vds.clustering`.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from proofs.registry import NumericCheck, Theorem, register
from proofs.toolkit import assert_close, floats_in, rounding_slack
from reference.mechanisms.vds.bases import flops_per_logits
from reference.mechanisms.vds.clustering import init_lambda, lambda_size
from reference.mechanisms.vds.config import VDSConfig
from reference.mechanisms.vds.losses import cluster_loss, cluster_loss_backward
from reference.mechanisms.vds.similarity import cosine_backward, cosine_forward, softmax

tau_s = sp.Symbol("tau", positive=True)
N_s = sp.Symbol("N", positive=True, integer=True)

# =========================================================================== VDS-6 (P6)

BOUND = sp.exp(2 / tau_s) / (sp.exp(2 / tau_s) + N_s - 1)
FLOOR = sp.log(1 + (N_s - 1) * sp.exp(-2 / tau_s))
bound_fn = sp.lambdify((N_s, tau_s), BOUND, "math")
floor_fn = sp.lambdify((N_s, tau_s), FLOOR, "math")
P6_TABLE = {2: (0.8808, 0.1269), 4: (0.7112, 0.3408), 6: (0.5964, 0.5168), 50_257: (1.470e-4, 8.825)}


def _p6_symbolic() -> bool:
    # general in N and τ: the softmax value at c = (1, −1, …, −1) equals the bound; the floor is −log of it.
    at_corner = sp.exp(1 / tau_s) / (sp.exp(1 / tau_s) + (N_s - 1) * sp.exp(-1 / tau_s))
    same = sp.simplify(at_corner - BOUND) == 0
    floor = sp.simplify(sp.expand_log(-sp.log(BOUND) - FLOOR, force=True)) == 0
    table = all(abs(float(BOUND.subs({N_s: n, tau_s: 1})) - b) <= 5e-4 * max(b, 1e-3) * 2
                and abs(float(FLOOR.subs({N_s: n, tau_s: 1})) - f) <= 5e-4 for n, (b, f) in P6_TABLE.items())
    return same and floor and table


def _p6_numeric(case: tuple) -> None:
    seed, n, d, tau, alpha, uniform = case
    rs = np.random.default_rng(seed)
    h, S = rs.standard_normal((1, d)), rs.standard_normal((n, d))
    c = cosine_forward(h, S)[0][0]
    # rtol 1e-12 as the spec says, plus rounding relative to the operands (|cos| ≤ 1, unit vectors): a cosine near 0
    # is a difference of O(1) products, so its rounding is absolute, ε-machine × 1 (proofs.toolkit.rounding_slack).
    assert_close(cosine_forward(alpha * h, S)[0][0], c, rounding_slack(1.0), "P6 cos(αh, s) = cos(h, s)", rtol=1e-12)
    if uniform:
        c = rs.uniform(-1, 1, n)
    if np.any(np.abs(c) > 1 + 1e-12):
        raise AssertionError("P6 a cosine outside [−1, 1]")
    p = softmax(c / tau)
    if p.max() > bound_fn(n, tau) + 1e-12:
        raise AssertionError(f"P6 max softmax {p.max():.6g} above the bound {bound_fn(n, tau):.6g}")
    for y in range(n):
        if uniform:  # c not from vectors: the CE of softmax(c/τ) directly
            loss = -math.log(p[y])
        else:  # the project's clustering loss of h against the bases
            loss = float(cluster_loss(h, np.array([y]), kind="sm", S=S, tau=tau)[0])
        if loss < floor_fn(n, tau) - 1e-12:
            raise AssertionError(f"P6 CE {loss:.6g} below the floor {floor_fn(n, tau):.6g}")


register(Theorem(
    id="VDS-6", mechanism="VDS", provenance="[reconstructed]",
    statement="cosine logits: scale-invariant in h, in [−1, 1]; max softmax(c/τ) ≤ e^{2/τ}/(e^{2/τ} + N − 1), "
    "CE ≥ log(1 + (N − 1)e^{−2/τ})",
    scope="general",
    symbolic=_p6_symbolic,
    numeric=NumericCheck(_p6_numeric, st.tuples(st.integers(0, 2**32 - 1), st.integers(2, 20), st.integers(2, 12),
                                                floats_in(0.05, 5.0), floats_in(1e-3, 1e3), st.booleans())),
))


# =========================================================================== VDS-7 (P7)


def _p7_symbolic() -> bool:
    x = sp.Matrix(sp.symbols("x0:3", real=True))
    s = sp.Matrix(sp.symbols("s0:3", real=True))
    nx, ns = sp.sqrt((x.T * x)[0]), sp.sqrt((s.T * s)[0])
    cos = (x.T * s)[0] / (nx * ns)
    grad = sp.Matrix([sp.diff(cos, v) for v in x])
    claim = (s / ns - cos * x / nx) / nx
    return _zero(grad - claim) and sp.simplify((grad.T * x)[0]) == 0


def _zero(M: sp.Matrix) -> bool:
    return sp.simplify(M) == sp.zeros(*M.shape)


def _p7_numeric(case: tuple) -> None:
    seed, d, K, tau = case
    rs = np.random.default_rng(seed)
    h, S = rs.standard_normal((1, d)), rs.standard_normal((K, d))
    c, cache = cosine_forward(h, S)
    dh, _ = cosine_backward(cache, np.eye(K)[:1])  # ∇_h cos(h, s_0)
    nh, ns = np.linalg.norm(h), np.linalg.norm(S[0])
    claim = (S[0] / ns - c[0, 0] * h[0] / nh) / nh
    assert_close(dh[0], claim, 1e-12, "P7 ∇cos = (ŝ − cos ĥ)/‖h‖", rtol=1e-9)
    assert_close(np.linalg.norm(dh), math.sqrt(max(0.0, 1 - c[0, 0] ** 2)) / nh, 1e-12, "P7 ‖∇cos‖", rtol=1e-9)
    y = np.array([int(rs.integers(0, K))])
    loss, lc = cluster_loss(h, y, kind="sm", S=S, tau=tau)
    grad = cluster_loss_backward(lc)[0]
    step = 1e-6
    fd = np.array([(cluster_loss(h + step * e, y, kind="sm", S=S, tau=tau)[0]
                    - cluster_loss(h - step * e, y, kind="sm", S=S, tau=tau)[0]) / (2 * step) for e in np.eye(d)])
    if np.linalg.norm(fd - grad) > 1e-6 * max(np.linalg.norm(grad), 1e-8):
        raise AssertionError("P7 ∇_h L differs from central differences")
    if abs(float(grad @ h[0])) > 1e-10 * nh * np.linalg.norm(grad) + 1e-300:
        raise AssertionError("P7 ∇_h L is not orthogonal to h")
    W = rs.standard_normal((K, d))
    _, lm = cluster_loss(h, y, kind="mm", W=W)
    p = softmax(h @ W.T)[0]
    assert_close(cluster_loss_backward(lm)[0], W.T @ (p - np.eye(K)[y[0]]), 1e-12, "P7 mm: ∇L = W_Lᵀ(p − y)", rtol=1e-9)


register(Theorem(
    id="VDS-7", mechanism="VDS", provenance="[reconstructed]",
    statement="gradients in latent space: ∇_h cos(h, s) = (ŝ − cos ĥ)/‖h‖ ⊥ h with norm √(1 − cos²)/‖h‖; "
    "∇_h CE over cosine logits ⊥ h; for mm logits ∇_h L = W_Lᵀ(p − y)",
    scope="instance: d = 3, symbolic x and s",
    symbolic=_p7_symbolic,
    numeric=NumericCheck(_p7_numeric, st.tuples(st.integers(0, 2**32 - 1), st.integers(2, 10), st.integers(2, 8),
                                                floats_in(0.2, 3.0))),
))


# =========================================================================== VDS-8 (P8)


def _p8_symbolic() -> bool:
    c = sp.symbols("c0:3", real=True)
    e = [sp.exp(ci / tau_s) for ci in c]
    q = sp.Matrix([ei / sum(e) for ei in e])
    eq = [sp.exp(qi) for qi in q]
    L = -sp.log(eq[0] / sum(eq))
    grad = sp.Matrix([sp.diff(L, ci) for ci in c])
    sq = sp.Matrix([v / sum(eq) for v in eq])
    J = (sp.diag(*q) - q * q.T) / tau_s
    formula = J * (sq - sp.Matrix([1, 0, 0]))
    trace = sp.simplify((sp.diag(*q) - q * q.T).trace() - (1 - (q.T * q)[0])) == 0
    return _zero(grad - formula) and trace


def _p8_numeric(case: tuple) -> None:
    seed, n, tau, spread, y = case
    rs = np.random.default_rng(seed)
    c = rs.uniform(-spread, spread, (1, n))
    y = np.array([y % n])
    # Cosine-free check through the mm path with W = I: logits = c exactly.
    loss, cache = cluster_loss(c, y, kind="mm", W=np.eye(n), tau=tau, exp=True)
    grad = cluster_loss_backward(cache)[0]
    step = 1e-6 * max(1.0, spread)
    fd = np.array([(cluster_loss(c + step * e, y, kind="mm", W=np.eye(n), tau=tau, exp=True)[0]
                    - cluster_loss(c - step * e, y, kind="mm", W=np.eye(n), tau=tau, exp=True)[0]) / (2 * step)
                   for e in np.eye(n)])
    assert_close(grad, fd, 1e-9 * max(1.0, np.max(np.abs(fd))), "P8 x-exp gradient vs central differences", rtol=1e-5)
    q = softmax(c[0] / tau)
    one_minus = float(np.sum(q * (1 - q)))  # 1 − ‖q‖² without cancellation
    top = np.sort(c[0])[::-1]
    delta = top[0] - top[1]
    g = float(np.linalg.norm(grad))
    if g > math.sqrt(2) * one_minus / tau + 1e-12:
        raise AssertionError(f"P8 ‖∇L_exp‖ {g:.3g} > √2(1 − ‖q‖²)/τ")
    if one_minus > 2 * (n - 1) * math.exp(-delta / tau) + 1e-12:
        raise AssertionError("P8 1 − ‖q‖² > 2(N − 1)e^{−Δ/τ}")
    if spread <= 1.0 and one_minus < (n - 1) / (math.exp(2 / tau) + n - 1) - 1e-12:
        raise AssertionError("P8 cosine logits: 1 − ‖q‖² below (N − 1)/(e^{2/τ} + N − 1)")
    _, plain = cluster_loss(c, y, kind="mm", W=np.eye(n), tau=tau)
    if np.linalg.norm(cluster_loss_backward(plain)) < (1 - q[y[0]]) / tau - 1e-12:
        raise AssertionError("P8 plain CE gradient below (1 − q_y)/τ")


register(Theorem(
    id="VDS-8", mechanism="VDS", provenance="[reconstructed]",
    statement="x-exp saturates unbounded logits: ∇_c L_exp = τ⁻¹(diag q − qqᵀ)(softmax(q) − e_y), "
    "‖∇‖ ≤ √2(1 − ‖q‖²)/τ ≤ 2√2(N − 1)e^{−Δ/τ}/τ; cosine logits keep 1 − ‖q‖² ≥ (N − 1)/(e^{2/τ} + N − 1)",
    scope="instance: N = 3, y = 0, symbolic c and τ",
    symbolic=_p8_symbolic,
    numeric=NumericCheck(_p8_numeric, st.tuples(st.integers(0, 2**32 - 1), st.integers(2, 20), floats_in(0.05, 3.0),
                                                st.sampled_from([1.0, 5.0, 30.0]), st.integers(0, 19))),
))


# =========================================================================== VDS-9 (P9)


def _p9_symbolic() -> bool:
    d = sp.Symbol("d", positive=True)
    return sp.expand(2 * d * (d / 16) + 4 * d**2 - sp.Rational(33, 8) * d**2) == 0


def _p9_numeric(case: tuple[int, int]) -> None:
    m, seed = case
    d = 16 * m
    cfg = VDSConfig()
    params = init_lambda(d, cfg.d_hidden(d), cfg.mlp_ratio, seed=seed)
    size = sum(p.size for p in params.values())
    if size != 33 * d * d // 8 + 2 * d or size != lambda_size(d, cfg.d_hidden(d), cfg.mlp_ratio):
        raise AssertionError(f"P9 λ has {size} parameters at d = {d}, not (33/8)d² + 2d = {33 * d * d // 8 + 2 * d}")
    V = 128_256
    flops = (flops_per_logits("sm", V, d), flops_per_logits("mm", V, d), flops_per_logits("sm_gt", V, d))
    if flops != (6 * V * d, 2 * V * d, 6 * d):
        raise AssertionError("P9 FLOPs differ from 6Vd, 2Vd, 6d")


register(Theorem(
    id="VDS-9", mechanism="VDS", provenance="[reconstructed]",
    statement="size and cost: λ has (33/8)d² + 2d parameters for d ≡ 0 (mod 16); FLOPs sm 6Vd, mm 2Vd, sm-gt 6d",
    scope="general",
    symbolic=_p9_symbolic,
    numeric=NumericCheck(_p9_numeric, st.tuples(st.integers(1, 16), st.integers(0, 2**32 - 1))),
))
