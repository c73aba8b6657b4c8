"""Closed forms and small simulations behind DDCL-T3/T4 and E1 (spec §4, §5.2) [reconstructed].

Collapse curvature (DDCL-T3): for fixed z_1..z_n (mean μ, Σ = (1/n)Σ_t (z_t − μ)(z_t − μ)ᵀ) and
p_k = μ + ε v_k, with v̄ = mean_k v_k and w_k = v_k − v̄,

    d²L/dε²|₀ = 2n‖v̄‖² + (2n/K) Σ_k (‖w_k‖² − (c/τ) w_kᵀ Σ w_k),   c = 4 for L_q, c = 2 for F,

L summed over tokens. Along a split p_k = μ + ε c_k u (unit u, Σ c_k = 0, s = mean c_k²) it is
2ns(1 − cλ/τ) with λ = uᵀΣu: collapse is a strict saddle iff τ < 4λ_max (L_q), τ < 2λ_max (F).
"""

from __future__ import annotations

import numpy as np

from reference.mechanisms.ddc.block import ddcl_backward, ddcl_forward, losses

CURVATURE_C = {"lq": 4.0, "f": 2.0}


def covariance(z: np.ndarray) -> np.ndarray:
    """Σ = (1/n) Σ_t (z_t − μ)(z_t − μ)ᵀ of z (n, d)."""
    c = z - z.mean(axis=0)
    return c.T @ c / z.shape[0]


def loss_sum(z: np.ndarray, p: np.ndarray, tau: float, kind: str) -> float:
    """Σ_t L_q,t (``"lq"``) or Σ_t F_t (``"f"``) of z (n, d), P (K, d)."""
    return float(np.sum(losses(z, p, tau)[kind]))


def curvature_formula(z: np.ndarray, v: np.ndarray, tau: float, kind: str) -> float:
    """DDCL-T3 (ii): d²L/dε² at collapse along directions v (K, d)."""
    n, k = z.shape[0], v.shape[0]
    sigma = covariance(z)
    v_bar = v.mean(axis=0)
    w = v - v_bar
    quad = np.einsum("kd,de,ke->k", w, sigma, w)
    return 2 * n * float(v_bar @ v_bar) + (2 * n / k) * float(np.sum(np.sum(w * w, axis=1) - CURVATURE_C[kind] / tau * quad))


def curvature_fd(z: np.ndarray, v: np.ndarray, tau: float, kind: str, h: float = 1e-4) -> float:
    """Central second difference of L(μ + εv) at ε = 0 with step h."""
    mu = z.mean(axis=0)
    f = [loss_sum(z, mu + e * v, tau, kind) for e in (-h, 0.0, h)]
    return (f[0] - 2 * f[1] + f[2]) / (h * h)


def loss_grad_p(z: np.ndarray, p: np.ndarray, tau: float, kind: str, mean: bool = False) -> np.ndarray:
    """∂/∂P of Σ_t L_q,t or Σ_t F_t (or their means) by the block's hand-written backward."""
    _, cache = ddcl_forward({"prototypes": p, "log_tau": np.full(1, np.log(tau))}, z)
    weight = 1.0 if mean else float(z.shape[0])
    _, g = ddcl_backward(cache, np.zeros_like(z), {"lq" if kind == "lq" else "free_energy": weight})
    return g["prototypes"]


def separation(p: np.ndarray) -> float:
    """sep = mean_{j<k} ‖p_j − p_k‖²."""
    k = p.shape[0]
    diff = p[:, None, :] - p[None, :, :]
    return float(np.sum(diff * diff) / (k * (k - 1)))


def descend(z: np.ndarray, p: np.ndarray, tau: float, steps: int, lr: float, kind: str = "lq",
            mean: bool = True) -> tuple[np.ndarray, list[float]]:
    """``steps`` plain gradient steps on L̄ (mean over tokens; sum when ``mean`` is False); returns P and L per step."""
    p = p.copy()
    trace = []
    for _ in range(steps):
        trace.append(loss_sum(z, p, tau, kind) / (z.shape[0] if mean else 1.0))
        p -= lr * loss_grad_p(z, p, tau, kind, mean)
    trace.append(loss_sum(z, p, tau, kind) / (z.shape[0] if mean else 1.0))
    return p, trace


def split_data(n: int = 400, seed: int = 0) -> np.ndarray:
    """E1's data: n points in d = 2, two Gaussian clusters at ±(1.5, 0), σ = 0.5 (spec §5.1)."""
    rng = np.random.default_rng(seed)
    centres = np.where(rng.random(n) < 0.5, -1.5, 1.5)
    return np.column_stack([centres, np.zeros(n)]) + 0.5 * rng.standard_normal((n, 2))


def tau_grid(lam_max: float, points: int = 41) -> np.ndarray:
    """41 log-spaced τ ∈ [λ_max/4, 16 λ_max] (E1)."""
    return lam_max * np.logspace(np.log10(0.25), np.log10(16.0), points)
