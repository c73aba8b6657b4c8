"""Fuzzing Hugging Face directories through ``import_hf`` (and once through the CLI).

Each example builds a tiny GPT-2 (with :func:`reference.hf.export_gpt2`, no
torch) or BERT directory (config.json + safetensors written by hand after
``_bert_shapes``), in F32, F16, BF16 or F64, optionally sharded, mutates it,
and imports it. Every example asserts:

* the outcome is a success or a :class:`CheckpointError` with a one-line
  message, never another exception;
* it finishes within :data:`TIME_BOUND` seconds;
* a success is faithful: the config is exactly what the (mutated) config.json
  says, every parameter has the shape the config implies and equals the
  unmutated import bit for bit (so a mutation that changes a shape or a dtype
  can never be silently accepted), and a mutation that must fail (a dropped,
  reshaped, integer or truncated tensor, a lying header) does fail.

Example counts come from the active Hypothesis profile (dev 20, ci 40,
thorough 400 per test; six tests).
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_harness import swap_file_kind  # noqa: E402  (tests/ is on sys.path)
from hypothesis import event, given, settings
from hypothesis import strategies as st

from reference.checkpoint import CheckpointError
from reference.config import ModelConfig
from reference.hf import _BERT_DEFAULTS, _GPT2_DEFAULTS, _HF_GELU, HF_INDEX, _bert_shapes, export_gpt2, import_hf
from reference.model import init_params, param_shapes

TIME_BOUND = 5.0  # seconds per import; a tiny directory takes milliseconds
EXAMPLES = settings.default.max_examples  # from the active profile: dev 20, ci 40, thorough 400
DTYPES = ("F32", "F16", "BF16", "F64")
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- building directories


def _encode(value: np.ndarray, code: str) -> tuple[bytes, np.ndarray]:
    """Bytes of ``value`` stored as safetensors dtype ``code``, and the float64 values a faithful reader returns."""
    value = np.asarray(value)
    if code == "BF16":
        bits = (value.astype(np.float32).view(np.uint32) >> 16).astype("<u2")
        return bits.tobytes(), (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    stored = value.astype({"F32": "<f4", "F16": "<f2", "F64": "<f8"}[code])
    return stored.tobytes(), stored.astype(np.float64)


def _write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Write ``{name: (dtype code, array)}`` as safetensors (by hand: NumPy cannot save BF16); the decoded values."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    chunks, decoded, offset = [], {}, 0
    for name, (code, value) in tensors.items():
        data, decoded[name] = _encode(value, code)
        header[name] = {"dtype": code, "shape": list(np.shape(value)), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    return decoded


GPT2_BASE = {"vocab_size": 11, "n_positions": 8, "n_embd": 8, "n_layer": 2, "n_head": 2, "n_inner": 12}
BERT_BASE = {
    "model_type": "bert", "architectures": ["BertModel"], "vocab_size": 11, "hidden_size": 8, "num_hidden_layers": 2,
    "num_attention_heads": 2, "intermediate_size": 12, "max_position_embeddings": 8, "type_vocab_size": 2,
    "hidden_act": "gelu", "layer_norm_eps": 1e-12,
}


@st.composite
def directories(draw) -> dict:
    """A recipe for a valid tiny directory: family, dtype per tensor, tied head, prefix, sharding."""
    family = draw(st.sampled_from(["gpt2", "bert"]))
    mixed = draw(st.booleans())
    return {
        "family": family, "dtype": draw(st.sampled_from(DTYPES)), "mixed": mixed, "seed": draw(st.integers(0, 3)),
        "tied": draw(st.booleans()) if family == "gpt2" else True,
        "prefix": draw(st.sampled_from(["", "bert."])) if family == "bert" else "transformer.",
        "sharded": draw(st.booleans()),
    }


def _build(recipe: dict, directory: Path) -> None:
    """Write the directory of ``recipe``: config.json and its tensors (one file, or two shards and an index)."""
    rng = np.random.default_rng(recipe["seed"])
    if recipe["family"] == "gpt2":
        config = ModelConfig(
            vocab_size=11, context=8, d_model=8, n_layers=2, n_heads=2, d_mlp=12, tied_head=recipe["tied"], dtype="float32"
        )
        params = {k: v + rng.standard_normal(v.shape).astype(np.float32) for k, v in init_params(config, seed=1).items()}
        export_gpt2(params, config, directory)  # the F32 file is rewritten below in the recipe's dtype(s)
        from safetensors.numpy import load_file

        arrays = load_file(str(directory / "model.safetensors"))
    else:
        config = ModelConfig(
            vocab_size=11, context=8, d_model=8, n_layers=2, n_heads=2, d_mlp=12, norm="post", causal=False,
            gelu="erf", embed_norm=True, final_norm=False, n_token_types=2, ln_eps=1e-12,
        )
        (directory / "config.json").write_text(json.dumps(BERT_BASE))
        arrays = {recipe["prefix"] + name: rng.standard_normal(shape).astype(np.float32)
                  for name, shape in _bert_shapes(config).items()}
        arrays["pooler.dense.weight"] = rng.standard_normal((8, 8)).astype(np.float32)  # unused: reported as ignored
    names = sorted(arrays)
    codes = [DTYPES[(i + recipe["seed"]) % len(DTYPES)] if recipe["mixed"] else recipe["dtype"] for i in range(len(names))]
    tensors = {name: (code, arrays[name]) for name, code in zip(names, codes)}
    (directory / "model.safetensors").unlink(missing_ok=True)
    if recipe["sharded"]:
        half = len(names) // 2
        shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
        for shard, members in shards.items():
            _write_safetensors(directory / shard, {name: tensors[name] for name in members})
        weight_map = {name: shard for shard, members in shards.items() for name in members}
        (directory / HF_INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    else:
        _write_safetensors(directory / "model.safetensors", tensors)


def _weight_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.safetensors"))


# --------------------------------------------------------------------------- the outcome and its checks


def _import(directory: Path, label: str | None = None) -> tuple[Any, CheckpointError | None, float]:
    """import_hf's result or its CheckpointError, and the seconds it took; any other exception fails the test.

    With ``label``, the outcome is recorded as a Hypothesis event (``--hypothesis-show-statistics``
    shows how many mutations were accepted and refused, so a test that never reaches one side is visible).
    """
    box: dict[str, Any] = {}

    def run() -> None:  # in a daemon thread, so a hang (a FIFO opened for reading) fails the test instead of blocking it
        try:
            box["result"] = import_hf(directory)
        except BaseException as exc:  # handed back below; anything but CheckpointError fails the test there
            box["error"] = exc

    start = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(TIME_BOUND)
    elapsed = time.monotonic() - start
    assert not worker.is_alive() and elapsed < TIME_BOUND, f"import still running or slow after {elapsed:.1f} s"
    result, error = box.get("result"), box.get("error")
    if error is not None and not isinstance(error, CheckpointError):
        raise error
    if label is not None:
        event(f"{label}: {'accepted' if error is None else 'refused'}")
    if error is not None:
        message = str(error)
        assert message and "\n" not in message and "\r" not in message and len(message) < 600, message
        assert "Traceback" not in message
    return result, error, elapsed


GPT2_FIELDS = {"vocab_size": "vocab_size", "n_positions": "context", "n_embd": "d_model", "n_layer": "n_layers",
               "n_head": "n_heads", "n_inner": "d_mlp", "tie_word_embeddings": "tied_head"}
BERT_FIELDS = {"vocab_size": "vocab_size", "max_position_embeddings": "context", "hidden_size": "d_model",
               "num_hidden_layers": "n_layers", "num_attention_heads": "n_heads", "intermediate_size": "d_mlp",
               "type_vocab_size": "n_token_types"}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _assert_faithful(result: Any, record: Any, baseline: tuple, exact_values: bool = True) -> None:
    """A successful import reads config.json exactly and returns the baseline's tensors (bit for bit when ``exact_values``)."""
    params, config, info = result
    assert isinstance(record, dict)
    gpt2 = record.get("model_type") == "gpt2"
    defaults, fields = (_GPT2_DEFAULTS, GPT2_FIELDS) if gpt2 else (_BERT_DEFAULTS, BERT_FIELDS)
    for key, field in fields.items():
        assert _same(getattr(config, field), record.get(key, defaults[key])), (key, record.get(key, defaults[key]))
    eps_key, act_key = ("layer_norm_epsilon", "activation_function") if gpt2 else ("layer_norm_eps", "hidden_act")
    eps = record.get(eps_key, defaults[eps_key])
    assert not isinstance(eps, bool) and math.isfinite(eps) and eps > 0 and config.ln_eps == float(eps)
    assert config.gelu == _HF_GELU[record.get(act_key, defaults[act_key])]
    assert {name: value.shape for name, value in params.items()} == param_shapes(config)
    base_params = baseline[0]
    for name, value in params.items():
        assert name in base_params, f"{name} came from nowhere"
        assert value.dtype == np.float32 and value.shape == base_params[name].shape, name
        assert np.array_equal(value, base_params[name]) or not exact_values, name
    assert set(params) == set(base_params), "a parameter was dropped"


# --------------------------------------------------------------------------- config.json mutations

JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2, 4, 8, 11, 12, 16, 10**7, 2**31, 2**63, 2**64, 10**39]),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([8.0, 1e-5, 1e-12, 1e300, -1e-5, 5e-324]),
    st.text(max_size=12), st.sampled_from(["gpt2", "bert", "gelu", "gelu_new", "relu", "absolute", "llama", "clearform"]),
    st.lists(st.integers(-3, 20), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(0, 9), max_size=2),
)
ALL_KEYS = sorted(set(_GPT2_DEFAULTS) | set(_BERT_DEFAULTS) | {"model_type", "architectures", "format", "transformers_version"})


@settings(max_examples=EXAMPLES)
@given(recipe=directories(), edits=st.lists(st.tuples(st.sampled_from(ALL_KEYS), st.one_of(st.just("<delete>"), JSON_VALUES)),
                                            min_size=1, max_size=3))
def test_config_value_mutations_are_refused_or_read_faithfully(recipe, edits):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _build(recipe, directory)
        baseline, error, _ = _import(directory)
        assert error is None, error
        record = json.loads((directory / "config.json").read_text())
        for key, value in edits:
            if value == "<delete>":
                record.pop(key, None)
            else:
                record[key] = value
        (directory / "config.json").write_text(json.dumps(record))
        result, error, _ = _import(directory, "config edit")
        if error is None:
            _assert_faithful(result, record, baseline)


# Literals spliced into the text of config.json in place of a number: each must be refused.
BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 4301, "-" + "9" * 41, "1e-400", "-1", "0"]


@st.composite
def raw_config_edits(draw) -> tuple[str, Any]:
    return draw(st.sampled_from([
        ("number", draw(st.sampled_from(BAD_NUMBERS))),
        ("encoding", draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "bom", "invalid"]))),
        ("truncate", draw(st.integers(0, 400))),
        ("flip", (draw(st.integers(0, 10**6)), draw(st.integers(1, 255)))),
        ("deep", draw(st.sampled_from([65, 1000, 10_000, 100_000]))),
        ("duplicate", draw(st.integers(0, 100))),
        ("structure", draw(st.sampled_from(["[]", "null", "3", '"gpt2"', "[{}]", "{}"]))),
        ("type", draw(st.sampled_from(["directory", "fifo", "missing", "dev-null", "huge"]))),
    ]))


@settings(max_examples=EXAMPLES)
@given(recipe=directories(), edit=raw_config_edits())
def test_config_file_encodings_structure_and_file_types_give_a_clean_error(recipe, edit):
    kind, arg = edit
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _build(recipe, directory)
        baseline, error, _ = _import(directory)
        assert error is None, error
        path = directory / "config.json"
        text = path.read_text().rstrip()  # ends with "}"
        must_fail = True
        if kind == "number":
            key = "n_embd" if recipe["family"] == "gpt2" else "hidden_size"
            path.write_text(text.replace(f'"{key}": 8', f'"{key}": {arg}'))
        elif kind == "encoding":
            raw = {"utf-16": text.encode("utf-16"), "utf-32": text.encode("utf-32"), "bom": b"\xef\xbb\xbf" + text.encode(),
                   "latin-1": text.replace('"gpt2"', '"gpt\u00e92"').replace('"bert"', '"b\u00e9rt"').encode("latin-1"),
                   "invalid": text.encode()[:-1] + b"\xc3"}[arg]
            path.write_bytes(raw)
        elif kind == "truncate":
            path.write_bytes(text.encode()[: min(arg, len(text.encode()) - 1)])
        elif kind == "flip":
            data = bytearray(text.encode())
            data[arg[0] % len(data)] ^= arg[1]
            path.write_bytes(bytes(data))
            must_fail = False  # a flip in an ignored key or a string can be harmless
        elif kind == "deep":
            path.write_text(text[:-1] + ', "x": ' + "[" * arg + "]" * arg + "}")
            must_fail = arg > 63  # the whole record adds one level
        elif kind == "duplicate":  # a key of the record a second time: which value is meant?
            key = sorted(json.loads(text))[arg % len(json.loads(text))]
            path.write_text(text[:-1] + f', "{key}": 8}}')
        elif kind == "structure":
            path.write_text(arg)
        else:
            if arg != "huge":
                swap_file_kind(path, arg)
            else:
                path.unlink()
                with open(path, "wb") as handle:
                    handle.truncate(17 * 2**20)
        result, error, _ = _import(directory, kind)
        if error is None:
            assert not must_fail, f"{kind} {str(arg)[:40]} was accepted"
            _assert_faithful(result, json.loads(path.read_text()), baseline)


@pytest.mark.parametrize("key, value, message", [
    ("n_layer", 10**7, "over the limit of 1024"),
    ("n_embd", 2**63, "describes about 6.81e+38 parameters, over the limit of 2e+09"),
    ("vocab_size", 10**12, "describes about 8e+12 parameters"),
    ("n_inner", 2**62, "parameters, over the limit"),
    ("model_type", ["gpt2"], "model_type ['gpt2'] (architectures ['GPT2LMHeadModel']) is not supported"),
    ("layer_norm_epsilon", -1e-5, "layer_norm_epsilon = -1e-05 is not a valid value"),
    ("architectures", "GPT2", "architectures = 'GPT2' is not a list of strings"),
])
def test_each_named_config_problem_fails_fast_with_its_message(tmp_path, key, value, message):
    recipe = {"family": "gpt2", "dtype": "F32", "mixed": False, "seed": 0, "tied": True, "prefix": "", "sharded": False}
    _build(recipe, tmp_path)
    record = json.loads((tmp_path / "config.json").read_text()) | {key: value}
    (tmp_path / "config.json").write_text(json.dumps(record))
    start = time.monotonic()
    with pytest.raises(CheckpointError, match=re.escape(message)):
        import_hf(tmp_path)
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize("family, tied, key, value, message", [
    ("gpt2", True, "n_layer", 1, "tensor 'transformer.h.1.attn.c_attn.bias' belongs to block 1, but config.json has 1 layer"),
    ("gpt2", True, "n_layer", 0, "belongs to block 0, but config.json has 0 layers"),
    ("bert", True, "num_hidden_layers", 1, "tensor 'encoder.layer.1.attention.output.LayerNorm.bias' belongs to block 1"),
    ("bert", True, "type_vocab_size", 0, "token_type_embeddings.weight' is present, but config.json has type_vocab_size = 0"),
    ("gpt2", False, "tie_word_embeddings", True, "lm_head.weight differs from transformer.wte.weight, but config.json ties them"),
])
def test_a_config_that_would_silently_drop_weights_is_refused(tmp_path, family, tied, key, value, message):
    """Fewer layers, no token types or a tied head than the weights hold: a different model, so refused."""
    recipe = {"family": family, "dtype": "F32", "mixed": False, "seed": 0, "tied": tied,
              "prefix": "" if family == "bert" else "transformer.", "sharded": False}
    _build(recipe, tmp_path)
    record = json.loads((tmp_path / "config.json").read_text()) | {key: value}
    (tmp_path / "config.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match=re.escape(message)):
        import_hf(tmp_path)


def test_the_parameter_limit_can_be_raised(tmp_path, monkeypatch):
    recipe = {"family": "gpt2", "dtype": "F32", "mixed": False, "seed": 0, "tied": True, "prefix": "", "sharded": False}
    _build(recipe, tmp_path)
    with pytest.raises(CheckpointError, match="describes about 1.23e\\+03 parameters, over the limit of 1e\\+03"):
        import_hf(tmp_path, max_params=1000)
    monkeypatch.setattr("reference.hf.MAX_PARAMS", 1000)
    with pytest.raises(CheckpointError, match="over the limit of 1e\\+03"):
        import_hf(tmp_path)
    assert import_hf(tmp_path, max_params=2000)[1].d_model == 8


@settings(max_examples=EXAMPLES)
@given(family=st.sampled_from(["gpt2", "bert"]), d=st.integers(1, 6), heads=st.integers(1, 3), layers=st.integers(0, 3),
       vocab=st.integers(1, 9), context=st.integers(1, 9), mlp=st.one_of(st.none(), st.integers(1, 9)),
       tied=st.booleans(), types=st.integers(0, 3))
def test_the_size_estimate_is_the_exact_parameter_count(family, d, heads, layers, vocab, context, mlp, tied, types):
    """The estimate the size limit is checked against counts exactly what param_shapes will hold."""
    from reference.hf import _bert_model_config, _estimate_params, _gpt2_model_config, _hf_settings

    d *= heads
    if family == "gpt2":
        record = {"n_embd": d, "n_head": heads, "n_layer": layers, "vocab_size": vocab, "n_positions": context,
                  "n_inner": mlp, "tie_word_embeddings": tied}
        config = _gpt2_model_config(record, Path("config.json"), "float32", 10**9)
        settings_ = _hf_settings(record, _GPT2_DEFAULTS, Path("config.json"))
    else:
        record = {"hidden_size": d, "num_attention_heads": heads, "num_hidden_layers": layers, "vocab_size": vocab,
                  "max_position_embeddings": context, "intermediate_size": mlp or 4 * d, "type_vocab_size": types}
        config = _bert_model_config(record, Path("config.json"), "float32", 10**9)
        settings_ = _hf_settings(record, _BERT_DEFAULTS, Path("config.json"))
    assert _estimate_params(family, settings_) == sum(math.prod(shape) for shape in param_shapes(config).values())


# --------------------------------------------------------------------------- tensors and dtypes


def test_every_dtype_imports_to_the_values_it_stores(tmp_path):
    """F32, F16, BF16 and F64 files import, converted exactly, and report their source dtype."""
    for family in ("gpt2", "bert"):
        results = {}
        for code in DTYPES:
            recipe = {"family": family, "dtype": code, "mixed": False, "seed": 0, "tied": True,
                      "prefix": "transformer." if family == "gpt2" else "bert.", "sharded": False}
            directory = tmp_path / f"{family}-{code}"
            directory.mkdir()
            _build(recipe, directory)
            params, config, info = import_hf(directory, "float64")
            assert info["source_dtype"] == {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}[code]
            results[code] = params
        tok = "embed.tok"
        f32 = results["F32"][tok]
        assert np.array_equal(results["F64"][tok], f32)  # stored from float32: exact
        assert np.array_equal(results["F16"][tok], f32.astype(np.float32).astype(np.float16).astype(np.float64))
        bf16 = (f32.astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32).astype(np.float64)
        assert np.array_equal(results["BF16"][tok], bf16)


@st.composite
def tensor_edits(draw) -> tuple[str, Any]:
    return draw(st.sampled_from([
        ("drop", draw(st.integers(0, 10**6))),
        ("reshape", draw(st.integers(0, 10**6))),
        ("retype", (draw(st.integers(0, 10**6)), draw(st.sampled_from(["I32", "I64", "U8", "BOOL", "I16"])))),
        ("redtype", (draw(st.integers(0, 10**6)), draw(st.sampled_from(DTYPES)))),
        ("extra", draw(st.text(min_size=1, max_size=20))),
        ("rename", (draw(st.integers(0, 10**6)), draw(st.text(min_size=1, max_size=8)))),
        ("legacy twin", draw(st.integers(0, 10**6))),
    ]))


def _read_all(directory: Path) -> dict[str, tuple[str, np.ndarray]]:
    """Every tensor of the directory's single file as (dtype code, float32 or raw values), for rewriting."""
    from reference.io import read_safetensors

    codes: dict[str, str] = {}
    arrays = read_safetensors(directory / "model.safetensors", error=CheckpointError, source_dtypes=codes)
    return {name: (codes[name], value) for name, value in arrays.items()}


@settings(max_examples=EXAMPLES)
@given(recipe=directories(), edit=tensor_edits())
def test_missing_extra_misshaped_and_retyped_tensors(recipe, edit):
    kind, arg = edit
    recipe = recipe | {"sharded": False}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _build(recipe, directory)
        baseline, error, _ = _import(directory)
        assert error is None, error
        required = set(baseline[2]["ignored"]) ^ set(_read_all(directory))  # every tensor the import used
        tensors = _read_all(directory)
        names = sorted(tensors)
        pick = names[(arg[0] if isinstance(arg, tuple) else arg) % len(names)] if kind != "extra" else None
        must_fail = pick in required
        if kind == "drop":
            del tensors[pick]
        elif kind == "reshape":
            code, value = tensors[pick]
            tensors[pick] = (code, value.reshape(-1) if value.ndim > 1 else value.reshape(1, -1, 1))
        elif kind == "retype":
            value = tensors[pick][1]
            raw = {"I32": "<i4", "I64": "<i8", "U8": "u1", "BOOL": "u1", "I16": "<i2"}[arg[1]]
            stored = (value != 0) if arg[1] == "BOOL" else value.astype(np.float64).round().astype(raw)
            tensors[pick] = (arg[1], stored)
        elif kind == "redtype":
            tensors[pick] = (arg[1], tensors[pick][1])
            must_fail = False  # still a float dtype: accepted, with the values that dtype stores
        elif kind == "extra":
            must_fail = arg in tensors  # an extra tensor is ignored unless it replaces one
            tensors[arg] = ("F32", np.zeros((2, 3), np.float32))
        elif kind == "rename":
            tensors[pick + arg[1]] = tensors.pop(pick)
        else:  # a LayerNorm weight also present under its legacy name: which one is meant?
            layer_norms = [n for n in names if n.endswith(".LayerNorm.weight")]
            if not layer_norms:
                return
            pick = layer_norms[arg % len(layer_norms)]
            tensors[pick.replace(".weight", ".gamma")] = tensors[pick]
            must_fail = True
        _write_raw(directory / "model.safetensors", tensors)
        result, error, _ = _import(directory, kind)
        if error is None:
            assert not must_fail, f"{kind} {pick!r} was accepted"
            # "redtype" changes the stored precision on purpose: config and shapes must still hold, values may round.
            _assert_faithful(result, json.loads((directory / "config.json").read_text()), baseline, kind != "redtype")
            if kind == "extra":
                assert arg in result[2]["ignored"]


def _write_raw(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """Like _write_safetensors, but integer / bool arrays are written as they are."""
    header: dict[str, Any] = {}
    chunks, offset = [], 0
    for name, (code, value) in tensors.items():
        if code in DTYPES:
            data, _ = _encode(value, code)
        else:
            data = np.ascontiguousarray(value).astype({"BOOL": "u1"}.get(code, value.dtype)).tobytes()
        header[name] = {"dtype": code, "shape": list(np.shape(value)), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


# --------------------------------------------------------------------------- bytes of the weight files and the index


@settings(max_examples=EXAMPLES)
@given(recipe=directories(), where=st.integers(0, 10**9), mask=st.integers(1, 255),
       kind=st.sampled_from(["flip", "truncate", "append"]))
def test_byte_flips_truncation_and_appended_bytes_in_weight_files(recipe, where, mask, kind):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _build(recipe, directory)
        baseline, error, _ = _import(directory)
        assert error is None, error
        files = _weight_files(directory)
        path = files[where % len(files)]
        data = bytearray(path.read_bytes())
        (header_len,) = struct.unpack("<Q", data[:8])
        position = where % len(data)
        if kind == "flip":
            data[position] ^= mask
        elif kind == "truncate":
            del data[position:]
        else:
            data += bytes([mask]) * (1 + where % 9)
        path.write_bytes(bytes(data))
        result, error, _ = _import(directory, kind)
        if error is None:
            assert kind == "flip", f"{kind} at {position} was accepted"
            assert all(np.isfinite(value).all() for value in result[0].values()), "a NaN or infinite weight was accepted"
            if position < 8 + header_len:  # a flip in the header (say, in its padding) may not change any tensor
                _assert_faithful(result, json.loads((directory / "config.json").read_text()), baseline)


@pytest.mark.parametrize("code, bad", [("F32", np.nan), ("F16", np.inf), ("BF16", -np.inf), ("F64", 1e300)])
def test_nan_infinite_and_out_of_range_weights_are_refused(tmp_path, code, bad):
    """A flipped exponent bit can make a weight NaN or infinite (or, in F64, too large for float32): refused."""
    recipe = {"family": "gpt2", "dtype": code, "mixed": False, "seed": 0, "tied": True, "prefix": "", "sharded": False}
    _build(recipe, tmp_path)
    tensors = _read_all(tmp_path)
    name = "transformer.h.1.mlp.c_fc.weight"
    value = tensors[name][1].astype(np.float64)
    value[3, 5] = bad
    tensors[name] = (code, value)
    _write_raw(tmp_path / "model.safetensors", tensors)
    with pytest.raises(CheckpointError, match=r"parameter 'blocks.1.mlp.w_in' holds NaN or infinite values in float32"):
        import_hf(tmp_path)
    if code == "F64":
        assert import_hf(tmp_path, "float64")[0]["blocks.1.mlp.w_in"][3, 5] == 1e300  # representable in float64: kept


INDEX_EDITS = [
    "../model-00001-of-00002.safetensors", "/etc/passwd.safetensors", "sub/x.safetensors", ".safetensors", "..",
    "model.bin", 5, None, ["x.safetensors"], {"a": 1}, True, "model-00001-of-00002.safetensors\0",
]


@settings(max_examples=EXAMPLES)
@given(recipe=directories(), index=st.integers(0, 10**6), edit=st.one_of(
    st.sampled_from(INDEX_EDITS), st.sampled_from(["<swap>", "<drop>", "<extra>", "<not a map>"])))
def test_sharded_index_mutations(recipe, index, edit):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        _build(recipe | {"sharded": True}, directory)
        baseline, error, _ = _import(directory)
        assert error is None, error
        path = directory / HF_INDEX
        record = json.loads(path.read_text())
        weight_map = record["weight_map"]
        name = sorted(weight_map)[index % len(weight_map)]
        if edit == "<swap>":  # assigned to the other shard: the index no longer describes the files
            weight_map[name] = next(s for s in sorted(set(weight_map.values())) if s != weight_map[name])
        elif edit == "<drop>":
            del weight_map[name]
        elif edit == "<extra>":
            weight_map["not.a.tensor"] = weight_map[name]
        elif edit == "<not a map>":
            record["weight_map"] = list(weight_map.items())
        else:
            weight_map[name] = edit
        path.write_text(json.dumps(record))
        result, error, _ = _import(directory, "index edit")
        assert error is not None, f"index edit {edit!r} on {name!r} was accepted"


def test_a_weight_file_far_larger_than_the_config_implies_is_refused_unread(tmp_path):
    """A tiny config.json cannot make clearform read gigabytes: the file size is capped by the model's size."""
    recipe = {"family": "gpt2", "dtype": "F32", "mixed": False, "seed": 0, "tied": True, "prefix": "", "sharded": False}
    _build(recipe, tmp_path)
    with open(tmp_path / "model.safetensors", "r+b") as handle:  # sparse: costs no disk
        handle.truncate(3 * 2**30)
    start = time.monotonic()
    with pytest.raises(CheckpointError, match=f"is {3 * 2**30} bytes, over the limit of {16 * 1232 + 2**30}"):
        import_hf(tmp_path)
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize("target", ["../outside.safetensors", "ABSOLUTE", "sub/inner.safetensors"])
def test_an_index_naming_a_real_file_outside_the_directory_is_refused(tmp_path, target):
    """The shard named by the index exists and holds the right tensors, but lies outside the directory: refused."""
    directory = tmp_path / "model"
    directory.mkdir()
    recipe = {"family": "gpt2", "dtype": "F32", "mixed": False, "seed": 0, "tied": True, "prefix": "", "sharded": True}
    _build(recipe, directory)
    record = json.loads((directory / HF_INDEX).read_text())
    first = "model-00001-of-00002.safetensors"
    outside = {"../outside.safetensors": tmp_path / "outside.safetensors", "ABSOLUTE": tmp_path / "abs.safetensors",
               "sub/inner.safetensors": directory / "sub" / "inner.safetensors"}[target]
    outside.parent.mkdir(exist_ok=True)
    (directory / first).rename(outside)
    name = str(outside) if target == "ABSOLUTE" else target
    record["weight_map"] = {k: (name if v == first else v) for k, v in record["weight_map"].items()}
    (directory / HF_INDEX).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="is not a .safetensors file name in this directory"):
        import_hf(directory)


# --------------------------------------------------------------------------- once through the CLI


def _bad_directories(tmp_path: Path) -> dict[str, Path]:
    recipe = {"family": "gpt2", "dtype": "BF16", "mixed": False, "seed": 0, "tied": True, "prefix": "", "sharded": False}
    made = {}
    for kind in ("deep config", "fifo weights", "huge n_layer", "good"):
        directory = tmp_path / kind.replace(" ", "_")
        directory.mkdir()
        _build(recipe, directory)
        if kind == "deep config":
            (directory / "config.json").write_text('{"model_type": "gpt2", "x": ' + "[" * 10_000 + "]" * 10_000 + "}")
        elif kind == "fifo weights":
            (directory / "model.safetensors").unlink()
            os.mkfifo(directory / "model.safetensors")
        elif kind == "huge n_layer":
            record = json.loads((directory / "config.json").read_text()) | {"n_layer": 10**7, "layer_norm_epsilon": 1e-5}
            (directory / "config.json").write_text(json.dumps(record))
        made[kind] = directory
    return made


def test_cli_crosscheck_table_exits_2_with_one_line_on_bad_directories(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for kind, directory in _bad_directories(tmp_path).items():
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "reference.cli", "crosscheck", "--hf", str(directory), "--table"],
            capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
        )
        assert time.monotonic() - start < 30
        if kind == "good":  # a BF16 GPT-2 imports: the table is printed
            assert done.returncode == 0 and "hidden_states[2]" in done.stdout, done.stderr
            continue
        assert done.returncode == 2, (kind, done.returncode, done.stderr[-500:])
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, (kind, done.stderr[-500:])
        assert lines[0].startswith("clearform: error: ") and str(directory) in lines[0], lines[0]


# --------------------------------------------------------------------------- real files written by transformers


@pytest.mark.crosscheck
@pytest.mark.parametrize("torch_dtype", ["bfloat16", "float16"])
def test_transformers_sharded_half_precision_checkpoints_import_exactly(tmp_path, torch_dtype):
    """What ``save_pretrained`` writes in BF16 / F16, sharded with an index, imports to the very same values."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=11, n_positions=8, n_embd=8, n_layer=2, n_head=2, n_inner=12)
    model = transformers.GPT2LMHeadModel(config).to(getattr(torch, torch_dtype)).eval()
    model.save_pretrained(tmp_path, max_shard_size="2KB", safe_serialization=True)
    assert (tmp_path / HF_INDEX).exists() and len(_weight_files(tmp_path)) > 1
    params, ours, info = import_hf(tmp_path, "float64")
    assert info["source_dtype"] == torch_dtype and ours.n_layers == 2 and ours.d_mlp == 12
    wte = model.transformer.wte.weight.detach().to(torch.float64).numpy()
    assert np.array_equal(params["embed.tok"], wte)
    c_fc = model.transformer.h[1].mlp.c_fc.weight.detach().to(torch.float64).numpy()
    assert np.array_equal(params["blocks.1.mlp.w_in"], c_fc)
