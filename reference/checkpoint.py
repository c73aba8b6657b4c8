"""Saving and loading weights, configs and training state.

Formats (nothing here ever executes code from a file):

* weights: ``model.safetensors`` (the flat parameter dict) + ``config.json``
  (the run config, a format version and the weights' SHA-256);
* a training checkpoint: the folder ``checkpoint/`` holding
  ``model.safetensors``, ``optimizer.safetensors`` (AdamW moments),
  ``config.json`` and ``state.json`` (step, optimiser metadata, RNG state and
  the SHA-256 of every file).

Hugging Face checkpoint directories (``config.json`` + ``model.safetensors``)
of the GPT-2 and BERT families are imported with :func:`import_hf`, and a
clearform decoder is written as a GPT-2 directory with :func:`export_gpt2`
(see the section at the end of this module).

Writes are atomic: files go to a temporary name (or folder) first and are
renamed into place, so an interrupted write never leaves a half checkpoint
where a good one was. Every load checks hashes, names, shapes and dtypes and
raises :class:`CheckpointError` with one line naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from reference.backend import resolve_dtype, to_host
from reference.config import ConfigError, ModelConfig, RunConfig, check_choice
from reference.model import param_shapes

FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoint"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, tampered with or does not fit its config."""


# --------------------------------------------------------------------------- atomic files


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file is missing") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror})") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_bytes(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc.__class__.__name__} at byte {getattr(exc, 'pos', '?')})") from None


def _read_tensors(path: Path, sha: str | None = None) -> dict[str, np.ndarray]:
    data = _read_bytes(path)
    if sha is not None and _sha256(data) != sha:
        raise CheckpointError(f"{path}: SHA-256 does not match the recorded one (file changed or truncated)")
    try:
        return st_load(data)
    except (SafetensorError, ValueError, OSError, TypeError) as exc:  # TypeError: dtypes NumPy lacks (bf16)
        first_line = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({first_line})") from None


def tensors_bytes(arrays: Mapping[str, Any]) -> bytes:
    """Serialise arrays (any backend) to safetensors bytes, in sorted name order."""
    return st_save({name: np.ascontiguousarray(to_host(arrays[name])) for name in sorted(arrays)})


# --------------------------------------------------------------------------- weights + config


def check_params(params: Mapping[str, Any], run: RunConfig, where: str) -> None:
    """Raise CheckpointError unless ``params`` has exactly the config's names, shapes and dtype."""
    expected = param_shapes(run.model)
    missing = sorted(set(expected) - set(params))
    if missing:
        raise CheckpointError(f"{where}: tensor {missing[0]!r} is missing ({len(missing)} missing in all)")
    unexpected = sorted(set(params) - set(expected))
    if unexpected:
        raise CheckpointError(f"{where}: unexpected tensor {unexpected[0]!r} for this config")
    for name, shape in expected.items():
        if tuple(params[name].shape) != tuple(shape):
            raise CheckpointError(f"{where}: tensor {name!r} has shape {tuple(params[name].shape)}, config needs {shape}")
        if str(params[name].dtype) != run.model.dtype:
            raise CheckpointError(f"{where}: tensor {name!r} is {params[name].dtype}, config says {run.model.dtype}")


def _config_record(run: RunConfig, weights_sha: str) -> dict:
    return {"format": "clearform", "version": FORMAT_VERSION, "weights_sha256": weights_sha, "run": run.to_dict()}


def _parse_config_record(path: Path) -> tuple[RunConfig, str | None]:
    record = _read_json(path)
    if not isinstance(record, dict) or record.get("format") != "clearform" or "run" not in record:
        raise CheckpointError(f"{path}: not a clearform config.json (no 'format': 'clearform' record)")
    if record.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {record.get('version')!r} is not {FORMAT_VERSION}")
    try:
        run = RunConfig.from_dict(record["run"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: invalid config ({exc})") from None
    return run, record.get("weights_sha256")


def save_weights(directory: str | os.PathLike, params: Mapping[str, Any], run: RunConfig) -> None:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = tensors_bytes(params)
    _write_atomic(directory / "model.safetensors", weights)
    _write_atomic(directory / "config.json", _json_bytes(_config_record(run, _sha256(weights))))


def load_weights(directory: str | os.PathLike) -> tuple[dict[str, np.ndarray], RunConfig]:
    """Read what :func:`save_weights` wrote; checks hash, names, shapes and dtype."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory")
    run, sha = _parse_config_record(directory / "config.json")
    params = _read_tensors(directory / "model.safetensors", sha)
    check_params(params, run, str(directory / "model.safetensors"))
    return params, run


# --------------------------------------------------------------------------- training checkpoints


def save_checkpoint(
    run_dir: str | os.PathLike,
    params: Mapping[str, Any],
    run: RunConfig,
    optimizer_arrays: Mapping[str, Any],
    state: Mapping[str, Any],
) -> Path:
    """Write ``run_dir/checkpoint/`` atomically; returns its path.

    ``state`` is JSON (step, optimiser metadata, RNG state ...). The folder is
    built under a temporary name, then swapped in with renames, so the
    previous checkpoint survives any failure before the swap.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final, tmp, old = run_dir / CHECKPOINT_DIR, run_dir / (CHECKPOINT_DIR + ".tmp"), run_dir / (CHECKPOINT_DIR + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    save_weights(tmp, params, run)
    optimizer_bytes = tensors_bytes(optimizer_arrays)
    _write_atomic(tmp / "optimizer.safetensors", optimizer_bytes)
    manifest = {
        name: _sha256((tmp / name).read_bytes()) for name in ("model.safetensors", "config.json")
    }
    manifest["optimizer.safetensors"] = _sha256(optimizer_bytes)
    _write_atomic(tmp / "state.json", _json_bytes({"version": FORMAT_VERSION, "state": dict(state), "sha256": manifest}))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(run_dir: str | os.PathLike) -> tuple[dict[str, np.ndarray], RunConfig, dict[str, np.ndarray], dict]:
    """Read ``run_dir/checkpoint/``: (params, run config, optimiser arrays, state)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no checkpoint here (train first, or check the path)")
    record = _read_json(folder / "state.json")
    if not isinstance(record, dict) or "state" not in record or "sha256" not in record:
        raise CheckpointError(f"{folder / 'state.json'}: missing 'state' or 'sha256' record")
    for name, sha in record["sha256"].items():
        if _sha256(_read_bytes(folder / name)) != sha:
            raise CheckpointError(f"{folder / name}: SHA-256 does not match state.json (file changed or truncated)")
    params, run = load_weights(folder)
    optimizer_arrays = _read_tensors(folder / "optimizer.safetensors")
    return params, run, optimizer_arrays, record["state"]


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
# Pickle and other formats that are never read, named in the error message.
_UNSAFE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")


def _hf_read_config(directory: Path) -> dict:
    path = directory / HF_CONFIG
    record = _read_json(path)
    if not isinstance(record, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    if record.get("format") == "clearform":
        raise CheckpointError(f"{path}: a clearform checkpoint, not a Hugging Face one (use load_weights)")
    model_type = record.get("model_type")
    if model_type not in HF_FAMILIES:
        architectures = record.get("architectures") or []
        named = f" (architectures {architectures})" if architectures else ""
        raise CheckpointError(
            f"{path}: model_type {model_type!r}{named} is not supported (supported: {', '.join(HF_FAMILIES)})"
        )
    return record


def _read_hf_file(path: Path) -> dict[str, np.ndarray]:
    """One safetensors file; unreadable files and dtypes NumPy lacks (bfloat16) are a CheckpointError."""
    try:
        return _read_tensors(path)
    except TypeError as exc:  # safetensors.numpy raises TypeError for bfloat16, which NumPy has no dtype for
        raise CheckpointError(f"{path}: a tensor dtype NumPy cannot hold ({exc}); save the model in float32") from None


def _hf_read_tensors(directory: Path) -> dict[str, np.ndarray]:
    """Every tensor of the directory: ``model.safetensors``, or the shards its index names."""
    if (directory / HF_WEIGHTS).exists():
        return _read_hf_file(directory / HF_WEIGHTS)
    if (directory / HF_INDEX).exists():
        index = _read_json(directory / HF_INDEX)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{directory / HF_INDEX}: no 'weight_map' object")
        tensors: dict[str, np.ndarray] = {}
        for shard in sorted(set(weight_map.values())):
            # A shard is a bare file name inside the directory, never a path elsewhere.
            if not isinstance(shard, str) or Path(shard).name != shard or not shard.endswith(".safetensors"):
                raise CheckpointError(f"{directory / HF_INDEX}: shard {shard!r} is not a .safetensors file name")
            tensors.update(_read_hf_file(directory / shard))
        return tensors
    unsafe = [name for name in _UNSAFE_WEIGHTS if (directory / name).exists()]
    if unsafe:
        raise CheckpointError(
            f"{directory}: holds {unsafe[0]} but no {HF_WEIGHTS}; clearform reads safetensors only (pickle files can "
            "execute code). Convert it once with transformers: model.save_pretrained(DIR, safe_serialization=True)"
        )
    raise CheckpointError(f"{directory / HF_WEIGHTS}: file is missing")


def _hf_settings(record: dict, defaults: dict, path: Path) -> dict:
    """config.json values over the class defaults, with ints and floats type-checked."""
    values = {key: record.get(key, default) for key, default in defaults.items()}
    for key, value in values.items():
        default = defaults[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int) or key == "n_inner":
            ok = (value is None and key == "n_inner") or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
        else:
            ok = isinstance(value, str)
        if not ok:
            raise CheckpointError(f"{path}: {key} = {value!r} is not a valid value")
    return values


def _model_config(path: Path, **fields: Any) -> ModelConfig:
    try:
        return ModelConfig(**fields)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: does not describe a valid clearform model ({exc})") from None


def _gelu_form(path: Path, key: str, name: str) -> str:
    if name not in _HF_GELU:
        raise CheckpointError(f"{path}: {key} {name!r} is not supported (supported: {', '.join(_HF_GELU)})")
    return _HF_GELU[name]


def _refuse(path: Path, what: str, value: Any, condition: bool) -> None:
    if condition:
        raise CheckpointError(f"{path}: {what} = {value!r} is not supported by clearform")


def _gpt2_model_config(record: dict, path: Path, dtype: str) -> ModelConfig:
    s = _hf_settings(record, _GPT2_DEFAULTS, path)
    _refuse(path, "scale_attn_weights", s["scale_attn_weights"], not s["scale_attn_weights"])
    _refuse(path, "scale_attn_by_inverse_layer_idx", True, s["scale_attn_by_inverse_layer_idx"])
    _refuse(path, "add_cross_attention", True, s["add_cross_attention"])
    return _model_config(
        path, vocab_size=s["vocab_size"], context=s["n_positions"], d_model=s["n_embd"], n_layers=s["n_layer"],
        n_heads=s["n_head"], d_mlp=s["n_inner"], norm="pre", bias=True, tied_head=s["tie_word_embeddings"],
        causal=True, gelu=_gelu_form(path, "activation_function", s["activation_function"]),
        ln_eps=float(s["layer_norm_epsilon"]), embed_norm=False, final_norm=True, n_token_types=0, dtype=dtype,
    )


def _bert_model_config(record: dict, path: Path, dtype: str) -> ModelConfig:
    s = _hf_settings(record, _BERT_DEFAULTS, path)
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


def _legacy_layernorm_names(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Old TF-converted BERTs call LayerNorm parameters gamma / beta; use today's weight / bias."""
    renamed = {}
    for name, value in tensors.items():
        if ".LayerNorm." in name:
            name = name.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(".LayerNorm.beta", ".LayerNorm.bias")
        renamed[name] = value
    return renamed


def _find_prefix(tensors: Mapping[str, Any], anchor: str, prefixes: tuple[str, ...]) -> str:
    """The task-model prefix ('' or e.g. 'transformer.') under which ``anchor`` exists."""
    for prefix in prefixes:
        if prefix + anchor in tensors:
            return prefix
    return prefixes[0]  # the missing anchor is then reported by _take_checked


def _take_checked(tensors: Mapping[str, np.ndarray], shapes: Mapping[str, tuple], prefix: str, where: Path) -> dict:
    """The tensors named in ``shapes`` (under ``prefix``), after checking that all exist with those shapes."""
    missing = [prefix + name for name in shapes if prefix + name not in tensors]
    if missing:
        listed = ", ".join(repr(m) for m in missing[:4]) + (", ..." if len(missing) > 4 else "")
        raise CheckpointError(f"{where}: missing tensor{'s' if len(missing) > 1 else ''} {listed} ({len(missing)} in all)")
    taken = {}
    for name, shape in shapes.items():
        value = tensors[prefix + name]
        if tuple(value.shape) != tuple(shape):
            raise CheckpointError(
                f"{where}: tensor {prefix + name!r} has shape {tuple(value.shape)}, config.json implies {tuple(shape)}"
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise CheckpointError(f"{where}: tensor {prefix + name!r} has dtype {value.dtype}, expected a float dtype")
        taken[name] = value
    return taken


def import_hf(
    directory: str | os.PathLike, dtype: str = "float32"
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

    Raises CheckpointError naming the file and the problem: unsupported
    model_type or option, missing tensors (all named), a wrong shape, a file
    that is not safetensors, or a pickle-only directory.
    """
    check_choice("import_hf", "dtype", dtype, ("float32", "float64"))
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory")
    record = _hf_read_config(directory)
    family = HF_FAMILIES[record["model_type"]]
    tensors = _legacy_layernorm_names(_hf_read_tensors(directory))
    where = directory / HF_WEIGHTS
    if family == "gpt2":
        config = _gpt2_model_config(record, directory / HF_CONFIG, dtype)
        prefix = _find_prefix(tensors, "wte.weight", ("", "transformer."))
        weights = _take_checked(tensors, _gpt2_shapes(config), prefix, where)
        head_name = "lm_head.weight"
        head = None
        if not config.tied_head:
            head = _take_checked(tensors, {head_name: (config.vocab_size, config.d_model)}, "", where)[head_name]
        params = _gpt2_to_params(weights, config, head)
        used = {prefix + name for name in weights} | ({head_name} if head is not None else set())
    else:
        config = _bert_model_config(record, directory / HF_CONFIG, dtype)
        prefix = _find_prefix(tensors, "embeddings.word_embeddings.weight", ("", "bert."))
        weights = _take_checked(tensors, _bert_shapes(config), prefix, where)
        params = _bert_to_params(weights, config)
        used = {prefix + name for name in weights}
    target = resolve_dtype(dtype)
    params = {name: np.ascontiguousarray(value, dtype=target) for name, value in params.items()}
    source_dtypes = sorted({str(tensors[name].dtype) for name in used})
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
