"""A1 — block layouts: which keys form each row's relevant block, and the pointer targets (spec §2.1, §3 A1). [reconstructed]

:class:`Layout` partitions each sequence's positions into *blocks*, gives each row its
*relevant block* g*(i) and its *pointer targets* T(i). :func:`make_layout` builds and
validates one from arrays; :func:`toy_layout` reads the toy world's ground truth;
:func:`toy_layout_from_tokens` is A1 proper (tokens → blocks, rule rows, targets);
:func:`text_layout` splits byte text into sentence blocks. Layouts are host NumPy arrays,
shared by every head and layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from reference.config import InputError, check_choice
from reference.data.toyworld import pointer_mask
from reference.mechanisms.locality.config import LocalityConfig
from reference.metrics import pointer_targets


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


class TokenFields(NamedTuple):
    """What A1 reads off toy-world tokens, all (B, T): the four ground-truth arrays of a ``ToyBatch``
    (``block_id``, ``target_block`` −1 off rule rows, ``rule_row``, ``value_pos`` −1 off rule rows).
    Pointer masks come from the toy world's own :func:`reference.data.toyworld.pointer_mask`."""

    block_id: np.ndarray
    target_block: np.ndarray
    rule_row: np.ndarray
    value_pos: np.ndarray


def toy_fields_from_tokens(tokens: Any, world: Any) -> TokenFields:
    """A1 BuildLayout on toy-world tokens (B, T): blocks, rule rows and targets. [reconstructed]

    A new block starts at position 0, after ``<bos>``, ``;`` and ``.``, and at ``<label>``
    and ``<eos>`` (padding joins the closing block). A rule block is one that opens with
    an anchor; its key is *active*. Row i is a rule row when the token before it is ``?``
    and its token is an active key: its relevant block is that rule's block, and T(i) is
    the rule's value (``"value"``), the anchors that open the block (``"anchor"``) or the
    whole block (``"block"``). Only verified rules are ever injected (A8), so the rule
    region of the tokens is the active rule table.
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
    return TokenFields(block_id, target, target >= 0, value_pos)


def toy_layout_from_tokens(tokens: Any, world: Any, cfg: LocalityConfig | None = None, *, causal: bool = True) -> Layout:
    """A1 on toy-world tokens (B, T), validated as a :class:`Layout`. [reconstructed]"""
    cfg = cfg or LocalityConfig()
    f = toy_fields_from_tokens(tokens, world)
    targets = pointer_mask(cfg.pointer_target, *f, world.config.anchor_copies)
    return make_layout(
        f.block_id, f.target_block, targets=targets, rule_row=f.rule_row, causal=causal, free_rows=cfg.free_rows
    )
