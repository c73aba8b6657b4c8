"""Trained MI lower bounds: InfoNCE and MINE (Donsker–Varadhan) with shuffled marginals. [classical bounds; critic reconstructed]

specs/04-msma.md §5.5. Both run on PCA-``dim`` scores of each side (PCA fitted on the train
rows); the critic is fitted on train rows and the bound is evaluated on test rows.

The default critic is **quadratic** — linear in its parameters, so both objectives are
concave in them and contain the Gaussian optimum ([reconstructed]):

* InfoNCE  s(x, y) = xᵀWy + yᵀQy + bᵀy  (x-only terms cancel in the row softmax);
* DV       T(x, y) = xᵀWy + xᵀPx + yᵀQy + aᵀx + bᵀy  (P, Q symmetric).

Scores of all pairs of a batch form S (n, n), S_bc = critic(x_b, y_c); the objectives and their
gradients with respect to S ([classical] van den Oord et al. 2018; Belghazi et al. 2018):

* InfoNCE Î = ln n + (1/n)Σ_b[S_bb − logsumexp_c S_bc];  ∂Î/∂S = G = (I − softmax_rows S)/n;
* DV      Î = (1/n)Σ_b S_bb − ln[(1/(n(n−1)))Σ_{a≠b} e^{S_ab}];  G = I/n − E,
  E_ab = e^{S_ab}[a ≠ b]/Σ_{a'≠b'} e^{S_a'b'} (all off-diagonal pairs are the product-of-marginals
  samples: "shuffled marginals");

then ∂/∂W = XᵀGY, ∂/∂P = Xᵀdiag(G1)X, ∂/∂Q = Yᵀdiag(Gᵀ1)Y, ∂/∂a = XᵀG1, ∂/∂b = YᵀGᵀ1.
``mine_unshuffled`` is the code's value with the same joint pairs in both terms, never > 0 (MSA-T6b).
The forward/backward pairs take their array namespace from their inputs, so autograd checks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference.backend import namespace
from reference.metrics.information import _rows, pca_fit

CRITIC_KEYS = ("W", "P", "Q", "a", "b")


def _lse(s: Any, axis: Any = None) -> Any:
    """log Σ exp along ``axis`` with a max shift (no overflow)."""
    xp = namespace(s)
    m = xp.max(s, axis=axis, keepdims=True)
    m = getattr(m, "_value", m)  # the shift is a constant (also under autograd)
    out = xp.log(xp.sum(xp.exp(s - m), axis=axis, keepdims=True)) + m
    return xp.reshape(out, ()) if axis is None else xp.squeeze(out, axis=axis)


def critic_scores(theta: dict, x: Any, y: Any) -> Any:
    """S (n, m): S_bc = x_bᵀWy_c + x_bᵀPx_b + y_cᵀQy_c + aᵀx_b + bᵀy_c; absent keys count as 0."""
    xp = namespace(x, *theta.values())
    s = x @ theta["W"] @ y.T
    if "P" in theta:
        s = s + (xp.sum((x @ theta["P"]) * x, axis=1) + x @ theta["a"])[:, None]
    if "Q" in theta:
        s = s + (xp.sum((y @ theta["Q"]) * y, axis=1) + y @ theta["b"])[None, :]
    return s


def critic_backward(theta: dict, x: Any, y: Any, g: Any) -> dict:
    """d objective / d θ from G = d objective / d S (the same keys as ``theta``)."""
    xp = namespace(x, g)
    out = {"W": x.T @ g @ y}
    rows, cols = xp.sum(g, axis=1), xp.sum(g, axis=0)
    if "P" in theta:
        out["P"] = (x * rows[:, None]).T @ x
        out["a"] = x.T @ rows
    if "Q" in theta:
        out["Q"] = (y * cols[:, None]).T @ y
        out["b"] = y.T @ cols
    return out


def infonce_value(s: Any) -> Any:
    """InfoNCE on a score matrix S (n, n): ln n + mean_b[S_bb − logsumexp_c S_bc] ≤ ln n (MSA-T7a). [classical]"""
    xp = namespace(s)
    n = s.shape[0]
    return math.log(n) + xp.mean(xp.sum(s * np.eye(n), axis=1) - _lse(s, axis=1))


def infonce_value_grad(s: np.ndarray) -> tuple[float, np.ndarray]:
    """InfoNCE and ∂/∂S from one row softmax (NumPy only; the training loops' fused form)."""
    n = s.shape[0]
    m = s.max(1, keepdims=True)
    p = np.exp(s - m)
    z = p.sum(1, keepdims=True)
    value = math.log(n) + float(np.mean(np.diagonal(s) - (np.log(z[:, 0]) + m[:, 0])))
    p *= -1.0 / (n * z)
    p[np.diag_indices(n)] += 1.0 / n
    return value, p


def dv_value_grad(s: np.ndarray) -> tuple[float, np.ndarray]:
    """DV (all off-diagonal pairs) and ∂/∂S from one softmax (NumPy only)."""
    n = s.shape[0]
    diag = np.diag_indices(n)
    e = s.copy()
    e[diag] = -np.inf
    m = e.max()
    e = np.exp(e - m)
    total = e.sum()
    value = float(np.mean(np.diagonal(s))) - (math.log(total) + m - math.log(n * (n - 1)))
    e *= -1.0 / total
    e[diag] += 1.0 / n
    return value, e


def infonce_grad(s: np.ndarray) -> np.ndarray:
    """∂ InfoNCE / ∂S = (I − softmax_rows S)/n."""
    n = s.shape[0]
    p = np.exp(s - s.max(1, keepdims=True))
    p *= -1.0 / (n * p.sum(1, keepdims=True))
    p[np.diag_indices(n)] += 1.0 / n
    return p


def dv_value(s: Any) -> Any:
    """DV with all off-diagonal pairs as marginal samples: mean S_bb − ln mean_{a≠b} e^{S_ab}. [classical]"""
    xp = namespace(s)
    n = s.shape[0]
    off = xp.where(np.eye(n, dtype=bool), -np.inf, s)
    return xp.sum(s * np.eye(n)) / n - (_lse(off) - math.log(n * (n - 1)))


def dv_grad(s: np.ndarray) -> np.ndarray:
    """∂ DV / ∂S = I/n − E, E the softmax of the off-diagonal entries."""
    n = s.shape[0]
    diag = np.diag_indices(n)
    e = s.copy()
    e[diag] = -np.inf
    e = np.exp(e - e.max())
    e *= -1.0 / e.sum()
    e[diag] += 1.0 / n
    return e


def mine_unshuffled(t: Any) -> float:
    """The code's "MINE" on joint critic values t (N,): mean t − ln mean e^t ≤ 0 for every t (Jensen; MSA-T6b). [author-code]"""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    m = t.max()
    return float(t.mean() - (math.log(np.mean(np.exp(t - m))) + m))


# --------------------------------------------------------------------------- the Gaussian initialisation


def _cov_blocks(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple:
    kx = x.shape[1]
    z = np.hstack([x, y])
    mu = z.mean(0)
    c = np.cov(z.T, bias=True).reshape(z.shape[1], z.shape[1]) + ridge * np.eye(z.shape[1])
    return mu[:kx], mu[kx:], c[:kx, :kx], c[:kx, kx:], c[kx:, kx:], c


def gaussian_critic(x: np.ndarray, y: np.ndarray, kind: str, ridge: float = 1e-3) -> dict:
    """The Gaussian log-density ratio from train covariances (ridge·I), as critic parameters. [reconstructed §5.5]

    InfoNCE: W = BC⁻¹, Q = −½(C⁻¹ − Σy⁻¹), b = C⁻¹(μy − μxB) − Σy⁻¹μy, B = Σx⁻¹Σxy, C = Σy − ΣyxB.
    DV: T = −½(z − μ)ᵀ(Σ⁻¹ − blockdiag(Σx⁻¹, Σy⁻¹))(z − μ), expanded (its constant cancels).
    """
    mx, my, cxx, cxy, cyy, c = _cov_blocks(x, y, ridge)
    kx = x.shape[1]
    if kind == "infonce":
        b_mat = np.linalg.solve(cxx, cxy)
        cond = cyy - cxy.T @ b_mat
        ci, cyi = np.linalg.inv(cond), np.linalg.inv(cyy)
        q = -0.5 * (ci - cyi)
        return {"W": b_mat @ ci, "Q": 0.5 * (q + q.T), "b": ci @ (my - mx @ b_mat) - cyi @ my}
    m = np.linalg.inv(c)
    m[:kx, :kx] -= np.linalg.inv(cxx)
    m[kx:, kx:] -= np.linalg.inv(cyy)
    m = 0.5 * (m + m.T)
    lin = m @ np.concatenate([mx, my])
    return {"W": -m[:kx, kx:], "P": -0.5 * m[:kx, :kx], "Q": -0.5 * m[kx:, kx:], "a": lin[:kx], "b": lin[kx:]}


def zero_critic(kx: int, ky: int, kind: str) -> dict:
    """All-zero critic parameters of the quadratic family of ``kind``."""
    theta = {"W": np.zeros((kx, ky)), "Q": np.zeros((ky, ky)), "b": np.zeros(ky)}
    if kind == "mine":
        theta |= {"P": np.zeros((kx, kx)), "a": np.zeros(kx)}
    return theta


# --------------------------------------------------------------------------- training and evaluation


@dataclass(frozen=True)
class EstimatorSettings:
    """§5.5's knobs (MSMAConfig's ``est_*`` and ``nce_batch``)."""

    dim: int = 8
    init: str = "gaussian"
    steps: int = 200
    lr: float = 0.01
    batch: int = 256
    l2: float = 1e-4
    nce_batch: int = 256


def _objective_grad(kind: str, s: np.ndarray) -> np.ndarray:
    """∂ objective / ∂S only: training never needs the value."""
    return infonce_grad(s) if kind == "infonce" else dv_grad(s)


def train_critic(x: np.ndarray, y: np.ndarray, kind: str, settings: EstimatorSettings, seed: Any) -> dict:
    """Fit the quadratic critic on train scores by Adam ascent on objective − l2‖θ‖² over seeded minibatches."""
    theta = gaussian_critic(x, y, kind) if settings.init == "gaussian" else zero_critic(x.shape[1], y.shape[1], kind)
    gen = np.random.default_rng(seed)
    m = {k: np.zeros_like(v) for k, v in theta.items()}
    v = {k: np.zeros_like(val) for k, val in theta.items()}
    n = x.shape[0]
    bsz = min(settings.batch, n)
    for step in range(1, settings.steps + 1):
        idx = gen.choice(n, size=bsz, replace=False)
        xb, yb = x[idx], y[idx]
        g = _objective_grad(kind, critic_scores(theta, xb, yb))
        grads = critic_backward(theta, xb, yb, g)
        for k in theta:
            d = grads[k] - 2.0 * settings.l2 * theta[k]  # ascent direction
            m[k] = 0.9 * m[k] + 0.1 * d
            v[k] = 0.999 * v[k] + 0.001 * d * d
            mh, vh = m[k] / (1 - 0.9**step), v[k] / (1 - 0.999**step)
            theta[k] = theta[k] + settings.lr * mh / (np.sqrt(vh) + 1e-8)
    return theta


def _scores_pair(x_tr, y_tr, x_te, y_te, dim) -> tuple[np.ndarray, ...]:
    out = []
    for fit, rows in ((x_tr, x_te), (y_tr, y_te)):
        mean, vecs, sd = pca_fit(fit, dim)
        out += [(fit - mean) @ vecs / sd, (rows - mean) @ vecs / sd]
    return out[0], out[2], out[1], out[3]


def mi_infonce(x_tr: Any, y_tr: Any, x_te: Any, y_te: Any, settings: EstimatorSettings = EstimatorSettings(),
               seed: Any = 0) -> float:
    """InfoNCE MI lower bound: critic on train rows, value averaged over disjoint test batches of ``nce_batch``. [§5.5]

    Test rows in a seeded permutation, last partial batch dropped; capped by ln nce_batch (MSA-T7).
    """
    x_tr, y_tr, x_te, y_te = (_rows(a, "mi_infonce") for a in (x_tr, y_tr, x_te, y_te))
    sx_tr, sy_tr, sx_te, sy_te = _scores_pair(x_tr, y_tr, x_te, y_te, settings.dim)
    theta = train_critic(sx_tr, sy_tr, "infonce", settings, [*np.atleast_1d(seed).tolist(), 0])
    n, b = sx_te.shape[0], settings.nce_batch
    if not 2 <= b <= n:
        raise ValueError(f"mi_infonce: nce_batch {b} is not in [2, test rows = {n}]")
    perm = np.random.default_rng([*np.atleast_1d(seed).tolist(), 1]).permutation(n)
    vals = [float(infonce_value(critic_scores(theta, sx_te[idx], sy_te[idx])))
            for idx in (perm[i:i + b] for i in range(0, n - b + 1, b))]
    return float(np.mean(vals))


def mi_mine(x_tr: Any, y_tr: Any, x_te: Any, y_te: Any, settings: EstimatorSettings = EstimatorSettings(),
            seed: Any = 0) -> float:
    """MINE (DV bound) with shuffled marginals: critic on train rows; DV on the whole test split, all off-diagonal pairs. [§5.5]"""
    x_tr, y_tr, x_te, y_te = (_rows(a, "mi_mine") for a in (x_tr, y_tr, x_te, y_te))
    sx_tr, sy_tr, sx_te, sy_te = _scores_pair(x_tr, y_tr, x_te, y_te, settings.dim)
    theta = train_critic(sx_tr, sy_tr, "mine", settings, [*np.atleast_1d(seed).tolist(), 2])
    return float(dv_value(critic_scores(theta, sx_te, sy_te)))

