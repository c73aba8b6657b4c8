"""Strategies and helpers the MSA theorems and tests share (specs/04-msma.md §4). [reconstructed]

* :func:`gauss_pairs` — jointly Gaussian (X, Y): k_x, k_y ∈ [1, 8], canonical correlations
  ρ_i ∈ [0, 0.95], a Haar rotation per side, coordinate scales log-uniform [0.3, 3], shifts
  N(0, 4), N rows (train and test drawn independently); I = −½Σ ln(1 − ρ_i²).
* :func:`exact_moments` — rows whose sample mean and 1/N covariance are exactly μ and Σ.
* :func:`haar` — a Haar-distributed orthogonal matrix (det ±1, or +1 with ``proper``).
* :func:`matrices` — Procrustes inputs A (N, d), B = AR₀ + ηN(0, 1).

Hypothesis draws the shape parameters and one integer seed; NumPy draws the arrays from it, so
an example is small to print and cheap to shrink.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from reference.metrics.information import gaussian_mi


def haar(d: int, gen: np.random.Generator, proper: bool = False) -> np.ndarray:
    """A Haar orthogonal d×d matrix (QR of a Gaussian with the sign fix of Mezzadri 2007)."""
    q, r = np.linalg.qr(gen.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    if proper and np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def exact_moments(n: int, mu: np.ndarray, cov: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """n rows whose sample mean is exactly μ and 1/n covariance exactly Σ (to rounding)."""
    d = mu.size
    z = gen.standard_normal((n, d))
    z -= z.mean(0)
    lz = np.linalg.cholesky(z.T @ z / n)
    white = np.linalg.solve(lz, z.T).T
    return white @ np.linalg.cholesky(cov).T + mu


@dataclass(frozen=True)
class GaussPair:
    """One drawn jointly Gaussian pair: train and test rows, canonical correlations, closed-form MI."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    rho: np.ndarray
    mi: float

    def __repr__(self) -> str:
        return (f"GaussPair(N={self.x.shape[0]}, kx={self.x.shape[1]}, ky={self.y.shape[1]}, "
                f"rho={np.round(self.rho, 4).tolist()}, I={self.mi:.4f})")


def draw_pair(kx: int, ky: int, rho: np.ndarray, n: int, n_test: int, seed: int) -> GaussPair:
    """X = (U R_x) diag(s_x) + c_x, Y = (V R_y) diag(s_y) + c_y, V_i = ρ_i U_i + √(1 − ρ_i²) E_i."""
    gen = np.random.default_rng([seed, 41])
    m = min(kx, ky)
    rho = np.asarray(rho, np.float64)[:m]
    rx, ry = haar(kx, gen), haar(ky, gen)
    sx, sy = np.exp(gen.uniform(np.log(0.3), np.log(3), kx)), np.exp(gen.uniform(np.log(0.3), np.log(3), ky))
    cx, cy = 2.0 * gen.standard_normal(kx), 2.0 * gen.standard_normal(ky)

    def rows(count: int) -> tuple[np.ndarray, np.ndarray]:
        u = gen.standard_normal((count, kx))
        v = gen.standard_normal((count, ky))
        v[:, :m] = rho * u[:, :m] + np.sqrt(1 - rho**2) * v[:, :m]
        return (u @ rx) * sx + cx, (v @ ry) * sy + cy

    x, y = rows(n)
    xt, yt = rows(n_test)
    return GaussPair(x, y, xt, yt, rho, gaussian_mi(rho))


@st.composite
def gauss_pairs(draw, kmin: int = 1, kmax: int = 8, nmin: int = 256, nmax: int = 2048, rho_max: float = 0.95,
                mi_max: float | None = None, n_test: int | None = None, equal_n: bool = False, equal_rho: bool = False,
                square: bool = False):
    """A :class:`GaussPair` within the given ranges (``mi_max`` caps I by shrinking the ρ's).

    ``equal_rho``: one ρ for every canonical pair (the dependence is spread over all directions,
    so a PCA truncation cannot drop all of it); ``square``: k_y = k_x (no independent direction on either side).
    """
    kx = draw(st.integers(kmin, kmax))
    ky = kx if square else draw(st.integers(kmin, kmax))
    if equal_rho:
        rho = np.full(min(kx, ky), draw(st.floats(0.0, rho_max)))
    else:
        rho = np.array(draw(st.lists(st.floats(0.0, rho_max), min_size=min(kx, ky), max_size=min(kx, ky))))
    if mi_max is not None and gaussian_mi(rho) > mi_max:
        rho = rho * 0.999  # shrink until I ≤ mi_max (monotone in every ρ_i)
        while gaussian_mi(rho) > mi_max:
            rho = rho * 0.95
    n = draw(st.integers(nmin, nmax))
    return draw_pair(kx, ky, rho, n, n if (equal_n or n_test is None) else n_test, draw(st.integers(0, 2**31 - 1)))
