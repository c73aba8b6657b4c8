"""Affine map y = x W + b.

W is stored as (in, out) so the forward reads like the formula; GPT-2's
Conv1D uses the same layout.
"""

from __future__ import annotations

from typing import Any

from reference.backend import namespace


def linear_forward(params: dict, x: Any) -> tuple[Any, dict]:
    """x (..., I), params {"w": (I, O), "b": (O,) optional} -> y (..., O)."""
    y = x @ params["w"]
    if params.get("b") is not None:
        y = y + params["b"]
    return y, {"x": x, "w": params["w"], "has_bias": params.get("b") is not None}


def linear_backward(cache: dict, dy: Any) -> tuple[Any, dict]:
    """dy (..., O) -> dx (..., I), grads {"w": (I, O), "b": (O,)}.

    The leading axes are flattened so each gradient is one GEMM.
    """
    xp = namespace(dy)
    x, w = cache["x"], cache["w"]
    dy2 = dy.reshape(-1, dy.shape[-1])
    grads = {"w": x.reshape(-1, x.shape[-1]).T @ dy2}
    if cache["has_bias"]:
        grads["b"] = xp.sum(dy2, axis=0)
    return dy @ w.T, grads
