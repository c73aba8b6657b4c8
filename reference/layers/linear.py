"""Affine map y = x W + b.

W is stored as (in, out) so the forward reads like the formula; GPT-2's
Conv1D uses the same layout.

Speed: the leading axes of x are flattened before the product, so each
matmul is one 2-D GEMM (a (B, T, I) @ (I, O) product is a loop of B smaller
GEMMs in NumPy, about 1.4x slower at the sizes clearform trains), and the
bias is added into the fresh product (:func:`reference.backend.add_into`).
"""

from __future__ import annotations

from typing import Any

from reference.backend import add_into, namespace


def linear_forward(params: dict, x: Any) -> tuple[Any, dict]:
    """x (..., I), params {"w": (I, O), "b": (O,) optional} -> y (..., O)."""
    w = params["w"]
    y = x.reshape(-1, x.shape[-1]) @ w
    if params.get("b") is not None:
        y = add_into(y, params["b"])
    return y.reshape(*x.shape[:-1], w.shape[-1]), {"x": x, "w": w, "has_bias": params.get("b") is not None}


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
    return (dy2 @ w.T).reshape(x.shape), grads
