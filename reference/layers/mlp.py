"""The feed-forward block: out = GELU(x W_in + b_in) W_out + b_out.

Hook points: ``pre`` (before GELU, (B, T, F)) and ``post`` (after GELU).
"""

from __future__ import annotations

import math
from typing import Any

from reference.backend import erf, namespace
from reference.layers import Hook, no_hook
from reference.layers.linear import linear_backward, linear_forward

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def gelu(x: Any, form: str) -> Any:
    """GELU elementwise.

    ``"erf"``:  x Φ(x) = ½ x (1 + erf(x / √2))   (exact; BERT)
    ``"tanh"``: ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))   (GPT-2's approximation)
    """
    xp = namespace(x)
    if form == "erf":
        return 0.5 * x * (1.0 + erf(x * _INV_SQRT_2))
    if form == "tanh":
        return 0.5 * x * (1.0 + xp.tanh(_SQRT_2_OVER_PI * (x + _TANH_CUBIC * x**3)))
    raise ValueError(f"gelu form {form!r} is not 'erf' or 'tanh'")


def gelu_grad(x: Any, form: str) -> Any:
    """d gelu(x) / dx elementwise, same forms as :func:`gelu`."""
    xp = namespace(x)
    if form == "erf":
        return 0.5 * (1.0 + erf(x * _INV_SQRT_2)) + x * _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
    if form == "tanh":
        t = xp.tanh(_SQRT_2_OVER_PI * (x + _TANH_CUBIC * x**3))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3.0 * _TANH_CUBIC * x * x)
    raise ValueError(f"gelu form {form!r} is not 'erf' or 'tanh'")


def mlp_forward(params: dict, x: Any, form: str, hook: Hook = no_hook) -> tuple[Any, dict]:
    """x (B, T, D), params {"w_in": (D, F), "b_in": (F,), "w_out": (F, D), "b_out": (D,)} -> (B, T, D)."""
    pre, in_cache = linear_forward({"w": params["w_in"], "b": params.get("b_in")}, x)
    pre = hook("pre", pre)
    post = hook("post", gelu(pre, form))
    out, out_cache = linear_forward({"w": params["w_out"], "b": params.get("b_out")}, post)
    return out, {"in": in_cache, "out": out_cache, "pre": pre, "form": form}


def mlp_backward(cache: dict, dy: Any, extra: dict | None = None) -> tuple[Any, dict]:
    """dy (B, T, D) -> dx (B, T, D), grads of w_in, b_in, w_out, b_out.

    ``extra`` may add upstream gradients at ``"post"`` and ``"pre"``.
    """
    extra = extra or {}
    d_post, g_out = linear_backward(cache["out"], dy)
    if "post" in extra:
        d_post = d_post + extra["post"]
    d_pre = d_post * gelu_grad(cache["pre"], cache["form"])
    if "pre" in extra:
        d_pre = d_pre + extra["pre"]
    dx, g_in = linear_backward(cache["in"], d_pre)
    grads = {"w_in": g_in["w"], "w_out": g_out["w"]}
    if "b" in g_in:
        grads["b_in"], grads["b_out"] = g_in["b"], g_out["b"]
    return dx, grads
