"""GPU smoke test (issue 16): the reference code on CuPy arrays gives NumPy's numbers.

    PYTHONPATH=$PWD python -m gpu.smoke [--quick] [--sections layers models ffn golden mechanisms train] [--json FILE]

Prints one table row per check and exits 1 if any check fails, 0 otherwise. Without CuPy or a CUDA
device it prints why and exits 0 (nothing to check). Sections:

* ``layers``: forward and backward of every layer kind (linear, embedding with repeated ids,
  position, LayerNorm, attention with and without mask / bias / temperature / hook gradients,
  MLP with erf and tanh GELU, cross-entropy with ignored targets);
* ``models``: ``loss_and_grads`` and ``run_with_cache`` of whole models: pre/post-LN, tied/untied
  head, with/without biases, erf/tanh GELU, BERT-like (token types, embedding norm, no causal
  mask), per-layer attention bias and temperature; and determinism (one step twice on the device,
  bit for bit: the embedding's scatter-add uses atomic adds);
* ``ffn``: every FFN-slot kind a mechanism registers (``reference.mechanisms.ffn_kinds``);
* ``golden``: ``reference.golden.core_tensors`` of each toy-world preset with its forward and
  backward on the device (the autograd oracle of ``grad.act.*`` stays on the host: autograd has
  no CuPy backend);
* ``mechanisms``: each registered mechanism's golden ``cases`` with every reference function they
  call run on the device (:func:`on_device`); a function that refuses device arrays runs on the
  host instead and is listed as ``host`` (not a failure: the table names it);
* ``train``: a short run of each toy-world preset with :class:`gpu.trainer.DeviceTrainer` (the
  Trainer with parameters, moments and batches on the GPU) against the Trainer on the CPU.

Tolerances: float64 results within 1e-10·max(1, max|x|) of NumPy's (the golden manifest's float64
rule); float32 results within the manifest's float32 rule, 4·max|x₆₄ − x₃₂| + 16·ε₃₂·max|x|, where
x₆₄ and x₃₂ are NumPy's own float64 and float32 results. Training: per-step losses within
1e-9 relative in float64 over the short run [reconstructed: rounding differences grow slowly
through AdamW; the golden rule is for one pass]. ``--dry-run-numpy`` runs the whole harness with
:mod:`gpu.standin` standing in for the device: NumPy that refuses host arrays among device operands
as CuPy does (CPU tests use it; it checks the harness and host/device mixing, not CuPy).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpu.standin import _leaves

SECTIONS = ("layers", "models", "ffn", "golden", "mechanisms", "train")
FLOAT64_RTOL = 1e-10
TRAIN_RTOL = 1e-9


# --------------------------------------------------------------------------- where arrays go


@dataclass(frozen=True)
class Device:
    """How to move one array to the device and back, and what to call it."""

    name: str
    put: Callable[[Any], Any]
    get: Callable[[Any], np.ndarray]
    is_device: Callable[[Any], bool]
    context: Callable[[], Any] = contextlib.nullcontext  # entered around every section (the stand-in's backend)


def cupy_device() -> Device:
    import cupy

    from gpu import available

    return Device(f"CuPy {cupy.__version__} on {available()[1]}", cupy.asarray, cupy.asnumpy,
                  lambda x: isinstance(x, cupy.ndarray))


def numpy_standin() -> Device:
    """The dry run's device: :mod:`gpu.standin`, NumPy refusing what CuPy refuses (checks the harness and host/device mixing)."""
    from gpu import standin

    return Device("NumPy stand-in (dry run: checks the harness and host/device mixing, not CuPy)", standin.put, standin.get,
                  standin.is_device, standin.standin_backend)


def tree_put(device: Device, value: Any) -> Any:
    """NumPy arrays inside dicts, lists and tuples copied to the device (other objects as they are)."""
    if isinstance(value, np.ndarray) and not device.is_device(value):
        return device.put(value)
    if isinstance(value, dict):
        return type(value)({k: tree_put(device, v) for k, v in value.items()})
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return type(value)(*(tree_put(device, v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(tree_put(device, v) for v in value)
    return value


def tree_get(device: Device, value: Any) -> Any:
    """Device arrays inside dicts, lists, tuples and dataclasses copied back to the host."""
    if device.is_device(value):
        return device.get(value)
    if isinstance(value, dict):
        return type(value)({k: tree_get(device, v) for k, v in value.items()})
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(tree_get(device, v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(tree_get(device, v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        moved = {f.name: tree_get(device, getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        if any(moved[k] is not getattr(value, k) for k in moved):
            return dataclasses.replace(value, **moved)
    return value


# --------------------------------------------------------------------------- comparison


@dataclass
class Row:
    section: str
    case: str
    dtype: str
    tensors: int = 0
    worst: float = 0.0  # max over tensors of |device − host| / tolerance (≤ 1 passes)
    worst_name: str = ""
    status: str = "ok"  # ok | FAIL | host | skip
    note: str = ""


def tolerance(x64: np.ndarray, x32: np.ndarray | None, dtype: str) -> float:
    """The golden manifest's tolerance for one tensor (reference.golden, module docstring)."""
    if x64.dtype.kind not in "fc" or x64.size == 0:
        return 0.0
    top = float(np.max(np.abs(x64)))
    if dtype == "float64":
        return FLOAT64_RTOL * max(1.0, top)
    drift = float(np.max(np.abs(x64 - np.asarray(x32, dtype=np.float64))))
    return 4 * drift + 16 * float(np.finfo(np.float32).eps) * top


def flatten(value: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Named arrays of a result tree (dicts, lists, tuples; scalars as 0-d arrays)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out |= flatten(v, f"{prefix}{k}.")
        return out
    if isinstance(value, (list, tuple)):
        out = {}
        for i, v in enumerate(value):
            out |= flatten(v, f"{prefix}{i}.")
        return out
    if isinstance(value, (int, float, np.ndarray, np.generic)) and not isinstance(value, bool):
        return {prefix.rstrip("."): np.asarray(value)}
    return {}


def compare(row: Row, host64: dict, host32: dict | None, got: dict, host_same: dict) -> Row:
    """Fill ``row`` from device results ``got`` against the host's ``host_same`` (same dtype)."""
    missing = sorted(set(host_same) - set(got))
    if missing:
        row.status, row.note = "FAIL", f"missing on the device: {missing[0]}"
        return row
    for name, ref in host_same.items():
        value = np.asarray(got[name])
        row.tensors += 1
        if value.shape != ref.shape:
            row.status, row.note = "FAIL", f"{name}: shape {value.shape} vs {ref.shape}"
            return row
        if ref.dtype.kind not in "fc":
            ratio = 0.0 if np.array_equal(value, ref) else math.inf
        else:
            tol = tolerance(np.asarray(host64[name], dtype=np.float64), None if host32 is None else host32[name], row.dtype)
            both_nan = np.isnan(value) & np.isnan(ref)
            same_inf = np.isinf(value) & (value == ref)
            diff = np.where(both_nan | same_inf, 0.0, np.abs(value.astype(np.float64) - ref.astype(np.float64)))
            err = float(np.max(diff)) if diff.size else 0.0
            ratio = (0.0 if err == 0 else math.inf) if tol == 0 else err / tol
            if math.isnan(ratio):
                ratio = math.inf
        if ratio > row.worst or not row.worst_name:
            row.worst, row.worst_name = max(row.worst, ratio), name
    if row.worst > 1.0:
        row.status = "FAIL"
    return row


def parity(section: str, case: str, fn: Callable[[dict], Any], inputs64: dict, device: Device,
           dtypes: tuple[str, ...] = ("float64", "float32")) -> list[Row]:
    """``fn(inputs)`` on the host and on the device, in each dtype; one row per dtype.

    ``inputs64``: host float64 (and int) arrays; floats are cast to the dtype, ints kept.
    """
    def cast(dtype: str) -> dict:
        return {k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v for k, v in inputs64.items()}

    host = {d: flatten(tree_get(device, fn(cast(d)))) for d in ("float64", "float32")}
    rows = []
    for dtype in dtypes:
        row = Row(section, case, dtype)
        try:
            raw = fn(tree_put(device, cast(dtype)))
            got = flatten(tree_get(device, raw))
        except Exception as exc:  # a failure on the device is a finding, reported in the table
            row.status, row.note = "FAIL", _one_line(exc)
            rows.append(row)
            continue
        compare(row, host["float64"], host["float32"], got, host[dtype])
        if not any(device.is_device(leaf) for leaf in _leaves(raw)):
            row.status, row.note = "FAIL", "no result is a device array: nothing ran on the device"
        rows.append(row)
    return rows


def _one_line(exc: BaseException) -> str:
    """The exception in one line, with the innermost frame of the reference code (else the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    ours = [f for f in frames if "/reference/" in f.filename]
    frame = (ours or frames or [None])[-1]
    where = f" ({'/'.join(frame.filename.rsplit('/', 3)[-3:])}:{frame.lineno})" if frame else ""
    return f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:140] if str(exc) else ''}{where}"


# --------------------------------------------------------------------------- sections


def layer_checks(device: Device, quick: bool) -> list[Row]:
    """Forward and backward of every layer kind, with upstream gradients drawn once on the host."""
    from reference.layers.attention import attention_backward, attention_forward
    from reference.layers.embedding import embedding_backward, embedding_forward, position_backward, position_forward
    from reference.layers.layernorm import layernorm_backward, layernorm_forward
    from reference.layers.linear import linear_backward, linear_forward
    from reference.layers.loss import cross_entropy_backward, cross_entropy_forward
    from reference.layers.mlp import mlp_backward, mlp_forward

    rs = np.random.default_rng(0)
    b, t, d, h, f, v = 3, 12, 16, 4, 40, 23
    x = rs.standard_normal((b, t, d))
    rows: list[Row] = []

    def linear(p):
        y, cache = linear_forward({"w": p["w"], "b": p["b"]}, p["x"])
        dx, g = linear_backward(cache, p["dy"])
        return {"y": y, "dx": dx, **g}

    rows += parity("layers", "linear", linear, {"x": x, "w": rs.standard_normal((d, f)), "b": rs.standard_normal(f),
                                                "dy": rs.standard_normal((b, t, f))}, device)

    def embedding(p):
        y, cache = embedding_forward({"w": p["w"]}, p["ids"])
        _, g = embedding_backward(cache, p["dy"])
        pos, pcache = position_forward({"w": p["pos"]}, t)
        _, gp = position_backward(pcache, p["dy"])
        return {"y": y, "d_table": g["w"], "pos": pos, "d_pos": gp["w"]}

    ids = rs.integers(0, 5, (b, t))  # 5 of 23 rows: many repeated ids, so the scatter-add sums
    rows += parity("layers", "embedding+position (repeated ids)", embedding,
                   {"w": rs.standard_normal((v, d)), "ids": ids, "pos": rs.standard_normal((t + 4, d)),
                    "dy": rs.standard_normal((b, t, d))}, device)

    def layernorm(p):
        y, cache = layernorm_forward({"g": p["g"], "b": p["b"]}, p["x"], 1e-5)
        dx, g = layernorm_backward(cache, p["dy"])
        return {"y": y, "dx": dx, **g}

    rows += parity("layers", "layernorm", layernorm, {"x": x * 3 + 1, "g": rs.standard_normal(d), "b": rs.standard_normal(d),
                                                      "dy": rs.standard_normal((b, t, d))}, device)

    attn_params = {name: rs.standard_normal((d, d)) * 0.3 for name in ("w_q", "w_k", "w_v", "w_o")}
    attn_params |= {name: rs.standard_normal(d) * 0.1 for name in ("b_q", "b_k", "b_v", "b_o")}
    variants = [("causal", True, False, 1.0, False), ("causal, bias, τ 0.7, hook grads", True, True, 0.7, True),
                ("no mask, no biases", False, False, 1.0, False)]
    for label, causal, with_bias, temperature, hook_grads in variants[: 2 if quick else 3]:
        def attention(p, causal=causal, with_bias=with_bias, temperature=temperature, hook_grads=hook_grads, label=label):
            params = {k: p[k] for k in attn_params if not (label.startswith("no mask") and k.startswith("b_"))}
            y, cache = attention_forward(params, p["x"], h, causal=causal, bias=p["bias"] if with_bias else None,
                                         temperature=temperature)
            extra = {"pattern": p["d_pattern"], "scores": p["d_scores"], "z": p["d_z"]} if hook_grads else None
            dx, g = attention_backward(cache, p["dy"], extra)
            return {"y": y, "pattern": cache["pattern"], "dx": dx, **g}

        inputs = {"x": x, **attn_params, "bias": rs.standard_normal((b, 1, t, t)), "dy": rs.standard_normal((b, t, d)),
                  "d_pattern": rs.standard_normal((b, h, t, t)), "d_scores": rs.standard_normal((b, h, t, t)),
                  "d_z": rs.standard_normal((b, h, t, d // h))}
        rows += parity("layers", f"attention ({label})", attention, inputs, device)

    for form in ("erf", "tanh"):
        def mlp(p, form=form):
            y, cache = mlp_forward({k: p[k] for k in ("w_in", "b_in", "w_out", "b_out")}, p["x"], form)
            dx, g = mlp_backward(cache, p["dy"], {"post": p["d_post"]})
            return {"y": y, "dx": dx, **g}

        rows += parity("layers", f"mlp ({form} GELU, hook grad)", mlp,
                       {"x": x, "w_in": rs.standard_normal((d, f)) * 0.4, "b_in": rs.standard_normal(f),
                        "w_out": rs.standard_normal((f, d)) * 0.2, "b_out": rs.standard_normal(d),
                        "dy": rs.standard_normal((b, t, d)), "d_post": rs.standard_normal((b, t, f))}, device)

    def loss(p):
        value, cache = cross_entropy_forward(p["logits"], p["targets"])
        return {"loss": value, "d_logits": cross_entropy_backward(cache, 1.7)}

    targets = rs.integers(-1, v, (b, t))  # −1: ignored positions
    rows += parity("layers", "cross-entropy (ignored targets)", loss, {"logits": rs.standard_normal((b, t, v)) * 3,
                                                                      "targets": targets}, device)
    return rows


MODEL_VARIANTS: list[tuple[str, dict]] = [
    ("pre-LN, tied, biases, tanh GELU (GPT-2)", dict(norm="pre", tied_head=True, bias=True, gelu="tanh")),
    ("post-LN, untied, biases, erf GELU", dict(norm="post", tied_head=False, bias=True, gelu="erf")),
    ("pre-LN, untied, no biases, erf GELU", dict(norm="pre", tied_head=False, bias=False, gelu="erf")),
    ("post-LN, tied, no biases, tanh GELU", dict(norm="post", tied_head=True, bias=False, gelu="tanh")),
    ("BERT-like: types, embed norm, no final norm, not causal",
     dict(norm="post", tied_head=True, bias=True, gelu="erf", n_token_types=2, embed_norm=True, final_norm=False, causal=False)),
]


def _model_fn(config: Any, with_bias: bool) -> Callable[[dict], Any]:
    from reference.model import loss_and_grads, run_with_cache

    def run(p: dict) -> dict:
        params = {k[2:]: v for k, v in p.items() if k.startswith("p.")}
        kwargs: dict[str, Any] = {}
        if config.n_token_types:
            kwargs["token_types"] = p["types"]
        if with_bias:  # one bias per layer (the second None) and per-layer temperatures
            kwargs |= {"attn_bias": [p["bias"], None] + [p["bias"]] * (config.n_layers - 2),
                       "temperature": [0.8] + [1.0] * (config.n_layers - 1)}
        loss, grads, _ = loss_and_grads(params, config, p["tokens"], p["targets"], **kwargs)
        logits, acts = run_with_cache(params, config, p["tokens"], names=["blocks.0.attn.pattern", "blocks.1.mlp_out"], **kwargs)
        return {"loss": loss, "grads": grads, "logits": logits, "acts": dict(acts)}

    return run


def model_checks(device: Device, quick: bool) -> list[Row]:
    from reference.config import ModelConfig
    from reference.model import init_params

    rows: list[Row] = []
    rs = np.random.default_rng(1)
    b, t = 3, 10
    for label, fields in MODEL_VARIANTS[: 2 if quick else None]:
        for with_bias in (False, True) if fields.get("causal", True) else (False,):
            config = ModelConfig(vocab_size=37, context=16, d_model=24, n_heads=4, n_layers=2, dtype="float64", **fields)
            params = init_params(config, seed=3)
            inputs = {f"p.{k}": v.astype(np.float64) for k, v in params.items()}
            inputs |= {"tokens": rs.integers(0, 37, (b, t)), "targets": rs.integers(-1, 37, (b, t)),
                       "types": rs.integers(0, 2, (b, t)), "bias": rs.standard_normal((b, 1, t, t))}

            def run(p: dict, config=config, with_bias=with_bias) -> Any:
                dtype = next(v.dtype.name for k, v in p.items() if k.startswith("p."))
                return _model_fn(config.replace(dtype=dtype), with_bias)(p)

            name = label + (" + per-layer bias, temperature" if with_bias else "")
            rows += parity("models", name, run, inputs, device)
    rows += determinism_checks(device)
    return rows


def determinism_checks(device: Device) -> list[Row]:
    """DESIGN: the same seed on the same backend gives bit-identical numbers. The same step twice on the device.

    The risk on a GPU: atomic adds (``cupy.add.at`` in the embedding's scatter-add) sum repeated ids in
    whatever order the threads arrive; the row says which tensors, if any, differ.
    """
    from reference.config import ModelConfig
    from reference.model import init_params

    rows = []
    rs = np.random.default_rng(4)
    for dtype in ("float64", "float32"):
        config = ModelConfig(vocab_size=37, context=64, d_model=32, n_heads=4, n_layers=2, dtype=dtype)
        params = {f"p.{k}": v for k, v in init_params(config, seed=5).items()}
        tokens = rs.integers(0, 6, (8, 64))  # 6 of 37 ids: every embedding row gets hundreds of adds
        inputs = tree_put(device, {**params, "tokens": tokens, "targets": rs.integers(-1, 37, (8, 64))})
        row = Row("models", "determinism: one step twice, bit for bit", dtype)
        try:
            first, second = (flatten(tree_get(device, _model_fn(config, False)(inputs))) for _ in range(2))
        except Exception as exc:
            row.status, row.note = "FAIL", _one_line(exc)
            rows.append(row)
            continue
        differ = sorted(k for k in first if not np.array_equal(first[k], second[k], equal_nan=True))
        row.tensors = len(first)
        row.status = "FAIL" if differ else "ok"
        row.note = f"{len(differ)} tensors differ: {', '.join(differ[:4])}" if differ else "bit-identical"
        rows.append(row)
    return rows


def ffn_checks(device: Device, quick: bool) -> list[Row]:
    """Whole models with each registered FFN-slot kind (pre- and post-LN)."""
    from reference.config import ModelConfig
    from reference.mechanisms import ffn_kinds
    from reference.model import init_params

    rows: list[Row] = []
    kinds = ffn_kinds()
    if not kinds:
        return [Row("ffn", "(no mechanism registers an FFN kind)", "-", status="skip")]
    rs = np.random.default_rng(2)
    for kind in kinds:
        for norm in ("pre", "post"):
            try:
                config = ModelConfig(vocab_size=31, context=12, d_model=16, n_heads=2, n_layers=2, norm=norm, ffn=kind,
                                     dtype="float64")
                params = init_params(config, seed=4)
            except Exception as exc:  # the kind's own validation refused this small config
                rows.append(Row("ffn", f"{kind} ({norm}-LN)", "-", status="skip", note=_one_line(exc)))
                continue
            inputs = {f"p.{k}": v.astype(np.float64) for k, v in params.items()}
            inputs |= {"tokens": rs.integers(0, 31, (2, 9)), "targets": rs.integers(-1, 31, (2, 9))}

            def run(p: dict, config=config) -> Any:
                dtype = next(v.dtype.name for k, v in p.items() if k.startswith("p."))
                return _model_fn(config.replace(dtype=dtype), False)(p)

            rows += parity("ffn", f"{kind} ({norm}-LN)", run, inputs, device)
    return rows


# --------------------------------------------------------------------------- reference functions on the device


@dataclass
class CallLog:
    device: dict[str, int] = dataclasses.field(default_factory=dict)
    host: dict[str, str] = dataclasses.field(default_factory=dict)  # function -> why it ran on the host


@contextmanager
def on_device(module: Any, device: Device, log: CallLog, names: list[str] | None = None) -> Iterator[None]:
    """Run the reference functions that ``module`` calls by name on the device, for the duration of the block.

    Each function ``module`` imported from ``reference.*`` (or just ``names``) is replaced in the
    module's namespace by a wrapper that copies its array arguments to the device, calls it, and
    copies the result back, so the module's own host code continues unchanged. A function that
    fails on device arrays is called again on the host arguments and recorded in ``log.host``.
    """
    originals = {}
    for name, value in vars(module).items():
        if names is not None and name not in names:
            continue
        if names is None and not (callable(value) and not isinstance(value, type)
                                  and getattr(value, "__module__", "").startswith("reference.")
                                  and getattr(value, "__module__", "") != module.__name__):
            continue
        originals[name] = value

    def wrap(name: str, fn: Callable) -> Callable:
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                out = fn(*tree_put(device, args), **tree_put(device, kwargs))
            except Exception as exc:
                log.host.setdefault(name, _one_line(exc))
                return fn(*args, **kwargs)
            log.device[name] = log.device.get(name, 0) + 1
            return tree_get(device, out)

        return run

    try:
        for name, fn in originals.items():
            setattr(module, name, wrap(name, fn))
        yield
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)


def _presets(quick: bool) -> list[str]:
    from reference.data.toyworld import PRESETS

    names = list(PRESETS)
    return names[:2] if quick else names


def _preset_run(name: str, **train: Any) -> Any:
    from reference.config import RunConfig
    from reference.data.toyworld import PRESETS
    from reference.train import prepare_run

    run = RunConfig().overridden(PRESETS[name])
    if train:
        run = run.overridden({"train": train})
    return prepare_run(run)


def golden_checks(device: Device, quick: bool) -> list[Row]:
    """``reference.golden.core_tensors`` of each preset with ``run_with_cache`` and ``loss_and_grads`` on the device."""
    from reference import golden

    rows: list[Row] = []
    for preset in _presets(quick):
        run = _preset_run(preset)
        host = {d: golden.core_tensors(run, 0, d) for d in ("float64", "float32")}
        for dtype in ("float64", "float32"):
            row = Row("golden", f"core tensors, preset {preset}", dtype)
            log = CallLog()
            try:
                with on_device(golden, device, log, names=["run_with_cache", "loss_and_grads"]):
                    got = golden.core_tensors(run, 0, dtype)
            except Exception as exc:
                row.status, row.note = "FAIL", _one_line(exc)
                rows.append(row)
                continue
            compare(row, host["float64"], host["float32"], got, host[dtype])
            if log.host:
                row.status, row.note = "FAIL", f"ran on the host: {log.host}"
            else:
                row.note = "grad.act.* from the host autograd oracle"
            rows.append(row)
    return rows


def mechanism_checks(device: Device, quick: bool) -> list[Row]:
    """Each registered mechanism's golden cases with the reference functions they call on the device."""
    import importlib

    from reference import mechanisms

    rows: list[Row] = []
    for m in mechanisms.MECHANISMS:
        if m.golden is None:
            rows.append(Row("mechanisms", f"{m.code} ({m.slug})", "-", status="skip", note="no golden cases registered"))
            continue
        module_name, attr = m.golden.split(":")
        module = importlib.import_module(f"reference.mechanisms.{m.slug}.{module_name}")
        cases = getattr(module, attr)
        try:
            host = {d: cases(0, d)[0] for d in ("float64", "float32")}
        except Exception as exc:
            rows.append(Row("mechanisms", f"{m.code} golden cases", "-", status="FAIL", note="on the host: " + _one_line(exc)))
            continue
        for dtype in ("float64", "float32"):
            row = Row("mechanisms", f"{m.code} golden cases", dtype)
            log = CallLog()
            try:
                with on_device(module, device, log):
                    got = cases(0, dtype)[0]
            except Exception as exc:
                row.status, row.note = "FAIL", _one_line(exc)
                rows.append(row)
                continue
            compare(row, host["float64"], host["float32"], got, host[dtype])
            ran = ", ".join(f"{k}×{n}" for k, n in sorted(log.device.items()))
            row.note = f"on the device: {ran or 'nothing'}"
            if not log.device and row.status == "ok":
                row.status = "host"
            rows.append(row)
            for name, why in sorted(log.host.items()):
                rows.append(Row("mechanisms", f"{m.code} {name}", dtype, status="host", note=f"refused device arrays: {why}"))
    return rows


# Runs with a mechanism's plug-in switched on: (preset, section overrides, what the row says).
PLUGIN_RUNS = [("locality_tiny", {"locality": {"lam": 0.6, "pointer_weight": 0.5}},
                "LOC dial on: bias, group penalty, pointer loss, dial dropout")]


def train_checks(device: Device, quick: bool, steps: int = 6) -> list[Row]:
    """A short float64 run of each preset (and with LOC's plug-in on): DeviceTrainer (GPU) against Trainer (CPU), step by step."""
    from gpu.trainer import DeviceTrainer
    from reference.train import Trainer

    class Trainer_(DeviceTrainer):
        put = staticmethod(device.put)
        get = staticmethod(device.get)

    rows: list[Row] = []
    cases = [(preset, {}, "") for preset in _presets(quick)] + PLUGIN_RUNS
    for preset, overrides, what in cases:
        row = Row("train", f"preset {preset}: {steps} steps + eval" + (f" ({what})" if what else ""), "float64")
        try:
            run = _preset_run(preset, steps=steps, warmup=2, batch_size=4, eval_batches=1, eval_every=0, log_every=1)
            run = run.overridden({"model": {"dtype": "float64"}, **overrides})
            losses = {}
            for label, cls in (("host", Trainer), ("device", Trainer_)):
                with tempfile.TemporaryDirectory() as folder:
                    trainer = cls(run, folder, progress=False, **({"threads": 1} if label == "host" else {}))
                    assert bool(trainer.plugins) == bool(overrides), f"plug-ins: {trainer.plugins}"
                    with trainer.parallel():
                        records = [trainer.train_step() for _ in range(steps)]
                    final = trainer.evaluate()
                    trainer.checkpoint()
                    if label == "device":
                        assert all(device.is_device(v) for v in trainer.params.values()), "parameters left the device"
                losses[label] = [r["loss"] for r in records] + [final["val_loss"]]
        except Exception as exc:
            row.status, row.note = "FAIL", _one_line(exc)
            rows.append(row)
            continue
        host, got = np.array(losses["host"]), np.array(losses["device"])
        rel = np.abs(got - host) / np.maximum(np.abs(host), 1e-30)
        row.tensors, row.worst = len(host), float(np.max(rel)) / TRAIN_RTOL
        row.worst_name = f"step {int(np.argmax(rel)) + 1}" if np.argmax(rel) < steps else "val_loss"
        row.status = "ok" if row.worst <= 1.0 and np.all(np.isfinite(got)) else "FAIL"
        row.note = f"loss {host[0]:.4f} → {host[steps - 1]:.4f}, val {host[-1]:.4f}"
        rows.append(row)
    return rows


CHECKS: dict[str, Callable[[Device, bool], list[Row]]] = {
    "layers": layer_checks, "models": model_checks, "ffn": ffn_checks, "golden": golden_checks,
    "mechanisms": mechanism_checks, "train": train_checks,
}


# --------------------------------------------------------------------------- the command


HEADER = f"{'section':<10} {'case':<58} {'dtype':<7} {'n':>4} {'err/tol':>9}  {'status':<6} note"


def render_row(r: Row) -> str:
    worst = "-" if r.status == "skip" else ("inf" if math.isinf(r.worst) else f"{r.worst:.2e}")
    note = (f"worst {r.worst_name}; " if r.worst_name and r.status == "FAIL" else "") + r.note
    return f"{r.section:<10} {r.case[:58]:<58} {r.dtype:<7} {r.tensors:>4} {worst:>9}  {r.status:<6} {note}"


def render(rows: list[Row]) -> str:
    return "\n".join([HEADER, "-" * len(HEADER), *map(render_row, rows)])


def run_checks(device: Device, sections: list[str], quick: bool, progress: bool = True, echo: bool = False) -> list[Row]:
    """Every section's rows; ``echo`` prints each section's rows as soon as it is done (a time limit keeps them)."""
    rows: list[Row] = []
    if echo:
        print(HEADER + "\n" + "-" * len(HEADER), flush=True)
    for section in sections:
        start = time.perf_counter()
        try:
            with device.context():
                found = CHECKS[section](device, quick)
        except Exception as exc:  # a section that cannot even start is one failed row, not a crash
            found = [Row(section, "(section)", "-", status="FAIL", note=_one_line(exc))]
        rows += found
        if echo:
            print("\n".join(map(render_row, found)), flush=True)
        if progress:
            bad = sum(r.status == "FAIL" for r in found)
            print(f"[smoke] {section}: {len(found)} rows, {bad} failed, {time.perf_counter() - start:.1f} s", file=sys.stderr,
                  flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="fewer variants and presets (a minute's check)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--dry-run-numpy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.dry_run_numpy:
        device = numpy_standin()
    else:
        from gpu import available

        ok, why = available()
        if not ok:
            print(f"gpu.smoke: SKIPPED, {why}")
            return 0
        device = cupy_device()
    print(f"gpu.smoke on {device.name}; numpy {np.__version__}")
    start = time.perf_counter()
    rows = run_checks(device, args.sections, args.quick, echo=True)
    failed = [r for r in rows if r.status == "FAIL"]
    hosted = [r for r in rows if r.status == "host"]
    print(f"\n{len(rows)} checks in {time.perf_counter() - start:.0f} s: {len(failed)} failed, "
          f"{len(hosted)} ran on the host (listed), {sum(r.status == 'skip' for r in rows)} skipped")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"device": device.name, "rows": [dataclasses.asdict(r) for r in rows]}, handle, indent=1,
                      default=lambda v: None)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
