"""A4 — the group-sparsity penalty; A5 — the pointer loss; the step's extra loss (spec §2.3, §2.4). [reconstructed]

Each is a forward/backward pair on one layer's attention pattern (B, H, T, T), taking its
array module from the pattern (NumPy, CuPy, autograd for the gradient oracle); the
gradients enter the core backward at the ``blocks.{ℓ}.attn.pattern`` hook. Also the
group-lasso proximal step of LOC-T9.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from reference.backend import namespace
from reference.config import check_choice
from reference.mechanisms.locality.config import LocalityConfig
from reference.mechanisms.locality.layout import Layout


def block_weights(layout: Layout, group_weight: str = "sqrt_size") -> np.ndarray:
    """W (B, 1, T, NB): w_g = √k_g (or 1) on off-target blocks with visible keys of supervised rows. [reconstructed]

    W = w(k_g) ⊙ [g ≠ g*(i)] ⊙ [k_g > 0] ⊙ [g*(i) ≥ 0]; everything else is 0.
    """
    check_choice("locality", "group_weight", group_weight, ("sqrt_size", "one"))
    nb = layout.n_blocks
    selected = (
        (layout.kcount > 0)
        & (np.arange(nb)[None, None, :] != layout.target_block[:, :, None])
        & layout.biased_rows[:, :, None]
    )
    size = np.sqrt(layout.kcount) if group_weight == "sqrt_size" else np.ones_like(layout.kcount)
    return (size * selected)[:, None]


def block_norms(pattern: Any, layout: Layout) -> Any:
    """N (B, H, T, NB): ‖A_{i, G_g}‖₂ for every row and block (masked keys hold 0)."""
    xp = namespace(pattern)
    onehot = xp.asarray(layout.onehot.astype(pattern.dtype))[:, None]
    return xp.sqrt((pattern * pattern) @ onehot)


def group_penalty(
    pattern: Any,
    layout: Layout,
    lam: float,
    n_layers: int,
    *,
    group_weight: str = "sqrt_size",
    kind: str = "off_target",
    norm_eps: float = 1e-12,
) -> tuple[Any, dict]:
    """A4: ω_ℓ = λ_ℓ/(L·H·|𝒬_rows|) · Σ_{rows ∈ 𝒬} ψ(A_i) for one layer's pattern (B, H, T, T). [reconstructed §2.3]

    ``kind="off_target"`` (default): ψ(a_i) = Σ_{g≠g*(i), k_g>0} w_g ‖a_{i,G_g}‖₂, a group
    lasso over the blocks *other than* the relevant one (LOC-T1: one over all blocks
    cannot prefer a block). ``kind="block_mass_sqrt"``: ψ = Σ_{g: k_g>0} √m_g − 1 ≥ 0,
    zero iff the row's mass sits in one block (any block; unsupervised fallback).
    𝒬_rows are the rows with a relevant block; none gives ω = 0. Returns (ω, cache).
    """
    check_choice("locality", "penalty_kind", kind, ("off_target", "block_mass_sqrt"))
    xp = namespace(pattern)
    heads = pattern.shape[1]
    n_rows = int(layout.biased_rows.sum())
    cache = {"kind": kind, "pattern": pattern, "layout": layout, "norm_eps": norm_eps, "scale": 0.0}
    if n_rows == 0 or lam == 0.0:
        return xp.sum(pattern * 0.0), cache
    scale = lam / (n_layers * heads * n_rows)  # c of A4
    onehot = xp.asarray(layout.onehot.astype(pattern.dtype))[:, None]  # (B, 1, T, NB)
    if kind == "off_target":
        weights = xp.asarray(block_weights(layout, group_weight).astype(pattern.dtype))
        squares = (pattern * pattern) @ onehot  # (B, H, T, NB)
        # Blocks outside the sum are never square-rooted at 0 (keeps autograd's oracle finite).
        norms = xp.sqrt(xp.where(weights > 0, squares, 1.0))
        omega = scale * xp.sum(weights * norms)
        cache.update(weights=weights, norms=norms)
    else:
        counted = xp.asarray(((layout.kcount > 0) & layout.biased_rows[:, :, None])[:, None].astype(pattern.dtype))
        mass = pattern @ onehot
        roots = xp.sqrt(xp.where(counted > 0, mass, 1.0))
        omega = scale * (xp.sum(counted * roots) - n_rows * heads)
        cache.update(weights=counted, norms=roots)
    cache["scale"] = scale
    return omega, cache


def group_penalty_backward(cache: dict, d_omega: float = 1.0) -> Any:
    """dω/dA (B, H, T, T) of :func:`group_penalty`, times ``d_omega``. [reconstructed A4]

    off_target: ∂ψ/∂A_ij = w_g A_ij/‖A_{i,G_g}‖₂ for j ∈ G_g, g ≠ g*(i); 0 on G* and
    masked keys, so dA = dω·c·A ⊙ (Q @ onehotᵀ) with Q = W / max(N, norm_eps).
    block_mass_sqrt: ∂ψ/∂A_ij = 1/(2√m_g). A zero-norm (or zero-mass) block gets
    the subgradient 0.
    """
    pattern, layout, scale = cache["pattern"], cache["layout"], cache["scale"]
    xp = namespace(pattern)
    if scale == 0.0:
        return pattern * 0.0
    onehot_t = xp.asarray(layout.onehot.astype(pattern.dtype))[:, None].transpose((0, 1, 3, 2))  # (B, 1, NB, T)
    weights, norms, eps = cache["weights"], cache["norms"], cache["norm_eps"]
    guarded = xp.maximum(norms, eps)
    # The scalar dω·c is folded into Q (B, H, T, NB) before it is spread over the keys.
    if cache["kind"] == "off_target":
        q = xp.where(norms > eps, (d_omega * scale) * weights / guarded, 0.0)
        return pattern * (q @ onehot_t)
    q = xp.where(norms > eps, (d_omega * scale) * weights / (2.0 * guarded), 0.0)
    return q @ onehot_t


# --------------------------------------------------------------------------- A5: the pointer loss

PF_FLOOR = 1e-12


def pointer_loss(pattern: Any, layout: Layout, n_layers: int) -> tuple[Any, dict]:
    """A5: ω = −Σ_{rule rows, heads} log max(PF_i, 10⁻¹²) / (L·H·|rule rows|) for one layer. [reconstructed §2.4]

    PF_i = Σ_{j∈T(i)} A_ij. Summed over layers, the loss is the mean over rule rows ×
    layers × heads. No rule row gives ω = 0. Returns (ω, cache).
    """
    xp = namespace(pattern)
    heads = pattern.shape[1]
    n_rules = int(layout.rule_row.sum())
    cache = {"pattern": pattern, "count": 0}
    if n_rules == 0:
        return xp.sum(pattern * 0.0), cache
    mask = xp.asarray(layout.pointer_mask[:, None].astype(pattern.dtype))  # (B, 1, T, T)
    rows = xp.asarray(layout.rule_row[:, None, :])  # (B, 1, T)
    pf = xp.sum(pattern * mask, axis=-1)  # (B, H, T)
    count = n_layers * heads * n_rules
    omega = -xp.sum(xp.where(rows, xp.log(xp.maximum(pf, PF_FLOOR)), 0.0)) / count
    cache.update(mask=mask, rows=rows, pf=pf, count=count)
    return omega, cache


def pointer_loss_backward(cache: dict, d_omega: float = 1.0) -> Any:
    """dω/dA (B, H, T, T) of :func:`pointer_loss`: −dω·[T(i)]/max(PF_i, 10⁻¹²)/count on rule rows.

    Where PF_i < 10⁻¹² the floor is active and the derivative is 0 (the floor is a constant).
    """
    pattern = cache["pattern"]
    xp = namespace(pattern)
    if cache["count"] == 0:
        return pattern * 0.0
    pf = cache["pf"]
    live = xp.logical_and(cache["rows"], pf > PF_FLOOR)
    coeff = xp.where(live, -d_omega / (xp.maximum(pf, PF_FLOOR) * cache["count"]), 0.0)  # (B, H, T)
    return coeff[..., None] * cache["mask"]


def locality_loss(
    layout: Layout, lams: Sequence[float], cfg: LocalityConfig, n_layers: int, record: dict | None = None
) -> Callable[[dict], tuple[float, dict]]:
    """The ``extra_loss`` of a training step: κ_max Σ_ℓ ω_ℓ + μ Ω_ptr and its pattern gradients. [reconstructed A7]

    Returns ``activations -> (value, {"blocks.{ℓ}.attn.pattern": dA})`` for
    :func:`reference.model.loss_and_grads`; the core attention backward turns each dA
    into score gradients (A3). ``record``, when given, receives the penalty's value.
    """
    use_penalty = "loss" in cfg.dial_hooks and cfg.penalty_max > 0.0
    use_pointer = cfg.pointer_weight > 0.0

    def extra_loss(activations: dict) -> tuple[float, dict]:
        total, penalty_total, grads = 0.0, 0.0, {}
        for layer in range(n_layers):
            name = f"blocks.{layer}.attn.pattern"
            pattern = activations[name]
            d_pattern = None
            if use_penalty and lams[layer] > 0.0:
                omega, cache = group_penalty(
                    pattern, layout, lams[layer], n_layers,
                    group_weight=cfg.group_weight, kind=cfg.penalty_kind, norm_eps=cfg.norm_eps,
                )
                penalty_total += cfg.penalty_max * float(omega)
                d_pattern = group_penalty_backward(cache, cfg.penalty_max)
            if use_pointer:
                omega, cache = pointer_loss(pattern, layout, n_layers)
                total += cfg.pointer_weight * float(omega)
                d = pointer_loss_backward(cache, cfg.pointer_weight)
                d_pattern = d if d_pattern is None else d_pattern + d
            if d_pattern is not None:
                grads[name] = d_pattern.astype(pattern.dtype, copy=False)
        if record is not None:
            record["locality_penalty"] = penalty_total
            if use_pointer:
                record["locality_pointer_loss"] = total / cfg.pointer_weight
        return total + penalty_total, grads

    return extra_loss


def group_prox(x: Any, threshold: float) -> np.ndarray:
    """The group-lasso proximal step (1 − t/‖x‖₂)₊ x for one parameter group (LOC-T9). [standard]

    Returns exactly 0 when ‖x‖₂ ≤ t: the group is switched off.
    """
    x = np.asarray(x, dtype=np.float64)
    norm = float(np.linalg.norm(x))
    if norm <= threshold:
        return np.zeros_like(x)
    return (1.0 - threshold / norm) * x
