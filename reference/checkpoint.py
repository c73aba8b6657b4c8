"""Saving and loading weights, configs and training state.

Formats (nothing here ever executes code from a file):

* weights: ``model.safetensors`` (the flat parameter dict) + ``config.json``
  (the run config, a format version and the weights' SHA-256);
* a training checkpoint: the folder ``checkpoint/`` holding
  ``model.safetensors``, ``optimizer.safetensors`` (AdamW moments),
  ``config.json`` and ``state.json`` (step, optimiser metadata, RNG state and
  the SHA-256 of every file).

Hugging Face directories are read and written by :mod:`reference.hf`, on
the same file helpers.

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save as st_save

from reference.backend import to_host
from reference.config import ConfigError, RunConfig, is_int
from reference.io import MAX_SAFETENSORS_BYTES, read_bytes, read_json, read_safetensors, short
from reference.model import param_shapes
from reference.optim import AdamW

FORMAT_VERSION = 2
"""2: config.json and state.json carry a SHA-256 seal of their own content."""
CHECKPOINT_DIR = "checkpoint"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, tampered with or does not fit its config."""


# --------------------------------------------------------------------------- atomic files

FILE_OPERATION_HOOK: Callable[[str, Path], None] | None = None
"""Called after every file operation of a save (``"write"``, ``"rename"``, ``"remove"``) with
its path; None in normal use. The crash-point tests set it to raise at the k-th operation,
which is how "a crash between any two file operations" is simulated."""


def _done(operation: str, path: Path) -> None:
    if FILE_OPERATION_HOOK is not None:
        FILE_OPERATION_HOOK(operation, path)


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk (the caller renames it into place)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    _done("write", path)


def _rename(source: Path, target: Path) -> None:
    os.replace(source, target)
    _done("rename", target)


def _remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
        _done("remove", path)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` under a temporary name, then rename it to ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    _write_file(tmp, data)
    _rename(tmp, path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _read_bytes(path: Path) -> bytes:
    return read_bytes(path, error=CheckpointError, max_bytes=MAX_SAFETENSORS_BYTES)


def _read_json(path: Path) -> Any:
    return read_json(path, error=CheckpointError)


def _read_tensors(path: Path, sha: str | None = None) -> dict[str, np.ndarray]:
    return read_safetensors(path, error=CheckpointError, sha256=sha)


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


def _sealed(record: dict) -> dict:
    """``record`` plus ``"sha256"``: the SHA-256 of its canonical JSON (sorted keys, no spaces).

    The seal makes a record tamper-evident: an edit that clearform did not make (a changed
    ``n_heads``, a deleted hash, an emptied file list) no longer matches and is refused.
    It is a checksum, not a signature: it detects edits, it cannot stop someone who
    recomputes it on purpose.
    """
    return {**record, "sha256": _sha256(_canonical(record))}


def _canonical(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def _check_seal(record: Any, path: Path, required: tuple[str, ...]) -> dict:
    """The record of a sealed JSON file, after checking its keys, version and seal; CheckpointError otherwise."""
    if not isinstance(record, dict):
        raise CheckpointError(f"{path}: not a clearform record (a JSON object)")
    missing = [k for k in (*required, "version", "sha256") if k not in record]
    if missing:
        raise CheckpointError(f"{path}: field {missing[0]!r} is missing (the file was edited or is not clearform's)")
    if record["version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {short(record['version'])} is not {FORMAT_VERSION} (written by another clearform)"
        )
    unexpected = sorted(set(record) - {*required, "version", "sha256"})
    if unexpected:
        raise CheckpointError(f"{path}: unexpected field {short(unexpected[0])} (the file was edited)")
    body = {k: v for k, v in record.items() if k != "sha256"}
    if record["sha256"] != _sha256(_canonical(body)):
        raise CheckpointError(f"{path}: its SHA-256 seal does not match its content (the file was edited or damaged)")
    return body


def _config_record(run: RunConfig, weights_sha: str) -> dict:
    return _sealed({"format": "clearform", "version": FORMAT_VERSION, "weights_sha256": weights_sha, "run": run.to_dict()})


def _parse_config_record(path: Path) -> tuple[RunConfig, str]:
    record = _check_seal(_read_json(path), path, ("format", "weights_sha256", "run"))
    if record["format"] != "clearform":
        raise CheckpointError(f"{path}: not a clearform config.json (format {short(record['format'])})")
    sha = record["weights_sha256"]
    if not (isinstance(sha, str) and len(sha) == 64):
        raise CheckpointError(f"{path}: weights_sha256 {short(sha)} is not a SHA-256 hex digest")
    try:
        run = RunConfig.from_dict(record["run"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: invalid config ({exc})") from None
    return run, sha


def save_weights(directory: str | os.PathLike, params: Mapping[str, Any], run: RunConfig) -> None:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created if needed), as one commit.

    Both files are written under ``.tmp`` names first; then the weights are renamed into
    place, then the config. A crash before the first rename leaves the old pair; a crash
    between the two renames leaves new weights next to the old config, with the new
    config complete in ``config.json.tmp``: :func:`load_weights` finishes that commit.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = tensors_bytes(params)
    names = ("model.safetensors", "config.json")
    _write_file(directory / (names[0] + ".tmp"), weights)
    _write_file(directory / (names[1] + ".tmp"), _json_bytes(_config_record(run, _sha256(weights))))
    for name in names:
        _rename(directory / (name + ".tmp"), directory / name)


def load_weights(directory: str | os.PathLike) -> tuple[dict[str, np.ndarray], RunConfig]:
    """Read what :func:`save_weights` wrote; checks both seals, the weights' hash, names, shapes and dtype.

    If the weights do not match ``config.json`` but match a complete, sealed
    ``config.json.tmp`` (a save interrupted between its two renames), the commit is
    finished (the rename is done) and the pair is read.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory")
    config, weights_path = directory / "config.json", directory / "model.safetensors"
    pending = directory / "config.json.tmp"
    weights_sha = _sha256(_read_bytes(weights_path))
    if pending.is_file() and (not config.exists() or _parse_config_record(config)[1] != weights_sha):
        try:
            _, sha = _parse_config_record(pending)
        except CheckpointError:
            sha = None
        if sha == weights_sha:
            _rename(pending, config)
    run, sha = _parse_config_record(config)
    if weights_sha != sha:
        raise CheckpointError(f"{weights_path}: SHA-256 does not match config.json (file changed or truncated)")
    params = _read_tensors(weights_path, sha)  # hashed again while read: a file swapped meanwhile is refused
    check_params(params, run, str(weights_path))
    return params, run


# --------------------------------------------------------------------------- training checkpoints

CHECKPOINT_FILES = ("model.safetensors", "config.json", "optimizer.safetensors")
"""The files of ``checkpoint/`` that ``state.json`` lists with their SHA-256."""


def save_checkpoint(
    run_dir: str | os.PathLike,
    params: Mapping[str, Any],
    run: RunConfig,
    optimizer_arrays: Mapping[str, Any],
    state: Mapping[str, Any],
) -> Path:
    """Write ``run_dir/checkpoint/`` atomically; returns its path.

    ``state`` is JSON (step, optimiser metadata, RNG state). The folder is built as
    ``checkpoint.tmp`` (``state.json``, written last, seals it and lists every file's
    SHA-256), then swapped in: ``checkpoint`` → ``checkpoint.old``, ``checkpoint.tmp`` →
    ``checkpoint``, ``checkpoint.old`` removed. Whatever operation a crash interrupts,
    :func:`load_checkpoint` finds the newest complete copy.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final, tmp, old = (run_dir / (CHECKPOINT_DIR + suffix) for suffix in ("", ".tmp", ".old"))
    _remove_tree(tmp)
    save_weights(tmp, params, run)
    _write_atomic(tmp / "optimizer.safetensors", tensors_bytes(optimizer_arrays))
    files = {name: _sha256((tmp / name).read_bytes()) for name in CHECKPOINT_FILES}
    _write_atomic(tmp / "state.json", _json_bytes(_sealed({"version": FORMAT_VERSION, "state": dict(state), "files": files})))
    _swap_in(tmp, final, old)
    return final


def _swap_in(tmp: Path, final: Path, old: Path) -> None:
    """Move the complete folder ``tmp`` into place as ``final``: final → old, tmp → final, old removed."""
    _remove_tree(old)
    if final.exists():
        _rename(final, old)
    _rename(tmp, final)
    _remove_tree(old)


def _read_checkpoint_folder(folder: Path) -> tuple[dict[str, np.ndarray], RunConfig, dict[str, np.ndarray], dict]:
    """One checkpoint folder, fully verified: state.json's seal, every file's hash, then the tensors and the state."""
    path = folder / "state.json"
    record = _check_seal(_read_json(path), path, ("state", "files"))
    files = record["files"]
    if not isinstance(files, dict) or sorted(files) != sorted(CHECKPOINT_FILES):
        raise CheckpointError(f"{path}: 'files' must list exactly {', '.join(CHECKPOINT_FILES)}")
    for name in CHECKPOINT_FILES:
        if _sha256(_read_bytes(folder / name)) != files[name]:
            raise CheckpointError(f"{folder / name}: SHA-256 does not match state.json (file changed or truncated)")
    params, run = load_weights(folder)
    optimizer_arrays = _read_tensors(folder / "optimizer.safetensors")
    state = record["state"]
    check_state(state, params, run, optimizer_arrays, str(path))
    return params, run, optimizer_arrays, state


def load_checkpoint(run_dir: str | os.PathLike) -> tuple[dict[str, np.ndarray], RunConfig, dict[str, np.ndarray], dict]:
    """Read the newest complete checkpoint of ``run_dir``: (params, run config, optimiser arrays, state).

    Normally that is ``checkpoint/``. After a crash inside :func:`save_checkpoint` it may
    be ``checkpoint.tmp`` (complete and sealed, not yet swapped in: newer) or
    ``checkpoint.old`` (the previous one, when the crash fell between the two renames):
    the newest copy that verifies is used and moved into place as ``checkpoint/``. A
    ``checkpoint/`` that exists but does not verify is an error, never skipped: that is
    tampering or damage, not a crash.
    """
    run_dir = Path(run_dir)
    final, tmp, old = (run_dir / (CHECKPOINT_DIR + suffix) for suffix in ("", ".tmp", ".old"))
    if tmp.is_dir():
        try:
            loaded = _read_checkpoint_folder(tmp)
        except CheckpointError:
            loaded = None  # an interrupted write: the copy in place (or the old one) is the newest complete one
        if loaded is not None:
            _swap_in(tmp, final, old)  # finish the interrupted save
            return loaded
    if not final.is_dir() and old.is_dir():
        loaded = _read_checkpoint_folder(old)
        _rename(old, final)
        return loaded
    if not final.is_dir():
        raise CheckpointError(f"{final}: no checkpoint here (train first, or check the path)")
    return _read_checkpoint_folder(final)


def check_state(state: Any, params: Mapping[str, np.ndarray], run: RunConfig, optimizer_arrays: Mapping[str, np.ndarray],
                where: str) -> None:
    """Validate a checkpoint's training state field by field before anything uses it; CheckpointError otherwise.

    ``step``: an int in [0, train.steps]. ``rng``: a PCG64 state (what the trainer's
    generator holds). ``optimizer``: AdamW's metadata and moments, checked against the
    parameters by :meth:`reference.optim.AdamW.check_state`.
    """
    if not isinstance(state, dict) or sorted(state) != ["optimizer", "rng", "step"]:
        raise CheckpointError(f"{where}: 'state' must hold exactly step, optimizer, rng")
    step = state["step"]
    if not is_int(step) or not 0 <= step <= run.train.steps:
        raise CheckpointError(f"{where}: step {short(step)} is not an int in [0, train.steps = {run.train.steps}]")
    check_rng_state(state["rng"], where)
    try:
        AdamW.check_state(state["optimizer"], optimizer_arrays, params, step)
    except ValueError as exc:
        raise CheckpointError(f"{where}: optimizer state: {exc}") from None


def check_rng_state(value: Any, where: str) -> None:
    """A PCG64 bit-generator state as NumPy writes it: ``{bit_generator, state: {state, inc}, has_uint32, uinteger}``."""
    ok = (
        isinstance(value, dict) and sorted(value) == ["bit_generator", "has_uint32", "state", "uinteger"]
        and value["bit_generator"] == "PCG64" and isinstance(value["state"], dict) and sorted(value["state"]) == ["inc", "state"]
        and all(is_int(v) and 0 <= v < 2**128 for v in value["state"].values())
        and value["has_uint32"] in (0, 1) and is_int(value["has_uint32"]) and is_int(value["uinteger"])
        and 0 <= value["uinteger"] < 2**32
    )
    if not ok:
        raise CheckpointError(f"{where}: rng is not a PCG64 generator state")
