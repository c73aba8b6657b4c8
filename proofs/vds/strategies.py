"""Strategy ``heads`` of specs/02 §4 and the helpers the VDS theorems share. [reconstructed]

V ∈ [2, 40], d ∈ [1, 12], rank r ∈ [1, min(V, d)], W = U diag(σ) Qᵀ with U (V, r), Q (d, r)
orthonormal (QR of Gaussians), σ log-uniform: "well-conditioned" σ ∈ [0.5, 2],
"ill-conditioned" σ ∈ [10⁻², 10²] (κ ≤ 10⁴, far from the ``rcond`` cut-off). Float64.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

WELL = (0.5, 2.0)
ILL = (1e-2, 1e2)


class Head(NamedTuple):
    """A drawn head W (V, d) of known rank and singular values, and a drawn representation h (d,)."""

    W: np.ndarray
    rank: int
    sigma: np.ndarray
    h: np.ndarray
    conditioning: str

    @property
    def kappa(self) -> float:
        """κ(W) on its range: σ_max / σ_min."""
        return float(self.sigma.max() / self.sigma.min())


def orthonormal(rs: np.random.Generator, n: int, r: int) -> np.ndarray:
    """n × r with orthonormal columns: Q of the QR of a Gaussian matrix."""
    q, _ = np.linalg.qr(rs.standard_normal((n, r)))
    return q


def make_head(rs: np.random.Generator, V: int, d: int, r: int, sigma_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """W = U diag(σ) Qᵀ of rank r with σ log-uniform in ``sigma_range``."""
    lo, hi = np.log(sigma_range[0]), np.log(sigma_range[1])
    sigma = np.exp(rs.uniform(lo, hi, size=r))
    return orthonormal(rs, V, r) @ np.diag(sigma) @ orthonormal(rs, d, r).T, sigma


@st.composite
def heads(draw: st.DrawFn, conditioning: str = "well", max_v: int = 40, max_d: int = 12,
          full_rank: bool | None = None, v_le_d: bool = False, sigma: tuple[float, float] | None = None) -> Head:
    """One head of the §4 strategy. full_rank True: r = min(V, d); False: r < min(V, d) when possible; None: any r.

    v_le_d: draw V ≤ d (for rank W = V conclusions). sigma overrides the range (VDS-P4's [0.1, 10]).
    """
    d = draw(st.integers(1, max_d))
    V = draw(st.integers(1 if v_le_d else 2, d if v_le_d else max_v))
    if v_le_d:
        V = max(V, 1)
    top = min(V, d)
    if full_rank is True:
        r = top
    elif full_rank is False and top > 1:
        r = draw(st.integers(1, top - 1))
    else:
        r = draw(st.integers(1, top))
    rs = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    W, s = make_head(rs, V, d, r, sigma or (WELL if conditioning == "well" else ILL))
    h = rs.standard_normal(d) * np.exp(rs.uniform(-1, 1))
    return Head(W, r, s, h, conditioning)
