"""Golden files: every tensor of one forward and backward pass, for checking another implementation.

:func:`write_golden` writes ``DIR/golden.safetensors`` and ``DIR/manifest.json`` for one
small fixed batch of a run config. Tensor names:

* ``input.tokens``, ``input.targets`` (B, T) int64 (targets −1 are ignored);
* ``param.<name>``: every parameter (``reference.model.param_shapes``);
* ``act.<hook>``: every hook activation of the forward pass, in forward order
  (``reference.model.hook_names``), the logits included (``act.logits``);
* ``loss``: the mean next-token cross-entropy (nats), shape (1,) (every scalar is stored so);
* ``grad.param.<name>``: dloss/dparameter, from the hand-written backward;
* ``grad.act.<hook>``: dloss/dactivation, the total derivative through everything
  downstream of that hook (autograd, the project's gradient oracle);
* ``<CODE>.case{k}.<what>``: each registered mechanism's own cases (its ``golden``
  record), e.g. ``LOC.case0.group_penalty_grad``.

The manifest gives the clearform version, the config, dtype and seed, every tensor's
shape, dtype, SHA-256, meaning and recommended tolerance, and each mechanism's settings
and spec references. Same arguments, same bytes: nothing here reads a clock or global
randomness, and JSON is written with sorted keys.

Tolerance [reconstructed]: for a float64 implementation, ``1e-10 · max(1, max|x|)``; for a
float32 one, ``4 · max|x₆₄ − x₃₂| + 16 · ε₃₂ · max|x|``, where x₃₂ is this same computation
run in float32 from the float64 parameters cast — how far an honest float32 implementation
drifts, with a margin.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import autograd
import numpy as np
from safetensors.numpy import save as st_save

from reference import mechanisms
from reference.config import RunConfig
from reference.layers.loss import cross_entropy_forward
from reference.model import forward, hook_names, init_params, loss_and_grads, run_with_cache

GOLDEN_BATCH = (2, 8)
"""(B, T) of the golden batch: small enough to read, large enough to exercise every hook."""
FLOAT64_RTOL = 1e-10

HOOK_MEANING = {
    "embed": "token embedding rows (B, T, D)", "pos_embed": "position embedding rows (T, D), broadcast over B",
    "type_embed": "token-type embedding rows (B, T, D)", "resid_pre": "block input (B, T, D)",
    "attn.q": "queries (B, H, T, d_h)", "attn.k": "keys (B, H, T, d_h)", "attn.v": "values (B, H, T, d_h)",
    "attn.scores": "q·k/√d_h before bias and mask (B, H, T, T)", "attn.pattern": "softmax over keys (B, H, T, T)",
    "attn.z": "pattern @ v per head (B, H, T, d_h)", "attn_out": "attention output after w_o (B, T, D)",
    "resid_mid": "after attention's residual add (B, T, D)", "mlp.pre": "MLP hidden before GELU (B, T, F)",
    "mlp.post": "MLP hidden after GELU (B, T, F)", "mlp_out": "MLP output (B, T, D)", "resid_post": "block output (B, T, D)",
    "final_norm": "after the final LayerNorm (B, T, D)", "logits": "logits (B, T, V)",
}


def _meaning(hook: str) -> str:
    key = hook.split(".", 2)[-1] if hook.startswith("blocks.") else hook
    return HOOK_MEANING.get(key, "")


def _batch(run: RunConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    b, t = GOLDEN_BATCH
    rs = np.random.default_rng([seed, 11])
    t = min(t, run.model.context)
    tokens = rs.integers(0, run.model.vocab_size, (b, t))
    targets = rs.integers(0, run.model.vocab_size, (b, t))
    targets[:, -1] = -1  # one ignored position per row: implementations must skip it
    return tokens, targets


def core_tensors(run: RunConfig, seed: int, dtype: str) -> dict[str, np.ndarray]:
    """Inputs, parameters, activations, loss and gradients of one batch, in ``dtype`` (params drawn in float64, cast)."""
    model = run.model.replace(dtype=dtype)
    params = {k: v.astype(dtype) for k, v in init_params(run.model.replace(dtype="float64"), seed=seed).items()}
    tokens, targets = _batch(run, seed)
    _, acts = run_with_cache(params, model, tokens)
    loss, grads, _ = loss_and_grads(params, model, tokens, targets)
    names = hook_names(model)

    def loss_with(deltas: dict) -> Any:  # the loss as a function of an offset added at every hook
        logits, _ = forward(params, model, tokens, hook=lambda name, value: value + deltas[name])
        return cross_entropy_forward(logits, targets)[0]

    zeros = {name: np.zeros(np.shape(acts[name]), dtype=dtype) for name in names}
    act_grads = autograd.grad(loss_with)(zeros)
    out = {"input.tokens": tokens.astype(np.int64), "input.targets": targets.astype(np.int64)}
    out |= {f"param.{k}": np.asarray(v, dtype=dtype) for k, v in params.items()}
    out |= {f"act.{k}": np.asarray(acts[k], dtype=dtype) for k in names}
    out["loss"] = np.asarray(loss, dtype=dtype)
    out |= {f"grad.param.{k}": np.asarray(v, dtype=dtype) for k, v in grads.items()}
    out |= {f"grad.act.{k}": np.asarray(act_grads[k], dtype=dtype) for k in names}
    return out


def mechanism_cases(seed: int, dtype: str, codes: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Every selected mechanism's golden cases (all registered ones by default) and their manifest entries."""
    tensors, about = {}, {}
    for m in mechanisms.MECHANISMS:
        if codes is not None and m.code not in codes:
            continue
        if m.golden is None:
            raise ValueError(f"mechanism {m.code}: no golden cases (its registry record needs golden='module:function')")
        cases, info = m.load("golden")(seed, dtype)
        assert all(name.startswith(f"{m.code}.") for name in cases), f"{m.code}: golden names must start with its code"
        tensors |= cases
        about[m.code] = {"slug": m.slug, "spec": m.spec, **info}
    return tensors, about


def _tolerance(x64: np.ndarray, x32: np.ndarray) -> dict[str, float]:
    if x64.dtype.kind not in "f" or x64.size == 0:
        return {"float64": 0.0, "float32": 0.0}
    top = float(np.max(np.abs(x64)))
    drift = float(np.max(np.abs(x64 - x32.astype(np.float64))))
    return {"float64": FLOAT64_RTOL * max(1.0, top), "float32": 4 * drift + 16 * float(np.finfo(np.float32).eps) * top}


def write_golden(run: RunConfig, seed: int, out: str | Path, dtype: str = "float64", codes: list[str] | None = None) -> Path:
    """Write ``golden.safetensors`` and ``manifest.json`` into ``out``; returns the folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    both = {d: core_tensors(run, seed, d) for d in ("float64", "float32")}
    cases = {d: mechanism_cases(seed, d, codes) for d in ("float64", "float32")}
    # Scalars are stored with shape (1,): safetensors has no 0-d tensors (they come back as (1,)).
    tensors = {k: v.reshape(1) if v.ndim == 0 else v for k, v in {**both[dtype], **cases[dtype][0]}.items()}
    data = st_save({k: np.ascontiguousarray(tensors[k]) for k in sorted(tensors)}, metadata={"format": "clearform-golden"})
    (out / "golden.safetensors").write_bytes(data)
    reference64 = {**both["float64"], **cases["float64"][0]}
    reference32 = {**both["float32"], **cases["float32"][0]}
    entries = {}
    for name in tensors:  # insertion order: inputs, parameters, activations in forward order, loss, gradients, cases
        value = tensors[name]
        hook = name.split(".", 1)[1] if name.startswith("act.") else name[len("grad.act."):] if name.startswith("grad.act.") else ""
        entries[name] = {
            "shape": list(value.shape), "dtype": str(value.dtype),
            "sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
            "tolerance": _tolerance(np.asarray(reference64[name]), np.asarray(reference32[name])),
            **({"meaning": _meaning(hook)} if hook else {}),
        }
    try:
        clearform_version = version("clearform")
    except PackageNotFoundError:  # run from a source tree without an install
        clearform_version = "unknown"
    manifest = {
        "format": "clearform-golden", "clearform_version": clearform_version, "dtype": dtype, "seed": seed,
        "config": run.to_dict(), "batch": {"tokens": "input.tokens", "targets": "input.targets (−1 = ignored)"},
        "order": list(tensors), "tensors": entries, "mechanisms": cases[dtype][1],
        "tolerance": "float64: 1e-10·max(1, max|x|); float32: 4·max|x64 − x32| + 16·eps32·max|x| [reconstructed]",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return out
