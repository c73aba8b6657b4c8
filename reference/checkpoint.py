"""Saving and loading weights, configs and training state.

Formats (nothing here ever executes code from a file):

* weights: ``model.safetensors`` (the flat parameter dict) + ``config.json``
  (the run config, a format version and the weights' SHA-256);
* a training checkpoint: the folder ``checkpoint/`` holding
  ``model.safetensors``, ``optimizer.safetensors`` (AdamW moments),
  ``config.json`` and ``state.json`` (step, optimiser metadata, RNG state and
  the SHA-256 of every file).

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

from reference.backend import to_host
from reference.config import ConfigError, RunConfig
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
    except (SafetensorError, ValueError, OSError) as exc:
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
