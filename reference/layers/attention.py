"""Multi-head scaled dot-product attention.

For head h, with d_h the head width and τ the temperature::

    q, k, v   = x W_q + b_q,  x W_k + b_k,  x W_v + b_v        split into H heads
    scores    = q kᵀ / √d_h                                     hook "scores"  (B, H, T, T)
    pattern   = softmax((scores + bias) / τ), masked to −∞       hook "pattern" (B, H, T, T)
    z         = pattern v                                       hook "z"       (B, H, T, d_h)
    out       = concat_h(z) W_o + b_o                                          (B, T, D)

``bias`` is an optional additive term broadcastable to (B, H, T, T) (the
locality dial and attention masks use it); ``causal`` hides keys j > i.

Speed: W_q, W_k, W_v are applied as one GEMM on their concatenation, and
the heads are a batch axis of ``matmul``: no Python loop over heads or tokens.

Causal query blocks: when nothing can see the (B, H, T, T) arrays — no hook
(``hook is no_hook``), no bias, a causal mask, a traced-free NumPy/CuPy input
and T > :data:`QUERY_BLOCK` — the queries are taken in blocks of
``QUERY_BLOCK`` rows, and block [i0, i1) scores only keys [0, i1): the masked
upper part of the square is never computed (about a quarter of the T×T work
at T = 128, nearly half at T = 1024). Each row's softmax sees the same
visible keys as the full path, so only float summation order can differ.
The backward then runs block by block on the cached block patterns. Any hook
gets the full path: the ``scores`` and ``pattern`` hooks always see the
whole square. [reconstructed]
"""

from __future__ import annotations

import math
from typing import Any

from reference.backend import add_into, namespace
from reference.layers import Hook, no_hook


def softmax(scores: Any, axis: int = -1) -> Any:
    """exp(s) / Σ exp(s) along ``axis``, shifted by the max for stability.

    Entries equal to −inf get probability exactly 0. A row that is all −inf
    has no defined softmax and gives NaN.
    """
    xp = namespace(scores)
    e = xp.exp(scores - xp.max(scores, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def softmax_backward(probs: Any, d_probs: Any) -> Any:
    """Vector-Jacobian product of softmax along the last axis: p ⊙ (dp − ⟨dp, p⟩).

    Works in place: ``d_probs`` is overwritten and returned (it is always a
    fresh array in the backward pass, and this saves a pass over (B, H, T, T)).
    Backward code never runs under autograd, so in-place updates are safe.
    """
    xp = namespace(probs)
    d_probs -= xp.sum(d_probs * probs, axis=-1, keepdims=True)
    d_probs *= probs
    return d_probs


def causal_mask(xp: Any, length: int) -> Any:
    """(T, T) bool, True where key j is visible to query i (j ≤ i)."""
    return xp.tril(xp.ones((length, length), dtype=bool))


QUERY_BLOCK = 64
"""Rows per query block of the causal blocked path (module docstring)."""


def query_blocks(length: int) -> list[tuple[int, int]]:
    """[(i0, i1)]: consecutive query blocks of :data:`QUERY_BLOCK` rows covering 0 … length − 1."""
    return [(i0, min(i0 + QUERY_BLOCK, length)) for i0 in range(0, length, QUERY_BLOCK)]


def _blocked_eligible(x: Any, causal: bool, bias: Any, hook: Hook) -> bool:
    """Whether the causal blocked path applies (module docstring): nobody can see the T×T arrays."""
    return (causal and bias is None and hook is no_hook and x.shape[1] > QUERY_BLOCK
            and not type(x).__module__.startswith("autograd"))


def _blocked_attention(q_scaled: Any, k: Any, v: Any, temperature: float) -> tuple[Any, list]:
    """z (B, H, T, d_h) and [((i0, i1), pattern (B, H, i1 − i0, i1))]: each block's pattern over keys 0 … i1 − 1.

    Within a block, keys i0 … i1 − 1 need the causal mask (key j ≤ query i); keys < i0 are all visible.
    """
    xp = namespace(q_scaled)
    t = q_scaled.shape[2]
    z = xp.empty(q_scaled.shape[:3] + (v.shape[-1],), dtype=v.dtype)
    patterns = []
    for i0, i1 in query_blocks(t):
        logits = q_scaled[:, :, i0:i1] @ k[:, :, :i1].transpose((0, 1, 3, 2))   # (B, H, n, i1)
        if temperature != 1.0:
            logits /= temperature
        visible = xp.tril(xp.ones((i1 - i0, i1 - i0), dtype=bool))
        logits[..., i0:] = xp.where(visible, logits[..., i0:], -xp.inf)
        pattern = softmax(logits)
        z[:, :, i0:i1] = pattern @ v[:, :, :i1]
        patterns.append(((i0, i1), pattern))
    return z, patterns


def _blocked_attention_backward(cache: dict, dz: Any) -> tuple[Any, Any, Any]:
    """dq (unscaled by 1/√d_h), dk, dv from the block patterns: the full path's formulas, block by block."""
    xp = namespace(dz)
    q_scaled, k, v = cache["q_scaled"], cache["k"], cache["v"]
    dq = xp.empty_like(q_scaled)
    dk, dv = xp.zeros_like(k), xp.zeros_like(v)
    for (i0, i1), pattern in cache["pattern_blocks"]:
        dz_block = dz[:, :, i0:i1]
        d_pattern = dz_block @ v[:, :, :i1].transpose((0, 1, 3, 2))
        dv[:, :, :i1] += pattern.transpose((0, 1, 3, 2)) @ dz_block
        d_scores = softmax_backward(pattern, d_pattern)
        if cache["temperature"] != 1.0:
            d_scores /= cache["temperature"]
        dq[:, :, i0:i1] = d_scores @ k[:, :, :i1]
        dk[:, :, :i1] += d_scores.transpose((0, 1, 3, 2)) @ q_scaled[:, :, i0:i1]
    return dq, dk, dv


def _split_heads(x: Any, n_heads: int) -> Any:
    """(B, T, H·d) -> (B, H, T, d)."""
    b, t, hd = x.shape
    return x.reshape(b, t, n_heads, hd // n_heads).transpose((0, 2, 1, 3))


def _merge_heads(x: Any) -> Any:
    """(B, H, T, d) -> (B, T, H·d)."""
    b, h, t, d = x.shape
    return x.transpose((0, 2, 1, 3)).reshape(b, t, h * d)


def attention_forward(
    params: dict,
    x: Any,
    n_heads: int,
    causal: bool = True,
    bias: Any = None,
    temperature: float = 1.0,
    hook: Hook = no_hook,
) -> tuple[Any, dict]:
    """x (B, T, D) -> out (B, T, D).

    params: "w_q", "w_k", "w_v" (D, H·d_h); "w_o" (H·d_h, D); biases "b_q",
    "b_k", "b_v" (H·d_h,) and "b_o" (D,) when the model has biases.
    Hook points: "q", "k", "v" (B, H, T, d_h), "scores", "pattern", "z".
    """
    xp = namespace(x, params["w_q"])
    b, t, _ = x.shape
    width = params["w_q"].shape[1]
    head_dim = width // n_heads
    w_qkv = xp.concatenate([params["w_q"], params["w_k"], params["w_v"]], axis=1)
    qkv = x.reshape(b * t, -1) @ w_qkv  # one 2-D GEMM (see reference/layers/linear.py)
    if params.get("b_q") is not None:
        qkv = add_into(qkv, xp.concatenate([params["b_q"], params["b_k"], params["b_v"]]))
    qkv = qkv.reshape(b, t, 3 * width)
    q = hook("q", _split_heads(qkv[..., :width], n_heads))
    k = hook("k", _split_heads(qkv[..., width : 2 * width], n_heads))
    v = hook("v", _split_heads(qkv[..., 2 * width :], n_heads))

    # scale q (T·d_h entries) rather than the scores (T·T entries): same product, fewer flops
    q_scaled = q * (1.0 / math.sqrt(head_dim))
    pattern, pattern_blocks = None, None
    if _blocked_eligible(x, causal, bias, hook):  # nobody sees the T×T arrays: skip the masked part
        z, pattern_blocks = _blocked_attention(q_scaled, k, v, temperature)
    else:
        scores = hook("scores", q_scaled @ k.transpose((0, 1, 3, 2)))
        logits = scores if bias is None else scores + bias
        if temperature != 1.0:
            logits = logits / temperature
        if causal:
            logits = xp.where(causal_mask(xp, t), logits, -xp.inf)
        pattern = hook("pattern", softmax(logits))
        z = hook("z", pattern @ v)
    merged = _merge_heads(z)
    out = merged.reshape(-1, merged.shape[-1]) @ params["w_o"]
    if params.get("b_o") is not None:
        out = add_into(out, params["b_o"])
    out = out.reshape(*merged.shape[:-1], out.shape[-1])
    cache = {
        "x": x, "w_qkv": w_qkv, "w_o": params["w_o"], "q_scaled": q_scaled, "k": k, "v": v,
        "pattern": pattern, "pattern_blocks": pattern_blocks, "merged": merged, "n_heads": n_heads, "temperature": temperature,
        "has_bias": params.get("b_q") is not None,
    }
    return out, cache


def attention_backward(cache: dict, d_out: Any, extra: dict | None = None) -> tuple[Any, dict]:
    """d_out (B, T, D) -> dx (B, T, D), grads of w_q, w_k, w_v, w_o (and biases).

    ``extra`` may add upstream gradients at the hook points "z", "pattern",
    "scores", "q", "k", "v". Masked entries of the pattern are 0, so the
    softmax backward gives them zero gradient without a second mask.
    Backward code never runs under autograd, so it updates its own fresh
    arrays in place where that saves a pass over a (B, H, T, T) array.
    """
    extra = extra or {}
    xp = namespace(d_out)
    q_scaled, k, v, pattern = cache["q_scaled"], cache["k"], cache["v"], cache["pattern"]
    n_heads = cache["n_heads"]
    b, t, d_model = d_out.shape
    head_dim = q_scaled.shape[-1]
    width = n_heads * head_dim

    d_out2 = d_out.reshape(-1, d_model)
    grads = {"w_o": cache["merged"].reshape(b * t, -1).T @ d_out2}
    if cache["has_bias"]:
        grads["b_o"] = xp.sum(d_out2, axis=0)
    dz = _split_heads((d_out2 @ cache["w_o"].T).reshape(b, t, width), n_heads)
    if "z" in extra:
        dz = dz + extra["z"]

    if cache["pattern_blocks"] is not None:  # the causal blocked path (no hooks, so no extra at T×T)
        dq, dk, dv = _blocked_attention_backward(cache, dz)
        dq *= 1.0 / math.sqrt(head_dim)
    else:
        d_pattern = dz @ v.transpose((0, 1, 3, 2))
        if "pattern" in extra:
            d_pattern += extra["pattern"]
        dv = pattern.transpose((0, 1, 3, 2)) @ dz
        d_scores = softmax_backward(pattern, d_pattern)
        if cache["temperature"] != 1.0:
            d_scores /= cache["temperature"]
        if "scores" in extra:
            d_scores += extra["scores"]
        # scores = q_scaled kᵀ with q_scaled = q / √d_h
        dq = (d_scores @ k) * (1.0 / math.sqrt(head_dim))
        dk = d_scores.transpose((0, 1, 3, 2)) @ q_scaled
    dq = dq + extra["q"] if "q" in extra else dq
    dk = dk + extra["k"] if "k" in extra else dk
    dv = dv + extra["v"] if "v" in extra else dv

    # gather dq, dk, dv straight into one (B, T, 3, H, d_h) buffer: one copy each
    d_qkv = xp.empty((b, t, 3, n_heads, head_dim), dtype=d_out.dtype)
    for slot, grad in enumerate((dq, dk, dv)):
        d_qkv[:, :, slot] = grad.transpose((0, 2, 1, 3))
    d_qkv2 = d_qkv.reshape(b * t, 3 * width)
    d_w_qkv = cache["x"].reshape(b * t, -1).T @ d_qkv2
    grads["w_q"], grads["w_k"], grads["w_v"] = (d_w_qkv[:, i * width : (i + 1) * width] for i in range(3))
    if cache["has_bias"]:
        d_b_qkv = xp.sum(d_qkv2, axis=0)
        grads["b_q"], grads["b_k"], grads["b_v"] = (d_b_qkv[i * width : (i + 1) * width] for i in range(3))
    dx = (d_qkv2 @ cache["w_qkv"].T).reshape(b, t, -1)
    return dx, grads
