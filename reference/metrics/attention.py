"""Measures on attention patterns: per-row entropy, mass on a key set, argmax hits, and their summaries.

The definitions are LOC's (specs/00-localist.md §5), but nothing here is specific to the
locality dial: a pattern (B, H, T, T) and a key mask (B, T, T) are all they need, so any
mechanism that reads attention uses them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reference.backend import entr, to_host
from reference.config import InputError

#
# Patterns come as one (B, H, T, T) array per layer: the ``blocks.{l}.attn.pattern``
# hook, or a user's own attention probabilities. Each metric is computed in two steps,
# so that an evaluation over many batches can concatenate the small per-row values
# and average exactly once:
#
#   row quantities  (L, B, H, T)  ``row_entropy_bits``, ``row_mass``, ``row_argmax_in``
#   summaries       dict          ``entropy_summary``, ``pointer_summary``
#
# ``attention_entropy``, ``pointer_fidelity`` and ``off_block_mass`` do both steps for
# one set of patterns. All of it runs on the host in float64 (the spec's evaluation
# precision), whatever the patterns' dtype.


def stack_patterns(patterns: Any) -> np.ndarray:
    """Per-layer (B, H, T, T) patterns (a list, or one (L, B, H, T, T) array) -> float64 (L, B, H, T, T).

    Raises InputError unless every layer has the same (B, H, T, T) shape with
    finite, nonnegative entries.
    """
    if isinstance(patterns, (list, tuple)):
        if not patterns:
            raise InputError("patterns: empty; give one (batch, heads, T, T) array per layer")
        shapes = {np.shape(a) for a in patterns}
        if len(shapes) != 1:
            raise InputError(f"patterns: every layer must have the same shape, got {sorted(shapes)}")
        stacked = np.stack([np.asarray(to_host(a), dtype=np.float64) for a in patterns])
    else:
        stacked = np.asarray(to_host(patterns), dtype=np.float64)  # no copy when already float64
        if stacked.ndim == 4:
            stacked = stacked[None]
    shape = stacked.shape
    if len(shape) != 5 or shape[3] != shape[4]:
        raise InputError(f"patterns: expected (batch, heads, T, T) per layer, got {shape[1:] if len(shape) == 5 else shape}")
    # Two reductions, no temporaries: a sum of probabilities is finite iff every entry is.
    if stacked.size and (not math.isfinite(float(stacked.sum())) or float(stacked.min()) < 0):
        raise InputError("patterns: entries must be finite and >= 0 (attention probabilities)")
    return stacked


def row_mask(mask: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    """A (B, T) bool row selector, checked against the patterns' (B, T)."""
    rows = np.asarray(mask)
    if rows.shape != shape:
        raise InputError(f"{name}: shape {rows.shape} does not match the patterns' (batch, T) = {shape}")
    return rows.astype(bool)


def pointer_targets(targets: Any, shape: tuple[int, int], causal: bool = True) -> np.ndarray:
    """Pointer targets T(i) as a (B, T, T) bool mask, validated. [reconstructed]

    targets: a (B, T, T) bool mask (row i marks its targets), or integer
    positions (B, T) or (B, T, R) with −1 for "no target". A position outside
    [0, T) raises InputError, and so does a target after its row i when
    ``causal`` (a causal row cannot attend there).
    """
    b, t = shape
    array = np.asarray(targets)
    if array.dtype == bool:
        if array.shape != (b, t, t):
            raise InputError(f"targets: mask shape {array.shape} does not match (batch, T, T) = {(b, t, t)}")
        mask = array
    else:
        if not np.issubdtype(array.dtype, np.integer):
            raise InputError(f"targets: expected a bool mask or integer positions, got dtype {array.dtype}")
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3 or array.shape[:2] != (b, t):
            raise InputError(f"targets: positions of shape {np.shape(targets)} do not match (batch, T) = {(b, t)}")
        outside = (array < -1) | (array >= t)
        if np.any(outside):
            raise InputError(
                f"targets: position {int(array[outside][0])} is outside the sequence [0, {t}) (−1 means no target)"
            )
        mask = np.zeros((b, t, t), dtype=bool)
        seq, row, slot = np.nonzero(array >= 0)
        mask[seq, row, array[seq, row, slot]] = True
    if causal:
        after = np.triu(np.ones((t, t), dtype=bool), 1) & mask
        if np.any(after):
            seq, row, key = (int(v[0]) for v in np.nonzero(after))
            raise InputError(
                f"targets: row {row} of sequence {seq} points at position {key}, after itself "
                "(causal attention cannot see it)"
            )
    return mask


def row_entropy_bits(patterns: Any) -> np.ndarray:
    """H_i = −Σ_j A_ij log₂ A_ij for every row: patterns -> (L, B, H, T) bits (0 log 0 = 0).

    The same sum as :func:`entropy` with ``base=2``, through SciPy's elementwise
    ``entr(x) = −x ln x`` (0 at 0; :func:`reference.backend.entr`) in one pass, since
    evaluations call it on every row.
    """
    return entr(stack_patterns(patterns)).sum(axis=-1) / math.log(2)


def row_mass(patterns: Any, keys: Any) -> np.ndarray:
    """Σ_{j ∈ keys(i)} A_ij for every row: keys (B, T, T) bool -> (L, B, H, T)."""
    a = stack_patterns(patterns)
    keys = np.asarray(keys, dtype=bool)
    if keys.shape != a.shape[1:2] + a.shape[3:]:
        raise InputError(f"keys: shape {keys.shape} does not match (batch, T, T) = {a.shape[1:2] + a.shape[3:]}")
    return np.einsum("lbhij,bij->lbhi", a, keys.astype(np.float64), optimize=False)


def row_argmax_in(patterns: Any, keys: Any) -> np.ndarray:
    """Whether each row's arg-max key lies in keys(i): (L, B, H, T) bool (first arg-max on ties)."""
    a = stack_patterns(patterns)
    keys = np.asarray(keys, dtype=bool)
    top = a.argmax(-1)  # (L, B, H, T)
    b_index = np.arange(a.shape[1])[None, :, None, None]
    t_index = np.arange(a.shape[3])[None, None, None, :]
    return keys[b_index, t_index, top]


def entropy_summary(h: np.ndarray, rows: Any = None, rule_rows: Any = None, causal: bool = True) -> dict:
    """Means of row entropies h (L, B, H, T) in bits, as §5 reports them. [reconstructed]

    rows: (B, T) bool, the query rows averaged over (default: all rows; the
    causal first row, with H = 0, is a row like any other). rule_rows: (B, T)
    bool for ``entropy_rule_rows``. causal: |vis(i)| = i + 1, else T.

    Returns ``entropy_bits`` (plain mean over selected rows × heads × layers),
    ``entropy_layers`` (per layer), ``entropy_rule_rows`` (None without rule
    rows), ``entropy_norm`` (mean H_i / log₂|vis(i)| over selected rows with
    |vis(i)| ≥ 2) and ``effective_support`` (2 ** entropy_bits).
    """
    h = np.asarray(h, dtype=np.float64)
    _, b, _, t = h.shape
    selected = np.ones((b, t), dtype=bool) if rows is None else row_mask(rows, (b, t), "rows")
    sel = np.broadcast_to(selected[None, :, None, :], h.shape)
    mean = float(h[sel].mean()) if sel.any() else float("nan")
    n_visible = np.arange(1, t + 1) if causal else np.full(t, t)
    wide = sel & (n_visible >= 2)
    norm = h / np.log2(np.maximum(n_visible, 2))
    result = {
        "entropy_bits": mean,
        "entropy_layers": [float(layer[s].mean()) if s.any() else float("nan") for layer, s in zip(h, sel)],
        "entropy_norm": float(norm[wide].mean()) if wide.any() else float("nan"),
        "effective_support": float(2.0**mean),
        "entropy_rule_rows": None,
    }
    if rule_rows is not None:
        rr = np.broadcast_to(row_mask(rule_rows, (b, t), "rule_rows")[None, :, None, :], h.shape)
        result["entropy_rule_rows"] = float(h[rr].mean()) if rr.any() else None
    return result


POINTER_KEYS = ("pointer_fidelity", "pf_hit", "pf_block", "pf_anchor", "pf_best_head", "pf_layers")


def pointer_summary(
    pf: np.ndarray, rule_rows: Any, hit: Any = None, block: Any = None, anchor: Any = None
) -> dict:
    """Means of row pointer masses (L, B, H, T) over rule rows × layers × heads. [reconstructed]

    pf: Σ_{j∈T(i)} A_ij; hit: arg-max in T(i); block: Σ_{j∈G*(i)} A_ij (1 − ε);
    anchor: mass on the anchor targets. Each optional one gives its key
    (``pf_hit``, ``pf_block``, ``pf_anchor``). ``pf_best_head``: the best single
    (layer, head) mean; ``pf_layers``: the mean per layer. Every value is None
    when there is no rule row.
    """
    pf = np.asarray(pf, dtype=np.float64)
    _, b, _, t = pf.shape
    rr = row_mask(rule_rows, (b, t), "rule_rows")
    if not rr.any():
        return dict.fromkeys(POINTER_KEYS)
    # (L, B, H, T) -> (L, B, T, H) -> rule rows only: (L, R, H)
    pick = lambda v: np.moveaxis(np.asarray(v, dtype=np.float64), 3, 2)[:, rr]  # noqa: E731
    rows = pick(pf)  # (L, R, H)
    return {
        "pointer_fidelity": float(rows.mean()),
        "pf_hit": None if hit is None else float(pick(hit).mean()),
        "pf_block": None if block is None else float(pick(block).mean()),
        "pf_anchor": None if anchor is None else float(pick(anchor).mean()),
        "pf_best_head": float(rows.mean(axis=1).max()),
        "pf_layers": [float(v) for v in rows.mean(axis=(1, 2))],
    }


def attention_entropy(patterns: Any, rows: Any = None, rule_rows: Any = None, causal: bool = True) -> dict:
    """Attention entropy in bits of per-layer (B, H, T, T) patterns: see :func:`entropy_summary`. [reconstructed]

    The spec's ``entropy_bits`` is a plain mean of H_i = −Σ_j A_ij log₂ A_ij over
    all rows (the causal first row, H = 0, included), heads and layers.
    """
    return entropy_summary(row_entropy_bits(patterns), rows, rule_rows, causal)


def pointer_fidelity(
    patterns: Any,
    targets: Any,
    rule_rows: Any,
    *,
    relevant_block: Any = None,
    block_id: Any = None,
    anchor_targets: Any = None,
    causal: bool = True,
) -> dict:
    """Pointer fidelity of per-layer (B, H, T, T) patterns (spec §5). [reconstructed]

    targets: T(i) as a (B, T, T) mask or positions (:func:`pointer_targets`
    validates them: inside [0, T), not after i when causal); rule_rows (B, T)
    bool, each with at least one target. relevant_block and block_id (B, T):
    optional, for ``pf_block`` (the mass on G*(i) summed directly);
    anchor_targets: optional second target set for ``pf_anchor``.

    PF_i = Σ_{j∈T(i)} A_ij; ``pointer_fidelity`` is its mean over rule rows ×
    layers × heads with equal weights; see :func:`pointer_summary` for the rest.
    """
    a = stack_patterns(patterns)
    _, b, _, t, _ = a.shape
    rr = row_mask(rule_rows, (b, t), "rule_rows")
    mask = pointer_targets(targets, (b, t), causal)
    empty = rr & ~mask.any(axis=-1)
    if np.any(empty):
        seq, row = (int(v[0]) for v in np.nonzero(empty))
        raise InputError(f"targets: rule row {row} of sequence {seq} has no target")
    block = None
    if relevant_block is not None and block_id is not None:
        rel, ids = np.asarray(relevant_block), np.asarray(block_id)
        block = row_mass(a, ids[:, None, :] == rel[:, :, None])
    anchor = None if anchor_targets is None else row_mass(a, pointer_targets(anchor_targets, (b, t), causal))
    return pointer_summary(row_mass(a, mask), rr, row_argmax_in(a, mask), block, anchor)


def off_block_mass(patterns: Any, off: Any, rows: Any) -> float | None:
    """Mean off-block mass ε = Σ_{j∉G*(i)} A_ij over the selected rows, heads and layers. [reconstructed]

    off (B, T, T) bool: key j is visible and off row i's relevant block; rows
    (B, T) bool: the biased rows. ε is summed over the off keys directly, never
    taken as 1 − on-block mass (that subtraction loses every digit when ε is
    tiny). None without rows.
    """
    a = stack_patterns(patterns)
    _, b, _, t, _ = a.shape
    selected = row_mask(rows, (b, t), "rows")
    if not selected.any():
        return None
    eps = row_mass(a, off)
    return float(eps[np.broadcast_to(selected[None, :, None, :], eps.shape)].mean())
