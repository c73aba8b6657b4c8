"""Interventions at one scale and generation with common random numbers (specs/04-msma.md §3 A8, A9). [reconstructed]

A8, for every hidden index k of the scale's set S_s, on hook ``blocks.{k−1}.resid_post``
(k = 0: ``blocks.0.resid_pre``):

* ``scale``      h ← αh;
* ``noise``      h[b, t] += σ·rms(h[b, t])·ε[b, k, t], ε ~ N(0, I_d) drawn once per (sequence, layer,
  position) before generation, so every step of a generation sees the same noise at a position;
* ``translate``  h[b, t] += κ‖h[b, t]‖u, u a unit direction (the top principal direction of the raw
  pooled scale, sign with mean(h_s)·u ≥ 0);
* ``attn``       block i = k − 1 ≥ 0: its attention scores divided by τ_a (the forward's
  per-layer ``temperature``).

A neutral strength (α = 1, σ = 0, κ = 0, τ_a = 1) registers no hook at all, so its logits are
bit-identical to the plain model's (H6).

A9: per (prompt, sample) uniforms U[step] are drawn before generation from
``[seed, 100, prompt, sample]`` and are the same in every condition; each step applies the
temperature, then top-p (sort descending, keep the shortest prefix with mass ≥ top_p,
renormalise) and takes the inverse CDF at U[step]; ``new_tokens`` steps, no early stop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference.config import ConfigError
from reference.mechanisms.msma.scales import hook_of
from reference.model import forward

TYPES = ("scale", "noise", "translate", "attn")
NEUTRAL = {"scale": 1.0, "noise": 0.0, "translate": 0.0, "attn": 1.0}


@dataclass(frozen=True)
class Intervention:
    """One condition: a scale's hidden indices, a type and a strength; ``noise`` (rows, |S|, T, d) pre-drawn."""

    indices: tuple[int, ...]
    kind: str
    strength: float
    noise: np.ndarray | None = None
    direction: np.ndarray | None = None

    @property
    def neutral(self) -> bool:
        return self.strength == NEUTRAL[self.kind]


def check_intervention(kind: str, indices: tuple[int, ...]) -> None:
    """ConfigError for an unknown type or an ``attn`` intervention on a scale whose only index is 0."""
    if kind not in TYPES:
        raise ConfigError(f"msma.interventions: type {kind!r} is not one of {', '.join(TYPES)}")
    if kind == "attn" and all(k == 0 for k in indices):
        raise ConfigError("msma.interventions: 'attn' needs a block: the scale's only hidden index is 0 (the embedding)")


def draw_noise(rows_seeds: list[list[int]], n_idx: int, length: int, d: int) -> np.ndarray:
    """ε (rows, |S|, T, d): one N(0, I) draw per (sequence, layer, position), each row from its own seed list."""
    return np.stack([np.random.default_rng(s).standard_normal((n_idx, length, d)) for s in rows_seeds])


def forward_kwargs(iv: Intervention | None, n_layers: int, rows: slice | None = None) -> dict[str, Any]:
    """The forward arguments of a condition: {} when neutral; ``hook`` and/or ``temperature`` otherwise."""
    if iv is None or iv.neutral:
        return {}
    check_intervention(iv.kind, iv.indices)
    if iv.kind == "attn":
        temps = [1.0] * n_layers
        for k in iv.indices:
            if k >= 1:
                temps[k - 1] = iv.strength
        return {"temperature": temps}
    slot = {hook_of(k, n_layers): j for j, k in enumerate(iv.indices)}

    def hook(name: str, value: Any) -> Any:
        j = slot.get(name)
        if j is None:
            return value
        if iv.kind == "scale":
            return iv.strength * value
        if iv.kind == "noise":
            t = value.shape[1]
            eps = iv.noise[rows, j, :t] if rows is not None else iv.noise[: value.shape[0], j, :t]
            rms = np.sqrt(np.mean(value * value, axis=-1, keepdims=True))
            return value + iv.strength * rms * eps
        norm = np.linalg.norm(value, axis=-1, keepdims=True)
        return value + iv.strength * norm * iv.direction

    return {"hook": hook}


def top_p_pick(logits: np.ndarray, u: float, temperature: float, top_p: float) -> int:
    """Temperature, then nucleus: sort descending, shortest prefix with mass ≥ top_p, renormalise, inverse CDF at u."""
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    sorted_p = p[order]
    cum = np.cumsum(sorted_p)
    keep = int(np.searchsorted(cum, top_p - 1e-12) + 1)
    kept = sorted_p[:keep] / sorted_p[:keep].sum()
    idx = int(np.searchsorted(np.cumsum(kept), u, side="right"))
    return int(order[min(idx, keep - 1)])


def generate_batch(params: dict, config: Any, prompts: np.ndarray, uniforms: np.ndarray, *, new_tokens: int,
                   temperature: float, top_p: float, kwargs_for: Callable[[], dict] | None = None) -> np.ndarray:
    """A9 on a batch: prompts (B, P) int, uniforms (B, new_tokens) -> continuations (B, new_tokens).

    Every row is generated with the same forward arguments (``kwargs_for()``); the whole sequence is
    recomputed each step (the core has no KV cache), so pre-drawn noise sits at fixed positions.
    """
    ids = np.array(prompts, dtype=np.int64)
    kwargs = kwargs_for() if kwargs_for else {}
    for step in range(new_tokens):
        window = ids[:, -config.context:]
        logits, _ = forward(params, config, window, **kwargs)
        last = np.asarray(logits[:, -1], dtype=np.float64)
        nxt = [top_p_pick(last[b], float(uniforms[b, step]), temperature, top_p) for b in range(ids.shape[0])]
        ids = np.concatenate([ids, np.array(nxt, dtype=np.int64)[:, None]], axis=1)
    return ids[:, prompts.shape[1]:]


def logit_kl(base: np.ndarray, other: np.ndarray) -> float:
    """Mean over positions of KL(softmax z_base ‖ softmax z_int) (nats)."""
    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z.astype(np.float64)
        m = z.max(-1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))

    lb, lo = log_softmax(base), log_softmax(other)
    return float(np.mean(np.sum(np.exp(lb) * (lb - lo), axis=-1)))
