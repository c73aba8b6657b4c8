"""Layer normalisation over the last axis: y = g * (x - mean) / sqrt(var + eps) + b."""

from __future__ import annotations

from typing import Any

from reference.backend import namespace


def layernorm_forward(params: dict, x: Any, eps: float) -> tuple[Any, dict]:
    """x (..., D), params {"g": (D,), "b": (D,)} -> y (..., D).

    The variance is the biased one (divide by D), as in GPT-2, BERT and PyTorch.
    """
    xp = namespace(x, params["g"])
    centred = x - xp.mean(x, axis=-1, keepdims=True)
    var = xp.mean(centred * centred, axis=-1, keepdims=True)
    inv_std = 1.0 / xp.sqrt(var + eps)
    x_hat = centred * inv_std
    y = x_hat * params["g"] + params["b"]
    return y, {"x_hat": x_hat, "inv_std": inv_std, "g": params["g"]}


def layernorm_backward(cache: dict, dy: Any) -> tuple[Any, dict]:
    """dy (..., D) -> dx (..., D), grads {"g": (D,), "b": (D,)}.

    With u = dy * g:  dx = inv_std * (u - mean(u) - x_hat * mean(u * x_hat)).
    """
    xp = namespace(dy)
    x_hat, inv_std = cache["x_hat"], cache["inv_std"]
    u = dy * cache["g"]
    dx = inv_std * (u - xp.mean(u, axis=-1, keepdims=True) - x_hat * xp.mean(u * x_hat, axis=-1, keepdims=True))
    lead = tuple(range(dy.ndim - 1))
    grads = {"g": xp.sum(dy * x_hat, axis=lead), "b": xp.sum(dy, axis=lead)}
    return dx, grads
