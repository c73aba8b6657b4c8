"""The neural clustering module λ (specs/02 §2.5, A4): channel attention → MLP → LayerNorm.

[paper-v6 §3.3, Eqs. 1–2]: λ(r) = LN(MLP(r ⊙ CA(r))), CA(r) = Bn(avg(r)) + Bn(max(r)),
(33/8)·d² parameters [paper-v6 §4.3]. The exact version is [reconstructed]:

* input x = (a, m, r), each (B, d): masked mean, masked max and readout state of the frozen
  LM's final-norm output over the prompt (``ca_pool="last"``: a = m = r);
* CA: Bn(x) = ReLU(x P₁) P₂, P₁ (d, d_h), P₂ (d_h, d), no bias, one Bn shared by both paths;
  g = σ(Bn(a) + Bn(m)) (the SE/CBAM sigmoid; ``ca_sigmoid=False`` drops it, as Eq. 2 does);
* body: u = r ⊙ g; v = ReLU(u M₁) M₂, M₁ (d, ρd), M₂ (ρd, d), ρ = ``mlp_ratio``, no bias, no
  residual; y = γ⊙(v − μ)/√(σ² + ε) + β, the biased variance.

Parameters ``vds.ca.w1`` (d, d_h), ``vds.ca.w2`` (d_h, d), ``vds.mlp.w1`` (d, ρd),
``vds.mlp.w2`` (ρd, d), ``vds.ln.g``, ``vds.ln.b`` (d,): 2ρd² + 2d·d_h + 2d in all, which is
(33/8)d² + 2d at the defaults (ρ = 2, d_h = d/16) (VDS-P9). Init U(±1/√fan_in) (PyTorch
``Linear``), γ = 1, β = 0. The backward is written from the core's linear and LayerNorm pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.backend import namespace
from reference.layers.layernorm import layernorm_backward, layernorm_forward
from reference.layers.linear import linear_backward, linear_forward

PARAM_NAMES = ("vds.ca.w1", "vds.ca.w2", "vds.mlp.w1", "vds.mlp.w2", "vds.ln.g", "vds.ln.b")


def lambda_shapes(d: int, d_hidden: int, mlp_ratio: int = 2) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter of λ for width d, bottleneck d_h and MLP ratio ρ."""
    return {
        "vds.ca.w1": (d, d_hidden), "vds.ca.w2": (d_hidden, d),
        "vds.mlp.w1": (d, mlp_ratio * d), "vds.mlp.w2": (mlp_ratio * d, d),
        "vds.ln.g": (d,), "vds.ln.b": (d,),
    }


def lambda_size(d: int, d_hidden: int, mlp_ratio: int = 2) -> int:
    """Number of parameters of λ: 2ρd² + 2d·d_h + 2d ((33/8)d² + 2d at the defaults, d ≡ 0 mod 16)."""
    return 2 * mlp_ratio * d * d + 2 * d * d_hidden + 2 * d


def init_lambda(d: int, d_hidden: int, mlp_ratio: int = 2, seed: Any = 42, dtype: Any = np.float64) -> dict[str, np.ndarray]:
    """Fresh parameters: weights U(±1/√fan_in) from ``np.random.default_rng(seed)`` in name order, γ = 1, β = 0."""
    rs = np.random.default_rng(seed)
    params = {}
    for name, shape in lambda_shapes(d, d_hidden, mlp_ratio).items():
        if name == "vds.ln.g":
            params[name] = np.ones(shape, dtype)
        elif name == "vds.ln.b":
            params[name] = np.zeros(shape, dtype)
        else:
            bound = 1.0 / np.sqrt(shape[0])
            params[name] = rs.uniform(-bound, bound, size=shape).astype(dtype)
    return params


def _relu(x: Any) -> Any:
    return namespace(x).maximum(x, 0.0)


def _sigmoid(x: Any) -> Any:
    # 0.5·(1 + tanh(x/2)) = 1/(1 + e^{−x}) without overflow for large |x|.
    return 0.5 * (namespace(x).tanh(0.5 * x) + 1.0)


def lambda_forward(params: dict, A: Any, Mx: Any, R: Any, *, ca_sigmoid: bool = True, ln_eps: float = 1e-5) -> tuple[Any, dict]:
    """A4: Y = λ(A, Mx, R). A, Mx, R (B, d) -> Y (B, d), and the cache of :func:`lambda_backward`.

    g = σ(relu(A P₁) P₂ + relu(Mx P₁) P₂); U = R ⊙ g; Y = LN(relu(U M₁) M₂; γ, β).
    """
    p1, p2 = {"w": params["vds.ca.w1"]}, {"w": params["vds.ca.w2"]}
    ha, c_ha = linear_forward(p1, A)
    hm, c_hm = linear_forward(p1, Mx)
    ra, rm = _relu(ha), _relu(hm)
    ba, c_ba = linear_forward(p2, ra)
    bm, c_bm = linear_forward(p2, rm)
    s = ba + bm
    g = _sigmoid(s) if ca_sigmoid else s
    u = R * g
    h1, c_h1 = linear_forward({"w": params["vds.mlp.w1"]}, u)
    r1 = _relu(h1)
    v, c_v = linear_forward({"w": params["vds.mlp.w2"]}, r1)
    y, c_ln = layernorm_forward({"g": params["vds.ln.g"], "b": params["vds.ln.b"]}, v, ln_eps)
    cache = {"ha": ha, "hm": hm, "c_ha": c_ha, "c_hm": c_hm, "c_ba": c_ba, "c_bm": c_bm, "g": g, "R": R,
             "ca_sigmoid": ca_sigmoid, "h1": h1, "c_h1": c_h1, "c_v": c_v, "c_ln": c_ln}
    return y, cache


def lambda_backward(cache: dict, dY: Any) -> tuple[dict, Any, Any, Any]:
    """dY (B, d) -> (grads by parameter name, dA, dMx, dR), each (B, d)."""
    dv, g_ln = layernorm_backward(cache["c_ln"], dY)
    dr1, g_m2 = linear_backward(cache["c_v"], dv)
    dh1 = dr1 * (cache["h1"] > 0)
    du, g_m1 = linear_backward(cache["c_h1"], dh1)
    g = cache["g"]
    dR = du * g
    dg = du * cache["R"]
    ds = dg * g * (1.0 - g) if cache["ca_sigmoid"] else dg
    dra, g_p2a = linear_backward(cache["c_ba"], ds)
    drm, g_p2m = linear_backward(cache["c_bm"], ds)
    dA, g_p1a = linear_backward(cache["c_ha"], dra * (cache["ha"] > 0))
    dMx, g_p1m = linear_backward(cache["c_hm"], drm * (cache["hm"] > 0))
    grads = {
        "vds.ca.w1": g_p1a["w"] + g_p1m["w"], "vds.ca.w2": g_p2a["w"] + g_p2m["w"],
        "vds.mlp.w1": g_m1["w"], "vds.mlp.w2": g_m2["w"], "vds.ln.g": g_ln["g"], "vds.ln.b": g_ln["b"],
    }
    return grads, dA, dMx, dR
