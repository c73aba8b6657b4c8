"""A6 — theory mode: attention as the minimiser of a variational objective (spec §2.2). [reconstructed]

a_i = argmin_{a∈Δ} −z_i·a + τ Σ_j a_j ln a_j + κ Σ_{g≠g*} w_g ‖a_{G_g}‖₂, solved per row by
entropic mirror descent; forward only (no backward: training refuses ``operator="variational"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference.backend import namespace, to_host
from reference.config import ModelConfig, check_choice
from reference.mechanisms.locality.config import LocalityConfig
from reference.mechanisms.locality.dial import layer_lambdas
from reference.mechanisms.locality.layout import Layout, check_layout_matches
from reference.model import run_with_cache


class SolverError(RuntimeError):
    """A6 reached ``variational_max_iter`` before every row converged."""


@dataclass(frozen=True)
class VariationalResult:
    """A6's output: ``a`` (..., n) the minimisers, ``residual`` (...,) max γ − min γ over the
    visible keys when each row stopped, ``iterations`` the count used by the slowest row."""

    a: np.ndarray
    residual: np.ndarray
    iterations: int


def _log_softmax_rows(x: np.ndarray) -> np.ndarray:
    """log softmax along the last axis; −∞ entries stay −∞ (masked keys)."""
    top = np.max(x, axis=-1, keepdims=True)
    return x - top - np.log(np.sum(np.exp(x - top), axis=-1, keepdims=True))


def variational_attention(
    z: Any,
    block_id: Any,
    target_block: Any,
    tau: float = 1.0,
    kappa: Any = 0.0,
    *,
    visible: Any = None,
    group_weight: str = "sqrt_size",
    max_iter: int = 50_000,
    tol: float = 1e-11,
) -> VariationalResult:
    """A6: a_i = argmin_{a∈Δ} −z_i·a + τ Σ_j a_j ln a_j + κ Σ_{g≠g*} w_g ‖a_{G_g}‖₂, per row. [reconstructed §2.2]

    z (..., n) float64 logits; block_id (..., n) (broadcast) block of each key;
    target_block (...,) g* of each row (−1: an unpenalised row, giving softmax(z/τ));
    kappa scalar or (...,); visible (..., n) bool (default all); w_g = √k_g or 1 over
    the row's visible keys. Every row is solved at once.

    Entropic mirror descent: ℓ = log a starts at log_softmax(z/τ); with
    γ_j = −z_j + τℓ_j + κ w_{b(j)} a_j/‖a_{G_b(j)}‖₂ (∂F/∂a_j less the constant τ) the step
    is ℓ ← log_softmax(ℓ − ηγ), η = 1/(τ + κ max_j w_j). F is (τ + κ max w)-smooth and
    τ-strongly convex relative to the negative entropy, so the iterates converge
    linearly (factor 1 − τ/(τ + κ max w)). A row stops (and is frozen) when
    max γ − min γ ≤ tol·(1 + max|z|) over its visible keys: all partial derivatives
    equal is the stationarity condition on the simplex's interior, where the
    minimiser lies (the entropy's slope is −∞ at the boundary). Raises
    :class:`SolverError` at ``max_iter``, never returns unconverged rows.
    """
    check_choice("locality", "group_weight", group_weight, ("sqrt_size", "one"))
    z = np.asarray(z, dtype=np.float64)
    shape, n = z.shape, z.shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    z2 = z.reshape(rows, n)
    blocks = np.broadcast_to(np.asarray(block_id, dtype=np.int64), shape).reshape(rows, n)
    target = np.broadcast_to(np.asarray(target_block, dtype=np.int64), shape[:-1]).reshape(rows)
    vis = np.ones((rows, n), bool) if visible is None else np.broadcast_to(np.asarray(visible, bool), shape).reshape(rows, n)
    kappa = np.broadcast_to(np.asarray(kappa, dtype=np.float64), shape[:-1]).reshape(rows)
    kappa = np.where(target >= 0, kappa, 0.0)  # a free row is not penalised
    n_blocks = int(blocks.max()) + 1
    onehot = ((blocks[:, :, None] == np.arange(n_blocks)) & vis[:, :, None]).astype(np.float64)  # (R, n, NB)
    k = onehot.sum(axis=1)  # (R, NB): visible keys per block
    size = np.sqrt(k) if group_weight == "sqrt_size" else np.ones_like(k)
    w_block = size * (k > 0) * (np.arange(n_blocks)[None, :] != target[:, None])
    w = np.take_along_axis(w_block, blocks, axis=1) * vis  # (R, n): w_{b(j)}, 0 on G* and masked keys
    eta = 1.0 / (tau + kappa * w.max(axis=1))
    threshold = tol * (1.0 + np.max(np.where(vis, np.abs(z2), 0.0), axis=1))
    kw = kappa[:, None] * w  # κ w_{b(j)}
    key_block = np.arange(rows)[:, None] * n_blocks + blocks  # (R, n) index into the flattened (R, NB) norms
    z_vis = np.where(vis, z2, 0.0)
    logs = _log_softmax_rows(np.where(vis, z2 / tau, -np.inf))
    done = np.zeros(rows, bool)
    residual = np.full(rows, np.nan)
    for iteration in range(max_iter + 1):
        a = np.exp(logs)  # 0 on masked keys
        norms = np.sqrt(np.einsum("rn,rng->rg", a * a, onehot))
        # a_j ≤ ‖a_{G_b(j)}‖₂, so the guarded ratio is finite (and 0 where w = 0).
        penalty = kw * a / np.maximum(norms.ravel()[key_block], 1e-300)
        gamma = np.where(vis, tau * np.where(vis, logs, 0.0) - z_vis + penalty, 0.0)
        spread = np.where(vis, gamma, -np.inf).max(axis=1) - np.where(vis, gamma, np.inf).min(axis=1)
        newly = ~done & (spread <= threshold)
        residual = np.where(newly, spread, residual)
        done |= newly
        if done.all():
            return VariationalResult(a.reshape(shape), residual.reshape(shape[:-1]), iteration)
        if iteration == max_iter:
            break
        stepped = _log_softmax_rows(np.where(vis, logs - eta[:, None] * gamma, -np.inf))
        logs = np.where(done[:, None], logs, stepped)
    raise SolverError(
        f"variational_attention: {int((~done).sum())} of {rows} rows did not converge in {max_iter} iterations "
        f"(tolerance {tol:g}); raise locality.variational_max_iter or variational_tol"
    )


def variational_forward(params: dict, config: ModelConfig, tokens: Any, layout: Layout, lam: float, cfg: LocalityConfig):
    """The model in theory mode (``operator="variational"``; forward only): (logits, ActivationCache).

    Each layer's pattern is replaced by A6 on its scores z with κ = λ_ℓ κ_max and
    τ = ``cfg.temperature``, through the core's replacing hooks; the scores hook
    is read before the pattern hook in every layer. κ = 0 is softmax(z/τ).
    """

    check_layout_matches(layout, tokens)
    lams = layer_lambdas(lam, config.n_layers, cfg)
    scores: dict[int, Any] = {}
    hooks: dict[str, Callable[[Any], Any]] = {}
    b, t = layout.shape
    for layer in range(config.n_layers):

        def keep(value: Any, layer: int = layer) -> Any:
            scores[layer] = value
            return value

        def solve(pattern: Any, layer: int = layer) -> Any:
            z = np.asarray(to_host(scores[layer]), dtype=np.float64)  # (B, H, T, T)
            result = variational_attention(
                z, layout.block_id[:, None, None, :], layout.target_block[:, None, :],
                cfg.temperature, lams[layer] * cfg.penalty_max, visible=layout.visible,
                group_weight=cfg.group_weight, max_iter=cfg.variational_max_iter, tol=cfg.variational_tol,
            )
            return namespace(pattern).asarray(result.a.astype(pattern.dtype))

        hooks[f"blocks.{layer}.attn.scores"] = keep
        hooks[f"blocks.{layer}.attn.pattern"] = solve
    return run_with_cache(params, config, tokens, hooks=hooks, temperature=cfg.temperature)
