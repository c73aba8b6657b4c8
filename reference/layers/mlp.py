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


def _gelu_gate(x: Any, form: str) -> Any:
    """The gate G(x) with gelu(x) = ½ x (1 + G(x)): erf(x/√2) or tanh(√(2/π)(x + 0.044715 x³))."""
    xp = namespace(x)
    if form == "erf":
        return erf(x * _INV_SQRT_2)
    if form == "tanh":
        # x·x·x, not x**3: the power ufunc is several times slower on float32
        return xp.tanh(_SQRT_2_OVER_PI * (x + _TANH_CUBIC * (x * x * x)))
    raise ValueError(f"gelu form {form!r} is not 'erf' or 'tanh'")


def gelu(x: Any, form: str) -> Any:
    """GELU elementwise.

    ``"erf"``:  x Φ(x) = ½ x (1 + erf(x / √2))   (exact; BERT)
    ``"tanh"``: ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))   (GPT-2's approximation)
    """
    return 0.5 * x * (1.0 + _gelu_gate(x, form))


def gelu_grad(x: Any, form: str, gate: Any = None) -> Any:
    """d gelu(x) / dx elementwise, same forms as :func:`gelu`.

    ``gate`` is G(x) if the caller already has it (the forward pass keeps it).
        erf:  ½ (1 + G) + x φ(x),                φ the standard normal density
        tanh: ½ (1 + G) + ½ x (1 − G²) √(2/π) (1 + 3·0.044715 x²)
    """
    xp = namespace(x)
    if gate is None:
        gate = _gelu_gate(x, form)
    if form == "erf":
        return 0.5 * (1.0 + gate) + x * _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
    x2 = x * x
    return 0.5 * (1.0 + gate) + (0.5 * _SQRT_2_OVER_PI) * x * (1.0 - gate * gate) * (1.0 + 3.0 * _TANH_CUBIC * x2)


def _times_gelu_grad(dy: Any, x: Any, form: str, gate: Any) -> Any:
    """dy ⊙ gelu'(x), computed in place on one scratch array (the MLP is memory-bound here).

    Same formula as :func:`gelu_grad`; backward code never runs under autograd,
    so in-place updates are safe.
    """
    if form != "tanh":
        return dy * gelu_grad(x, form, gate)
    scratch = gate * gate                                    # G²
    scratch -= 1.0                                           # G² − 1
    scratch *= x                                             # x (G² − 1)
    poly = x * x
    poly *= 3.0 * _TANH_CUBIC
    poly += 1.0                                              # 1 + 3·0.044715 x²
    scratch *= poly
    scratch *= -0.5 * _SQRT_2_OVER_PI                        # ½ x (1 − G²) √(2/π) (1 + …)
    scratch += 0.5
    poly = gate * 0.5
    scratch += poly                                          # + ½ (1 + G)
    scratch *= dy
    return scratch


def mlp_forward(params: dict, x: Any, form: str, hook: Hook = no_hook) -> tuple[Any, dict]:
    """x (B, T, D), params {"w_in": (D, F), "b_in": (F,), "w_out": (F, D), "b_out": (D,)} -> (B, T, D)."""
    pre, in_cache = linear_forward({"w": params["w_in"], "b": params.get("b_in")}, x)
    pre = hook("pre", pre)
    gate = _gelu_gate(pre, form)
    post = hook("post", 0.5 * pre * (1.0 + gate))
    out, out_cache = linear_forward({"w": params["w_out"], "b": params.get("b_out")}, post)
    return out, {"in": in_cache, "out": out_cache, "pre": pre, "gate": gate, "form": form}


def mlp_backward(cache: dict, dy: Any, extra: dict | None = None) -> tuple[Any, dict]:
    """dy (B, T, D) -> dx (B, T, D), grads of w_in, b_in, w_out, b_out.

    ``extra`` may add upstream gradients at ``"post"`` and ``"pre"``.
    """
    extra = extra or {}
    d_post, g_out = linear_backward(cache["out"], dy)
    if "post" in extra:
        d_post = d_post + extra["post"]
    d_pre = _times_gelu_grad(d_post, cache["pre"], cache["form"], cache["gate"])
    if "pre" in extra:
        d_pre = d_pre + extra["pre"]
    dx, g_in = linear_backward(cache["in"], d_pre)
    grads = {"w_in": g_in["w"], "w_out": g_out["w"]}
    if "b" in g_in:
        grads["b_in"], grads["b_out"] = g_in["b"], g_out["b"]
    return dx, grads
