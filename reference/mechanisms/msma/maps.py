"""Cross-scale maps and their objective (specs/04-msma.md §2.3, §2.4; A3). [reconstructed unless marked]

Row convention f(x) = xA + c (+ GELU(xW₁ + b₁)W₂ for ``map="mlp"``); parameters ``A, c, w1, b1, w2``.
Every trainable part is a forward/backward pair taking its array namespace from its inputs, so
the tests check each backward against autograd:

* :func:`procrustes` — A3, the orthogonal Procrustes map [classical: Schönemann 1966];
* :func:`map_forward` / :func:`map_backward` — the affine or MLP map;
* :func:`geo_loss` — the four geometric losses (value and ∂/∂u);
* :func:`info_term` — InfoNCE / DV with the bilinear critic s_bc = u_bᵀWy_c (value, ∂/∂W, ∂/∂U);
* :func:`curvature` / :func:`curvature_backward` — the finite-difference Hessian probe of the MLP branch.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from reference.backend import namespace
from reference.layers.mlp import gelu, gelu_grad
from reference.metrics.estimators import dv_grad, dv_value, dv_value_grad, infonce_grad, infonce_value, infonce_value_grad

GELU_FORM = "tanh"


# --------------------------------------------------------------------------- A3: Procrustes


def procrustes(x: np.ndarray, y: np.ndarray, *, scale: bool = False, proper: bool = False) -> dict[str, Any]:
    """Orthogonal Procrustes from x (N, d) to y (N, d): A = sR, c = μ_Y − sμ_X R. [classical, MSA-T1]

    X_c, Y_c centred; X_cᵀY_c = UΣVᵀ; R = UDVᵀ with D = I, or (``proper``) D = diag(1, …, 1, −1)
    when det(UVᵀ) < 0; s = tr(ΣD)/‖X_c‖_F² with ``scale``, else 1. N < d: the minimiser is not
    unique; NumPy's SVD picks one (a warning says so). Returns {A, c, R, s, sv}.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape[0] < x.shape[1]:
        warnings.warn(f"procrustes: {x.shape[0]} rows < d = {x.shape[1]}: the rotation is one of many minimisers",
                      stacklevel=2)
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    u, sv, vt = np.linalg.svd(xc.T @ yc)
    dvec = np.ones(sv.size)
    if proper and np.linalg.det(u @ vt) < 0:
        dvec[-1] = -1.0
    r = (u * dvec) @ vt
    s = float(np.sum(sv * dvec) / np.sum(xc * xc)) if scale else 1.0
    a = s * r
    return {"A": a, "c": my - mx @ a, "R": r, "s": s, "sv": sv}


# --------------------------------------------------------------------------- the maps


def init_map(kind: str, d: int, gen: np.random.Generator, x: np.ndarray | None = None, y: np.ndarray | None = None,
             hidden: int | None = None, scale: bool = False, proper: bool = False) -> dict[str, np.ndarray]:
    """Initial map parameters (§2.3): identity; orthogonal/linear from Procrustes; mlp adds W₁ ~ N(0, 1/d), b₁ = 0, W₂ = 0."""
    if kind == "identity" or x is None:
        theta = {"A": np.eye(d), "c": np.zeros(d)}
    else:
        p = procrustes(x, y, scale=scale, proper=proper)
        theta = {"A": p["A"], "c": p["c"]}
    if kind == "mlp":
        h = hidden or 2 * d
        theta |= {"w1": gen.standard_normal((d, h)) / np.sqrt(d), "b1": np.zeros(h), "w2": np.zeros((h, d))}
    return theta


def branch_forward(theta: dict, x: Any) -> tuple[Any, dict]:
    """The MLP branch g(x) = GELU(xW₁ + b₁)W₂ (N, d) and its cache."""
    pre = x @ theta["w1"] + theta["b1"]
    act = gelu(pre, GELU_FORM)
    return act @ theta["w2"], {"x": x, "pre": pre, "act": act}


def branch_backward(theta: dict, cache: dict, dg: Any) -> tuple[Any, dict]:
    """∂/∂x and ∂/∂(w1, b1, w2) of the MLP branch from ∂/∂g."""
    d_act = dg @ theta["w2"].T
    d_pre = d_act * gelu_grad(cache["pre"], GELU_FORM)
    grads = {"w2": cache["act"].T @ dg, "w1": cache["x"].T @ d_pre, "b1": d_pre.sum(0)}
    return d_pre @ theta["w1"].T, grads


def map_forward(theta: dict, x: Any) -> tuple[Any, dict]:
    """f(x) = xA + c (+ the MLP branch when ``w1`` is present): (N, d) -> (N, d), and the cache."""
    u = x @ theta["A"] + theta["c"]
    cache: dict[str, Any] = {"x": x}
    if "w1" in theta:
        g, cache["branch"] = branch_forward(theta, x)
        u = u + g
    return u, cache


def map_backward(theta: dict, cache: dict, du: Any) -> dict:
    """∂/∂θ of the map from ∂/∂u (the source features are frozen: no ∂/∂x)."""
    grads = {"A": cache["x"].T @ du, "c": du.sum(0)}
    if "branch" in cache:
        _, g = branch_backward(theta, cache["branch"], du)
        grads |= g
    return grads


# --------------------------------------------------------------------------- the geometric term


def geo_loss(kind: str, u: Any, y: Any, v: Any = None) -> tuple[Any, Any]:
    """The geometric loss of u = f(x) against the target rows y (n, d), and ∂/∂u (§2.4).

    ``sq_norm``: (1/n)ΣΣ(u − y)²/v (v = train variance of each target coordinate; it bounds the
    diagonal KL, MSA-T4); ``sq``: (1/n)Σ‖u − y‖²; ``dist``: (1/n²)Σ(D^u − D^y)², D = √(‖·‖² + 10⁻¹²);
    ``l2``: (1/n)Σ‖u − y‖₂ ([author-code], unsquared; subgradient 0 at 0).
    """
    xp = namespace(u, y)
    n = u.shape[0]
    e = u - y
    if kind == "sq_norm":
        return xp.sum(e * e / v) / n, 2.0 * e / (n * v)
    if kind == "sq":
        return xp.sum(e * e) / n, 2.0 * e / n
    if kind == "l2":
        norm = xp.sqrt(xp.sum(e * e, axis=1))
        safe = xp.where(norm > 0, norm, 1.0)
        return xp.sum(norm) / n, xp.where((norm > 0)[:, None], e / (n * safe[:, None]), 0.0)
    if kind == "dist":
        du = xp.sqrt(xp.sum((u[:, None, :] - u[None, :, :]) ** 2, axis=-1) + 1e-12)
        dy = xp.sqrt(xp.sum((y[:, None, :] - y[None, :, :]) ** 2, axis=-1) + 1e-12)
        diff = du - dy
        coef = diff / du
        grad = (4.0 / n**2) * (xp.sum(coef, axis=1)[:, None] * u - coef @ u)
        return xp.sum(diff * diff) / n**2, grad
    raise ValueError(f"geo: {kind!r} is not one of sq_norm, sq, dist, l2")


# --------------------------------------------------------------------------- the information term


def info_term(kind: str, w: Any, u: Any, y: Any) -> tuple[Any, Any, Any]:
    """Î of the bilinear critic s_bc = u_bᵀWy_c, with ∂Î/∂W = UᵀGY and ∂Î/∂U = GYWᵀ (§2.4).

    kind ``"infonce"``: ln n + mean_b[s_bb − logsumexp_c s_bc]; ``"mine"``: DV with all
    off-diagonal pairs as marginal samples. No gradient reaches the frozen targets y.
    """
    s = u @ w @ y.T
    if kind not in ("infonce", "mine"):
        raise ValueError(f"info: {kind!r} is not 'infonce' or 'mine'")
    if hasattr(s, "_value"):  # under autograd (the tests' oracle): the value as a traced expression
        plain = np.asarray(s._value)
        value, g = (infonce_value(s), infonce_grad(plain)) if kind == "infonce" else (dv_value(s), dv_grad(plain))
    else:  # one softmax for value and gradient
        value, g = infonce_value_grad(s) if kind == "infonce" else dv_value_grad(s)
    gy = g @ y
    return value, u.T @ gy, gy @ w.T


# --------------------------------------------------------------------------- the curvature term


def curvature(theta: dict, x: np.ndarray, probes: np.ndarray, eps: float) -> tuple[float, dict]:
    """L_curv = (1/(nP))Σ_{b,p}‖r_bp‖², r_bp = [g(x_b + εv_bp) − 2g(x_b) + g(x_b − εv_bp)]/ε² (§2.4).

    probes: v (P, n, d) unit vectors; g the MLP branch (the affine part cancels exactly). An
    estimate of E_v‖D²f(x)[v, v]‖² up to O(ε²). Returns the value and a cache for the backward.
    """
    n_p = probes.shape[0]
    g0, c0 = branch_forward(theta, x)
    rs, caches = [], []
    for v in probes:
        gp, cp = branch_forward(theta, x + eps * v)
        gm, cm = branch_forward(theta, x - eps * v)
        rs.append((gp - 2.0 * g0 + gm) / eps**2)
        caches.append((cp, cm))
    value = sum(float(np.sum(r * r)) for r in rs) / (x.shape[0] * n_p)
    return value, {"c0": c0, "caches": caches, "rs": rs, "n": x.shape[0], "P": n_p, "eps": eps}


def curvature_backward(theta: dict, cache: dict) -> dict:
    """∂L_curv/∂(w1, b1, w2): 2r/(nPε²) into g at x ± εv, −4r/(nPε²) at x."""
    n, n_p, eps = cache["n"], cache["P"], cache["eps"]
    k = 2.0 / (n * n_p * eps**2)
    total = {key: np.zeros_like(theta[key]) for key in ("w1", "b1", "w2")}
    d0 = np.zeros_like(cache["rs"][0])
    for r, (cp, cm) in zip(cache["rs"], cache["caches"]):
        for c in (cp, cm):
            _, g = branch_backward(theta, c, k * r)
            for key in total:
                total[key] += g[key]
        d0 -= 2.0 * k * r
    _, g = branch_backward(theta, cache["c0"], d0)
    return {key: total[key] + g[key] for key in total}


def param_norm(theta: dict) -> float:
    """‖θ‖₂ over every parameter, unsquared ([author-code] "curvature")."""
    return float(np.sqrt(sum(float(np.sum(v * v)) for v in theta.values())))
