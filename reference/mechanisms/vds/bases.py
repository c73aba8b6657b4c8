"""Semantic bases from the LM head and their relation to LM-head logits (specs/02 §2.2, §2.4, A1).

Conventions (§2.1): z = W h + b with W (V, d), row w_i the output embedding of token i;
G = WᵀW (d, d); W⁺ (d, V) the Moore–Penrose pseudo-inverse; P = WW⁺ the projector onto
col W; leverage ℓ_i = P_ii; S = (W⁺)ᵀ (V, d), rows s_i, the semantic bases.

Everything here runs in float64 on the host (the bases are computed once per model) and
is exact linear algebra: no function of this file forms a V×V object except
:func:`projector`, which the proofs use on small heads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reference.config import ConfigError

FLOPS_PER_COSINE = 6
FLOPS_PER_DOT = 2


def as_float64(x: Any) -> np.ndarray:
    """A host float64 copy of ``x`` (a dequantised, possibly float32 head)."""
    return np.array(x, dtype=np.float64)


def check_head(W: np.ndarray, d: int | None = None, *, min_ratio: int = 4) -> str:
    """Validate a head W (V, d) for VDS (A7 step 2); return a warning ('' if none).

    ConfigError (one line) when W is not a finite 2-D matrix, when its width differs from
    the representations' ``d``, or when V ≤ d: then P = I and every basis is an exact
    one-hot pre-image (VDS-P3), so similarity and head logits coincide trivially.
    Warns when V < ``min_ratio``·d (the spec's 4d).
    """
    if getattr(W, "ndim", 0) != 2 or 0 in W.shape:
        raise ConfigError(f"vds: the head must be a non-empty (V, d) matrix, got shape {getattr(W, 'shape', None)}")
    if not np.all(np.isfinite(W)):
        raise ConfigError("vds: the head holds NaN or Inf")
    V, width = W.shape
    if d is not None and width != d:
        raise ConfigError(f"vds: head width {width} does not match the representations' dimension {d}")
    if V <= width:
        raise ConfigError(f"vds: V = {V} ≤ d = {width}: every basis would be an exact one-hot pre-image (VDS-P3); refused")
    if V < min_ratio * width:
        return f"vds: V = {V} < {min_ratio}d = {min_ratio * width}: few tokens per dimension, bases are close to one-hots"
    return ""


def check_label_ids(ids: Any, V: int) -> np.ndarray:
    """The label token ids 𝓛 as int64 (K,); ConfigError unless non-empty, distinct and in [0, V)."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigError(f"vds: label ids must be a non-empty list of token ids, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(f"vds: label ids must be integers, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= V:
        raise ConfigError(f"vds: label id {int(arr.min() if arr.min() < 0 else arr.max())} is outside the vocabulary [0, {V})")
    values, counts = np.unique(arr, return_counts=True)
    if np.any(counts > 1):
        raise ConfigError(f"vds: two classes share the label token {int(values[counts > 1][0])}; each class needs its own token")
    return arr.astype(np.int64)


def pinv_sym(G: np.ndarray, rtol: float) -> np.ndarray:
    """Pseudo-inverse of a symmetric PSD matrix G (d, d) by ``eigh``; eigenvalues ≤ rtol·λ_max are zero.

    [reconstructed] With rtol = rcond², the cut keeps the same rank as cutting the singular
    values of W at rcond·σ_max (λ = σ²).
    """
    lam, U = np.linalg.eigh(G)
    top = lam.max() if lam.size else 0.0
    keep = lam > rtol * top if top > 0 else np.zeros_like(lam, dtype=bool)
    inv = np.zeros_like(lam)
    inv[keep] = 1.0 / lam[keep]
    return (U * inv) @ U.T


def pinv_svd(W: np.ndarray, rcond: float) -> np.ndarray:
    """W⁺ (d, V) from the thin SVD of W (V, d); singular values ≤ rcond·σ_max are zero."""
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    top = s.max() if s.size else 0.0
    keep = s > rcond * top if top > 0 else np.zeros_like(s, dtype=bool)
    inv = np.zeros_like(s)
    inv[keep] = 1.0 / s[keep]
    return (Vt.T * inv) @ U.T


def gram(W: np.ndarray) -> np.ndarray:
    """G = WᵀW (d, d), float64."""
    W = as_float64(W)
    return W.T @ W


def semantic_bases(
    W: Any, ids: Any | None = None, *, method: str = "gram", rcond: float = 1e-6, b: Any | None = None,
    bias_in_bases: bool = False,
) -> np.ndarray:
    """A1: the semantic bases S_𝓛 = rows ``ids`` of S = (W⁺)ᵀ, float64 (K, d). ids None: all V rows.

    [paper-v6 §3.1] s_i = W⁺e_i, the least-squares pre-image of the one-hot logits e_i
    ([author-code]: ``pinv(lm_head.weight.T)``, one-hot @ pinv).
    ``method="pinv"``: the exact formula, W⁺ by SVD (a d×V object).
    ``method="gram"`` [reconstructed]: W⁺ = G⁺Wᵀ for every W, so S_𝓛 = W[𝓛] G⁺ — O(Vd² + d³),
    never a V×V or d×V object (VDS-P1). Both cut singular values of W at ``rcond``·σ_max
    (G's eigenvalues at rcond²·λ_max: the same rank).
    ``bias_in_bases`` (``head_bias_in_bases``): s_i = W⁺(e_i − b), a shift shared by every basis.
    """
    W = as_float64(W)
    if W.ndim != 2:
        raise ConfigError(f"vds: the head must be a (V, d) matrix, got shape {W.shape}")
    rows = np.arange(W.shape[0]) if ids is None else check_label_ids(ids, W.shape[0])
    if method == "pinv":
        Wp = pinv_svd(W, rcond)
        S = Wp.T[rows]
        shift = Wp @ as_float64(b) if bias_in_bases and b is not None else None
    elif method == "gram":
        Gp = pinv_sym(W.T @ W, rcond * rcond)
        S = W[rows] @ Gp
        shift = Gp @ (W.T @ as_float64(b)) if bias_in_bases and b is not None else None
    else:
        raise ConfigError(f"vds.basis_method: {method!r} is not one of 'gram' | 'pinv'")
    return S - shift if shift is not None else S


def leverage(W: Any, rcond: float = 1e-6) -> np.ndarray:
    """ℓ_i = P_ii = w_iᵀG⁺w_i (V,), without forming P: the row sums of (W G⁺) ⊙ W. [reconstructed]"""
    W = as_float64(W)
    return np.einsum("vd,vd->v", W @ pinv_sym(W.T @ W, rcond * rcond), W)


def projector(W: Any, rcond: float = 1e-6) -> np.ndarray:
    """P = W W⁺ (V, V): the orthogonal projector onto col W. For proofs and small heads only."""
    W = as_float64(W)
    return W @ pinv_svd(W, rcond)


def numeric_rank(W: Any, rcond: float = 1e-6) -> int:
    """rank W: singular values above rcond·σ_max."""
    s = np.linalg.svd(as_float64(W), compute_uv=False)
    return int(np.sum(s > rcond * s.max())) if s.size and s.max() > 0 else 0


def condition_on_range(W: Any, rcond: float = 1e-6) -> tuple[float, float]:
    """(κ(W), κ(G)) on the range: σ_max/σ_min over the singular values kept by ``rcond``; κ(G) = κ(W)²."""
    s = np.linalg.svd(as_float64(W), compute_uv=False)
    kept = s[s > rcond * s.max()]
    kw = float(kept.max() / kept.min())
    return kw, kw * kw


def gram_sqrt(G: np.ndarray) -> np.ndarray:
    """T = G^{1/2} (d, d) by ``eigh``, negative rounding eigenvalues clipped to 0 (VDS-P4)."""
    lam, U = np.linalg.eigh(G)
    return (U * np.sqrt(np.clip(lam, 0.0, None))) @ U.T


def logits_from_bases(S: np.ndarray, G: np.ndarray, H: np.ndarray) -> np.ndarray:
    """§2.4 (1): z = S G h for every row h of H (B, d), S (K, d) all or some bases -> (B, K). [reconstructed]"""
    return H @ G @ S.T


def dots_as_head_logits(W: np.ndarray, G: np.ndarray, H: np.ndarray, rcond: float = 1e-6) -> np.ndarray:
    """§2.4 (2): S h = W (G⁺ h): Euclidean dots with the bases are LM-head logits of G⁺h. (B, d) -> (B, V)."""
    return (H @ pinv_sym(G, rcond * rcond)) @ W.T


def flops_per_logits(kind: str, V: int, d: int) -> int:
    """v6's FLOPs of one logits vector [paper-v6 §5]: ``sm`` 6Vd, ``mm`` 2Vd, ``sm_gt`` 6d."""
    if kind == "sm":
        return FLOPS_PER_COSINE * V * d
    if kind == "mm":
        return FLOPS_PER_DOT * V * d
    if kind == "sm_gt":
        return FLOPS_PER_COSINE * d
    raise ConfigError(f"vds: FLOP kind {kind!r} is not one of 'sm' | 'mm' | 'sm_gt'")


def head_diagnostics(W: Any, rcond: float = 1e-6) -> dict[str, float]:
    """κ(G) on its range, rank W, mean ℓ, rank/V and d/V of a head (§2.4 diagnostics)."""
    W = as_float64(W)
    V, d = W.shape
    _, kg = condition_on_range(W, rcond)
    r = numeric_rank(W, rcond)
    return {"kappa_G": kg, "rank_W": r, "mean_leverage": float(leverage(W, rcond).mean()), "rank_over_V": r / V,
            "d_over_V": d / V, "V": V, "d": d, "log10_kappa_G": math.log10(kg)}
