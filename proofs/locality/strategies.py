"""The LOC theorems' shared ground: the ``loc_rows`` strategy (specs/00-localist.md §4) and row helpers.

A drawn :class:`LocRow` is one attention row with its block layout and every dial parameter;
the helpers measure it the way the theorems do (margins Δ_g, log-odds of ε with ε and 1 − ε
summed apart, the penalty ψ by the project's A4) and evaluate the project's operators on it
(A3 with the bias dial, the inverse construction of theory mode's stationary points). [reconstructed]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import logsumexp

from proofs.toolkit import floats_in
from reference.mechanisms.locality import (
    attention_rows,
    group_penalty,
    make_layout,
)

# --------------------------------------------------------------------------- drawn rows (strategy loc_rows)


class LocRow(NamedTuple):
    """One attention row: logits z (n,), block of each key (n,), relevant block g*, τ, κ, β, λ, δ."""

    z: np.ndarray
    blocks: np.ndarray
    target: int
    tau: float
    kappa: float
    beta: float
    lam: float
    delta: float

    @property
    def on(self) -> np.ndarray:
        return self.blocks == self.target

    @property
    def off(self) -> np.ndarray:
        return self.blocks != self.target


@st.composite
def block_partitions(draw: st.DrawFn, n: int, max_blocks: int = 8) -> np.ndarray:
    """(n,) block ids 0 … NB−1, every block non-empty; contiguous runs, optionally shuffled."""
    n_blocks = draw(st.integers(2, min(n, max_blocks)))
    cuts = sorted(draw(st.lists(st.integers(1, n - 1), min_size=n_blocks - 1, max_size=n_blocks - 1, unique=True)))
    sizes = np.diff([0, *cuts, n])
    blocks = np.repeat(np.arange(n_blocks), sizes)
    if draw(st.booleans()):
        blocks = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).permutation(blocks)
    return blocks


@st.composite
def logits(draw: st.DrawFn, n: int) -> np.ndarray:
    """z (n,): σ·N(0, 1) with σ ∈ [0.1, 6] (seeded), or floats in [−10, 10] drawn by Hypothesis."""
    if draw(st.booleans()):
        sigma = draw(floats_in(0.1, 6.0))
        return sigma * np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(n)
    return draw(hnp.arrays(np.float64, n, elements=floats_in(-10.0, 10.0)))


@st.composite
def loc_rows(draw: st.DrawFn, max_n: int = 64, max_kappa: float = 20.0, tau: tuple[float, float] = (0.1, 5.0)) -> LocRow:
    """The spec's ``loc_rows`` strategy (κ, β include 0)."""
    n = draw(st.integers(2, max_n))
    blocks = draw(block_partitions(n))
    return LocRow(
        z=draw(logits(n)),
        blocks=blocks,
        target=draw(st.integers(0, int(blocks.max()))),
        tau=draw(floats_in(*tau)),
        kappa=draw(st.one_of(st.just(0.0), floats_in(0.0, max_kappa))),
        beta=draw(st.one_of(st.just(0.0), floats_in(0.0, 20.0))),
        lam=draw(floats_in(0.0, 1.0)),
        delta=draw(floats_in(1e-6, 0.5)),
    )


def row_layout(blocks: np.ndarray, target: int):
    """A one-sequence, bidirectional layout whose every row has relevant block ``target`` (for A4)."""
    n = len(blocks)
    return make_layout(blocks[None], np.full((1, n), target), causal=False, free_rows="none")


def penalty_of(a: np.ndarray, blocks: np.ndarray, target: int, group_weight: str = "sqrt_size") -> float:
    """ψ(a) = Σ_{g≠g*} w_g ‖a_g‖₂ by the project's A4 (every row of a (1, 1, n, n) pattern is a)."""
    n = len(a)
    pattern = np.broadcast_to(a, (1, 1, n, n)).copy()
    omega, _ = group_penalty(pattern, row_layout(blocks, target), 1.0, 1, group_weight=group_weight)
    return float(omega)  # λ/(L·H·|rows|) · Σ_rows ψ = ψ: the n rows are equal


def block_sizes(blocks: np.ndarray) -> np.ndarray:
    return np.bincount(blocks)


def margins(row: LocRow) -> dict:
    """z* = max_{G*} z; per off block g: k_g and Δ_g = z* − max_{G_g} z; Δ = min_g Δ_g; k*, n − k*."""
    z, blocks = row.z, row.blocks
    sizes = block_sizes(blocks)
    z_star = float(z[row.on].max())
    off_blocks = [g for g in range(len(sizes)) if g != row.target and sizes[g] > 0]
    k = np.array([sizes[g] for g in off_blocks], dtype=np.float64)
    delta_g = np.array([z_star - z[blocks == g].max() for g in off_blocks])
    return {"z_star": z_star, "k": k, "delta_g": delta_g, "delta": float(delta_g.min()),
            "k_star": int(row.on.sum()), "n_off": int(row.off.sum())}


def log_odds(a: np.ndarray, off: np.ndarray) -> float:
    """log(ε/(1 − ε)) with ε and 1 − ε summed apart (−inf when ε underflowed to 0)."""
    eps, on = a[off].sum(), a[~off].sum()
    with np.errstate(divide="ignore"):
        return float(np.log(eps) - np.log(on))


def log_margin_bound(m: dict, shift: float, tau: float) -> tuple[float, float]:
    """log R = log Σ_g k_g e^{−(s + Δ_g)/τ} and log of its cruder form (n − k*) e^{−(s + Δ)/τ}."""
    fine = float(logsumexp(np.log(m["k"]) - (shift + m["delta_g"]) / tau))
    crude = math.log(m["n_off"]) - (shift + m["delta"]) / tau
    return fine, crude


# --------------------------------------------------------------------------- the operators on a row


def split_sums(row: LocRow) -> tuple[float, float]:
    """S_on, S_off of e^{z/τ} with a common shift (the max of z/τ), as the theorem's ratio needs."""
    u = row.z / row.tau
    e = np.exp(u - u.max())
    return float(e[row.on].sum()), float(e[row.off].sum())


def biased_rows(row: LocRow, shifts: np.ndarray) -> np.ndarray:
    """A3 at bias −s·off for each s: (len(shifts), n)."""
    shifts = np.asarray(shifts, dtype=np.float64).reshape(-1, 1)
    n = len(row.z)
    return attention_rows(np.broadcast_to(row.z, (len(shifts), n)), bias=-shifts * row.off, temperature=row.tau)


def inverse_logits(a: np.ndarray, blocks: np.ndarray, target: int, kappa: float, tau: float, weight: str) -> np.ndarray:
    """z for which a is the stationary point of theory mode (exact, no solver): the inverse construction.

    z_j = τ ln a_j + κ w_g a_j/‖a_g‖₂ off G*, z_j = τ ln a_j on G*.
    """
    sizes = block_sizes(blocks).astype(np.float64)
    norms = np.sqrt(np.bincount(blocks, weights=a * a))
    w = np.sqrt(sizes) if weight == "sqrt_size" else np.ones_like(sizes)
    return tau * np.log(a) + np.where(blocks != target, kappa * w[blocks] * a / norms[blocks], 0.0)
