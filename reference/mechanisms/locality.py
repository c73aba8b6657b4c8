"""LOC — the locality dial (specs/00-localist.md). [reconstructed]

One number λ ∈ [0, 1] moves attention from *distributed* (λ = 0, the standard
transformer bit for bit) to *localist* (λ = 1: each row's attention gathers on its
semantically relevant block of keys) [paper-abstract 2510.09338; λ's orientation from
2511.03559]. Every formula in this module is the project's own reconstruction, consistent
with the papers' abstracts (the bodies were not available; no code of the author's was
used). It is built from standard ingredients only: additive attention biases, a group
lasso, softmax, entropic mirror descent.

The pieces, in the order of the spec's algorithms (§3):

* **A1 layouts** — :class:`Layout`: a partition of each sequence's positions into
  *blocks*, each row's *relevant block* g*(i) and *pointer targets* T(i).
  :func:`make_layout` builds and validates one from arrays; :func:`toy_layout`
  reads the toy world's ground truth; :func:`toy_layout_from_tokens` is A1 proper
  (tokens → blocks, rule rows, targets); :func:`text_layout` splits byte text into
  sentence blocks.
* **A2 bias** — :func:`locality_bias`: −λ_ℓ·β·off, added to the scores (the
  ``attn_bias`` of :func:`reference.model.forward`); :func:`dial_kwargs` gives the
  forward arguments for a λ, so λ is a runtime argument of forward, eval and
  generation and never touches the parameters.
* **A4 group penalty** — :func:`group_penalty` / :func:`group_penalty_backward`:
  a group lasso over the *off-target* blocks of each attention row.
* **A5 pointer loss** — :func:`pointer_loss` / :func:`pointer_loss_backward`.
* **A6 theory mode** — :func:`variational_attention`: the minimiser of
  −z·a + τΣa ln a + κΣ_{g≠g*} w_g‖a_g‖₂ by entropic mirror descent (forward only).
* **A7 training** — :class:`LocalityPlugin`, a ``TrainingPlugin`` for
  :class:`reference.train.Trainer` (dial dropout: λ drawn per batch from the grid).
* **A8 rules** — :func:`verify_rule`, :func:`inject`, :func:`hot_reload`,
  :func:`enforce`: rule injection into a reserved region, in-place hot reloading,
  dual enforcement.
* **Evaluation and the sweep** — :func:`evaluate_dial` (entropy, pointer fidelity,
  perplexity, accuracy, compliance, per-row bound checks at one λ) and
  :func:`run_sweep` (``clearform locality sweep``), plus :func:`demo_section` for
  ``clearform demo``.

Shapes: B sequences, H heads, T positions (query rows and keys), NB blocks, L layers.
Patterns are (B, H, T, T); layouts are per sequence, shared by every head and layer.
Functions that may run under autograd or CuPy take their array namespace from their
inputs; layouts are host NumPy arrays.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference.backend import namespace, to_host
from reference.config import (
    LOC_GRID,
    ConfigError,
    InputError,
    LocalityConfig,
    ModelConfig,
    RunConfig,
    check_choice,
    check_int,
    check_lambda,
)
from reference.layers.attention import attention_forward
from reference.metrics import (
    entropy,
    entropy_summary,
    pointer_summary,
    pointer_targets,
    row_argmax_in,
    row_entropy_bits,
    row_mass,
    stack_patterns,
)

# --------------------------------------------------------------------------- A1: layouts


@dataclass(frozen=True, eq=False)
class Layout:
    """Blocks of key positions for every attention row (spec §2.1, A1). [reconstructed]

    Given fields (host NumPy):

    * ``block_id`` (B, T) int64 ≥ 0: the block G_g holding each position (a partition;
      blocks need not be contiguous).
    * ``target_block`` (B, T) int64: the relevant block g*(i) of row i after free rows
      were resolved; −1 marks a row that is neither biased nor penalised.
    * ``rule_row`` (B, T) bool: the rows with pointer targets (rule rows).
    * ``pointer_mask`` (B, T, T) bool: T(i) ⊆ G*(i) on rule rows, False elsewhere.
    * ``causal``: key j is visible to row i iff j ≤ i (else every key is visible).

    Derived: ``onehot`` (B, T, NB) float64, [block_id[b, j] = g]; ``visible`` (T, T)
    bool; ``kcount`` (B, T, NB) float64, k_g = |G_g ∩ vis(i)| per row; ``off`` (B, T, T)
    bool, key j visible and outside G*(i) on a biased row.
    """

    block_id: np.ndarray
    target_block: np.ndarray
    rule_row: np.ndarray
    pointer_mask: np.ndarray
    causal: bool
    onehot: np.ndarray
    visible: np.ndarray
    kcount: np.ndarray
    off: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """(B, T)."""
        return self.block_id.shape

    @property
    def n_blocks(self) -> int:
        """NB: one more than the largest block id."""
        return self.onehot.shape[2]

    @property
    def biased_rows(self) -> np.ndarray:
        """(B, T) bool: rows with a relevant block (𝒬_rows: biased and penalised)."""
        return self.target_block >= 0

    @property
    def on(self) -> np.ndarray:
        """(B, T, T) bool: key j visible and inside G*(i) on a biased row."""
        inside = self.block_id[:, None, :] == self.target_block[:, :, None]
        return inside & self.visible[None] & self.biased_rows[:, :, None]


def make_layout(
    block_id: Any,
    target_block: Any = None,
    *,
    targets: Any = None,
    rule_row: Any = None,
    causal: bool = True,
    free_rows: str = "own_block",
) -> Layout:
    """Validate a block layout and derive what the bias and the penalty need. [reconstructed §2.7]

    block_id (B, T) int: every position's block, ids ≥ 0 (a negative id leaves the
    position uncovered: an error). target_block (B, T) int: each row's relevant block,
    −1 for a free row (default: every row free). targets: pointer targets T(i), a
    (B, T, T) bool mask or integer positions (B, T) / (B, T, R) with −1 for none.
    rule_row (B, T) bool: default, the rows that have targets (or, without targets,
    the rows with a relevant block). free_rows: ``"own_block"`` gives a free row the
    block that holds it, ``"none"`` leaves it unbiased and unpenalised.

    Raises InputError (one line) when block_id is not (B, T) int with ids ≥ 0, when a
    relevant block is absent from its sequence or has no key visible to its row, when a
    target lies outside [0, T), outside G*(i) or (causal) after i, or when a rule row has
    no relevant block or no target.
    """
    check_choice("locality", "free_rows", free_rows, ("own_block", "none"))
    ids = np.asarray(block_id)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise InputError(f"block_id: expected a (batch, T) integer array, got shape {ids.shape} dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    b, t = ids.shape
    if np.any(ids < 0):
        seq, pos = (int(v[0]) for v in np.nonzero(ids < 0))
        raise InputError(
            f"block_id: position {pos} of sequence {seq} has block {int(ids[seq, pos])}; "
            "every position must belong to a block (ids >= 0)"
        )
    raw = np.full((b, t), -1, np.int64) if target_block is None else np.asarray(target_block)
    if raw.shape != (b, t) or not np.issubdtype(raw.dtype, np.integer):
        raise InputError(f"target_block: expected a {(b, t)} integer array like block_id, got shape {raw.shape}")
    raw = raw.astype(np.int64)
    n_blocks = int(ids.max()) + 1 if ids.size else 1
    onehot = (ids[:, :, None] == np.arange(n_blocks)).astype(np.float64)
    present = onehot.any(axis=1)  # (B, NB)
    named = raw >= 0
    bad = (raw < -1) | (named & ((raw >= n_blocks) | ~present[np.arange(b)[:, None], np.clip(raw, 0, n_blocks - 1)]))
    if np.any(bad):
        seq, row = (int(v[0]) for v in np.nonzero(bad))
        raise InputError(
            f"target_block: row {row} of sequence {seq} names block {int(raw[seq, row])}, "
            "absent from the sequence (−1 marks a free row)"
        )

    mask = np.zeros((b, t, t), dtype=bool) if targets is None else pointer_targets(targets, (b, t), causal)
    has_target = mask.any(axis=-1)
    rules = (has_target if targets is not None else named) if rule_row is None else np.asarray(rule_row, dtype=bool)
    if rules.shape != (b, t):
        raise InputError(f"rule_row: shape {rules.shape} does not match block_id's {(b, t)}")
    for what, wrong in (
        ("has pointer targets but no relevant block", has_target & ~named),
        ("is a rule row without a relevant block", rules & ~named),
        ("is a rule row without a pointer target", rules & ~has_target if targets is not None else np.zeros_like(rules)),
        ("has pointer targets but is not a rule row", has_target & ~rules),
    ):
        if np.any(wrong):
            seq, row = (int(v[0]) for v in np.nonzero(wrong))
            raise InputError(f"targets: row {row} of sequence {seq} {what}")
    outside = mask & (ids[:, None, :] != raw[:, :, None])
    if np.any(outside):
        seq, row, key = (int(v[0]) for v in np.nonzero(outside))
        raise InputError(
            f"targets: row {row} of sequence {seq} points at position {key}, outside its relevant block "
            f"{int(raw[seq, row])} (targets must lie in G*(i))"
        )

    target = np.where(named, raw, ids) if free_rows == "own_block" else raw
    visible = np.tril(np.ones((t, t), dtype=bool)) if causal else np.ones((t, t), dtype=bool)
    kcount = np.matmul(visible.astype(np.float64)[None], onehot)  # (B, T, NB): k_g for each row
    biased = target >= 0
    k_star = np.take_along_axis(kcount, np.clip(target, 0, None)[:, :, None], axis=2)[:, :, 0]
    unseen = biased & (k_star == 0)
    if np.any(unseen):
        seq, row = (int(v[0]) for v in np.nonzero(unseen))
        raise InputError(
            f"target_block: block {int(target[seq, row])} has no key visible to row {row} of sequence {seq} "
            "(causal attention sees only keys j <= i)"
        )
    off = visible[None] & (ids[:, None, :] != target[:, :, None]) & biased[:, :, None]
    return Layout(ids, target, rules, mask, bool(causal), onehot, visible, kcount, off)


def check_layout_matches(layout: Layout, tokens: Any) -> None:
    """Raise InputError unless the layout's (B, T) is the token array's."""
    shape = tuple(np.shape(tokens))
    if layout.shape != shape:
        raise InputError(f"block_id: layout shape {layout.shape} does not match the sequence's shape {shape}")


def toy_layout(docs: Any, cfg: LocalityConfig | None = None, *, length: int | None = None, causal: bool = True) -> Layout:
    """The layout of toy-world documents from their ground truth (toyworld.md §4). [reconstructed]

    docs: a ``ToyBatch``; length: keep the first ``length`` positions (a training batch's
    inputs are tokens[:, :T−1], so pass ``batch.inputs.shape[1]``). Pointer targets follow
    ``cfg.pointer_target``; free rows ``cfg.free_rows``.
    """
    cfg = cfg or LocalityConfig()
    t = docs.tokens.shape[1] if length is None else length
    return make_layout(
        docs.block_id[:, :t], docs.target_block[:, :t],
        targets=docs.pointer_mask(cfg.pointer_target)[:, :t, :t], rule_row=docs.rule_row[:, :t],
        causal=causal, free_rows=cfg.free_rows,
    )


# Byte values that end a sentence block in text mode (§6.2): '.', '!', '?', newline.
TEXT_BLOCK_ENDS = (ord("."), ord("!"), ord("?"), ord("\n"))
TEXT_BLOCK_MAX = 64


def text_blocks(tokens: Any, max_len: int = TEXT_BLOCK_MAX) -> np.ndarray:
    """Sentence blocks of byte text: (B, T) ids -> (B, T) block ids. [reconstructed §6.2]

    A block ends after '.', '!', '?' or a newline, and after ``max_len`` tokens at most.
    """
    tokens = np.asarray(tokens)
    b, t = tokens.shape
    ids = np.zeros((b, t), np.int64)
    run = np.zeros(b, np.int64)  # length of the current block
    for i in range(1, t):
        new = np.isin(tokens[:, i - 1], TEXT_BLOCK_ENDS) | (run + 1 >= max_len)
        ids[:, i] = ids[:, i - 1] + new
        run = np.where(new, 0, run + 1)
    return ids


def text_layout(tokens: Any, cfg: LocalityConfig | None = None, *, causal: bool = True) -> Layout:
    """Layout of byte text: sentence blocks, no rule rows; every row is free. [reconstructed §6.2]"""
    cfg = cfg or LocalityConfig()
    return make_layout(text_blocks(tokens), causal=causal, free_rows=cfg.free_rows)


def batch_layout(batch: Any, cfg: LocalityConfig | None = None, *, causal: bool = True) -> Layout:
    """The layout of a trainer ``Batch``: toy-world ground truth, or sentence blocks for text."""
    if batch.docs is None:
        return text_layout(batch.inputs, cfg, causal=causal)
    return toy_layout(batch.docs, cfg, length=batch.inputs.shape[1], causal=causal)


@dataclass(frozen=True, eq=False)
class ToyFields:
    """What A1 reads off toy-world tokens: block_id, target_block (−1 off rule rows),
    rule_row, value_pos (−1 off rule rows), all (B, T); masks (B, T, T) per pointer kind."""

    block_id: np.ndarray
    target_block: np.ndarray
    rule_row: np.ndarray
    value_pos: np.ndarray
    masks: dict

    def pointer_mask(self, kind: str = "value") -> np.ndarray:
        check_choice("pointer_mask", "kind", kind, ("value", "anchor", "block"))
        return self.masks[kind]


def toy_fields_from_tokens(tokens: Any, world: Any) -> ToyFields:
    """A1 BuildLayout on toy-world tokens (B, T): blocks, rule rows and targets. [reconstructed]

    A new block starts at position 0, after ``<bos>``, ``;`` and ``.``, and at ``<label>``
    and ``<eos>`` (padding joins the closing block). A rule block is one that opens with
    an anchor; its key is *active*. Row i is a rule row when the token before it is ``?``
    and its token is an active key: its relevant block is that rule's block, and T(i) is
    the rule's value (``"value"``), the anchors of the block (``"anchor"``) or the whole
    block (``"block"``). Only verified rules are ever injected (A8), so the rule region
    of the tokens is the active rule table.
    """
    tokens = np.asarray(tokens)
    b, t = tokens.shape
    anchors = {int(a) for a in world.anchor_ids}
    keys = {int(k) for k in world.key_ids}
    enders = (world.bos_id, world.semicolon_id, world.period_id)
    openers = (world.label_marker_id, world.eos_id)
    block_id = np.zeros((b, t), np.int64)
    target = np.full((b, t), -1, np.int64)
    value_pos = np.full((b, t), -1, np.int64)
    anchor_mask = np.zeros((b, t, t), dtype=bool)
    for s in range(b):
        row = tokens[s].tolist()
        block, first = -1, -1  # current block and its first token
        key_block: dict[int, int] = {}
        key_value: dict[int, int] = {}
        for i, tok in enumerate(row):
            if i == 0 or row[i - 1] in enders or tok in openers:
                block, first = block + 1, tok
            block_id[s, i] = block
            if first in anchors and tok in keys and tok not in key_block:
                key_block[tok], key_value[tok] = block, i + 1
            if i > 0 and row[i - 1] == world.question_id and tok in key_block:
                target[s, i], value_pos[s, i] = key_block[tok], key_value[tok]
        rows = np.flatnonzero(target[s] >= 0)
        is_anchor = np.isin(tokens[s], list(anchors)) if anchors else np.zeros(t, bool)
        anchor_mask[s, rows] = (block_id[s][None, :] == target[s, rows][:, None]) & is_anchor[None, :]
    rule_row = target >= 0
    block = rule_row[:, :, None] & (block_id[:, None, :] == target[:, :, None])
    value = np.zeros((b, t, t), dtype=bool)
    seq, pos = np.nonzero(rule_row)
    value[seq, pos, value_pos[seq, pos]] = True
    return ToyFields(block_id, target, rule_row, value_pos, {"value": value, "anchor": anchor_mask, "block": block})


def toy_layout_from_tokens(tokens: Any, world: Any, cfg: LocalityConfig | None = None, *, causal: bool = True) -> Layout:
    """A1 on toy-world tokens (B, T), validated as a :class:`Layout`. [reconstructed]"""
    cfg = cfg or LocalityConfig()
    f = toy_fields_from_tokens(tokens, world)
    return make_layout(
        f.block_id, f.target_block, targets=f.pointer_mask(cfg.pointer_target), rule_row=f.rule_row,
        causal=causal, free_rows=cfg.free_rows,
    )


# --------------------------------------------------------------------------- A2: the dial's bias and schedule


def layer_lambdas(lam: float, n_layers: int, cfg: LocalityConfig) -> list[float]:
    """λ_ℓ for ℓ = 0 … L−1 (spec §2.6, PROG). [reconstructed]

    ``"uniform"``: λ_ℓ = λ on ``cfg.layers`` (None = every layer), 0 elsewhere.
    ``"progressive"``: λ_ℓ = λ·(ℓ/(L−1))^p with p = ``schedule_power`` (the spec's
    ((ℓ−1)/(L−1))^p with ℓ counted from 1); L = 1 gives λ. ``cfg.layers`` restricts
    either schedule. λ outside [0, 1] or NaN is a ConfigError.
    """
    check_lambda("lam", lam)
    lam = float(lam)
    if cfg.layers is not None:
        for layer in cfg.layers:
            if layer >= n_layers:
                raise ConfigError(f"locality.layers: {layer} is not a layer of a {n_layers}-layer model")
    chosen = set(range(n_layers)) if cfg.layers is None else set(cfg.layers)
    if cfg.layer_schedule == "uniform" or n_layers == 1:
        values = [lam] * n_layers
    else:
        values = [lam * (layer / (n_layers - 1)) ** cfg.schedule_power for layer in range(n_layers)]
    return [v if layer in chosen else 0.0 for layer, v in enumerate(values)]


def layer_temperatures(lams: Sequence[float], cfg: LocalityConfig) -> list[float]:
    """τ_ℓ: ``temperature`` τ, or τ(τ_min/τ)^{λ_ℓ} with ``dial_temperature`` τ_min (ablation). [reconstructed]"""
    tau = cfg.temperature
    if cfg.dial_temperature is None:
        return [tau] * len(lams)
    return [tau * (cfg.dial_temperature / tau) ** lam for lam in lams]


def locality_bias(layout: Layout, lam_layer: float, beta: float, dtype: Any = np.float64) -> np.ndarray | None:
    """A2: the additive bias −λ_ℓ·β·off of one layer, (B, 1, T, T), or None when λ_ℓ = 0. [reconstructed]

    off_ij = 1 when key j is visible, outside G*(i), and row i has a relevant block.
    λ_ℓ = 0 returns None, so the layer runs exactly the standard attention (no
    addition at all: bit-identical). β = ∞ gives a hard mask: −∞ on off keys.
    The bias has the model's dtype, so float32 training stays float32.
    """
    if lam_layer == 0.0:
        return None
    if beta == math.inf:
        bias = np.where(layout.off, -np.inf, 0.0)
    else:
        bias = -(lam_layer * beta) * layout.off
    return bias[:, None].astype(dtype)


def dial_kwargs(
    layout: Layout,
    lam: float,
    cfg: LocalityConfig,
    n_layers: int,
    *,
    dtype: Any = np.float64,
    inference: bool = True,
    lams: Sequence[float] | None = None,
    tokens: Any = None,
) -> dict:
    """Forward arguments that set the dial to λ: ``{"attn_bias": [...], "temperature": ...}``.

    Pass them to :func:`reference.model.forward` / ``run_with_cache`` / ``evaluate``.
    ``inference`` picks β = ``inference_bias_max`` (None → ``bias_max``; may be ∞),
    else ``bias_max``. With ``"bias"`` off ``dial_hooks`` no bias is added (λ then acts
    through the training penalty only). ``lams`` overrides the schedule's λ_ℓ.
    ``tokens``: when given, the layout must match their (B, T) (InputError otherwise).
    """
    if tokens is not None:
        check_layout_matches(layout, tokens)
    lams = layer_lambdas(lam, n_layers, cfg) if lams is None else list(lams)
    beta = cfg.inference_bias if inference else cfg.bias_max
    use_bias = "bias" in cfg.dial_hooks
    kwargs: dict[str, Any] = {"attn_bias": [locality_bias(layout, lam_l, beta, dtype) if use_bias else None for lam_l in lams]}
    temps = layer_temperatures(lams, cfg)
    if any(tau != 1.0 for tau in temps):
        kwargs["temperature"] = temps
    return kwargs


def attention_rows(z: Any, bias: Any = None, temperature: float = 1.0) -> np.ndarray:
    """softmax((z + bias)/τ) of single attention rows, computed by the core attention layer (A3).

    z, bias: (R, n) float64 -> (R, n). The proofs evaluate theorems on this function,
    so that they test the project's own attention code rather than a re-implementation:
    the layer runs on R one-query sequences whose ``scores`` hook is replaced by z, and
    the ``pattern`` hook is read back (bias, temperature and softmax are the layer's).
    """
    z = np.asarray(z, dtype=np.float64)
    r, n = z.shape
    zeros = np.zeros((1, 1))
    params = {"w_q": zeros, "w_k": zeros, "w_v": zeros, "w_o": zeros}
    seen: dict[str, Any] = {}

    def hook(name: str, value: Any) -> Any:
        if name == "scores":
            return z[:, None, None, :]  # (R, heads 1, one query, n keys)
        if name == "pattern":
            seen["pattern"] = value
        return value

    full_bias = None if bias is None else np.asarray(bias, dtype=np.float64)[:, None, None, :]
    attention_forward(params, np.zeros((r, n, 1)), 1, causal=False, bias=full_bias, temperature=temperature, hook=hook)
    return seen["pattern"][:, 0, 0, :]


# --------------------------------------------------------------------------- A4: the group-sparsity penalty


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
            record["loc_penalty"] = penalty_total
            if use_pointer:
                record["loc_pointer_loss"] = total / cfg.pointer_weight
        return total + penalty_total, grads

    return extra_loss


# --------------------------------------------------------------------------- A6: theory mode (variational operator)


class SolverError(RuntimeError):
    """A6 reached ``variational_max_iter`` before every row converged."""


@dataclass(frozen=True)
class VariationalResult:
    """A6's output: ``a`` (..., n) the minimisers, ``residual`` (...,) max γ − min γ over the
    visible keys when each row stopped, ``iterations`` the count used by the slowest row."""

    a: np.ndarray
    residual: np.ndarray
    iterations: int


def _log_softmax_rows(x: np.ndarray) -> np.ndarray:
    """log softmax along the last axis; −∞ entries stay −∞ (masked keys)."""
    top = np.max(x, axis=-1, keepdims=True)
    return x - top - np.log(np.sum(np.exp(x - top), axis=-1, keepdims=True))


def variational_attention(
    z: Any,
    block_id: Any,
    target_block: Any,
    tau: float = 1.0,
    kappa: Any = 0.0,
    *,
    visible: Any = None,
    group_weight: str = "sqrt_size",
    max_iter: int = 50_000,
    tol: float = 1e-11,
) -> VariationalResult:
    """A6: a_i = argmin_{a∈Δ} −z_i·a + τ Σ_j a_j ln a_j + κ Σ_{g≠g*} w_g ‖a_{G_g}‖₂, per row. [reconstructed §2.2]

    z (..., n) float64 logits; block_id (..., n) (broadcast) block of each key;
    target_block (...,) g* of each row (−1: an unpenalised row, giving softmax(z/τ));
    kappa scalar or (...,); visible (..., n) bool (default all); w_g = √k_g or 1 over
    the row's visible keys. Every row is solved at once.

    Entropic mirror descent: ℓ = log a starts at log_softmax(z/τ); with
    γ_j = −z_j + τℓ_j + κ w_{b(j)} a_j/‖a_{G_b(j)}‖₂ (∂F/∂a_j less the constant τ) the step
    is ℓ ← log_softmax(ℓ − ηγ), η = 1/(τ + κ max_j w_j). F is (τ + κ max w)-smooth and
    τ-strongly convex relative to the negative entropy, so the iterates converge
    linearly (factor 1 − τ/(τ + κ max w)). A row stops (and is frozen) when
    max γ − min γ ≤ tol·(1 + max|z|) over its visible keys: all partial derivatives
    equal is the stationarity condition on the simplex's interior, where the
    minimiser lies (the entropy's slope is −∞ at the boundary). Raises
    :class:`SolverError` at ``max_iter``, never returns unconverged rows.
    """
    check_choice("locality", "group_weight", group_weight, ("sqrt_size", "one"))
    z = np.asarray(z, dtype=np.float64)
    shape, n = z.shape, z.shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    z2 = z.reshape(rows, n)
    blocks = np.broadcast_to(np.asarray(block_id, dtype=np.int64), shape).reshape(rows, n)
    target = np.broadcast_to(np.asarray(target_block, dtype=np.int64), shape[:-1]).reshape(rows)
    vis = np.ones((rows, n), bool) if visible is None else np.broadcast_to(np.asarray(visible, bool), shape).reshape(rows, n)
    kappa = np.broadcast_to(np.asarray(kappa, dtype=np.float64), shape[:-1]).reshape(rows)
    kappa = np.where(target >= 0, kappa, 0.0)  # a free row is not penalised
    n_blocks = int(blocks.max()) + 1
    onehot = ((blocks[:, :, None] == np.arange(n_blocks)) & vis[:, :, None]).astype(np.float64)  # (R, n, NB)
    k = onehot.sum(axis=1)  # (R, NB): visible keys per block
    size = np.sqrt(k) if group_weight == "sqrt_size" else np.ones_like(k)
    w_block = size * (k > 0) * (np.arange(n_blocks)[None, :] != target[:, None])
    w = np.take_along_axis(w_block, blocks, axis=1) * vis  # (R, n): w_{b(j)}, 0 on G* and masked keys
    eta = 1.0 / (tau + kappa * w.max(axis=1))
    threshold = tol * (1.0 + np.max(np.where(vis, np.abs(z2), 0.0), axis=1))
    kw = kappa[:, None] * w  # κ w_{b(j)}
    key_block = np.arange(rows)[:, None] * n_blocks + blocks  # (R, n) index into the flattened (R, NB) norms
    z_vis = np.where(vis, z2, 0.0)
    logs = _log_softmax_rows(np.where(vis, z2 / tau, -np.inf))
    done = np.zeros(rows, bool)
    residual = np.full(rows, np.nan)
    for iteration in range(max_iter + 1):
        a = np.exp(logs)  # 0 on masked keys
        norms = np.sqrt(np.einsum("rn,rng->rg", a * a, onehot))
        # a_j ≤ ‖a_{G_b(j)}‖₂, so the guarded ratio is finite (and 0 where w = 0).
        penalty = kw * a / np.maximum(norms.ravel()[key_block], 1e-300)
        gamma = np.where(vis, tau * np.where(vis, logs, 0.0) - z_vis + penalty, 0.0)
        spread = np.where(vis, gamma, -np.inf).max(axis=1) - np.where(vis, gamma, np.inf).min(axis=1)
        newly = ~done & (spread <= threshold)
        residual = np.where(newly, spread, residual)
        done |= newly
        if done.all():
            return VariationalResult(a.reshape(shape), residual.reshape(shape[:-1]), iteration)
        if iteration == max_iter:
            break
        stepped = _log_softmax_rows(np.where(vis, logs - eta[:, None] * gamma, -np.inf))
        logs = np.where(done[:, None], logs, stepped)
    raise SolverError(
        f"variational_attention: {int((~done).sum())} of {rows} rows did not converge in {max_iter} iterations "
        f"(tolerance {tol:g}); raise locality.variational_max_iter or variational_tol"
    )


def variational_forward(params: dict, config: ModelConfig, tokens: Any, layout: Layout, lam: float, cfg: LocalityConfig):
    """The model in theory mode (``operator="variational"``; forward only): (logits, ActivationCache).

    Each layer's pattern is replaced by A6 on its scores z with κ = λ_ℓ κ_max and
    τ = ``cfg.temperature``, through the core's replacing hooks; the scores hook
    is read before the pattern hook in every layer. κ = 0 is softmax(z/τ).
    """
    from reference.model import run_with_cache

    check_layout_matches(layout, tokens)
    lams = layer_lambdas(lam, config.n_layers, cfg)
    scores: dict[int, Any] = {}
    hooks: dict[str, Callable[[Any], Any]] = {}
    b, t = layout.shape
    for layer in range(config.n_layers):

        def keep(value: Any, layer: int = layer) -> Any:
            scores[layer] = value
            return value

        def solve(pattern: Any, layer: int = layer) -> Any:
            z = np.asarray(to_host(scores[layer]), dtype=np.float64)  # (B, H, T, T)
            result = variational_attention(
                z, layout.block_id[:, None, None, :], layout.target_block[:, None, :],
                cfg.temperature, lams[layer] * cfg.penalty_max, visible=layout.visible,
                group_weight=cfg.group_weight, max_iter=cfg.variational_max_iter, tol=cfg.variational_tol,
            )
            return namespace(pattern).asarray(result.a.astype(pattern.dtype))

        hooks[f"blocks.{layer}.attn.scores"] = keep
        hooks[f"blocks.{layer}.attn.pattern"] = solve
    return run_with_cache(params, config, tokens, hooks=hooks, temperature=cfg.temperature)


# --------------------------------------------------------------------------- A7: training


class LocalityPlugin:
    """The dial in training (A7): a ``TrainingPlugin`` for :class:`reference.train.Trainer`. [reconstructed]

    Each step: λ is ``cfg.lam`` (``train_dial="fixed"``) or drawn uniformly from
    ``cfg.dial_grid`` with the trainer's checkpointed generator (``"dropout"``: one
    model good at every λ, so the dial can move at inference without retraining);
    the forward pass gets the bias −λ_ℓ β_max·off ("bias" hook) and the loss gets
    κ_max Σ_ℓ ω_ℓ ("loss" hook) + μ Ω_ptr. Validation runs at ``cfg.lam`` with the
    inference bias. The layout comes from the batch (:func:`batch_layout`): the
    toy world's ground truth on the inputs' T − 1 positions, or sentence blocks of text.
    """

    def __init__(self, cfg: LocalityConfig, model: ModelConfig) -> None:
        cfg.check_trainable()
        self.cfg = cfg
        self.model = model
        self.dtype = np.dtype(model.dtype)
        layer_lambdas(cfg.lam, model.n_layers, cfg)  # a bad `layers` entry fails here, not mid-run

    def draw_lambda(self, generator: np.random.Generator) -> float:
        """λ of one step: ``cfg.lam``, or a uniform draw from ``dial_grid`` (dial dropout)."""
        if self.cfg.train_dial == "fixed":
            return float(self.cfg.lam)
        grid = self.cfg.dial_grid
        return float(grid[int(generator.integers(len(grid)))])

    def step_terms(self, step: int, batch: Any, generator: np.random.Generator):
        from reference.train import StepTerms

        lam = self.draw_lambda(generator)
        layout = batch_layout(batch, self.cfg, causal=self.model.causal)
        lams = layer_lambdas(lam, self.model.n_layers, self.cfg)
        kwargs = dial_kwargs(layout, lam, self.cfg, self.model.n_layers, dtype=self.dtype, inference=False, lams=lams)
        record: dict[str, Any] = {"lam": lam}
        penalised = "loss" in self.cfg.dial_hooks and self.cfg.penalty_max > 0 and any(lams)
        extra = None
        if penalised or self.cfg.pointer_weight > 0:
            extra = locality_loss(layout, lams, self.cfg, self.model.n_layers, record)
        return StepTerms(forward_kwargs=kwargs, extra_loss=extra, record=record)

    def eval_kwargs(self, batch: Any) -> dict:
        layout = batch_layout(batch, self.cfg, causal=self.model.causal)
        return dial_kwargs(layout, self.cfg.lam, self.cfg, self.model.n_layers, dtype=self.dtype, inference=True)


# --------------------------------------------------------------------------- A8: rules, hot reloading, dual enforcement

RULE_FIELDS = ("slot", "key", "value", "version", "verified")
"""Columns of a rule table: an (S, 5) int array per document, like ``ToyBatch.rules[b]``."""


def verify_rule(rule: Sequence[int], accepted: Sequence[Sequence[int]], world: Any) -> str | None:
    """The external checker of A8 (toy world): None when ``rule`` may be injected, else why not. [reconstructed]

    A rule (slot, key, value, …) passes when its slot exists, its key is a key token,
    its value a value token, and no rule already accepted holds its slot or its key.
    """
    slot, key, value = (int(v) for v in rule[:3])
    n_slots = len(world.anchor_ids)
    if not 0 <= slot < n_slots:
        return f"slot {slot} does not exist (the world has slots 0 … {n_slots - 1})"
    if key not in set(world.key_ids.tolist()):
        return f"token {key} is not a key"
    if value not in set(world.value_ids.tolist()):
        return f"token {value} is not a value"
    for other in accepted:
        if int(other[0]) == slot:
            return f"slot {slot} already holds a rule"
        if int(other[1]) == key:
            return f"key {world.vocab[key]} is already active in slot {int(other[0])}"
    return None


def serialise_rules(table: Any, world: Any, anchor_copies: int | None = None) -> list[int]:
    """The rule region's tokens: per verified rule, by slot, ``<Rs>^r k v ;`` (template 0). [reconstructed §2.5]"""
    r = world.config.anchor_copies if anchor_copies is None else anchor_copies
    rows = sorted((tuple(int(v) for v in row) for row in np.asarray(table).reshape(-1, 5) if row[4]), key=lambda x: x[0])
    out: list[int] = []
    for slot, key, value, _, _ in rows:
        out += [int(world.anchor_ids[slot])] * r + [key, value, world.semicolon_id]
    return out


def rule_region_end(tokens: Any, world: Any) -> int:
    """The position just after the rule region: ``<bos>``, then blocks that open with an anchor."""
    ids = np.asarray(tokens).tolist()
    anchors = set(world.anchor_ids.tolist())
    i = 1
    while i < len(ids) and ids[i] in anchors:
        while i < len(ids) and ids[i] != world.semicolon_id:
            i += 1
        i += 1
    return min(i, len(ids))


@dataclass(frozen=True, eq=False)
class Injection:
    """What :func:`inject` and :func:`hot_reload` return: tokens (T,), the rule table with its
    ``verified`` column filled, the rebuilt layout (1, T), and for a reload the first changed position."""

    tokens: np.ndarray
    table: np.ndarray
    layout: Layout
    first_changed: int = 0


def inject(
    body: Sequence[int], table: Any, world: Any, *, length: int | None = None, cfg: LocalityConfig | None = None
) -> Injection:
    """A8 inject: verify each rule, serialise the verified ones into the rule region, rebuild the layout. [reconstructed]

    body: the document after its rule region (sentences and query spans, ``<eos>``);
    table (S, 5): (slot, key, value, version, verified). Rules are checked in slot order
    against those already accepted (:func:`verify_rule`); a rule that fails is never
    injected and comes back with verified = 0. length: pad with ``<pad>`` to this length
    (InputError if the document does not fit).
    """
    table = np.array(table, dtype=np.int64).reshape(-1, 5)
    checked = table.copy()
    accepted: list[np.ndarray] = []
    for index in np.argsort(table[:, 0], kind="stable"):
        ok = verify_rule(table[index], accepted, world) is None
        checked[index, 4] = int(ok)
        if ok:
            accepted.append(table[index])
    tokens = [world.bos_id] + serialise_rules(checked, world) + [int(v) for v in body]
    if length is not None:
        if len(tokens) > length:
            raise InputError(f"inject: the document needs {len(tokens)} positions, more than length {length}")
        tokens += [world.pad_id] * (length - len(tokens))
    array = np.asarray(tokens, dtype=np.int64)
    return Injection(array, checked, toy_layout_from_tokens(array[None], world, cfg))


def hot_reload(
    tokens: Any,
    table: Any,
    slot: int,
    value: int,
    world: Any,
    *,
    key: int | None = None,
    cfg: LocalityConfig | None = None,
) -> Injection:
    """A8 hot reload: set rule ``slot`` to ``value`` (and ``key``) at run time. [reconstructed §2.6]

    The new rule is verified first (InputError, nothing changed, if it fails); its
    ``version`` is bumped. The rule region is re-serialised: an edit of the same length
    (a value or key swap) changes exactly the edited token in place and keeps the layout;
    a new slot changes the length (trailing padding absorbs it, else InputError). The
    layout is rebuilt from the new tokens (A1), so the bias and penalty use the new
    group map at once, with no parameter change. ``first_changed`` is the first position
    that differs: cached keys and values before it stay valid.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.ndim != 1:
        raise InputError(f"hot_reload: tokens must be one document (1-D), got shape {tokens.shape}")
    rows = np.array(table, dtype=np.int64).reshape(-1, 5)
    live = [row for row in rows if row[4] and row[0] != slot]
    current = [row for row in rows if row[4] and row[0] == slot]
    if current:
        old = current[0]
        new = np.array([slot, old[1] if key is None else key, value, old[3] + 1, 1], np.int64)
    elif key is None:
        raise InputError(f"hot_reload: slot {slot} holds no rule; give key= to add one")
    else:
        new = np.array([slot, key, value, 0, 1], np.int64)
    reason = verify_rule(new, live, world)
    if reason is not None:
        raise InputError(
            f"hot_reload: the rule (slot {slot}, key {int(new[1])}, value {int(new[2])}) fails verification: {reason}; "
            "nothing was changed"
        )
    new_table = np.array([row for row in rows if row[0] != slot] + [new], np.int64)
    new_table = new_table[np.argsort(new_table[:, 0], kind="stable")]
    body = tokens[rule_region_end(tokens, world):].tolist()
    fresh = [world.bos_id] + serialise_rules(new_table, world) + body
    extra = len(fresh) - len(tokens)
    if extra > 0:  # a longer region: take the room from trailing padding
        if extra > len(body) or any(v != world.pad_id for v in fresh[-extra:]):
            raise InputError(f"hot_reload: the new rule needs {extra} more positions than the document has free")
        fresh = fresh[: len(tokens)]
    fresh += [world.pad_id] * (len(tokens) - len(fresh))
    array = np.asarray(fresh, dtype=np.int64)
    changed = np.flatnonzero(array != tokens)
    first = int(changed[0]) if changed.size else len(tokens)
    return Injection(array, new_table, toy_layout_from_tokens(array[None], world, cfg), first)


@dataclass(frozen=True)
class Enforcement:
    """Outcome of :func:`enforce`: the accepted output (None when it abstained) and the tries used."""

    output: Any
    tries: int
    abstained: bool


def enforce(generate: Callable[[int], Any], check: Callable[[Any], bool], max_retries: int = 3) -> Enforcement:
    """A8 dual enforcement: accept the first output the external check passes, at most K tries, else abstain.

    generate(k) produces try k (0-based); check(output) -> bool. LOC-T8 gives the
    probability that a violation gets through. [reconstructed §2.6]
    """
    check_int("locality", "max_retries", max_retries, 1)
    for k in range(max_retries):
        output = generate(k)
        if check(output):
            return Enforcement(output, k + 1, False)
    return Enforcement(None, max_retries, True)


def template_entropy_bits(templates: Any) -> float:
    """Syntactic entropy of the rule formats in use: H of the empirical template distribution, bits. [reconstructed §2.5]

    templates: template indices (e.g. ``ToyBatch.rule_template``). One template gives
    0 bits; M templates drawn uniformly give log₂ M (RULE's ablation).
    """
    counts = np.bincount(np.asarray(templates, dtype=np.int64).ravel())
    return float(entropy(counts[counts > 0] / counts.sum(), base=2)) if counts.sum() else 0.0


def anchor_surprisal_bits(tokens: Any, valid: Any, anchor_id: int) -> float:
    """−log₂ P_unigram(anchor) over the valid tokens of a corpus (∞ if it never occurs). [reconstructed §2.5]"""
    tokens, valid = np.asarray(tokens), np.asarray(valid, dtype=bool)
    count, total = int(((tokens == anchor_id) & valid).sum()), int(valid.sum())
    return math.inf if count == 0 else -math.log2(count / total)


def generate_dialled(
    params: dict,
    config: ModelConfig,
    prompt: Sequence[int],
    n_new: int,
    lam: float,
    cfg: LocalityConfig,
    layout_of: Callable[[np.ndarray], Layout],
    *,
    stop_id: int | None = None,
) -> list[int]:
    """Greedy generation with the dial at λ: λ is a runtime argument, the parameters never change.

    ``layout_of(tokens (1, T)) -> Layout`` rebuilds the group map from the tokens so far at
    every step (A1; for the toy world :func:`toy_layout_from_tokens`), so a hot-reloaded
    rule is used at once. Returns prompt + new ids.
    """
    from reference.model import forward

    dtype = np.dtype(config.dtype)
    ids = [int(v) for v in prompt]
    for _ in range(n_new):
        window = np.asarray(ids[-config.context:], dtype=np.int64)[None]
        layout = layout_of(window)
        logits, _ = forward(params, config, window, **dial_kwargs(layout, lam, cfg, config.n_layers, dtype=dtype, tokens=window))
        ids.append(int(np.argmax(to_host(logits[0, -1]))))
        if stop_id is not None and ids[-1] == stop_id:
            break
    return ids


def group_prox(x: Any, threshold: float) -> np.ndarray:
    """The group-lasso proximal step (1 − t/‖x‖₂)₊ x for one parameter group (LOC-T9). [standard]

    Returns exactly 0 when ‖x‖₂ ≤ t: the group is switched off.
    """
    x = np.asarray(x, dtype=np.float64)
    norm = float(np.linalg.norm(x))
    if norm <= threshold:
        return np.zeros_like(x)
    return (1.0 - threshold / norm) * x


# --------------------------------------------------------------------------- evaluation: closed forms and per-row bounds


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


def _quantiles(values: list[np.ndarray]) -> list[float] | None:
    """10 / 50 / 90 % quantiles of the finite values, or None."""
    flat = np.concatenate([v.ravel() for v in values]) if values else np.zeros(0)
    flat = flat[np.isfinite(flat)]
    return [float(q) for q in np.quantile(flat, [0.1, 0.5, 0.9])] if flat.size else None


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


def _params64(params: dict) -> dict:
    return {name: np.asarray(to_host(value), dtype=np.float64) for name, value in params.items()}


def evaluate_dial(
    params: dict,
    run: RunConfig,
    batches: Sequence[Any],
    lam: float,
    cfg: LocalityConfig | None = None,
    *,
    world: Any = None,
    probe: Sequence[Any] | None = None,
    on_batch: Callable[[], None] | None = None,
) -> dict:
    """Every §5 metric of one model at one λ, on validation batches, in float64. [reconstructed]

    batches: trainer ``Batch`` objects (toy world or text). The model runs at λ with the
    inference bias (:func:`dial_kwargs`); the λ-independent parameters are never touched.
    world: the toy world (for ``compliance``); probe: the hot-reload probe's batches
    (:func:`reload_probe`), giving ``reload_compliance``.

    Rows of the entropy mean are the positions holding a document token (toy world:
    not padding; text: all). Returns ``entropy_bits``, ``entropy_norm``,
    ``entropy_rule_rows``, ``effective_support``, ``pointer_fidelity``, ``pf_hit``,
    ``pf_block``, ``pf_anchor``, ``pf_best_head``, ``off_block_mass``,
    ``val_perplexity`` (exp of the mean next-token cross-entropy in nats),
    ``accuracy`` (top-1), ``rule_accuracy``, ``compliance``, ``reload_compliance``,
    ``bound_violations`` (rows failing T4(b)/T5(a)–(c)/T6(b), all layers),
    ``rows_entropy_rising`` (share of applicable layer-0 rows with ε(0) > ε°) and
    ``delta_q``, ``delta_in_q`` (10/50/90 % quantiles of the rule rows' margins Δ, Δ_in).
    """
    from reference.layers.loss import IGNORE, cross_entropy_forward
    from reference.model import run_with_cache

    cfg = cfg or run.locality
    check_lambda("lam", lam)
    model = run.model.replace(dtype="float64")
    params = _params64(params)
    n_layers = model.n_layers
    lams = layer_lambdas(lam, n_layers, cfg)
    taus = layer_temperatures(lams, cfg)
    beta = cfg.inference_bias if "bias" in cfg.dial_hooks else 0.0
    names = [f"blocks.{layer}.attn.{kind}" for layer in range(n_layers) for kind in ("scores", "pattern")]
    parts: dict[str, list] = {k: [] for k in ("h", "pf", "hit", "block", "anchor", "eps", "rows", "rule", "biased")}
    nll = correct = count = rule_correct = rule_count = comply = comply_count = violations = 0.0
    margins: dict[str, list] = {"delta": [], "delta_in": []}
    rising = applicable = 0
    for batch in batches:
        inputs, targets = batch.inputs, batch.targets
        t = inputs.shape[1]
        layout = batch_layout(batch, cfg, causal=model.causal)
        kwargs = dial_kwargs(layout, lam, cfg, n_layers, dtype=np.float64, inference=True, lams=lams, tokens=inputs)
        logits, acts = run_with_cache(params, model, inputs, names=names, **kwargs)
        loss, ce = cross_entropy_forward(logits, targets)
        counted = targets != IGNORE
        nll += float(loss) * int(ce["counted"].sum())
        hits = (np.asarray(logits).argmax(-1) == targets) & counted
        correct += int(hits.sum())
        count += int(counted.sum())
        patterns = stack_patterns([acts[f"blocks.{layer}.attn.pattern"] for layer in range(n_layers)])  # (L, B, H, T, T)
        h = row_entropy_bits(patterns)
        parts["h"].append(h)
        parts["pf"].append(row_mass(patterns, layout.pointer_mask))
        parts["hit"].append(row_argmax_in(patterns, layout.pointer_mask))
        parts["block"].append(row_mass(patterns, layout.on))
        parts["eps"].append(row_mass(patterns, layout.off))
        docs = batch.docs
        parts["rows"].append(np.ones(inputs.shape, bool) if docs is None else docs.valid[:, :t])
        parts["rule"].append(layout.rule_row)
        parts["biased"].append(layout.biased_rows)
        if docs is not None:
            parts["anchor"].append(row_mass(patterns, docs.pointer_mask("anchor")[:, :t, :t]))
            rule = layout.rule_row & counted
            rule_correct += int((hits & rule).sum())
            rule_count += int(rule.sum())
            if world is not None and len(world.key_ids):
                defaults = world.key_default[np.clip(inputs - int(world.key_ids[0]), 0, len(world.key_ids) - 1)]
                novel = rule & (targets != defaults)
                comply += int((hits & novel).sum())
                comply_count += int(novel.sum())
        for layer in range(n_layers):
            z = acts[f"blocks.{layer}.attn.scores"]
            shift = lams[layer] * beta if lams[layer] > 0 else 0.0  # 0·∞ would be NaN
            broken = row_bound_violations(z, patterns[layer], layout, shift, taus[layer], h=h[layer])
            violations += int(np.logical_or.reduce(list(broken.values())).sum())
            if layout.rule_row.any():
                delta, delta_in = rule_row_margins(z, layout)
                margins["delta"].append(delta)
                margins["delta_in"].append(delta_in)
        up, ok = entropy_rising_rows(acts["blocks.0.attn.scores"], layout, taus[0])
        rising += int(up.sum())
        applicable += int(ok.sum())
        if on_batch is not None:
            on_batch()

    per_row = ("h", "pf", "hit", "block", "anchor", "eps")  # (L, B, H, T): batches along axis 1; masks (B, T) along 0
    joined = {k: np.concatenate(v, axis=1 if k in per_row else 0) for k, v in parts.items() if v}
    result = entropy_summary(joined["h"], joined["rows"], joined["rule"], causal=model.causal)
    result.pop("entropy_layers")
    pointer = pointer_summary(joined["pf"], joined["rule"], joined["hit"], joined["block"], joined.get("anchor"))
    pointer.pop("pf_layers")
    result.update(pointer)
    biased = np.broadcast_to((joined["biased"] & joined["rows"])[None, :, None, :], joined["eps"].shape)
    result["off_block_mass"] = float(joined["eps"][biased].mean()) if biased.any() else None
    result["val_loss"] = nll / max(count, 1)
    result["val_perplexity"] = math.exp(result["val_loss"])
    result["accuracy"] = correct / max(count, 1)
    result["rule_accuracy"] = rule_correct / rule_count if rule_count else None
    result["compliance"] = comply / comply_count if comply_count else None
    result["reload_compliance"] = None
    if probe:
        result["reload_compliance"] = _reload_compliance(params, model, probe, lam, cfg, lams, on_batch)
    result["bound_violations"] = int(violations)
    result["rows_entropy_rising"] = rising / applicable if applicable else None
    result["delta_q"] = _quantiles(margins["delta"])  # Δ on rule rows, all layers and heads: 10/50/90 %
    result["delta_in_q"] = _quantiles(margins["delta_in"])
    return result


# --------------------------------------------------------------------------- the hot-reload probe


@dataclass(frozen=True, eq=False)
class ProbeBatch:
    """A batch after a hot reload: ``batch`` (inputs from the edited tokens, the documents'
    layout), ``rows`` (B, T−1) the rule rows of the edited rule, ``expected`` (B, T−1) the new value."""

    batch: Any
    rows: np.ndarray
    expected: np.ndarray


def reload_probe(batch: Any, world: Any, cfg: LocalityConfig | None = None) -> ProbeBatch:
    """The §6.2 hot-reload probe on a toy-world batch. [reconstructed]

    In each document the rule named by the first emitted query gets a new value
    (the value ``1 + doc_index mod (n_values − 1)`` places further on, never the same),
    by :func:`hot_reload`, in place. The query spans of that rule follow the new rule
    (their value tokens are the targets of its rule rows), so a model that copies from
    the rule block answers with the new value; one that memorised the old answers wrong.
    """
    from reference.train import Batch, shift_targets

    docs = batch.docs
    tokens = docs.tokens.copy()
    rows = np.zeros(docs.tokens.shape, bool)
    values = world.value_ids
    for s in range(tokens.shape[0]):
        emitted = np.flatnonzero(docs.query_pos[s] >= 0)
        if emitted.size == 0:
            continue
        slot = int(docs.query_slot[s, emitted[0]])
        old = int(docs.rules[s, slot, 2])
        step = 1 + int(docs.doc_index[s]) % (len(values) - 1)
        new = int(values[(old - int(values[0]) + step) % len(values)])
        reloaded = hot_reload(tokens[s], docs.rules[s], slot, new, world, cfg=cfg)
        tokens[s] = reloaded.tokens
        for q in np.flatnonzero((docs.query_slot[s] == slot) & (docs.query_pos[s] >= 0)):
            at = int(docs.query_pos[s, q])
            tokens[s, at + 2] = new  # `? k v .`: the answer follows the new rule
            rows[s, at + 1] = True
    inputs, targets = shift_targets(tokens, docs.valid)
    t = inputs.shape[1]
    return ProbeBatch(Batch(inputs, targets, docs), rows[:, :t], targets)


def _reload_compliance(params, model, probe, lam, cfg, lams, on_batch) -> float | None:
    from reference.model import forward

    hits = total = 0
    for item in probe:
        layout = batch_layout(item.batch, cfg, causal=model.causal)
        logits, _ = forward(params, model, item.batch.inputs, **dial_kwargs(layout, lam, cfg, model.n_layers, lams=lams))
        top = np.asarray(logits).argmax(-1)
        hits += int(((top == item.expected) & item.rows).sum())
        total += int(item.rows.sum())
        if on_batch is not None:
            on_batch()
    return hits / total if total else None


# --------------------------------------------------------------------------- the λ sweep (spec §6)

SWEEP_MODES = ("redial", "retrain", "both")
SWEEP_PRESETS = ("loc_sweep", "loc_tiny", "loc_deep")
DEFAULT_SWEEP_STEPS = 800
"""Training steps per model of the default sweep; the knob that keeps it under 10 minutes (§6.2)."""

SWEEP_KEYS = ("lambda", "entropy_bits", "pointer_fidelity", "val_perplexity", "accuracy", "seed")
ROW_KEYS = SWEEP_KEYS + (
    "mode", "entropy_norm", "entropy_rule_rows", "pf_hit", "pf_block", "pf_anchor", "pf_best_head",
    "off_block_mass", "rule_accuracy", "compliance", "reload_compliance", "bound_violations", "rows_entropy_rising",
)
TABLE_METRICS = (
    ("entropy_bits", "entropy (bits)", "{:.3f}"),
    ("pointer_fidelity", "pointer fidelity", "{:.3f}"),
    ("val_perplexity", "val perplexity", "{:.3f}"),
    ("accuracy", "accuracy", "{:.3f}"),
)

# [paper-abstract 2511.03559] AILA's figures: a two-layer transformer on WikiText. Context
# for our toy-world numbers, never targets: tokeniser, width, context and entropy
# aggregation are not in the abstract (spec §6.5).
AILA = {
    "source": "AILA [paper-abstract 2511.03559], two-layer transformer on WikiText",
    "entropy_bits": {0.0: 7.18, 1.0: 5.36},
    "val_perplexity": {0.6: 4.65},
    "accuracy": {0.6: 0.847},
}


def aila_context(lam: float) -> str:
    """AILA's figure at λ, as the table's context column ('' where the abstract gives none)."""
    bits = AILA["entropy_bits"].get(round(lam, 6))
    if bits is not None:
        return f"entropy {bits} bits"
    if round(lam, 6) in AILA["val_perplexity"]:
        return f"perplexity {AILA['val_perplexity'][0.6]}, accuracy {100 * AILA['accuracy'][0.6]:.1f} %"
    return ""


@dataclass(frozen=True)
class SweepSettings:
    """Options of ``clearform locality sweep`` (spec §6.2). [reconstructed]

    mode: ``"redial"`` (per seed one dial-dropout model, evaluated at every λ: the
    no-retraining claim), ``"retrain"`` (one ``"fixed"`` model per (λ, seed)) or
    ``"both"``. preset: a LOC preset of the toy world (``loc_deep`` for progressive
    schedules). steps: training steps per model (None: :data:`DEFAULT_SWEEP_STEPS`,
    or the preset's own for ``loc_tiny``). text: a UTF-8 file to use instead of the
    toy world (byte tokenizer, sentence blocks, no rule rows). eval_docs: held-out
    documents (or text windows) per evaluation. probe: run the hot-reload probe on the
    first ``probe_docs`` of them ([reconstructed]: 128 by default, the probe costs a
    second forward pass per batch).
    """

    mode: str = "redial"
    lambdas: tuple[float, ...] = LOC_GRID
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int | None = None
    preset: str = "loc_sweep"
    text: str | None = None
    schedule: str = "uniform"
    schedule_power: float = 1.0
    eval_docs: int = 256
    batch_size: int = 16
    probe: bool = True
    probe_docs: int = 128

    def __post_init__(self) -> None:
        check_choice("sweep", "mode", self.mode, SWEEP_MODES)
        check_choice("sweep", "preset", self.preset, SWEEP_PRESETS)
        check_choice("sweep", "schedule", self.schedule, ("uniform", "progressive"))
        if not self.lambdas:
            raise ConfigError("sweep.lambdas: empty; give at least one λ in [0, 1]")
        for lam in self.lambdas:
            check_lambda("lam", lam)
        if not self.seeds:
            raise ConfigError("sweep.seeds: empty; give at least one seed")
        for seed in self.seeds:
            check_int("sweep", "seeds", seed, 0)
        if self.steps is not None:
            check_int("sweep", "steps", self.steps, 1)
        check_int("sweep", "eval_docs", self.eval_docs, 1)
        check_int("sweep", "probe_docs", self.probe_docs, 1)
        check_int("sweep", "batch_size", self.batch_size, 1)
        LocalityConfig(layer_schedule=self.schedule, schedule_power=self.schedule_power)  # validates the power
        if self.text is not None and not Path(self.text).is_file():
            raise ConfigError(f"sweep.text: {self.text!r} is not a readable file")

    @property
    def used_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        from reference.data.toyworld import PRESETS

        return PRESETS[self.preset]["train"]["steps"] if self.preset == "loc_tiny" else DEFAULT_SWEEP_STEPS

    @property
    def used_preset(self) -> str:
        """``loc_deep`` (4 layers) for progressive schedules on the default preset (§6.2)."""
        return "loc_deep" if self.schedule == "progressive" and self.preset == "loc_sweep" else self.preset


def sweep_run_config(settings: SweepSettings, seed: int, lam: float | None = None) -> RunConfig:
    """The RunConfig of one sweep model (spec §6.2 protocol). [reconstructed]

    The preset's model (pre-LN, causal, tied head, no dropout), AdamW lr 3·10⁻³, weight
    decay 0.01, 50 warm-up steps then cosine (to 0.1·lr, the trainer's default floor),
    batch 16, clip 1.0, float32 training; κ_max = 1, β_max = 8, τ = 1, own-block free
    rows, μ = 0. lam None: dial dropout over the grid; a number: ``"fixed"`` at it.
    """
    from reference.data.toyworld import PRESETS

    preset = PRESETS[settings.used_preset]
    steps = settings.used_steps
    overrides: dict[str, dict] = {
        "model": {**preset["model"], "norm": "pre", "causal": True, "tied_head": True, "dtype": "float32"},
        "train": {
            "steps": steps, "batch_size": settings.batch_size, "lr": 3e-3, "weight_decay": 0.01,
            "warmup": min(50, steps), "grad_clip": 1.0, "seed": seed,
            "eval_every": 0, "eval_batches": 1, "checkpoint_every": 0, "log_every": 10,
        },
        "toyworld": dict(preset["toyworld"]),
        "locality": {
            "penalty_max": 1.0, "bias_max": 8.0, "temperature": 1.0, "free_rows": "own_block", "pointer_weight": 0.0,
            "train_dial": "dropout" if lam is None else "fixed", "lam": 0.0 if lam is None else float(lam),
            "layer_schedule": settings.schedule, "schedule_power": settings.schedule_power,
        },
    }
    if settings.text is not None:
        overrides["data"] = {"source": "text", "path": str(settings.text)}
    return RunConfig().overridden(overrides)


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns: every row, the per-λ summary, the checks, the wall time."""

    rows: list[dict]
    summary: list[dict]
    checks: list[dict]
    seconds: float
    out: Path
    note: str = ""


def _mean_sd(values: list) -> tuple[float | None, float | None]:
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None
    mean = float(np.mean(present))
    return mean, float(np.std(present, ddof=1)) if len(present) > 1 else 0.0


def summarise_rows(rows: list[dict]) -> list[dict]:
    """Mean and sd over seeds per (mode, λ): one dict per λ with ``{key}_mean``, ``{key}_sd``."""
    out = []
    for mode in SWEEP_MODES[:2]:
        for lam in sorted({r["lambda"] for r in rows if r["mode"] == mode}):
            group = [r for r in rows if r["mode"] == mode and r["lambda"] == lam]
            entry: dict[str, Any] = {"mode": mode, "lambda": lam, "seeds": len(group)}
            for key in ROW_KEYS:
                if key in ("lambda", "seed", "mode"):
                    continue
                entry[f"{key}_mean"], entry[f"{key}_sd"] = _mean_sd([r.get(key) for r in group])
            out.append(entry)
    return out


def _monotone(values: list, increasing: bool) -> bool | None:
    if any(v is None for v in values) or len(values) < 2:
        return None
    pairs = zip(values, values[1:])
    return all(b >= a for a, b in pairs) if increasing else all(b <= a for a, b in pairs)


def sweep_checks(summary: list[dict]) -> list[dict]:
    """The expected outcomes E1, E2, E4 and the soft checks S1–S4 (§6.4) on the means: ``{id, passed, text}``.

    passed is None where a check does not apply (no rule rows, one λ, no retrain rows).
    """
    checks = []
    for mode in ("redial", "retrain"):
        group = [e for e in summary if e["mode"] == mode]
        if not group:
            continue
        lams = [e["lambda"] for e in group]
        ent = [e["entropy_bits_mean"] for e in group]
        pf = [e["pointer_fidelity_mean"] for e in group]
        tag = "" if mode == "redial" else " (S4, retrain)"
        e1 = _monotone(ent, increasing=False)
        e2 = _monotone(pf, increasing=True)
        if e1 is not None:
            e1 = e1 and ent[0] > ent[-1]
        if e2 is not None:
            e2 = e2 and pf[-1] > pf[0]
        checks.append({"id": "E1" + tag, "passed": e1, "text": "mean entropy non-increasing in λ, entropy(first) > entropy(last)"})
        checks.append({"id": "E2" + tag, "passed": e2, "text": "mean pointer fidelity non-decreasing in λ, PF(last) > PF(first)"})
        if mode == "redial":
            violations = sum(e["bound_violations_mean"] or 0 for e in group)
            checks.append({"id": "E4", "passed": violations == 0, "text": "no row violates T4(b), T5(a)–(c), T6(b)"})
            ppl = [e["val_perplexity_mean"] for e in group]
            best = lams[int(np.argmin(ppl))]
            s1 = (0.0 < best < 1.0) if len(lams) > 2 else None
            text = f"perplexity minimal strictly inside (0, 1) (at λ = {best:g}; AILA: 0.6)"
            checks.append({"id": "S1", "passed": s1, "text": text})
            s2 = None
            if len(lams) > 1 and pf[0] is not None:
                s2 = (ent[0] - ent[-1] >= 0.5) and (pf[-1] - pf[0] >= 0.2)
            checks.append({"id": "S2", "passed": s2, "text": "entropy drop ≥ 0.5 bits and PF gain ≥ 0.2 from first to last λ"})
            s3a = _monotone([e["compliance_mean"] for e in group], increasing=True)
            s3b = _monotone([e["rule_accuracy_mean"] for e in group], increasing=True)
            s3 = None if s3a is None or s3b is None else (s3a and s3b)
            checks.append({"id": "S3", "passed": s3, "text": "compliance and rule accuracy non-decreasing in λ"})
    return checks


def _fmt(value: Any, spec: str) -> str:
    return "null" if value is None else spec.format(value)


def format_table(summary: list[dict], checks: list[dict] | None = None, note: str = "") -> str:
    """The printed table: mean ± sd over seeds per λ, AILA's figures in a separate context column."""
    header = f"{'mode':<8} {'λ':>4}  " + "  ".join(f"{label:>20}" for _, label, _ in TABLE_METRICS)
    header += "  | context: AILA, WikiText (not a target)"
    lines = [header, "-" * len(header)]
    for e in summary:
        cells = []
        for key, _, spec in TABLE_METRICS:
            mean, sd = e[f"{key}_mean"], e[f"{key}_sd"]
            cells.append(f"{_fmt(mean, spec)} ± {_fmt(sd, spec)}" if mean is not None else "null")
        lines.append(
            f"{e['mode']:<8} {e['lambda']:>4.2g}  " + "  ".join(f"{c:>20}" for c in cells) + f"  | {aila_context(e['lambda'])}"
        )
    seeds = sorted({e["seeds"] for e in summary})
    lines.append(f"(mean ± sd over {', '.join(map(str, seeds))} seed(s); AILA's numbers come from its abstract: "
                 "WikiText, two layers, unknown context and tokeniser — the shape is comparable, the values are not)")
    if note:
        lines.append(note)
    for c in checks or []:
        flag = {True: "ok  ", False: "FAIL", None: "n/a "}[c["passed"]]
        lines.append(f"[{flag}] {c['id']}: {c['text']}")
    return "\n".join(lines)


def format_markdown(summary: list[dict], checks: list[dict], note: str = "") -> str:
    """The table as Markdown, AILA's figures in a context column."""
    head = "| mode | λ | " + " | ".join(label for _, label, _ in TABLE_METRICS) + " | context: AILA (WikiText; not a target) |"
    lines = [head, "|" + "---|" * (len(TABLE_METRICS) + 3)]
    for e in summary:
        cells = [
            f"{_fmt(e[f'{k}_mean'], s)} ± {_fmt(e[f'{k}_sd'], s)}" if e[f"{k}_mean"] is not None else "null"
            for k, _, s in TABLE_METRICS
        ]
        lines.append(f"| {e['mode']} | {e['lambda']:g} | " + " | ".join(cells) + f" | {aila_context(e['lambda'])} |")
    lines.append("")
    if note:
        lines += [note, ""]
    lines += [f"- {c['id']}: {'pass' if c['passed'] else 'n/a' if c['passed'] is None else 'FAIL'} — {c['text']}" for c in checks]
    return "\n".join(lines) + "\n"


def format_html(summary: list[dict], checks: list[dict], image: str | None = None, note: str = "") -> str:
    """The table as an HTML fragment (for reports), AILA's figures labelled as context."""
    import html

    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in TABLE_METRICS)
    rows = []
    for e in summary:
        cells = "".join(
            f"<td>{_fmt(e[f'{k}_mean'], s)} ± {_fmt(e[f'{k}_sd'], s)}</td>" if e[f"{k}_mean"] is not None else "<td>null</td>"
            for k, _, s in TABLE_METRICS
        )
        rows.append(f"<tr><td>{e['mode']}</td><td>{e['lambda']:g}</td>{cells}<td>{html.escape(aila_context(e['lambda']))}</td></tr>")
    verdict = {True: "pass", False: "FAIL", None: "n/a"}
    flags = "".join(f"<li>{html.escape(c['id'])}: {verdict[c['passed']]} — {html.escape(c['text'])}</li>" for c in checks)
    body = (
        f"<table><tr><th>mode</th><th>λ</th>{head}<th>context: AILA, WikiText (not a target)</th></tr>{''.join(rows)}</table>"
        f"<p>{html.escape(note)}</p><ul>{flags}</ul>"
    )
    if image:
        body += f'<img src="{html.escape(image)}" alt="locality sweep">'
    return body


def plot_sweep(summary: list[dict], path: Path) -> None:
    """``sweep.png``: entropy, pointer fidelity, perplexity, accuracy against λ (mean ± sd over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=110)
    for ax, (key, label, _) in zip(axes.ravel(), TABLE_METRICS):
        for mode, style in (("redial", "o-"), ("retrain", "s--")):
            group = [e for e in summary if e["mode"] == mode and e[f"{key}_mean"] is not None]
            if group:
                ax.errorbar(
                    [e["lambda"] for e in group], [e[f"{key}_mean"] for e in group],
                    yerr=[e[f"{key}_sd"] for e in group], fmt=style, capsize=3, label=f"clearform toy world ({mode})",
                )
        context = AILA.get(key, {})
        if context:  # as text, not points: other data, other scale; context, never a target
            figures = "; ".join(f"λ = {lam:g}: {value:g}" for lam, value in context.items())
            ax.set_title(f"context, not a target — AILA abstract (WikiText): {figures}", fontsize=8, color="gray")
        if not any(e[f"{key}_mean"] is not None for e in summary):
            ax.text(0.5, 0.5, "null: no rule rows", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.set_xlabel("λ (0 distributed … 1 localist)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sweep_eval_batches(run: RunConfig, settings: SweepSettings) -> tuple[list, Any]:
    """The held-out batches of a sweep: the first ``eval_docs`` documents of (heldout, seed), and the world."""
    from reference.train import make_data

    data = make_data(run)
    n_batches = max(1, math.ceil(settings.eval_docs / settings.batch_size))
    batches = data.val_batches(n_batches, settings.batch_size)
    if settings.text is None:  # exactly eval_docs documents
        keep, out = settings.eval_docs, []
        for batch in batches:
            if keep <= 0:
                break
            if batch.inputs.shape[0] > keep:
                batch = _head(batch, keep)
            out.append(batch)
            keep -= batch.inputs.shape[0]
        batches = out
    return batches, getattr(data, "world", None)


def _head(batch: Any, n: int) -> Any:
    """The first n rows of a toy-world batch (inputs, targets and documents)."""
    from reference.train import Batch

    docs = batch.docs
    fields = {f.name: getattr(docs, f.name) for f in dataclasses.fields(docs)}
    cut = {k: (v[:n] if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
    return Batch(batch.inputs[:n], batch.targets[:n], type(docs)(**cut))


def _train_model(run: RunConfig, folder: Path, bar: Any, chunk: int = 25) -> tuple[dict, RunConfig]:
    """Train one sweep model into ``folder``; the bar advances by training steps."""
    from reference.train import Trainer

    trainer = Trainer(run, folder, progress=False, plugin=LocalityPlugin(run.locality, run.model))
    while trainer.step < trainer.run.train.steps:
        before = trainer.step
        trainer.train(until=before + chunk)
        bar.update(trainer.step - before)
    return trainer.params, trainer.run


def run_sweep(
    settings: SweepSettings, out: str | Path, *, progress: bool = True, log: Callable[[str], None] | None = print
) -> SweepResult:
    """``clearform locality sweep``: train, evaluate at every λ, write the outputs (spec §6). [reconstructed]

    Writes into ``out``: ``sweep.json`` (a list of rows with keys ``lambda``,
    ``entropy_bits``, ``pointer_fidelity``, ``val_perplexity``, ``accuracy``, ``seed``,
    ``mode`` and the other §6.3 metrics), ``config.json`` (every value used),
    ``sweep.png``, ``sweep.md``, ``sweep.html`` and one run folder per trained model
    under ``models/``. Prints the table (mean ± sd per λ, AILA's figures as context)
    and the checks through ``log``.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    modes = ["redial", "retrain"] if settings.mode == "both" else [settings.mode]
    plans: list[tuple[str, int, float | None]] = []  # (mode, seed, λ of a fixed model or None)
    for mode in modes:
        for seed in settings.seeds:
            if mode == "redial":
                plans.append((mode, seed, None))
            else:
                plans += [(mode, seed, float(lam)) for lam in settings.lambdas]
    steps = settings.used_steps
    n_eval = max(1, math.ceil(settings.eval_docs / settings.batch_size))
    n_probe = math.ceil(min(settings.probe_docs, settings.eval_docs) / settings.batch_size)
    n_eval += n_probe if settings.probe and settings.text is None else 0
    evals = sum(len(settings.lambdas) if lam is None else 1 for _, _, lam in plans)
    bar = tqdm(total=len(plans) * steps + evals * n_eval, desc="locality sweep", unit="step",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)
    rows: list[dict] = []
    cached: dict[int, tuple] = {}
    try:
        for mode, seed, fixed in plans:
            run = sweep_run_config(settings, seed, fixed)
            name = f"seed{seed}" if fixed is None else f"seed{seed}-lam{fixed:g}"
            params, trained = _train_model(run, out / "models" / name, bar)
            if seed not in cached:
                batches, world = sweep_eval_batches(trained, settings)
                probe = None
                if settings.probe and world is not None:
                    probe = [reload_probe(b, world, trained.locality) for b in batches[:n_probe]]
                cached[seed] = (batches, world, probe)
            batches, world, probe = cached[seed]
            for lam in settings.lambdas if fixed is None else [fixed]:
                metrics = evaluate_dial(params, trained, batches, lam, trained.locality, world=world, probe=probe,
                                        on_batch=lambda: bar.update(1))
                row = {"lambda": float(lam), "seed": int(seed), "mode": mode, **metrics}
                extra = {k: row[k] for k in ("val_loss", "effective_support", "delta_q", "delta_in_q")}
                rows.append({k: row.get(k) for k in ROW_KEYS} | extra)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    summary = summarise_rows(rows)
    checks = sweep_checks(summary)
    note = ""
    if settings.text is not None:
        note = f"--text {settings.text}: a plain text file has no rule rows, so pointer metrics and compliance are null."
    result = SweepResult(rows, summary, checks, seconds, out, note)
    write_sweep(result, settings)
    if log is not None:
        log(format_table(summary, checks, note))
        log(f"wrote {out / 'sweep.json'}, sweep.png, sweep.md, sweep.html, config.json ({seconds:.0f} s)")
    return result


def write_sweep(result: SweepResult, settings: SweepSettings) -> None:
    """Write sweep.json, config.json, sweep.png, sweep.md and sweep.html into ``result.out``."""
    out = result.out
    (out / "sweep.json").write_text(json.dumps(result.rows, indent=1) + "\n")
    config = {
        "settings": dataclasses.asdict(settings) | {"steps": settings.used_steps, "preset": settings.used_preset},
        "run": sweep_run_config(settings, settings.seeds[0]).to_dict(),
        "seconds": round(result.seconds, 1),
        "summary": result.summary,
        "checks": result.checks,
        "context": {"source": AILA["source"], "entropy_bits": {str(k): v for k, v in AILA["entropy_bits"].items()},
                    "val_perplexity": {"0.6": 4.65}, "accuracy": {"0.6": 0.847}, "use": "context, not a target"},
    }
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    plot_sweep(result.summary, out / "sweep.png")
    (out / "sweep.md").write_text(format_markdown(result.summary, result.checks, result.note))
    (out / "sweep.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>locality sweep</title></head><body>"
        + format_html(result.summary, result.checks, "sweep.png", result.note) + "</body></html>\n"
    )


def demo_section(run_dir: str | Path, *, progress: bool = False, steps: int = 150) -> Any:
    """The LOC part of ``clearform demo``'s report: a small redial sweep on ``loc_tiny``. [reconstructed]

    The demo's own model reads the base world, whose vocabulary has no rule tokens, so
    the section trains one small dial-dropout model (``loc_tiny``: d = 32, context 64,
    ``steps`` steps, one seed) and re-dials it at every λ on 64 held-out documents:
    some 15 seconds on two cores. Files go to ``run_dir/locality/``.
    """
    from reference.report import Section

    settings = SweepSettings(preset="loc_tiny", seeds=(0,), steps=steps, eval_docs=64, probe_docs=64)
    result = run_sweep(settings, Path(run_dir) / "locality", progress=progress, log=None)
    intro = (
        "<p>The locality dial λ (0 distributed … 1 localist) re-dialled at inference on one model trained "
        f"with dial dropout (toy world <code>loc_tiny</code>, {steps} steps, seed 0, 64 held-out documents). "
        "Full sweep: <code>clearform locality sweep --out DIR</code>.</p>"
    )
    return Section("Locality dial (LOC)", intro + format_html(result.summary, result.checks, "locality/sweep.png"),
                   ["locality/sweep.png"])
