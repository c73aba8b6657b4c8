"""Clustering losses of λ (specs/02 §2.5 "Loss"), each a forward/backward pair in Y = λ(x).

v6 does not write its loss down; the default is its cleanest reading [reconstructed]:

* ``kind="sm"``: c = cos(Y, S_𝓛), L = mean_b[logsumexp(c_b/τ) − c_{b,y_b}/τ];
* ``kind="mm"``: L = mean_b CE(W_𝓛 Y_b + b_𝓛, y_b) (LM-head logits over 𝓛, /τ);
* ``kind="sm_gt"``: L = mean_b(1 − cos(Y_b, s_{t_{y_b}})) (only the ground-truth basis);
* ``exp=True`` (v6 "x-exp"): q = softmax(logits/τ), L = mean CE(q, y) with q used as logits;
* ``reduce="sum"`` with ``exp=True`` is [author-code]'s ``code_faithful`` double softmax, summed.

The backward of the x-exp loss is ∇_c L = τ⁻¹(diag q − qqᵀ)(softmax(q) − e_y) (VDS-P8).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.backend import namespace
from reference.mechanisms.vds.similarity import cosine_backward, cosine_forward, log_softmax, softmax


def one_hot(labels: Any, K: int, dtype: Any = np.float64, xp: Any = np) -> Any:
    """(B,) int -> (B, K) one-hot rows, in the array module ``xp`` (the logits' one)."""
    out = xp.zeros((len(labels), K), dtype)
    out[xp.arange(len(labels)), xp.asarray(labels)] = 1.0
    return out


def cluster_logits_forward(Y: Any, kind: str, S: Any, W: Any = None, b: Any = None, eps: float = 1e-8) -> tuple[Any, dict]:
    """Logits over 𝓛 of Y (B, d): cosines with S (K, d) (``sm``, ``sm_gt``) or W Y + b with W (K, d) (``mm``)."""
    if kind == "mm":
        logits = Y @ W.T
        if b is not None:
            logits = logits + b
        return logits, {"kind": kind, "W": W}
    logits, cache = cosine_forward(Y, S, eps)
    return logits, {"kind": kind, "cos": cache}


def cluster_logits_backward(cache: dict, dlogits: Any) -> Any:
    """dlogits (B, K) -> dY (B, d)."""
    if cache["kind"] == "mm":
        return dlogits @ cache["W"]
    return cosine_backward(cache["cos"], dlogits)[0]


def cluster_loss(
    Y: Any, labels: Any, *, kind: str = "sm", S: Any = None, W: Any = None, b: Any = None, tau: float = 1.0,
    exp: bool = False, reduce: str = "mean", eps: float = 1e-8,
) -> tuple[Any, dict]:
    """The clustering loss of Y (B, d) for integer labels (B,) -> (scalar loss, cache)."""
    xp = namespace(Y)
    logits, lcache = cluster_logits_forward(Y, kind, S, W, b, eps)
    n, K = logits.shape
    y = one_hot(labels, K, xp=xp)
    scale = 1.0 / n if reduce == "mean" else 1.0
    cache: dict[str, Any] = {"logits": lcache, "y": y, "scale": scale, "tau": tau, "exp": exp, "kind": kind}
    if kind == "sm_gt":
        loss = scale * xp.sum(1.0 - xp.sum(logits * y, axis=1))
        return loss, cache
    z = logits / tau
    if exp:
        q = softmax(z)
        loss = -scale * xp.sum(log_softmax(q) * y)
        cache["q"] = q
    else:
        loss = -scale * xp.sum(log_softmax(z) * y)
        cache["p"] = softmax(z)
    return loss, cache


def cluster_loss_backward(cache: dict) -> Any:
    """dL/dY (B, d) of :func:`cluster_loss`."""
    y, scale, tau = cache["y"], cache["scale"], cache["tau"]
    if cache["kind"] == "sm_gt":
        dlogits = -scale * y
    elif cache["exp"]:
        q = cache["q"]
        dq = scale * (softmax(q) - y)
        dlogits = q * (dq - np.sum(q * dq, axis=1, keepdims=True)) / tau
    else:
        dlogits = scale * (cache["p"] - y) / tau
    return cluster_logits_backward(cache["logits"], dlogits)
