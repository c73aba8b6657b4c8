"""Hugging Face checkpoint directories: import GPT-2 / BERT into clearform, export a decoder as GPT-2.

:func:`import_hf` reads a local directory (``config.json`` + ``model.safetensors``,
optionally sharded) of the GPT-2 or BERT family into clearform's flat parameter dict;
:func:`export_gpt2` writes a clearform decoder as a directory that transformers loads.
Only JSON and safetensors are read: nothing in a checkpoint is ever executed. Every
file goes through :mod:`reference.io` (regular files only, bounded JSON, safetensors
headers validated before a tensor is read); config.json is checked against the size
limits :data:`MAX_PARAMS` and :data:`MAX_LAYERS` before the weights are opened. Every
failure is a one-line :class:`~reference.checkpoint.CheckpointError` naming the file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save as st_save

from reference.backend import resolve_dtype, to_host
from reference.checkpoint import CheckpointError, _json_bytes, _write_atomic, check_params
from reference.config import ConfigError, ModelConfig, RunConfig, check_choice
from reference.io import display_path, read_json, read_safetensors, short
from reference.model import param_shapes

# --------------------------------------------------------------------------- Hugging Face checkpoints
#
# A Hugging Face model directory is ``config.json`` (the architecture) and
# ``model.safetensors`` (the tensors, optionally sharded with
# ``model.safetensors.index.json``). Two families are understood:
#
# * GPT-2 (``model_type: "gpt2"``): learned positions, pre-LN, tanh GELU,
#   tied head. Its projections are ``Conv1D``, stored (in, out) like ours, and
#   q, k, v are one fused ``c_attn`` of shape (D, 3D) split along the output axis.
# * BERT (``model_type: "bert"``): post-LN, token-type embeddings, a LayerNorm
#   on the embedding sum, bidirectional attention, erf GELU. Its projections
#   are ``nn.Linear``, stored (out, in): the transpose of ours.
#
# Tensor names are accepted with or without the prefix of a task model
# (``transformer.`` for GPT2LMHeadModel, ``bert.`` for BertForMaskedLM ...).
# Only safetensors is read; a directory holding only a pickle
# (``pytorch_model.bin``) is refused, since unpickling can execute code.

HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
HF_INDEX = "model.safetensors.index.json"
HF_FAMILIES = {"gpt2": "gpt2", "bert": "bert"}  # model_type -> family

# [author-code] Class defaults of transformers' GPT2Config and BertConfig.
# ``save_pretrained`` leaves out values equal to these, so a config.json
# may not mention them.
_GPT2_DEFAULTS = {
    "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": None,
    "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False, "add_cross_attention": False, "tie_word_embeddings": True,
}
_BERT_DEFAULTS = {
    "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "max_position_embeddings": 512, "type_vocab_size": 2,
    "layer_norm_eps": 1e-12, "position_embedding_type": "absolute", "is_decoder": False, "add_cross_attention": False,
}
# [author-code] transformers' ACT2FN names of the two GELUs clearform has. ("gelu_fast"
# uses a rounded √(2/π) and is left out: it differs from "tanh" at the 1e-11 level.)
_HF_GELU = {"gelu": "erf", "gelu_python": "erf", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_python_tanh": "tanh"}
_GELU_TO_HF = {"tanh": "gelu_new", "erf": "gelu"}
# safetensors dtype -> the name ``info["source_dtype"]`` reports.
_NUMPY_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}
# Pickle and other formats that are never read, named in the error message.
_UNSAFE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")


def _hf_read_config(directory: Path) -> dict:
    """``config.json`` as a dict, read under :func:`reference.io.read_json`'s bounds.

    Checked here: the record is an object, not a clearform config, its
    ``model_type`` is a supported string and ``architectures`` (informational,
    echoed in messages and ``info``) is absent or a list of strings.
    """
    path = directory / HF_CONFIG
    record = read_json(path, error=CheckpointError)
    shown = display_path(path)
    if not isinstance(record, dict):
        raise CheckpointError(f"{shown}: expected a JSON object, got {type(record).__name__}")
    if record.get("format") == "clearform":
        raise CheckpointError(f"{shown}: a clearform checkpoint, not a Hugging Face one (use load_weights)")
    architectures = record.get("architectures")
    if architectures is not None and not (isinstance(architectures, list) and all(isinstance(a, str) for a in architectures)):
        raise CheckpointError(f"{shown}: architectures = {short(architectures, 60)} is not a list of strings")
    model_type = record.get("model_type")
    if not isinstance(model_type, str) or model_type not in HF_FAMILIES:
        named = f" (architectures {short(architectures, 60)})" if architectures else ""
        raise CheckpointError(
            f"{shown}: model_type {short(model_type, 60)}{named} is not supported (supported: {', '.join(HF_FAMILIES)})"
        )
    return record


def _read_hf_file(path: Path, source_dtypes: dict[str, str], max_bytes: int) -> dict[str, np.ndarray]:
    """One safetensors file, header validated before any tensor is read (see :func:`reference.io.read_safetensors`).

    BF16 arrives as float32 (exact) and F16 as float16; both are cast to the
    requested dtype by :func:`import_hf`. ``source_dtypes`` collects each tensor's dtype in the file;
    ``max_bytes`` caps the file's size (see :func:`_weights_byte_limit`).
    """
    return read_safetensors(path, error=CheckpointError, source_dtypes=source_dtypes, max_bytes=max_bytes)


def _weights_byte_limit(config: ModelConfig) -> int:
    """The most bytes one weight file of this model may have: 16 per parameter (float64, twice over) + 1 GiB.

    Generous for every real layout (float64 weights, untied heads, BERT's pooler and
    MLM head, GPT-2's attention-mask buffers), yet a small config.json can no longer
    make clearform read a multi-gigabyte (say, sparse) file into memory.
    """
    return 16 * sum(math.prod(shape) for shape in param_shapes(config).values()) + 2**30


def _is_shard_name(shard: Any) -> bool:
    """A shard is a bare ``*.safetensors`` file name inside the directory: no separator, no ``..``, no absolute path."""
    return (
        isinstance(shard, str) and shard == Path(shard).name and "\\" not in shard and "\0" not in shard
        and shard.endswith(".safetensors") and shard != ".safetensors"
    )


def _hf_read_tensors(directory: Path, source_dtypes: dict[str, str], max_bytes: int) -> dict[str, np.ndarray]:
    """Every tensor of the directory: ``model.safetensors``, or the shards its index names.

    The index is checked entry by entry before any shard is opened: ``weight_map``
    is an object whose values are bare ``.safetensors`` file names (path traversal
    and absolute paths refused). Each shard must hold exactly the tensors the
    index assigns to it, and no tensor may appear in two shards (one would
    silently replace the other).
    """
    if os.path.lexists(directory / HF_WEIGHTS):
        return _read_hf_file(directory / HF_WEIGHTS, source_dtypes, max_bytes)
    index_path = directory / HF_INDEX
    if os.path.lexists(index_path):
        shown = display_path(index_path)
        index = read_json(index_path, error=CheckpointError)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{shown}: no 'weight_map' object")
        assigned: dict[str, set[str]] = {}
        for name, shard in weight_map.items():
            if not _is_shard_name(shard):
                raise CheckpointError(
                    f"{shown}: weight_map[{short(name, 60)}] = {short(shard, 60)} is not a .safetensors file name in this directory"
                )
            assigned.setdefault(shard, set()).add(name)
        tensors: dict[str, np.ndarray] = {}
        for shard in sorted(assigned):
            part = _read_hf_file(directory / shard, source_dtypes, max_bytes)
            where = display_path(directory / shard)
            for name in part:
                if name in tensors:
                    raise CheckpointError(f"{where}: tensor {short(name, 60)} is also in another shard")
                if name not in assigned[shard]:
                    raise CheckpointError(f"{where}: tensor {short(name, 60)} is not assigned to this file by {HF_INDEX}")
            absent = sorted(assigned[shard] - set(part))
            if absent:
                raise CheckpointError(f"{where}: has no tensor {short(absent[0], 60)}, which {HF_INDEX} assigns to it")
            tensors.update(part)
        return tensors
    unsafe = [name for name in _UNSAFE_WEIGHTS if os.path.lexists(directory / name)]
    if unsafe:
        raise CheckpointError(
            f"{display_path(directory)}: holds {unsafe[0]} but no {HF_WEIGHTS}; clearform reads safetensors only (pickle files can "
            "execute code). Convert it once with transformers: model.save_pretrained(DIR, safe_serialization=True)"
        )
    raise CheckpointError(f"{display_path(directory / HF_WEIGHTS)}: file is missing")


def _hf_settings(record: dict, defaults: dict, path: Path) -> dict:
    """config.json values over the class defaults, type- and range-checked.

    Ints are non-negative ints (never bools or floats, which would change
    meaning silently), floats finite and > 0 (``layer_norm_epsilon`` 1e400,
    NaN or −1 are refused; the JSON reader already refuses the literals),
    bools are bools and strings strings.
    """
    values = {key: record.get(key, default) for key, default in defaults.items()}
    for key, value in values.items():
        default = defaults[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int) or key == "n_inner":
            ok = (value is None and key == "n_inner") or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        else:
            ok = isinstance(value, str)
        if not ok:
            raise CheckpointError(f"{display_path(path)}: {key} = {short(value, 60)} is not a valid value")
    return values


# Limits checked on config.json before anything is allocated. A caller may raise them
# (``reference.hf.MAX_PARAMS = 10**10``) or pass ``max_params`` to :func:`import_hf`.
MAX_PARAMS = 2 * 10**9  # GPT-2 XL has 1.5e9; a NumPy reference past this is not what anyone wants by accident
MAX_LAYERS = 1024  # tensors are listed per layer; the deepest GPT-2 / BERT has 48


def _scientific(count: int) -> str:
    """A non-negative int as 1.23e+45, even when it is too large for a float."""
    return f"{count:.3g}" if count.bit_length() < 1000 else f"1e+{len(str(count)) - 1}"


def _estimate_params(family: str, s: Mapping[str, Any]) -> int:
    """The parameter count config.json implies (checked settings), computed in Python ints: no overflow, no allocation."""
    if family == "gpt2":
        d, v, t, layers = s["n_embd"], s["vocab_size"], s["n_positions"], s["n_layer"]
        f = 4 * d if s["n_inner"] is None else s["n_inner"]
        per_layer = 4 * d * d + 2 * d * f + 4 * d + f + d + 4 * d  # q k v o, MLP, their biases, two LayerNorms
        return v * d + t * d + layers * per_layer + 2 * d + (0 if s["tie_word_embeddings"] else v * d)
    d, v, t, layers = s["hidden_size"], s["vocab_size"], s["max_position_embeddings"], s["num_hidden_layers"]
    f = s["intermediate_size"]
    per_layer = 4 * d * d + 2 * d * f + 4 * d + f + d + 4 * d
    return (v + t + s["type_vocab_size"]) * d + 2 * d + layers * per_layer


def _check_size(path: Path, family: str, s: Mapping[str, Any], max_params: int) -> None:
    """Refuse a config.json whose model is over the limits, before any shape list or array is built.

    Without this, ``n_layer`` = 10⁷ grows a shape dict for seconds until
    MemoryError and ``n_embd`` = 2⁶³ overflows NumPy; the message gives the estimate.
    """
    layers_key = "n_layer" if family == "gpt2" else "num_hidden_layers"
    if s[layers_key] > MAX_LAYERS:
        raise CheckpointError(
            f"{display_path(path)}: {layers_key} = {short(s[layers_key], 50)} is over the limit of {MAX_LAYERS} "
            "(raise reference.hf.MAX_LAYERS to import it)"
        )
    count = _estimate_params(family, s)
    if count > max_params:
        raise CheckpointError(
            f"{display_path(path)}: describes about {_scientific(count)} parameters, over the limit of "
            f"{_scientific(max_params)} (pass max_params or raise reference.hf.MAX_PARAMS to import it)"
        )


def _model_config(path: Path, **fields: Any) -> ModelConfig:
    try:
        return ModelConfig(**fields)
    except ConfigError as exc:
        raise CheckpointError(f"{display_path(path)}: does not describe a valid clearform model ({exc})") from None


def _gelu_form(path: Path, key: str, name: str) -> str:
    if name not in _HF_GELU:
        raise CheckpointError(f"{display_path(path)}: {key} {short(name, 60)} is not supported (supported: {', '.join(_HF_GELU)})")
    return _HF_GELU[name]


def _refuse(path: Path, what: str, value: Any, condition: bool) -> None:
    if condition:
        raise CheckpointError(f"{display_path(path)}: {what} = {short(value, 60)} is not supported by clearform")


def _gpt2_model_config(record: dict, path: Path, dtype: str, max_params: int) -> ModelConfig:
    s = _hf_settings(record, _GPT2_DEFAULTS, path)
    _check_size(path, "gpt2", s, max_params)
    _refuse(path, "scale_attn_weights", s["scale_attn_weights"], not s["scale_attn_weights"])
    _refuse(path, "scale_attn_by_inverse_layer_idx", True, s["scale_attn_by_inverse_layer_idx"])
    _refuse(path, "add_cross_attention", True, s["add_cross_attention"])
    return _model_config(
        path, vocab_size=s["vocab_size"], context=s["n_positions"], d_model=s["n_embd"], n_layers=s["n_layer"],
        n_heads=s["n_head"], d_mlp=s["n_inner"], norm="pre", bias=True, tied_head=s["tie_word_embeddings"],
        causal=True, gelu=_gelu_form(path, "activation_function", s["activation_function"]),
        ln_eps=float(s["layer_norm_epsilon"]), embed_norm=False, final_norm=True, n_token_types=0, dtype=dtype,
    )


def _bert_model_config(record: dict, path: Path, dtype: str, max_params: int) -> ModelConfig:
    s = _hf_settings(record, _BERT_DEFAULTS, path)
    _check_size(path, "bert", s, max_params)
    kind = s["position_embedding_type"]
    _refuse(path, "position_embedding_type", kind, kind != "absolute")
    _refuse(path, "is_decoder", True, s["is_decoder"])
    _refuse(path, "add_cross_attention", True, s["add_cross_attention"])
    return _model_config(
        path, vocab_size=s["vocab_size"], context=s["max_position_embeddings"], d_model=s["hidden_size"],
        n_layers=s["num_hidden_layers"], n_heads=s["num_attention_heads"], d_mlp=s["intermediate_size"],
        norm="post", bias=True, tied_head=True, causal=False, gelu=_gelu_form(path, "hidden_act", s["hidden_act"]),
        ln_eps=float(s["layer_norm_eps"]), embed_norm=True, final_norm=False, n_token_types=s["type_vocab_size"],
        dtype=dtype,
    )


# ----- the tensor layouts of the two families (names without the task-model prefix)


def _gpt2_shapes(c: ModelConfig) -> dict[str, tuple[int, ...]]:
    """HF GPT-2 tensor name -> shape. Conv1D weights are (in, out)."""
    d, f = c.d_model, c.mlp_dim
    shapes: dict[str, tuple[int, ...]] = {"wte.weight": (c.vocab_size, d), "wpe.weight": (c.context, d)}
    for i in range(c.n_layers):
        p = f"h.{i}."
        shapes.update({
            p + "ln_1.weight": (d,), p + "ln_1.bias": (d,),
            p + "attn.c_attn.weight": (d, 3 * d), p + "attn.c_attn.bias": (3 * d,),
            p + "attn.c_proj.weight": (d, d), p + "attn.c_proj.bias": (d,),
            p + "ln_2.weight": (d,), p + "ln_2.bias": (d,),
            p + "mlp.c_fc.weight": (d, f), p + "mlp.c_fc.bias": (f,),
            p + "mlp.c_proj.weight": (f, d), p + "mlp.c_proj.bias": (d,),
        })
    shapes.update({"ln_f.weight": (d,), "ln_f.bias": (d,)})
    return shapes


def _gpt2_to_params(w: Mapping[str, np.ndarray], c: ModelConfig, head: np.ndarray | None) -> dict[str, np.ndarray]:
    """HF GPT-2 tensors (checked, unprefixed) -> clearform params; ``head`` is lm_head.weight (V, D) when untied."""
    params = {"embed.tok": w["wte.weight"], "embed.pos": w["wpe.weight"]}
    for i in range(c.n_layers):
        h, p = f"h.{i}.", f"blocks.{i}."
        # c_attn's output axis is [q | k | v], each D wide; heads split each of them the way ours do.
        params[p + "attn.w_q"], params[p + "attn.w_k"], params[p + "attn.w_v"] = np.split(w[h + "attn.c_attn.weight"], 3, axis=1)
        params[p + "attn.b_q"], params[p + "attn.b_k"], params[p + "attn.b_v"] = np.split(w[h + "attn.c_attn.bias"], 3)
        params.update({
            p + "ln1.g": w[h + "ln_1.weight"], p + "ln1.b": w[h + "ln_1.bias"],
            p + "attn.w_o": w[h + "attn.c_proj.weight"], p + "attn.b_o": w[h + "attn.c_proj.bias"],
            p + "ln2.g": w[h + "ln_2.weight"], p + "ln2.b": w[h + "ln_2.bias"],
            p + "mlp.w_in": w[h + "mlp.c_fc.weight"], p + "mlp.b_in": w[h + "mlp.c_fc.bias"],
            p + "mlp.w_out": w[h + "mlp.c_proj.weight"], p + "mlp.b_out": w[h + "mlp.c_proj.bias"],
        })
    params.update({"ln_final.g": w["ln_f.weight"], "ln_final.b": w["ln_f.bias"]})
    if head is not None:
        params["head.w"] = head.T  # nn.Linear (V, D) -> ours (D, V)
    return params


def _bert_shapes(c: ModelConfig) -> dict[str, tuple[int, ...]]:
    """HF BERT tensor name -> shape. nn.Linear weights are (out, in)."""
    d, f = c.d_model, c.mlp_dim
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (c.vocab_size, d),
        "embeddings.position_embeddings.weight": (c.context, d),
    }
    if c.n_token_types:
        shapes["embeddings.token_type_embeddings.weight"] = (c.n_token_types, d)
    shapes.update({"embeddings.LayerNorm.weight": (d,), "embeddings.LayerNorm.bias": (d,)})
    for i in range(c.n_layers):
        p = f"encoder.layer.{i}."
        for proj in ("query", "key", "value"):
            shapes.update({p + f"attention.self.{proj}.weight": (d, d), p + f"attention.self.{proj}.bias": (d,)})
        shapes.update({
            p + "attention.output.dense.weight": (d, d), p + "attention.output.dense.bias": (d,),
            p + "attention.output.LayerNorm.weight": (d,), p + "attention.output.LayerNorm.bias": (d,),
            p + "intermediate.dense.weight": (f, d), p + "intermediate.dense.bias": (f,),
            p + "output.dense.weight": (d, f), p + "output.dense.bias": (d,),
            p + "output.LayerNorm.weight": (d,), p + "output.LayerNorm.bias": (d,),
        })
    return shapes


def _bert_to_params(w: Mapping[str, np.ndarray], c: ModelConfig) -> dict[str, np.ndarray]:
    """HF BERT tensors (checked, unprefixed) -> clearform params; Linear weights are transposed to (in, out)."""
    params = {
        "embed.tok": w["embeddings.word_embeddings.weight"], "embed.pos": w["embeddings.position_embeddings.weight"],
        "embed.ln.g": w["embeddings.LayerNorm.weight"], "embed.ln.b": w["embeddings.LayerNorm.bias"],
    }
    if c.n_token_types:
        params["embed.type"] = w["embeddings.token_type_embeddings.weight"]
    for i in range(c.n_layers):
        h, p = f"encoder.layer.{i}.", f"blocks.{i}."
        for ours, theirs in (("q", "query"), ("k", "key"), ("v", "value")):
            params[p + f"attn.w_{ours}"] = w[h + f"attention.self.{theirs}.weight"].T
            params[p + f"attn.b_{ours}"] = w[h + f"attention.self.{theirs}.bias"]
        params.update({
            p + "attn.w_o": w[h + "attention.output.dense.weight"].T, p + "attn.b_o": w[h + "attention.output.dense.bias"],
            # Post-LN: ln1 follows the attention sum, ln2 the MLP sum (see reference.model.block_forward).
            p + "ln1.g": w[h + "attention.output.LayerNorm.weight"], p + "ln1.b": w[h + "attention.output.LayerNorm.bias"],
            p + "mlp.w_in": w[h + "intermediate.dense.weight"].T, p + "mlp.b_in": w[h + "intermediate.dense.bias"],
            p + "mlp.w_out": w[h + "output.dense.weight"].T, p + "mlp.b_out": w[h + "output.dense.bias"],
            p + "ln2.g": w[h + "output.LayerNorm.weight"], p + "ln2.b": w[h + "output.LayerNorm.bias"],
        })
    return params


# ----- checking and selecting the tensors


def _legacy_layernorm_names(tensors: dict[str, Any], where: Path) -> dict[str, Any]:
    """Old TF-converted BERTs call LayerNorm parameters gamma / beta; use today's weight / bias.

    A file holding both spellings of one parameter is refused: one of them would silently win.
    """
    renamed: dict[str, Any] = {}
    for name, value in tensors.items():
        new = name
        if ".LayerNorm." in name:
            new = name.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(".LayerNorm.beta", ".LayerNorm.bias")
        if new in renamed or (new != name and new in tensors):
            raise CheckpointError(
                f"{display_path(where)}: tensor {short(new, 60)} is present under two names (gamma/beta and weight/bias)"
            )
        renamed[new] = value
    return renamed


def _find_prefix(tensors: Mapping[str, Any], anchor: str, prefixes: tuple[str, ...]) -> str:
    """The task-model prefix ('' or e.g. 'transformer.') under which ``anchor`` exists."""
    for prefix in prefixes:
        if prefix + anchor in tensors:
            return prefix
    return prefixes[0]  # the missing anchor is then reported by _take_checked


def _take_checked(tensors: Mapping[str, np.ndarray], shapes: Mapping[str, tuple], prefix: str, where: Path) -> dict:
    """The tensors named in ``shapes`` (under ``prefix``), after checking that all exist with those shapes."""
    shown = display_path(where)
    missing = [prefix + name for name in shapes if prefix + name not in tensors]
    if missing:
        listed = ", ".join(short(m, 80) for m in missing[:4]) + (", ..." if len(missing) > 4 else "")
        plural = "s" if len(missing) > 1 else ""
        raise CheckpointError(f"{shown}: missing tensor{plural} {listed} ({len(missing)} in all)")
    taken = {}
    for name, shape in shapes.items():
        value = tensors[prefix + name]
        if tuple(value.shape) != tuple(shape):
            raise CheckpointError(
                f"{shown}: tensor {short(prefix + name, 80)} has shape {tuple(value.shape)}, config.json implies {tuple(shape)}"
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise CheckpointError(f"{shown}: tensor {short(prefix + name, 80)} has dtype {value.dtype}, expected a float dtype")
        taken[name] = value
    return taken


_LAYER_INDEX = {"gpt2": re.compile(r"h\.(\d+)\."), "bert": re.compile(r"encoder\.layer\.(\d+)\.")}


def _refuse_dropped_tensors(
    tensors: Mapping[str, np.ndarray], used: set[str], prefix: str, family: str, config: ModelConfig, where: Path
) -> None:
    """Refuse weights that config.json would silently drop: the model would import, but a different one.

    Unused tensors are normally harmless (BERT's pooler and MLM head, GPT-2's mask
    buffers), but not these: a block past ``n_layer`` (config.json edited from 12 to
    6 layers), token-type embeddings when ``type_vocab_size`` is 0, and an
    ``lm_head.weight`` that differs from the embedding when config.json ties them.
    """
    shown = display_path(where)
    for name in sorted(set(tensors) - used):
        if not name.startswith(prefix):
            continue
        layer = _LAYER_INDEX[family].match(name[len(prefix):])
        if layer and int(layer.group(1)) >= config.n_layers:
            raise CheckpointError(
                f"{shown}: tensor {short(name, 80)} belongs to block {layer.group(1)}, "
                f"but config.json has {config.n_layers} layer{'s' if config.n_layers != 1 else ''}"
            )
        if name[len(prefix):] == "embeddings.token_type_embeddings.weight":
            raise CheckpointError(f"{shown}: tensor {short(name, 80)} is present, but config.json has type_vocab_size = 0")
    if family == "gpt2" and config.tied_head and "lm_head.weight" in tensors:
        head, embedding = tensors["lm_head.weight"], tensors[prefix + "wte.weight"]
        if head.shape != embedding.shape or not np.array_equal(head, embedding):
            raise CheckpointError(
                f"{shown}: lm_head.weight differs from {prefix}wte.weight, but config.json ties them (tie_word_embeddings)"
            )


def import_hf(
    directory: str | os.PathLike, dtype: str = "float32", *, max_params: int | None = None
) -> tuple[dict[str, np.ndarray], ModelConfig, dict[str, Any]]:
    """Import a local Hugging Face GPT-2 or BERT checkpoint directory.

    Reads ``config.json`` and ``model.safetensors`` (or its shards); nothing is
    executed. Returns ``(params, config, info)``:

    * params: clearform's flat parameter dict, cast to ``dtype``;
    * config: the :class:`ModelConfig`. GPT-2 -> pre-LN, tanh GELU, causal,
      ``final_norm``, tied head (untied when ``tie_word_embeddings`` is false:
      ``head.w`` = lm_head.weightᵀ). BERT -> ``norm="post", causal=False,
      gelu="erf", embed_norm=True, final_norm=False, n_token_types=2,
      ln_eps=1e-12`` (from its config), ``tied_head=True``: the head is unused
      for an encoder, its hidden states are what ``run_with_cache`` gives;
    * info: ``family`` ("gpt2" | "bert"), ``model_type``, ``architectures``,
      ``prefix`` (the task-model prefix found, e.g. "transformer."),
      ``source_dtype`` and ``ignored`` (names of tensors not used: BERT's pooler
      and MLM head ``cls.*``, GPT-2's attention-mask buffers, a tied lm_head,
      and anything unknown).

    Every file is read through :mod:`reference.io` (regular files only, bounded
    JSON, safetensors headers validated before any tensor is read). config.json
    is checked before the weights are opened: types and ranges of every setting,
    and the implied parameter count against ``max_params`` (default
    :data:`MAX_PARAMS`, 2·10⁹) and ``n_layer`` against :data:`MAX_LAYERS`, so a
    hostile size fails in milliseconds with the estimate in the message.
    BF16 and F16 tensors are accepted and converted to ``dtype``.

    Weights that the config would silently drop are refused (blocks past
    ``n_layer``, token-type embeddings with ``type_vocab_size`` 0, an untied
    ``lm_head`` under ``tie_word_embeddings``), and so are NaN or infinite weights.

    Raises CheckpointError (one line) naming the file and the problem: unsupported
    model_type or option, a value of the wrong type or out of range, a model
    over the size limits, missing tensors (all named), a wrong shape or a
    non-float dtype, a bad index (shard names outside the directory, a tensor in
    two shards), a file that is not safetensors, or a pickle-only directory.
    """
    check_choice("import_hf", "dtype", dtype, ("float32", "float64"))
    max_params = MAX_PARAMS if max_params is None else max_params
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{display_path(directory)}: not a directory")
    record = _hf_read_config(directory)
    family = HF_FAMILIES[record["model_type"]]
    where = directory / HF_WEIGHTS
    # config.json first: a hostile size is refused before a byte of the weights is read.
    if family == "gpt2":
        config = _gpt2_model_config(record, directory / HF_CONFIG, dtype, max_params)
    else:
        config = _bert_model_config(record, directory / HF_CONFIG, dtype, max_params)
    file_dtypes: dict[str, str] = {}
    tensors = _legacy_layernorm_names(_hf_read_tensors(directory, file_dtypes, _weights_byte_limit(config)), where)
    file_dtypes = _legacy_layernorm_names(file_dtypes, where)
    if family == "gpt2":
        prefix = _find_prefix(tensors, "wte.weight", ("", "transformer."))
        weights = _take_checked(tensors, _gpt2_shapes(config), prefix, where)
        head_name = "lm_head.weight"
        head = None
        if not config.tied_head:
            head = _take_checked(tensors, {head_name: (config.vocab_size, config.d_model)}, "", where)[head_name]
        params = _gpt2_to_params(weights, config, head)
        used = {prefix + name for name in weights} | ({head_name} if head is not None else set())
    else:
        prefix = _find_prefix(tensors, "embeddings.word_embeddings.weight", ("", "bert."))
        weights = _take_checked(tensors, _bert_shapes(config), prefix, where)
        params = _bert_to_params(weights, config)
        used = {prefix + name for name in weights}
    _refuse_dropped_tensors(tensors, used, prefix, family, config, where)
    target = resolve_dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # an F64 value past float32's range becomes inf: refused below
        params = {name: np.ascontiguousarray(value, dtype=target) for name, value in params.items()}
    for name, value in params.items():
        # No trained weight is NaN or infinite; such a tensor is damage (a flipped exponent bit), not a model.
        if not np.isfinite(value).all():
            raise CheckpointError(f"{display_path(where)}: parameter {name!r} holds NaN or infinite values in {dtype}")
    source_dtypes = sorted({_NUMPY_NAMES.get(file_dtypes[name], file_dtypes[name]) for name in used})
    info = {
        "family": family, "model_type": record["model_type"], "architectures": list(record.get("architectures") or []),
        "prefix": prefix, "source_dtype": ",".join(source_dtypes), "ignored": sorted(set(tensors) - used),
    }
    return params, config, info


# ----- export


def _exportable(config: ModelConfig) -> None:
    """Raise CheckpointError unless ``config`` is a GPT-2 that transformers' GPT2 classes can express."""
    required = {
        "norm": "pre", "causal": True, "bias": True, "embed_norm": False, "final_norm": True, "n_token_types": 0,
    }
    for name, value in required.items():
        if getattr(config, name) != value:
            raise CheckpointError(f"export_gpt2: model.{name} is {getattr(config, name)!r}; GPT-2 needs {value!r}")
    if config.n_heads * config.head_dim != config.d_model:
        raise CheckpointError(
            f"export_gpt2: model.d_head {config.head_dim} × n_heads {config.n_heads} != d_model {config.d_model}; "
            "GPT-2 splits d_model evenly into heads"
        )


def gpt2_hf_config(config: ModelConfig) -> dict[str, Any]:
    """The transformers ``config.json`` record of a clearform GPT-2-style decoder."""
    return {
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
        "vocab_size": config.vocab_size, "n_positions": config.context, "n_embd": config.d_model,
        "n_layer": config.n_layers, "n_head": config.n_heads, "n_inner": config.mlp_dim,
        "activation_function": _GELU_TO_HF[config.gelu], "layer_norm_epsilon": config.ln_eps,
        "tie_word_embeddings": config.tied_head,
        # [reconstructed] GPT2Config defaults these to 50256, an id our vocabularies do not have.
        "bos_token_id": None, "eos_token_id": None,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
    }


def gpt2_hf_tensors(params: Mapping[str, Any], config: ModelConfig) -> dict[str, np.ndarray]:
    """clearform params -> HF GPT2LMHeadModel tensor names (``transformer.`` prefix; ``lm_head`` only when untied)."""
    p = {name: to_host(value) for name, value in params.items()}
    out = {"wte.weight": p["embed.tok"], "wpe.weight": p["embed.pos"]}
    for i in range(config.n_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        out.update({
            h + "ln_1.weight": p[b + "ln1.g"], h + "ln_1.bias": p[b + "ln1.b"],
            h + "attn.c_attn.weight": np.concatenate([p[b + "attn.w_q"], p[b + "attn.w_k"], p[b + "attn.w_v"]], axis=1),
            h + "attn.c_attn.bias": np.concatenate([p[b + "attn.b_q"], p[b + "attn.b_k"], p[b + "attn.b_v"]]),
            h + "attn.c_proj.weight": p[b + "attn.w_o"], h + "attn.c_proj.bias": p[b + "attn.b_o"],
            h + "ln_2.weight": p[b + "ln2.g"], h + "ln_2.bias": p[b + "ln2.b"],
            h + "mlp.c_fc.weight": p[b + "mlp.w_in"], h + "mlp.c_fc.bias": p[b + "mlp.b_in"],
            h + "mlp.c_proj.weight": p[b + "mlp.w_out"], h + "mlp.c_proj.bias": p[b + "mlp.b_out"],
        })
    out.update({"ln_f.weight": p["ln_final.g"], "ln_f.bias": p["ln_final.b"]})
    tensors = {"transformer." + name: value for name, value in out.items()}
    if not config.tied_head:
        tensors["lm_head.weight"] = p["head.w"].T
    return tensors


def export_gpt2(
    params: Mapping[str, Any], config: ModelConfig, directory: str | os.PathLike, dtype: str = "float32"
) -> Path:
    """Write a clearform decoder as a Hugging Face GPT-2 directory that ``GPT2LMHeadModel.from_pretrained`` loads.

    Writes ``config.json`` and ``model.safetensors`` (tensors in ``dtype``,
    metadata ``format: pt`` as transformers expects) atomically into
    ``directory``; returns it. The model must be GPT-2-shaped (pre-LN, causal,
    biases, learned positions, final LayerNorm, no token types, d_model split
    evenly into heads), else CheckpointError names the field.
    """
    check_choice("export_gpt2", "dtype", dtype, ("float32", "float64"))
    _exportable(config)
    check_params(params, RunConfig(model=config.replace(dtype=str(to_host(params["embed.tok"]).dtype))), "export_gpt2")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = resolve_dtype(dtype)
    tensors = {name: np.ascontiguousarray(value, dtype=target) for name, value in gpt2_hf_tensors(params, config).items()}
    _write_atomic(directory / HF_WEIGHTS, st_save(tensors, metadata={"format": "pt"}))
    _write_atomic(directory / HF_CONFIG, _json_bytes(gpt2_hf_config(config)))
    return directory
