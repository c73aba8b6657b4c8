"""Closed forms and per-row bound checks of evaluated attention (LOC-T4, T5, T6; spec §4, §5). [reconstructed]

Each function reads one layer's scores z (B, H, T, T) before the bias, and where it
checks a bound, the pattern the bias produced; everything runs on the host in float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reference.mechanisms.locality.layout import Layout
from reference.mechanisms.locality.penalty import block_weights
from reference.metrics import entropy


def block_max(z: Any, layout: Layout) -> np.ndarray:
    """max_{j ∈ G_g ∩ vis(i)} z_ij for every row and block: z (B, H, T, T) -> (B, H, T, NB), −∞ where empty.

    Per sequence the keys are sorted by block and reduced segment by segment
    (``np.maximum.reduceat``): one pass, whatever the number of blocks.
    """
    z = np.where(layout.visible, np.asarray(z, dtype=np.float64), -np.inf)
    b, h, t, _ = z.shape
    out = np.full((b, h, t, layout.n_blocks), -np.inf)
    for s in range(b):
        order = np.argsort(layout.block_id[s], kind="stable")
        ids = layout.block_id[s][order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        out[s][..., ids[starts]] = np.maximum.reduceat(z[s][..., order], starts, axis=-1)
    return out


def _xlog2x(x: np.ndarray) -> np.ndarray:
    """x log₂ x with 0 log 0 = 0."""
    return np.where(x > 0, x * np.log2(np.where(x > 0, x, 1.0)), 0.0)


def _masked_sum(x: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Σ_{j ∈ keys(i)} x_ij: x (B, H, T, T), keys (B, T, T) bool -> (B, H, T), without a temporary."""
    return np.einsum("bhij,bij->bhi", x, keys.astype(np.float64), optimize=False)


def _split_sums(z: Any, layout: Layout, tau: float) -> dict:
    """Per row (B, H, T): S_on, S_off (common shift) and the entropies H_on, H_off in bits.

    With v_j = z_j/τ − max_k z_k/τ and e_j = exp(v_j), S = Σ e_j over G* (or off it);
    the entropy of p = e/S is H = ln S − Σ p_j v_j (nats), the identity that saves
    forming p. Also returns e (B, H, T, T) for the pointer form of T6(a).
    """
    z = np.asarray(z, dtype=np.float64)
    u = np.where(layout.visible, z / tau, -np.inf)
    v = u - np.max(u, axis=-1, keepdims=True)
    e = np.exp(v)
    ev = e * np.where(layout.visible, v, 0.0)
    out: dict[str, Any] = {"e": e}
    for side, keys in (("on", layout.on), ("off", layout.off)):
        total = _masked_sum(e, keys)
        with np.errstate(invalid="ignore", divide="ignore"):
            h = np.where(total > 0, (np.log(total) - _masked_sum(ev, keys) / total) / math.log(2), 0.0)
        out[f"s_{side}"], out[f"h_{side}"] = total, np.maximum(h, 0.0)
    return out


def bias_dial_closed_form(z: Any, layout: Layout, shift: float, tau: float = 1.0) -> dict:
    """The bias dial's row quantities in closed form from the unbiased scores (LOC-T4(a), T5(d), T6(a)). [reconstructed]

    z (B, H, T, T) scores before any bias; shift s = λ_ℓ β. With g = e^{−s/τ} and
    D = S_on + S_off g: ``eps`` = S_off g / D and ``on`` = S_on / D (computed apart);
    ``entropy`` = h₂(ε) + (1 − ε) H_on + ε H_off (bits); ``pf`` = (1 − ε) Σ_{t∈T(i)}
    softmax(z_{G*}/τ)_t. All (B, H, T); meaningful on biased rows.
    """
    parts = _split_sums(z, layout, tau)
    g = math.exp(-shift / tau)
    denom = parts["s_on"] + parts["s_off"] * g
    eps, on = parts["s_off"] * g / denom, parts["s_on"] / denom
    h = -_xlog2x(eps) - _xlog2x(on) + on * parts["h_on"] + eps * parts["h_off"]
    pf = on * _masked_sum(parts["e"], layout.pointer_mask) / parts["s_on"]
    return {"eps": eps, "on": on, "entropy": h, "pf": pf}


BOUND_RTOL = 1e-9
"""Slack of the per-row bound checks on evaluated (float64) model rows."""


def row_bound_violations(
    z: Any, pattern: Any, layout: Layout, shift: float, tau: float = 1.0, *, h: np.ndarray | None = None
) -> dict:
    """Per-row checks of LOC-T4(b), T5(a)–(c), T6(b) on one layer: (B, H, T) bool, True = violated.

    z: the layer's scores before bias (B, H, T, T); pattern: the attention it produced
    with the bias −s·off, s = λ_ℓ β, and temperature τ. The margin bound
    R = Σ_{g≠g*} k_g e^{−(s + Δ_g)/τ} (Δ_g = z* − max_{G_g} z) is used for T4(b), T5(c)
    (ε̄ = R/(1 + R)) and T6(b). Each statement is about that row's own logits, so it
    must hold on every biased row of every layer (E4); T6(b) on rule rows with a
    single target. Slack: relative :data:`BOUND_RTOL`. ``h``: the rows' entropies in
    bits, when already computed.
    """
    z = np.asarray(z, dtype=np.float64)
    a = np.asarray(pattern, dtype=np.float64)
    biased = np.broadcast_to(layout.biased_rows[:, None, :], a.shape[:3])
    k_star = layout.on.sum(-1).astype(np.float64)[:, None]  # (B, 1, T)
    n_off = layout.off.sum(-1).astype(np.float64)[:, None]
    eps = _masked_sum(a, layout.off)  # ε summed over the off keys, never 1 − on
    on_mass = _masked_sum(a, layout.on)
    h = entropy(a, axis=-1, base=2) if h is None else h
    tol = BOUND_RTOL
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        top = block_max(z, layout)  # (B, H, T, NB)
        z_star = np.take_along_axis(top, np.clip(layout.target_block, 0, None)[:, None, :, None], axis=-1)[..., 0]
        counted = block_weights(layout, "sqrt_size") > 0  # off-target blocks with visible keys
        r = np.sum(np.where(counted, layout.kcount[:, None] * np.exp((top - z_star[..., None] - shift) / tau), 0.0), axis=-1)
        log_k = np.log2(np.maximum(k_star, 1.0))
        log_off = np.log2(np.maximum(n_off, 1.0))
        h2 = -_xlog2x(eps) - _xlog2x(on_mass)
        f_eps = np.where(eps > 0, eps * np.log2(math.e * np.maximum(n_off, 1.0) / eps), 0.0)
        eps_bar = r / (1.0 + r)
        f_bar = np.where(eps_bar > 0, eps_bar * np.log2(math.e * np.maximum(n_off, 1.0) / eps_bar), 0.0)
        slack = tol * (1.0 + h)
        out = {
            "T4b": biased & (eps > r * on_mass * (1 + tol)),
            "T5a": biased & (h > h2 + on_mass * log_k + eps * log_off + slack),
            "T5b": biased & (h - log_k > f_eps + slack),
            "T5c": biased & (n_off >= 1) & (h > log_k + f_bar + slack),
            "T6b": np.zeros(a.shape[:3], bool),
        }
        # T6(b) concerns the few rule rows with one target t: gather them first.
        seq, row = np.nonzero(layout.rule_row & (layout.pointer_mask.sum(-1) == 1))
        if seq.size:
            rows_a, rows_z = a[seq, :, row], z[seq, :, row]  # (R, H, T)
            target = layout.pointer_mask[seq, row][:, None, :]
            on = layout.on[seq, row][:, None, :]
            visible = layout.visible[row][:, None, :]
            pf_t = np.sum(np.where(target, rows_a, 0.0), axis=-1)
            not_t = np.sum(np.where(visible & ~target, rows_a, 0.0), axis=-1)  # 1 − PF_t, summed directly
            margin = np.sum(np.where(target, rows_z, 0.0), axis=-1) - np.max(np.where(on & ~target, rows_z, -np.inf), axis=-1)
            others = k_star[seq, 0, row][:, None] - 1
            y = np.where(others > 0, others * np.exp(-margin / tau), 0.0)
            bad = (pf_t < on_mass[seq, :, row] / (1.0 + y) * (1 - tol)) | (not_t > (r[seq, :, row] + y) * (1 + tol))
            out["T6b"][seq, :, row] = bad
    return out


def rule_row_margins(z: Any, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Margins of the rule rows (spec §5 logs them): Δ and Δ_in, each (R, H) for the R rule rows.

    Δ = z* − max over off blocks of max_{G_g} z (negative when an off key beats G*);
    Δ_in = z_t − max_{G*∖{t}} z for the row's first target t (+∞ when t is alone in G*).
    """
    seq, row = np.nonzero(layout.rule_row)
    z_rows = np.asarray(z, dtype=np.float64)[seq, :, row]  # (R, H, T)
    visible = layout.visible[row][:, None, :]
    on = layout.on[seq, row][:, None, :]
    off = layout.off[seq, row][:, None, :]
    z_star = np.max(np.where(on, z_rows, -np.inf), axis=-1)
    delta = z_star - np.max(np.where(off & visible, z_rows, -np.inf), axis=-1)
    first = np.argmax(layout.pointer_mask[seq, row], axis=-1)  # (R,)
    z_t = np.take_along_axis(z_rows, first[:, None, None], axis=-1)[..., 0]
    rest = on & (np.arange(z_rows.shape[-1]) != first[:, None])[:, None, :]
    delta_in = z_t - np.max(np.where(rest, z_rows, -np.inf), axis=-1)
    return delta, delta_in


def entropy_rising_rows(z: Any, layout: Layout, tau: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """LOC-T5(d) per row: (rising, applicable), each (B, H, T) bool. [reconstructed]

    rising: ε(0) > ε° = 1/(1 + 2^{H_on − H_off}), so the bias dial *raises* the row's
    entropy for small λ; applicable: biased rows with at least one off key.
    """
    parts = _split_sums(z, layout, tau)
    eps0 = parts["s_off"] / (parts["s_on"] + parts["s_off"])
    eps_star = 1.0 / (1.0 + np.exp2(parts["h_on"] - parts["h_off"]))
    applicable = np.broadcast_to((layout.biased_rows & (layout.off.sum(-1) > 0))[:, None, :], eps0.shape)
    return applicable & (eps0 > eps_star), applicable
