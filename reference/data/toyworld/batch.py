"""Batches of toy-world documents and VDS tasks: ``ToyBatch``, ``ToyTask`` (specs/toyworld.md §4). [reconstructed]"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from reference.config import check_choice
from reference.data.toyworld.documents import _Doc
from reference.data.toyworld.vocabulary import LABEL_MARKER_ID, PAD_ID, PERIOD_ID, POINTER_KINDS, SPAN_PAD, SPAN_SENTENCE

if TYPE_CHECKING:
    from reference.data.toyworld.world import ToyWorld

# --------------------------------------------------------------------------- batches


@dataclass(frozen=True, eq=False)
class ToyBatch:
    """Documents start … start+B−1 of one (world, split, data seed). [reconstructed §4]

    Fields (B documents, T = context, S = rules_per_doc, Q = queries_per_doc; int64 unless said):

    * ``tokens`` (B,T): ids, ``<pad>``-filled; ``valid`` (B,T) bool: not padding.
    * ``length`` (B,): positions through ``<eos>``; ``doc_index`` (B,); ``doc_topic`` (B,);
      ``n_sentences`` (B,): sentences emitted; ``n_planned`` (B,): sentences planned (drawn
      ``n``; emitted ≤ planned when the context is full) — an addition to §4, [reconstructed].
    * ``span_kind`` (B,T) int8: 0 bos, 1 rule, 2 sentence, 3 query, 4 tail, 5 eos, 6 pad.
    * ``sentence_id`` (B,T): index of the sentence holding the position, −1 outside sentences;
      ``sentence_end`` (B,T) bool: the ``.`` closing a sentence (not a query's).
    * ``block_id`` (B,T): 0 ``<bos>``, then each rule block, each sentence and query span, the
      tail, and last the closing block (``<eos>`` and all padding).
    * ``rule_row`` (B,T) bool: the key position of each emitted query span (it predicts the
      value); ``target_block`` (B,T): the block of that key's rule on rule rows, −1 elsewhere;
      ``value_pos`` (B,T): the position of that rule's value token, −1 elsewhere.
    * ``rules`` (B,S,5): (slot, key id, value id, version 0, verified 1); ``rule_block``,
      ``rule_start`` (position of the first anchor), ``rule_template`` (B,S).
    * ``query_slot`` (B,Q): the slot each query names (draw order); ``query_pos`` (B,Q): the
      position of its ``?``, −1 if it did not fit.
    * ``label_pos`` (B,): position of ``<label>``, −1 without a tail; ``label_token`` (B,): the
      word after it, −1 without a tail; ``label_true`` (B,) bool: that word is
      ``label_word[doc_topic]``.
    * ``anchor_copies``: r, used by ``pointer_mask("anchor")``.
    """

    tokens: np.ndarray
    valid: np.ndarray
    length: np.ndarray
    doc_index: np.ndarray
    doc_topic: np.ndarray
    n_sentences: np.ndarray
    n_planned: np.ndarray
    span_kind: np.ndarray
    sentence_id: np.ndarray
    sentence_end: np.ndarray
    block_id: np.ndarray
    target_block: np.ndarray
    rule_row: np.ndarray
    value_pos: np.ndarray
    rules: np.ndarray
    rule_block: np.ndarray
    rule_start: np.ndarray
    rule_template: np.ndarray
    query_slot: np.ndarray
    query_pos: np.ndarray
    label_pos: np.ndarray
    label_token: np.ndarray
    label_true: np.ndarray
    anchor_copies: int

    def pointer_mask(self, kind: str = "value") -> np.ndarray:
        """T(i) of every rule row as a (B,T,T) bool mask: :func:`pointer_mask` of this batch's fields."""
        return pointer_mask(kind, self.block_id, self.target_block, self.rule_row, self.value_pos, self.anchor_copies)


def pointer_mask(
    kind: str, block_id: np.ndarray, target_block: np.ndarray, rule_row: np.ndarray, value_pos: np.ndarray, anchor_copies: int
) -> np.ndarray:
    """T(i) of every rule row as a (B,T,T) bool mask; rows off rule rows are all False.

    block_id, target_block, rule_row, value_pos (B, T) as in :class:`ToyBatch`.
    ``"value"``: the rule's value position; ``"anchor"``: its r = ``anchor_copies``
    anchor positions; ``"block"``: every position of the rule's block (``target_block``).
    """
    check_choice("pointer_mask", "kind", kind, POINTER_KINDS)
    in_block = rule_row[:, :, None] & (block_id[:, None, :] == target_block[:, :, None])
    if kind == "block":
        return in_block
    if kind == "anchor":
        # A rule block opens with its r anchors: the first r positions of the target block.
        first = np.argmax(in_block, axis=2)[:, :, None]
        positions = np.arange(block_id.shape[1])
        return in_block & (positions < first + anchor_copies)
    b, i = np.nonzero(rule_row)
    mask = np.zeros(in_block.shape, dtype=bool)
    mask[b, i, value_pos[b, i]] = True
    return mask


def _fill(rows: np.ndarray, cols: np.ndarray, values: list[int], shape: tuple[int, int], fill: int, dtype) -> np.ndarray:
    out = np.full(shape, fill, dtype=dtype)
    out[rows, cols] = values
    return out


def _assemble(world: ToyWorld, docs: list[_Doc], start: int) -> ToyBatch:
    """Fill the batch arrays from the per-document lists in a few vectorised steps."""
    cfg = world.config
    B, T, S, Q = len(docs), cfg.context, cfg.rules_per_doc, cfg.queries_per_doc
    length = np.array([len(d.tokens) for d in docs], np.int64)
    rows = np.repeat(np.arange(B), length)
    cols = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    flat = lambda name: list(itertools.chain.from_iterable(getattr(d, name) for d in docs))  # noqa: E731

    tokens = _fill(rows, cols, flat("tokens"), (B, T), PAD_ID, np.int64)
    span_kind = _fill(rows, cols, flat("span_kind"), (B, T), SPAN_PAD, np.int8)
    sentence_id = _fill(rows, cols, flat("sentence"), (B, T), -1, np.int64)
    closing_block = np.array([d.block[-1] for d in docs], np.int64).reshape(B, 1)
    block_id = _fill(rows, cols, flat("block"), (B, T), -1, np.int64)
    block_id = np.where(block_id < 0, closing_block, block_id)  # padding joins the <eos> block
    valid = np.arange(T) < length[:, None]

    rule_start = np.array([d.rule_start for d in docs], np.int64).reshape(B, S)
    rule_template = np.array([[r.template for r in d.rules] for d in docs], np.int64).reshape(B, S)
    rules = np.zeros((B, S, 5), np.int64)
    rules[:, :, 0] = np.arange(S)
    rules[:, :, 1] = np.array([[r.key for r in d.rules] for d in docs], np.int64).reshape(B, S)
    rules[:, :, 2] = np.array([[r.value for r in d.rules] for d in docs], np.int64).reshape(B, S)
    rules[:, :, 4] = 1  # version 0, verified 1: the generator only writes valid rules
    rule_block = np.broadcast_to(1 + np.arange(S, dtype=np.int64), (B, S)).copy()  # block 0 is <bos>
    query_slot = np.array([d.query_slot for d in docs], np.int64).reshape(B, Q)
    query_pos = np.array([d.query_pos for d in docs], np.int64).reshape(B, Q)

    # Rule rows: the key right after each emitted query's "?".
    b, q = np.nonzero(query_pos >= 0)
    key_pos = query_pos[b, q] + 1
    slot = query_slot[b, q]
    has_filler = (rule_template[b, slot] >= 1).astype(np.int64)
    rule_row = np.zeros((B, T), bool)
    rule_row[b, key_pos] = True
    target_block = np.full((B, T), -1, np.int64)
    target_block[b, key_pos] = rule_block[b, slot]
    value_pos = np.full((B, T), -1, np.int64)
    value_pos[b, key_pos] = rule_start[b, slot] + cfg.anchor_copies + has_filler + 1

    return ToyBatch(
        tokens=tokens,
        valid=valid,
        length=length,
        doc_index=np.arange(start, start + B, dtype=np.int64),
        doc_topic=np.array([d.topic for d in docs], np.int64),
        n_sentences=np.array([d.n_sentences for d in docs], np.int64),
        n_planned=np.array([d.n_planned for d in docs], np.int64),
        span_kind=span_kind,
        sentence_id=sentence_id,
        sentence_end=(tokens == PERIOD_ID) & (span_kind == SPAN_SENTENCE),
        block_id=block_id,
        target_block=target_block,
        rule_row=rule_row,
        value_pos=value_pos,
        rules=rules,
        rule_block=rule_block,
        rule_start=rule_start,
        rule_template=rule_template,
        query_slot=query_slot,
        query_pos=query_pos,
        label_pos=np.array([d.label_pos for d in docs], np.int64),
        label_token=np.array([d.label_token for d in docs], np.int64),
        label_true=np.array([d.label_true for d in docs], bool),
        anchor_copies=cfg.anchor_copies,
    )


# --------------------------------------------------------------------------- tasks (VDS)


@dataclass(frozen=True, eq=False)
class ToyTask:
    """A VDS classification task on held-out documents. [reconstructed §4]

    ``prompts`` (N,T) int64, ``<pad>``-filled: each document before its ``<label>`` (or its
    ``<eos>``), then ``<label>``; the readout position is ``prompt_len − 1``. ``labels``,
    ``doc_topic``, ``doc_index``, ``prompt_len`` (N,) int64; ``verbaliser`` (K,) int64: the
    token whose logit scores each class.
    """

    name: str
    K: int
    verbaliser: np.ndarray
    prompts: np.ndarray
    prompt_len: np.ndarray
    labels: np.ndarray
    doc_topic: np.ndarray
    doc_index: np.ndarray


def _prompt(batch: ToyBatch, row: int, context: int) -> list[int]:
    """The document before its tail (or <eos>), then <label>; left-truncated to ``context``."""
    end = int(batch.label_pos[row]) if batch.label_pos[row] >= 0 else int(batch.length[row]) - 1
    prompt = batch.tokens[row, :end].tolist() + [LABEL_MARKER_ID]
    return prompt[-context:]
