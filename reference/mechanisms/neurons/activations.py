"""A1–A3: the corpus, eligible tokens and per-type activations (spec §2.2, §3, §6.1). [reconstructed]

* :func:`toy_corpus` — fresh documents of a checkpoint's toy world (data seed = seed + 10,000, never
  the training seed), context-length windows, until at least ``corpus_tokens`` valid positions;
* :func:`text_corpus` — an encoder's sentences (MiniLM: lexicon word × frame, ``[CLS] … [SEP]``,
  batches of 64 padded, attention mask), or a decoder's windows of a text file;
* :func:`token_counts` — pass 1, n(v) over valid positions;
* :func:`type_activations` — pass 2: ``blocks.{ℓ}.mlp.{site}`` through the model's hooks (a
  replacing hook acts before the value is read), float64 scatter-add of the eligible positions into
  row idx(v), divided by n(v) — or a running maximum (``aggregate="max"``). The forward pass stops
  right after the last hook it needs (the head and later blocks are never computed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference.backend import scatter_add
from reference.model import forward


@dataclass
class CorpusBatch:
    """tokens (B, T) int64, valid (B, T) bool (not padding), kwargs: forward keyword arguments."""

    tokens: np.ndarray
    valid: np.ndarray
    kwargs: dict[str, Any] = field(default_factory=dict)


def toy_corpus(world: Any, corpus_tokens: int, seed: int, batch_size: int = 16) -> list[CorpusBatch]:
    """Toy-world documents ``train`` split, data seed ``seed + 10_000``, until ≥ ``corpus_tokens`` valid positions."""
    out: list[CorpusBatch] = []
    total, start = 0, 0
    while total < corpus_tokens:
        docs = world.documents(batch_size, data_seed=seed + 10_000, start=start)
        start += batch_size
        valid = np.asarray(docs.valid, bool)
        out.append(CorpusBatch(np.asarray(docs.tokens, np.int64), valid))
        total += int(valid.sum())
    return out


def sentence_texts(words: Sequence[str], frames: Sequence[str]) -> list[str]:
    """Each word (file order) × each frame, word-major: 192 × 12 = 2,304 texts for the lexicon."""
    return [frame.replace("{w}", w) for w in words for frame in frames]


def encoder_corpus(model: Any, texts: Sequence[str], batch_size: int = 64) -> list[CorpusBatch]:
    """Texts through a :class:`reference.pretrained.PretrainedModel`: batches of 64, padded, masked (≤ 128 tokens)."""
    out = []
    for i in range(0, len(texts), batch_size):
        batch = model.encode(list(texts[i:i + batch_size]))
        out.append(CorpusBatch(batch.tokens, batch.mask, model.forward_kwargs(batch)))
    return out


def window_corpus(ids: np.ndarray, context: int, corpus_tokens: int, batch_size: int = 16) -> list[CorpusBatch]:
    """A decoder's text: consecutive context-length windows of the token ids, at most ``corpus_tokens`` positions."""
    ids = np.asarray(ids, np.int64)[:corpus_tokens]
    n = math.ceil(ids.size / context)
    padded = np.zeros(n * context, np.int64)
    padded[: ids.size] = ids
    valid = np.zeros(n * context, bool)
    valid[: ids.size] = True
    tokens, valid = padded.reshape(n, context), valid.reshape(n, context)
    return [CorpusBatch(tokens[i:i + batch_size], valid[i:i + batch_size]) for i in range(0, n, batch_size)]


def token_counts(corpus: Sequence[CorpusBatch], vocab_size: int) -> np.ndarray:
    """Pass 1: n(v) (V,) over valid positions."""
    counts = np.zeros(vocab_size, np.int64)
    for b in corpus:
        counts += np.bincount(b.tokens[b.valid], minlength=vocab_size)
    return counts


class _Stop(Exception):
    """Raised by the reading hook once the last needed activation is seen: the rest of the forward is skipped."""


def run_until(params: Mapping[str, Any], config: Any, batch: CorpusBatch, names: Sequence[str],
              replace: Mapping[str, Callable[[Any], Any]] | None = None) -> dict[str, np.ndarray]:
    """Forward ``batch`` until every hook in ``names`` (in forward order, last one last) has been recorded."""
    wanted, replace = set(names), dict(replace or {})
    last = names[-1]
    seen: dict[str, np.ndarray] = {}

    def hook(name: str, value: Any) -> Any:
        if name in replace:
            value = replace[name](value)
        if name in wanted:
            seen[name] = value
        if name == last:
            raise _Stop
        return value

    try:
        forward(params, config, batch.tokens, hook=hook, **batch.kwargs)
    except _Stop:
        pass
    return seen


def type_activations(params: Mapping[str, Any], config: Any, corpus: Sequence[CorpusBatch], layers: Sequence[int],
                     site: str, row_of: np.ndarray, n_types: int, aggregate: str = "mean",
                     replace_for: Callable[[np.ndarray], Mapping[str, Callable[[Any], Any]]] | None = None,
                     on_batch: Callable[[], None] | None = None) -> np.ndarray:
    """Pass 2: ā (|layers|, N, m) float64 over the eligible types (row_of (V,): row in V_elig or −1).

    ``replace_for(tokens)`` gives a batch's replacing hooks (e.g. the planted neuron of P5).
    """
    names = [f"blocks.{ell}.mlp.{site}" for ell in layers]
    m = config.mlp_dim
    acc = np.zeros((len(layers), n_types, m)) if aggregate == "mean" else np.full((len(layers), n_types, m), -np.inf)
    counts = np.zeros(n_types, np.int64)
    for b in corpus:
        rows = row_of[b.tokens]
        keep = b.valid & (rows >= 0)
        idx = rows[keep]
        counts += np.bincount(idx, minlength=n_types)
        seen = run_until(params, config, b, names, None if replace_for is None else replace_for(b.tokens))
        for li, name in enumerate(names):
            values = np.asarray(seen[name], dtype=np.float64)[keep]
            if aggregate == "mean":
                scatter_add(acc[li], idx, values)
            else:
                np.maximum.at(acc[li], idx, values)
        if on_batch is not None:
            on_batch()
    if aggregate == "mean":
        acc /= np.maximum(counts, 1)[None, :, None]
    return acc
