"""Named attention heads with a learned temperature τ_h (spec §2.1, §2.4) [reconstructed].

Head h of a growing layer owns ``w_q``, ``w_k`` (d, d_k), ``w_v`` (d, d_v), ``w_o`` (d_v, d) and
``log_tau`` (1,); with Z the layer's normalised input (B, n, d)::

    S_h = Z W_Q W_Kᵀ Zᵀ / (√d_k · τ_h)      (+ causal mask)
    O_h = softmax_rows(S_h) Z W_V W_O

and ∂L/∂log τ_h = −Σ (∂L/∂S_h ⊙ S_h) (spec §2.2). τ_h is clamped to ``attn_tau_clamp`` by the
caller after each step (the clamp is not differentiated). M_h = W_Q W_Kᵀ, M_{a,h} = (M_h − M_hᵀ)/2.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reference.backend import namespace
from reference.layers.attention import softmax


def head_forward(params: dict, z: Any, causal: bool = True) -> tuple[Any, dict]:
    """z (B, n, d) -> O_h (B, n, d) and the cache; params {w_q, w_k, w_v, w_o, log_tau}."""
    xp = namespace(z, params["w_q"], params["log_tau"])
    q, k, v = z @ params["w_q"], z @ params["w_k"], z @ params["w_v"]
    tau = xp.exp(params["log_tau"])
    s = (q @ xp.swapaxes(k, -1, -2)) / (math.sqrt(params["w_q"].shape[1]) * tau)
    n = z.shape[-2]
    if causal:
        s = xp.where(xp.tril(xp.ones((n, n), dtype=bool)), s, -1e30)
    a = softmax(s, axis=-1)
    hv = a @ v
    out = hv @ params["w_o"]
    return out, {"z": z, "q": q, "k": k, "v": v, "s": s, "a": a, "hv": hv, "tau": tau, "p": params, "causal": causal}


def head_backward(cache: dict, d_out: Any) -> tuple[Any, dict]:
    """d O_h (B, n, d) -> dZ (B, n, d) and grads of {w_q, w_k, w_v, w_o, log_tau}."""
    xp = namespace(d_out)
    z, q, k, v, s, a, hv, p = (cache[n] for n in ("z", "q", "k", "v", "s", "a", "hv", "p"))
    flat = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731
    d_wo = flat(hv).T @ flat(d_out)
    d_hv = d_out @ p["w_o"].T
    d_a = d_hv @ xp.swapaxes(v, -1, -2)
    d_v = xp.swapaxes(a, -1, -2) @ d_hv
    d_s = a * (d_a - xp.sum(d_a * a, axis=-1, keepdims=True))   # softmax's vector-Jacobian product
    if cache["causal"]:
        n = z.shape[-2]
        d_s = xp.where(xp.tril(xp.ones((n, n), dtype=bool)), d_s, 0.0)
        s_live = xp.where(xp.tril(xp.ones((n, n), dtype=bool)), s, 0.0)
    else:
        s_live = s
    d_log_tau = -xp.sum(d_s * s_live)
    scale = 1.0 / (math.sqrt(p["w_q"].shape[1]) * cache["tau"])
    d_q = (d_s @ k) * scale
    d_k = (xp.swapaxes(d_s, -1, -2) @ q) * scale
    dz = d_q @ p["w_q"].T + d_k @ p["w_k"].T + d_v @ p["w_v"].T
    return dz, {"w_q": flat(z).T @ flat(d_q), "w_k": flat(z).T @ flat(d_k), "w_v": flat(z).T @ flat(d_v),
                "w_o": d_wo, "log_tau": xp.full(np.shape(p["log_tau"]), float(d_log_tau))}


def head_m_a(params: dict) -> np.ndarray:
    """M_{a,h} = (W_Q W_Kᵀ − W_K W_Qᵀ)/2 (d, d), float64 on the host."""
    wq, wk = np.asarray(params["w_q"], dtype=np.float64), np.asarray(params["w_k"], dtype=np.float64)
    m = wq @ wk.T
    return 0.5 * (m - m.T)


def new_head(d: int, d_k: int, d_v: int, context: int, rng: np.random.Generator, init: str = "function_preserving",
             out_scale: float = 1e-3) -> dict[str, np.ndarray]:
    """A new head's tensors [author-code]: W_Q, W_K ~ N(0, 1/d); W_V ~ N(0, σ_V²), σ_V = √(d_k·n/(d·d_v));
    W_O ~ N(0, 1/d_v); τ_h = 1. ``"function_preserving"`` [reconstructed] scales W_O by ``out_scale``."""
    sigma_v = math.sqrt(d_k * context / (d * d_v))
    w_o = rng.standard_normal((d_v, d)) / math.sqrt(d_v)
    if init != "author":
        w_o = w_o * out_scale
    return {"w_q": rng.standard_normal((d, d_k)) / math.sqrt(d), "w_k": rng.standard_normal((d, d_k)) / math.sqrt(d),
            "w_v": rng.standard_normal((d, d_v)) * sigma_v, "w_o": w_o, "log_tau": np.zeros(1)}
