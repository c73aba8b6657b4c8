"""E3's draws: greedy growth on random S and random sub-K* configurations (DDCL-T9/T10, spec §5.2) [reconstructed]."""

from __future__ import annotations

import math

import numpy as np

from reference.mechanisms.ddc.gate import projector, sym, unit


def random_symmetric(d: int, traceless: bool, rng: np.random.Generator) -> np.ndarray:
    """S = (B + Bᵀ)/2, entries of B uniform in [−10, 10]; centred to trace 0 when ``traceless``."""
    b = rng.uniform(-10, 10, (d, d))
    s = (b + b.T) / 2
    return s - np.trace(s) / d * np.eye(d) if traceless else s


def positive_trace(s: np.ndarray) -> float:
    """tr(S₊)."""
    return float(np.sum(np.maximum(np.linalg.eigvalsh(s), 0.0)))


def greedy_growth(s: np.ndarray, theta: float, sigma: float, rng: np.random.Generator) -> tuple[int, float]:
    """Grow until λ_max(A_res) ≤ θ_w; each growth appends n̂(Π⊥(u₁ + σξ)) if its Rayleigh quotient exceeds θ_w
    (σ = 0: exact capture). Returns (count, smallest margin of the per-growth drop of tr(A_res₊) over vᵀA_res v)."""
    d = s.shape[0]
    e = np.zeros((d, 0))
    count, margin = 0, math.inf
    for _ in range(50 * d):
        p = projector(e, d)
        a = sym(p @ s @ p)
        w, vecs = np.linalg.eigh(a)
        if w[-1] <= theta or e.shape[1] >= d:
            break
        v = unit(p @ (vecs[:, -1] + sigma * rng.standard_normal(d)))
        gain = float(v @ a @ v)
        if gain <= theta:
            continue
        before = positive_trace(a)
        e = np.column_stack([e, v])
        p2 = projector(e, d)
        margin = min(margin, before - positive_trace(sym(p2 @ s @ p2)) - gain)
        count += 1
    return count, margin


def minimality_margin(s: np.ndarray, theta: float, rng: np.random.Generator) -> tuple[float, int]:
    """min over m < K* of λ_max(Π⊥SΠ⊥) − λ_{m+1} for random orthonormal E (m columns) — ≥ 0 by DDCL-T10(a); and K*."""
    lam = np.sort(np.linalg.eigvalsh(s))[::-1]
    k_star = int(np.sum(lam > theta))
    worst = math.inf
    d = s.shape[0]
    for m in range(k_star):
        e = np.linalg.qr(rng.standard_normal((d, m)))[0] if m else np.zeros((d, 0))
        p = projector(e, d)
        worst = min(worst, float(np.linalg.eigvalsh(p @ s @ p)[-1] - lam[m]))
    return worst, k_star
