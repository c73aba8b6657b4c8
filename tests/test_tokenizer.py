"""Tokenizers: bytes, toy-world words, optional Hugging Face tokenizer.json."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.config import ConfigError
from reference.data.toyworld import ToyWorld, world_from_preset
from reference.tokenizer import ByteTokenizer, WordTokenizer, load_hf_tokenizer


@given(st.text())
def test_bytes_round_trip_any_text(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert ids.tolist() == list(text.encode("utf-8"))
    assert tok.decode(ids) == text


def test_bytes_vocabulary_and_invalid_utf8():
    tok = ByteTokenizer()
    assert tok.vocab_size == 256
    assert tok.encode("é").tolist() == [0xC3, 0xA9]
    assert tok.decode([0xC3]) == "\ufffd"  # a cut multi-byte character is replaced, not an error
    assert tok.decode(np.array([104, 105])) == "hi"
    assert tok.decode([]) == "" and tok.encode("").shape == (0,)
    with pytest.raises(ConfigError, match=r"^decode\.ids: 256 is not an id in \[0, 255\]$"):
        tok.decode([104, 256])
    with pytest.raises(ConfigError, match=r"^decode\.ids: -1 "):
        tok.decode([-1])
    with pytest.raises(ConfigError, match=r"^decode\.ids: expected integer ids"):
        tok.decode(np.array([1.5]))


@pytest.mark.parametrize("preset", ["neurons", "locality_sweep", "msma_toy"])
def test_words_round_trip_every_token_and_documents(preset):
    world = world_from_preset(preset)
    tok = WordTokenizer(world)
    assert tok.vocab_size == world.V
    every = np.arange(world.V)
    assert tok.encode(tok.decode(every)).tolist() == every.tolist()
    batch = world.documents(20, 0)
    for row in range(20):
        ids = batch.tokens[row, : batch.length[row]]
        text = tok.decode(ids)
        assert text.startswith("<bos> ") and text.endswith(" <eos>") and "  " not in text
        np.testing.assert_array_equal(tok.encode(text), ids)


def test_words_split_on_any_whitespace_and_name_unknown_words():
    tok = WordTokenizer(ToyWorld())
    ids = tok.encode("  the animal01\tconsume01s\n.  ")
    assert ids.dtype == np.int64 and tok.decode(ids) == "the animal01 consume01s ."
    assert tok.encode("").shape == (0,)
    with pytest.raises(ConfigError) as info:
        tok.encode("the animal01 consume01s dragon .")
    message = str(info.value)
    assert "'dragon'" in message and "\n" not in message
    with pytest.raises(ConfigError, match="'k00'"):
        tok.encode("? k00 v00 .")  # LOC words exist only in LOC worlds
    with pytest.raises(ConfigError, match=r"^decode\.ids: 371 is not an id in \[0, 370\]$"):
        tok.decode([371])


def test_hf_tokenizer_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^tokenizer: .*is not a file"):
        load_hf_tokenizer(str(tmp_path / "nowhere.json"))
    with pytest.raises(ConfigError, match=r"^tokenizer: .*tokenizer\.json.*is not a file"):
        load_hf_tokenizer(str(tmp_path))  # a directory without tokenizer.json


def test_hf_tokenizer_loads_or_says_what_is_missing(tmp_path):
    # A minimal word-level tokenizer.json in the library's format.
    spec = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None, "decoder": None,
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "hello": 1, "world": 2}, "unk_token": "[UNK]"},
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    if importlib.util.find_spec("tokenizers") is None:
        with pytest.raises(ConfigError, match=r"^tokenizer: .*needs the 'tokenizers' package \(pip install"):
            load_hf_tokenizer(str(tmp_path))
    else:
        tok = load_hf_tokenizer(str(tmp_path))
        assert tok.vocab_size == 3
        assert tok.encode("hello world").tolist() == [1, 2]
        assert tok.decode([1, 2]).split() == ["hello", "world"]
