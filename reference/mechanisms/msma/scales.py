"""Scales of the hidden states: partitions, hook table, pooling, standardisation (specs/04-msma.md §2.1, §2.2; A1, A2).

Hidden index k ∈ {0 … n_L}: H^(0) is hook ``blocks.0.resid_pre`` (the embedding output),
H^(k) for k ≥ 1 is ``blocks.{k−1}.resid_post``; ``last_hidden="final_norm"`` replaces H^(n_L) by
the final-norm output (Hugging Face GPT-2's ``hidden_states`` convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from reference.config import ConfigError, InputError
from reference.model import run_with_cache

SCALES = ("local", "intermediate", "global")
"""The three scales, in layer order (S_L, S_I, S_G)."""
PAIRS = {"GI": ("global", "intermediate"), "IL": ("intermediate", "local")}
"""(source, target) of each learned map: the figure's decoding direction G → I → L (§2.1)."""

_FIXED = {  # [author-code] / [author-readme] presets: (n_L they need, local, intermediate, global)
    "code_bert": (12, range(0, 4), range(4, 8), range(8, 11)),
    "figure": (12, range(1, 5), range(5, 9), range(9, 13)),
    "readme_gpt2": (12, range(0, 3), range(3, 9), range(9, 13)),
    "readme_bert": (12, range(0, 5), range(5, 9), range(9, 13)),
    "readme_t5": (6, range(0, 3), range(3, 5), range(5, 7)),
}


def _thirds(indices: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Contiguous blocks of sizes (q + [r = 2], q + [r ≥ 1], q), q = n // 3, r = n mod 3. [reconstructed]"""
    n = len(indices)
    q, r = divmod(n, 3)
    sizes = (q + (r == 2), q + (r >= 1), q)
    a, b = sizes[0], sizes[0] + sizes[1]
    return tuple(indices[:a]), tuple(indices[a:b]), tuple(indices[b:])


def partition(spec: Any, n_layers: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The (local, intermediate, global) hidden-index sets of a preset or explicit partition (§2.1).

    ``"thirds"`` (default, [reconstructed]) cuts {1 … n_L}; ``"code"`` ([author-code] GPT-2) cuts
    {0 … n_L−1}; the fixed presets need their n_L. Raises ConfigError naming ``partition`` for an
    empty, overlapping, unordered or out-of-range set, or a preset on the wrong n_L.
    """
    if spec in ("thirds", "code"):
        if n_layers < 3:
            raise ConfigError(f"msma.partition: {spec!r} needs n_L >= 3 blocks, the model has {n_layers}")
        parts = _thirds(list(range(1, n_layers + 1)) if spec == "thirds" else list(range(0, n_layers)))
    elif isinstance(spec, str):
        if spec not in _FIXED:
            raise ConfigError(f"msma.partition: {spec!r} is not a known preset")
        need, *sets = _FIXED[spec]
        if n_layers != need:
            raise ConfigError(f"msma.partition: preset {spec!r} needs n_L = {need}, the model has {n_layers}")
        parts = tuple(tuple(s) for s in sets)
    else:
        parts = tuple(tuple(int(k) for k in s) for s in spec)
    if len(parts) != 3 or any(not p for p in parts):
        raise ConfigError(f"msma.partition: {spec!r} needs three non-empty sets (local, intermediate, global)")
    flat = [k for p in parts for k in p]
    if min(flat) < 0 or max(flat) > n_layers:
        raise ConfigError(f"msma.partition: {spec!r} has an index outside 0 … {n_layers}")
    if len(set(flat)) != len(flat):
        raise ConfigError(f"msma.partition: {spec!r} has overlapping sets")
    if not (max(parts[0]) < min(parts[1]) and max(parts[1]) < min(parts[2])):
        raise ConfigError(f"msma.partition: {spec!r} is not ordered (max local < min intermediate < min global)")
    return parts  # type: ignore[return-value]


def hook_of(k: int, n_layers: int, last_hidden: str = "resid") -> str:
    """The hook name of hidden index k (§2.1)."""
    if k == 0:
        return "blocks.0.resid_pre"
    if k == n_layers and last_hidden == "final_norm":
        return "final_norm"
    return f"blocks.{k - 1}.resid_post"


def pool_sequence(hidden: Sequence[Any], weights: Any) -> np.ndarray:
    """h[b] = (1/|S|) Σ_{k∈S} Σ_t w_bt H^(k)[b, t, :] / Σ_t w_bt: per-sequence mean over tokens, then layers (§2.2).

    hidden: |S| arrays (B, T, d); weights (B, T): the valid mask, or all ones (``pad_in_pool``).
    Returns (B, d) float64. A sequence with Σ_t w_bt = 0 is an InputError.
    """
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(1)
    if np.any(total <= 0):
        raise InputError(f"msma pooling: sequence {int(np.argmax(total <= 0))} has no valid token")
    acc = sum(np.einsum("bt,btd->bd", w, np.asarray(h, dtype=np.float64)) for h in hidden)
    return acc / (len(hidden) * total[:, None])


def pool_tokens(hidden: Sequence[Any], valid: Any) -> np.ndarray:
    """One row per valid (b, t): the layer mean only (``pool="token"``, [reconstructed]) -> (n_valid, d)."""
    mean = sum(np.asarray(h, dtype=np.float64) for h in hidden) / len(hidden)
    return mean[np.asarray(valid, dtype=bool)]


def pool_backward(d_pooled: Any, weights: Any, n_layers_in_scale: int) -> np.ndarray:
    """Adjoint of :func:`pool_sequence` for one of its layers: d H[b, t] = w_bt/(|S| Σ_t w_bt) · d h[b] (§2.5)."""
    w = np.asarray(weights, dtype=np.float64)
    coef = w / (n_layers_in_scale * w.sum(1, keepdims=True))
    return coef[:, :, None] * np.asarray(d_pooled)[:, None, :]


def scale_features(params: dict, config: Any, tokens: np.ndarray, valid: np.ndarray, parts: tuple,
                   *, pad_in_pool: bool = False, last_hidden: str = "resid", batch: int = 64,
                   hooks: dict | None = None) -> dict[str, np.ndarray]:
    """A1: pooled scale vectors {local, intermediate, global}: (N, d) float64, batches of ``batch`` sequences.

    Only the needed hooks are recorded; a hook with non-finite values is an InputError naming it.
    """
    n_layers = config.n_layers
    names = {s: [hook_of(k, n_layers, last_hidden) for k in ks] for s, ks in zip(SCALES, parts)}
    wanted = sorted({h for hs in names.values() for h in hs})
    out: dict[str, list] = {s: [] for s in SCALES}
    for start in range(0, tokens.shape[0], batch):
        tok = tokens[start:start + batch]
        w = np.ones(tok.shape) if pad_in_pool else valid[start:start + batch]
        _, cache = run_with_cache(params, config, tok, names=wanted, hooks=hooks)
        for h in wanted:
            if h not in cache:
                raise InputError(f"msma features: hook {h!r} was not recorded (does the model have it?)")
            if not np.all(np.isfinite(np.asarray(cache[h]))):
                raise InputError(f"msma features: hook {h!r} holds non-finite values")
        for s in SCALES:
            out[s].append(pool_sequence([cache[h] for h in names[s]], w))
    return {s: np.concatenate(v) for s, v in out.items()}


def standardise_fit(train: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A2 (``standardize="joint"``): per-dimension mean and sd over the stacked train rows of all three scales.

    sd floored at 10⁻⁸·max sd. Never per scale: that alone zeroes the diagonal KL (MSA-T10).
    """
    stacked = np.vstack([train[s] for s in SCALES])
    mu, sd = stacked.mean(0), stacked.std(0)
    return mu, np.maximum(sd, 1e-8 * sd.max())


def standardise(rows: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """(rows − μ)/σ with the joint train statistics."""
    return (rows - mu) / sd
