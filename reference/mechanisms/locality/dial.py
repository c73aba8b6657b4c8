"""A2 — the dial's attention bias and per-layer schedules; A3 — single attention rows (spec §2.2, §2.6). [reconstructed]

λ is a runtime argument of forward, evaluation and generation: :func:`dial_kwargs` turns a
λ into the forward arguments (``attn_bias``, ``temperature``) of
:func:`reference.model.forward`, and never touches the parameters. The bias is made in the
array module and dtype of the tokens it is for (NumPy, CuPy), so the dial runs on a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from reference.backend import namespace
from reference.config import ConfigError
from reference.layers.attention import attention_forward
from reference.mechanisms.locality.config import LocalityConfig, check_lambda
from reference.mechanisms.locality.layout import Layout, check_layout_matches


def layer_lambdas(lam: float, n_layers: int, cfg: LocalityConfig) -> list[float]:
    """λ_ℓ for ℓ = 0 … L−1 (spec §2.6, PROG). [reconstructed]

    ``"uniform"``: λ_ℓ = λ on ``cfg.layers`` (None = every layer), 0 elsewhere.
    ``"progressive"``: λ_ℓ = λ·(ℓ/(L−1))^p with p = ``schedule_power`` (the spec's
    ((ℓ−1)/(L−1))^p with ℓ counted from 1); L = 1 gives λ. ``cfg.layers`` restricts
    either schedule. λ outside [0, 1] or NaN is a ConfigError.
    """
    check_lambda("lam", lam)
    lam = float(lam)
    if cfg.layers is not None:
        for layer in cfg.layers:
            if layer >= n_layers:
                raise ConfigError(f"locality.layers: {layer} is not a layer of a {n_layers}-layer model")
    chosen = set(range(n_layers)) if cfg.layers is None else set(cfg.layers)
    if cfg.layer_schedule == "uniform" or n_layers == 1:
        values = [lam] * n_layers
    else:
        values = [lam * (layer / (n_layers - 1)) ** cfg.schedule_power for layer in range(n_layers)]
    return [v if layer in chosen else 0.0 for layer, v in enumerate(values)]


def layer_temperatures(lams: Sequence[float], cfg: LocalityConfig) -> list[float]:
    """τ_ℓ: ``temperature`` τ, or τ(τ_min/τ)^{λ_ℓ} with ``dial_temperature`` τ_min (ablation). [reconstructed]"""
    tau = cfg.temperature
    if cfg.dial_temperature is None:
        return [tau] * len(lams)
    return [tau * (cfg.dial_temperature / tau) ** lam for lam in lams]


def locality_bias(layout: Layout, lam_layer: float, beta: float, dtype: Any = np.float64, like: Any = None) -> Any:
    """A2: the additive bias −λ_ℓ·β·off of one layer, (B, 1, T, T), or None when λ_ℓ = 0. [reconstructed]

    off_ij = 1 when key j is visible, outside G*(i), and row i has a relevant block.
    λ_ℓ = 0 returns None, so the layer runs exactly the standard attention (no
    addition at all: bit-identical). β = ∞ gives a hard mask: −∞ on off keys.
    The bias has the model's ``dtype``, so float32 training stays float32, and the
    array module of ``like`` (the tokens it is for: NumPy by default, CuPy on a GPU).
    """
    if lam_layer == 0.0:
        return None
    xp = np if like is None else namespace(like)
    off = xp.asarray(layout.off[:, None])
    if beta == math.inf:
        return xp.where(off, -xp.inf, 0.0).astype(dtype)
    return (-(lam_layer * beta) * off).astype(dtype)


def dial_kwargs(
    layout: Layout,
    lam: float,
    cfg: LocalityConfig,
    n_layers: int,
    *,
    dtype: Any = np.float64,
    inference: bool = True,
    lams: Sequence[float] | None = None,
    tokens: Any = None,
) -> dict:
    """Forward arguments that set the dial to λ: ``{"attn_bias": [...], "temperature": ...}``.

    Pass them to :func:`reference.model.forward` / ``run_with_cache`` / ``evaluate``.
    ``inference`` picks β = ``inference_bias_max`` (None → ``bias_max``; may be ∞),
    else ``bias_max``. With ``"bias"`` off ``dial_hooks`` no bias is added (λ then acts
    through the training penalty only). ``lams`` overrides the schedule's λ_ℓ.
    ``tokens``: when given, the layout must match their (B, T) (InputError otherwise), and
    the bias is made in their array module (NumPy or CuPy).
    """
    if tokens is not None:
        check_layout_matches(layout, tokens)
    lams = layer_lambdas(lam, n_layers, cfg) if lams is None else list(lams)
    beta = cfg.inference_bias if inference else cfg.bias_max
    use_bias = "bias" in cfg.dial_hooks
    biases = [locality_bias(layout, lam_l, beta, dtype, tokens) if use_bias else None for lam_l in lams]
    kwargs: dict[str, Any] = {"attn_bias": biases}
    temps = layer_temperatures(lams, cfg)
    if any(tau != 1.0 for tau in temps):
        kwargs["temperature"] = temps
    return kwargs


def attention_rows(z: Any, bias: Any = None, temperature: float = 1.0) -> np.ndarray:
    """softmax((z + bias)/τ) of single attention rows, computed by the core attention layer (A3).

    z, bias: (R, n) float64 -> (R, n). The proofs evaluate theorems on this function,
    so that they test the project's own attention code rather than a re-implementation:
    the layer runs on R one-query sequences whose ``scores`` hook is replaced by z, and
    the ``pattern`` hook is read back (bias, temperature and softmax are the layer's).
    """
    z = np.asarray(z, dtype=np.float64)
    r, n = z.shape
    zeros = np.zeros((1, 1))
    params = {"w_q": zeros, "w_k": zeros, "w_v": zeros, "w_o": zeros}
    seen: dict[str, Any] = {}

    def hook(name: str, value: Any) -> Any:
        if name == "scores":
            return z[:, None, None, :]  # (R, heads 1, one query, n keys)
        if name == "pattern":
            seen["pattern"] = value
        return value

    full_bias = None if bias is None else np.asarray(bias, dtype=np.float64)[:, None, None, :]
    attention_forward(params, np.zeros((r, n, 1)), 1, causal=False, bias=full_bias, temperature=temperature, hook=hook)
    return seen["pattern"][:, 0, 0, :]
