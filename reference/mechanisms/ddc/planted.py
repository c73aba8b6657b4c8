"""Planted rotational spectra for the frozen-gate experiments E2–E4, E7 (spec §5.1) [reconstructed].

d = 2m; plane j has a variance pair (c_{2j−1}, c_{2j}) and a strength a_j; C₀ = diag(c),
M_a⁰ = blockdiag(a_j J), J = [[0, 1], [−1, 0]]; a seeded random orthogonal O gives C = O C₀ Oᵀ and
M_a* = O M_a⁰ Oᵀ. Then ½[C, M_a*] has eigenvalues ±a_j(c_{2j−1} − c_{2j})/2 with eigenvectors
O(e_{2j−1} ± e_{2j})/√2 (exact). Default: d = 16, c = (2, 1) in every plane, a_j = 2λ_j,
λ = (1.0, 0.7, 0.4, 0.05, 0.03, 0.02, 0.01, 0.005). (The spec places this in
``reference/data/planted.py``; it lives in the DDC package because only DDC uses it.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_LAMBDAS = (1.0, 0.7, 0.4, 0.05, 0.03, 0.02, 0.01, 0.005)
J = np.array([[0.0, 1.0], [-1.0, 0.0]])


@dataclass(frozen=True)
class Planted:
    """C (d, d), M_a* (d, d), the rotation O, and the planted positive eigenvalues λ_j of S = ½[C, M_a*]."""

    c: np.ndarray
    m_a: np.ndarray
    o: np.ndarray
    lambdas: tuple[float, ...]
    plane_ops: tuple[np.ndarray, ...]

    @property
    def s(self) -> np.ndarray:
        """S = sym(C M_a*) = ½[C, M_a*]."""
        cm = self.c @ self.m_a
        return 0.5 * (cm + cm.T)


def random_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random orthogonal matrix (QR of a Gaussian with the sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def planted(lambdas: tuple[float, ...] = DEFAULT_LAMBDAS, variances: tuple[float, float] = (2.0, 1.0), seed: int = 0) -> Planted:
    """The planted spectrum: per plane a_j = 2λ_j/(c₁ − c₂), so ½[C, M_a*] has eigenvalues ±λ_j."""
    m = len(lambdas)
    d = 2 * m
    c1, c2 = variances
    c0 = np.diag(np.tile([c1, c2], m))
    o = random_orthogonal(d, np.random.default_rng(seed))
    planes = []
    for j, lam in enumerate(lambdas):
        block = np.zeros((d, d))
        block[2 * j:2 * j + 2, 2 * j:2 * j + 2] = (2.0 * lam / (c1 - c2)) * J
        planes.append(o @ block @ o.T)
    return Planted(o @ c0 @ o.T, sum(planes), o, tuple(lambdas), tuple(planes))


def sample_tokens(p: Planted, n: int, seed: int) -> np.ndarray:
    """n tokens x_t ~ N(0, C) (n, d)."""
    rng = np.random.default_rng(seed)
    w, v = np.linalg.eigh(p.c)
    return rng.standard_normal((n, p.c.shape[0])) @ (v * np.sqrt(np.maximum(w, 0.0))).T


def geometric_lambdas(m: int, ratio: float = 0.7) -> tuple[float, ...]:
    """λ_j = ratio^{j} (E7: planted spectra decaying geometrically)."""
    return tuple(ratio ** j for j in range(m))
