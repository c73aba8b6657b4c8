"""The DDCL block: a prototype dictionary in the FFN slot (specs/03-ddcl-incrt.md §2.2, A1).

Forward, for rows z_t of Z' = LN_0(X') (LN_0 without affine parameters, [reconstructed]:
a learnable gain could shrink every distance and cheat L_q) and prototypes P (K, d):

    d_tk = max(‖z_t‖² − 2 z_t·p_k + ‖p_k‖², 0)                     squared distances
    q_tk = softmax_k(−d_tk/τ)  (row max subtracted)                 [companion; standard form]
    y_t  = Σ_k q_tk p_k,  Y = QP                                    [companion] (DDCL-Att output)
    L_q = Σ_t Σ_k q_tk d_tk,  L_OLS = Σ_t ‖z_t − y_t‖²,  V = Σ_t Σ_k q_tk ‖p_k − y_t‖²   [companion]
    F = −τ Σ_t log Σ_k exp(−d_tk/τ),  H(q_t) = −Σ_k q_tk log q_tk    [reconstructed]

Identities (DDCL-T1/T2): L_q = L_OLS + V; V_t = ½ Σ_{j,k} q_tj q_tk ‖p_j − p_k‖²; L_q = F + τ Σ_t H(q_t).

Backward [reconstructed; checked against autograd]: with g_t = ∂L/∂y_t, upstream β' on each
token's L_q (β' = β/(B·n) for the mean) and γ' on each token's F, b_tk = g_t·p_k + β' d_tk:

    r_tk    = −(1/τ) q_tk (b_tk − Σ_j q_tj b_tj) + (β' + γ') q_tk          (total ∂L/∂d_tk)
            = −(1/τ) q_tk g_t·(p_k − y_t) + β' w_tk + γ' q_tk,  w_tk = q_tk (1 − (d_tk − d̄_t)/τ)
    ∂L/∂p_k = Σ_t q_tk g_t + 2 Σ_t r_tk (p_k − z_t)
    ∂L/∂z_t = 2 Σ_k r_tk (z_t − p_k)                 (then through LN_0)
    ∂L/∂τ   = τ⁻² Σ_t Σ_k q_tk b_tk (d_tk − d̄_t) − γ' Σ_t H(q_t);   ∂L/∂log τ = τ ∂L/∂τ

Entries where the clamp d ≥ 0 is active get no distance gradient (the clamp's derivative is 0).

In a model (``model.ffn = "ddcl"``) the block's parameters are ``blocks.{i}.ddcl.prototypes``
(K, d) and ``blocks.{i}.ddcl.log_tau`` (1,); K = ``model.d_mlp`` (8 when None) [reconstructed].
Hooks (local names): ``assign`` Q (B, T, K), ``lq`` the mean L̄_q (scalar), ``free_energy`` F̄
(scalar). The loss term β·L̄_q enters through the upstream gradient of the ``lq`` hook (the DDC
plug-in's ``extra_loss``), so the core's loss stays the task loss and the block's backward needs
no β of its own.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reference import mechanisms as registry  # the FFNKind record (the registry, not another mechanism)
from reference.backend import namespace
from reference.config import ConfigError
from reference.layers import Hook, no_hook
from reference.layers.layernorm import layernorm_backward, layernorm_forward

DEFAULT_PROTOTYPES = 8
"""K when ``model.d_mlp`` is None and ``model.ffn = "ddcl"`` [reconstructed]."""
DEFAULT_LOG_TAU = math.log(2.0)
"""Initial log τ of a model's DDCL block before calibration (τ = 2: 2λ_max for unit variance) [reconstructed]."""


# --------------------------------------------------------------------------- forward pieces


def sq_dists(z: Any, p: Any) -> Any:
    """z (..., d), p (K, d) -> D (..., K): ‖z − p_k‖² by expansion, clamped at 0 (rounding can go negative)."""
    xp = namespace(z, p)
    raw = xp.sum(z * z, axis=-1)[..., None] - 2.0 * (z @ p.T) + xp.sum(p * p, axis=-1)
    return xp.maximum(raw, 0.0)


def soft_assign(d: Any, tau: Any) -> Any:
    """D (..., K), τ > 0 -> Q (..., K) = softmax(−D/τ), row max subtracted (log-sum-exp form)."""
    xp = namespace(d, tau)
    s = -d / tau
    s = s - xp.max(s, axis=-1, keepdims=True)
    e = xp.exp(s)
    return e / xp.sum(e, axis=-1, keepdims=True)


def free_energy_rows(d: Any, tau: Any) -> Any:
    """D (..., K) -> F_t (...,) = −τ log Σ_k exp(−d_tk/τ), computed stably (min subtracted)."""
    xp = namespace(d, tau)
    m = xp.min(d, axis=-1, keepdims=True)
    return m[..., 0] - tau * xp.log(xp.sum(xp.exp(-(d - m) / tau), axis=-1))


def losses(z: Any, p: Any, tau: Any) -> dict[str, Any]:
    """z (N, d) or (..., d), p (K, d) -> per-token sums {lq, ols, v, f, h} (each (...,)) and q, y, d.

    ``v`` uses the definition Σ_k q_k‖p_k − y‖² (not the identity), so ``lq − ols − v`` is the
    identity residual that DDCL-T1 and H7 check.
    """
    xp = namespace(z, p, tau)
    d = sq_dists(z, p)
    q = soft_assign(d, tau)
    y = q @ p
    diff = z - y
    spread = p[None, :, :] - y.reshape(-1, 1, y.shape[-1])
    v = xp.sum(q.reshape(-1, q.shape[-1]) * xp.sum(spread * spread, axis=-1), axis=-1).reshape(q.shape[:-1])
    h = -xp.sum(q * xp.log(xp.maximum(q, 1e-300)), axis=-1)
    return {"lq": xp.sum(q * d, axis=-1), "ols": xp.sum(diff * diff, axis=-1), "v": v,
            "f": free_energy_rows(d, tau), "h": h, "q": q, "y": y, "d": d}


def decomposition(z: Any, p: Any, q: Any) -> dict[str, Any]:
    """For any q (..., K) on the simplex (not only a softmax): per-token Σ_k q‖z − p_k‖², ‖z − ȳ‖², Σ_k q‖p_k − ȳ‖²
    and the pairwise form ½ Σ_{j,k} q_j q_k ‖p_j − p_k‖² (DDCL-T1)."""
    xp = namespace(z, p, q)
    d = sq_dists(z, p)
    y = q @ p
    diff = z - y
    spread = sq_dists(y, p)
    return {"lq": xp.sum(q * d, axis=-1), "ols": xp.sum(diff * diff, axis=-1), "v": xp.sum(q * spread, axis=-1),
            "pairwise": pairwise_variance(q, p)}


def pairwise_variance(q: Any, p: Any) -> Any:
    """q (..., K), p (K, d) -> ½ Σ_{j,k} q_j q_k ‖p_j − p_k‖² (...,): V's pairwise form (DDCL-T1)."""
    xp = namespace(q, p)
    gram = sq_dists(p, p)
    return 0.5 * xp.sum((q @ gram) * q, axis=-1)


def ddcl_forward(params: dict, z: Any, hook: Hook = no_hook) -> tuple[Any, dict]:
    """z (..., d) already normalised, params {"prototypes": (K, d), "log_tau": ()} -> Y = QP (..., d).

    Hooks: ``assign`` (Q), ``lq`` (mean over tokens of Σ_k q d), ``free_energy`` (mean F_t).
    Runs under NumPy, CuPy and autograd (the oracle).
    """
    xp = namespace(z, params["prototypes"], params["log_tau"])
    p, tau = params["prototypes"], xp.exp(params["log_tau"])
    raw = xp.sum(z * z, axis=-1)[..., None] - 2.0 * (z @ p.T) + xp.sum(p * p, axis=-1)
    d = xp.maximum(raw, 0.0)
    q = hook("assign", soft_assign(d, tau))
    count = int(np.prod(z.shape[:-1]))
    hook("lq", xp.sum(q * d) / count)
    hook("free_energy", xp.sum(free_energy_rows(d, tau)) / count)
    y = q @ p
    return y, {"z": z, "p": p, "tau": tau, "d": d, "q": q, "y": y, "active": raw > 0.0, "count": count,
               "tau_shape": np.shape(params["log_tau"])}


def ddcl_backward(cache: dict, dy: Any, extra: dict | None = None) -> tuple[Any, dict]:
    """dy (..., d) -> dz (..., d), grads {"prototypes": (K, d), "log_tau": ()} (formulas in the module docstring).

    ``extra``: upstream gradients of the scalar hooks ``lq`` and ``free_energy`` (β and γ for the
    means; per token they become β' = β/N, γ' = γ/N).
    """
    extra = extra or {}
    xp = namespace(dy)
    z, p, d, q, y, n = (cache[k] for k in ("z", "p", "d", "q", "y", "count"))
    tau = float(cache["tau"].reshape(-1)[0])
    beta = float(extra.get("lq", 0.0)) / n
    gamma = float(extra.get("free_energy", 0.0)) / n
    if "assign" in extra:
        raise ValueError("ddcl_backward: an upstream gradient on 'assign' is not supported")
    b = dy @ p.T + beta * d                                  # ∂L/∂q_tk
    centred = b - xp.sum(q * b, axis=-1, keepdims=True)
    r = -(q * centred) / tau + (beta + gamma) * q            # ∂L/∂d_tk
    r = xp.where(cache["active"], r, 0.0)
    k = p.shape[0]
    z2, r2, q2, g2 = z.reshape(-1, z.shape[-1]), r.reshape(-1, k), q.reshape(-1, k), dy.reshape(-1, dy.shape[-1])
    d_p = q2.T @ g2 + 2.0 * (xp.sum(r2, axis=0)[:, None] * p - r2.T @ z2)
    dz = 2.0 * (xp.sum(r, axis=-1, keepdims=True) * z - r @ p)
    d_bar = xp.sum(q * d, axis=-1, keepdims=True)
    d_tau = float(xp.sum(q * b * (d - d_bar))) / (tau * tau)
    if gamma:
        h = -xp.sum(q * xp.log(xp.maximum(q, 1e-300)), axis=-1)
        d_tau -= gamma * float(xp.sum(h))
    return dz, {"prototypes": d_p, "log_tau": xp.full(cache["tau_shape"], tau * d_tau, dtype=p.dtype)}


def lq_weights(q: Any, d: Any, tau: Any) -> Any:
    """w_tk = q_tk (1 − (d_tk − d̄_t)/τ); Σ_k w_tk = 1 (spec §2.2, pure-L_q gradient weights)."""
    xp = namespace(q, d)
    d_bar = xp.sum(q * d, axis=-1, keepdims=True)
    return q * (1.0 - (d - d_bar) / tau)


def lq_tau_grad(q: Any, d: Any, tau: float) -> float:
    """∂L_q/∂τ = τ⁻² Σ_t Var_{q_t}(d_t) ≥ 0 (DDCL-T2): L_q alone only ever lowers τ."""
    xp = namespace(q, d)
    d_bar = xp.sum(q * d, axis=-1, keepdims=True)
    return float(xp.sum(q * (d - d_bar) ** 2)) / (tau * tau)


# --------------------------------------------------------------------------- dual (GBCL) form


def dual_prototypes(w: Any, anchors: Any) -> Any:
    """W (m, K), anchors Z_anc (m, d) -> P = Wᵀ Z_anc (K, d) [companion GBCL; reconstructed for token sets]."""
    return w.T @ anchors


def dual_backward(d_p: Any, anchors: Any) -> Any:
    """∂L/∂P (K, d) -> ∂L/∂W = Z_anc (∂L/∂P)ᵀ (m, K)."""
    return anchors @ d_p.T


# --------------------------------------------------------------------------- the FFN slot of the core model


def block_forward(params: dict, x: Any, config: Any, hook: Hook = no_hook) -> tuple[Any, dict]:
    """The FFN slot: x (B, T, D) residual -> DDCL(LN_0(x)) (B, T, D); LN_0 has no affine parameters."""
    xp = namespace(x)
    ones, zeros = xp.ones(x.shape[-1], dtype=x.dtype), xp.zeros(x.shape[-1], dtype=x.dtype)
    z, ln_cache = layernorm_forward({"g": ones, "b": zeros}, x, config.ln_eps)
    y, cache = ddcl_forward(params, z, hook)
    cache["ln0"] = ln_cache
    return y, cache


def block_backward(cache: dict, dy: Any, extra: dict) -> tuple[Any, dict]:
    """dy (B, T, D) -> dx (B, T, D) and {"prototypes", "log_tau"} (through :func:`ddcl_backward`, then LN_0)."""
    dz, grads = ddcl_backward(cache, dy, extra)
    dx, _ = layernorm_backward(cache["ln0"], dz)
    return dx, grads


def n_prototypes(config: Any) -> int:
    """K of a model's DDCL blocks: ``model.d_mlp``, or 8 when None [reconstructed]."""
    return DEFAULT_PROTOTYPES if config.d_mlp is None else config.d_mlp


def param_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    """The block's local parameter shapes: prototypes (K, D), log_tau (1,) (a vector, as the optimiser updates arrays)."""
    return {"prototypes": (n_prototypes(config), config.d_model), "log_tau": (1,)}


def init(name: str, shape: tuple[int, ...], config: Any, generator: np.random.Generator) -> np.ndarray:
    """Initial values before calibration [reconstructed]: prototypes N(0, 1) (LN'd inputs have unit scale), log τ = log 2.

    Calibration (``ddcl_init``: k-means++ on the first batch, τ₀ = 2λ_max(Σ₀)) replaces both.
    """
    if name == "log_tau":
        return np.full(shape, DEFAULT_LOG_TAU)
    return generator.standard_normal(shape)


def validate(config: Any) -> None:
    """Raise ConfigError unless K ≥ 2 (a one-prototype dictionary cannot compete)."""
    if n_prototypes(config) < 2:
        raise ConfigError(f"model.d_mlp: {config.d_mlp} is not >= 2 (ffn 'ddcl' uses d_mlp as the prototype count K)")


def param_count(config: Any) -> int:
    """Parameters of one DDCL block (K·D + 1)."""
    return n_prototypes(config) * config.d_model + 1


FFN_KINDS = {
    "ddcl": registry.FFNKind(
        prefix="ddcl", param_shapes=param_shapes, init=init, forward=block_forward, backward=block_backward,
        hooks=("assign", "lq", "free_energy"), validate=validate, param_count=param_count, own_norm=True,
    ),
}
"""The FFN-slot kinds this mechanism adds (``model.ffn``), read by the core through the registry's ``ffn`` field."""
