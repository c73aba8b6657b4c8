"""Tokenizers: UTF-8 bytes, toy-world words, and (optionally) a Hugging Face ``tokenizer.json``.

Every tokenizer has ``vocab_size``, ``encode(text) -> (N,) int64`` and ``decode(ids) -> str``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from reference.config import ConfigError

if TYPE_CHECKING:  # only for the annotation; importing the world is not needed at run time
    from reference.data.toyworld import ToyWorld


def _as_ids(ids: Any, vocab_size: int, what: str) -> list[int]:
    """Ids as a Python list, each checked to lie in [0, vocab_size)."""
    flat = np.asarray(ids).reshape(-1)
    if flat.size and not np.issubdtype(flat.dtype, np.integer):
        raise ConfigError(f"{what}.ids: expected integer ids, got dtype {flat.dtype}")
    out = flat.tolist()
    bad = [i for i in out if not 0 <= i < vocab_size]
    if bad:
        raise ConfigError(f"{what}.ids: {bad[0]} is not an id in [0, {vocab_size - 1}]")
    return out


class ByteTokenizer:
    """Text as its UTF-8 bytes: vocabulary 256, every string encodable.

    ``decode`` replaces invalid UTF-8 (e.g. a multi-byte character cut by a context window)
    with U+FFFD instead of failing: model samples need not be valid UTF-8.
    """

    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        """(N,) int64 byte values of ``text`` in UTF-8."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def decode(self, ids: Any) -> str:
        return bytes(_as_ids(ids, 256, "decode")).decode("utf-8", errors="replace")


class WordTokenizer:
    """Toy-world text: one token per whitespace-separated surface string of ``world.vocab``.

    Every id has a surface form (``<bos>``, ``.``, ``animal07s``, ``<R0>`` …), so
    ``decode(encode(text))`` gives ``text`` back with single spaces.
    """

    def __init__(self, world: ToyWorld) -> None:
        self.world = world
        self.vocab_size = int(world.V)

    def encode(self, text: str) -> np.ndarray:
        """(N,) int64 ids; an unknown word raises a one-line ConfigError naming it."""
        ids = []
        for word in text.split():
            token = self.world.token_id.get(word)
            if token is None:
                raise ConfigError(f"text: unknown word {word!r} (not in the toy world's {self.vocab_size} tokens)")
            ids.append(token)
        return np.array(ids, dtype=np.int64)

    def decode(self, ids: Any) -> str:
        return " ".join(self.world.vocab[i] for i in _as_ids(ids, self.vocab_size, "decode"))


class HFTokenizer:
    """A Hugging Face ``tokenizer.json`` behind the same interface (wraps ``tokenizers.Tokenizer``)."""

    def __init__(self, tokenizer: Any) -> None:
        self.raw = tokenizer  # the tokenizers.Tokenizer, for batch encoding with special tokens
        self.vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text`` without special tokens ([CLS]/[SEP] are the caller's choice)."""
        return np.array(self.raw.encode(text, add_special_tokens=False).ids, dtype=np.int64)

    def decode(self, ids: Any) -> str:
        return self.raw.decode(_as_ids(ids, self.vocab_size, "decode"), skip_special_tokens=False)


def load_hf_tokenizer(path: str) -> HFTokenizer:
    """Load ``path`` (a ``tokenizer.json`` or a directory holding one) with the ``tokenizers`` package.

    The package is optional: it is imported here, and a missing package or file is a one-line
    ConfigError rather than an ImportError deep in a run.
    """
    file = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise ConfigError(f"tokenizer: {file!r} is not a file (expected a Hugging Face tokenizer.json)")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ConfigError(
            f"tokenizer: reading {file!r} needs the 'tokenizers' package (pip install tokenizers)"
        ) from None
    try:
        return HFTokenizer(Tokenizer.from_file(file))
    except Exception as error:  # the library raises its own exception type for bad JSON
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"tokenizer: {file!r} is not a valid tokenizer.json ({first_line})") from None
