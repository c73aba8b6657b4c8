"""VDS's golden cases: fixed inputs, outputs and gradients of its own functions, for other implementations.

:func:`cases` draws two small heads from a seeded generator (case 1 rank-deficient) and records,
for each (``VDS.case{k}.*``): the head ``W`` (V, d), label ids, the bases ``S`` (A1, Gram formula;
equal to pinv's), representations ``U`` (B, d), cosine logits ``cos`` (A2), head-metric cosines
``cos_head``, λ's parameters ``lambda.<name>`` and inputs ``a``, ``m``, ``r``, its output ``y``
(A4), the ``sm`` clustering loss of y against S and its gradients with respect to every λ
parameter and to (a, m, r) (``grad.<name>``). Settings in :data:`SETTINGS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.mechanisms.vds.bases import gram, semantic_bases
from reference.mechanisms.vds.clustering import init_lambda, lambda_backward, lambda_forward
from reference.mechanisms.vds.losses import cluster_loss, cluster_loss_backward
from reference.mechanisms.vds.similarity import cosine_forward, head_cosine

SETTINGS = {"rcond": 1e-6, "basis_method": "gram", "cos_eps": 1e-8, "tau": 1.0, "ca_sigmoid": True, "ln_eps": 1e-5,
            "cluster_logits": "sm", "d_hidden": 2, "mlp_ratio": 2}
FORMULAS = {
    "S": "specs/02 §2.2 (A1): S_L = W[L] G⁺, G = WᵀW (= rows L of (W⁺)ᵀ)",
    "cos": "specs/02 §2.3 (A2): n̂(U) n̂(S)ᵀ, n̂(x) = x / max(‖x‖, ε)",
    "cos_head": "specs/02 §2.4 (A2 head): U G Sᵀ / (√diag UGUᵀ ⊗ √diag SGSᵀ)",
    "y": "specs/02 §2.5 (A4): LN(relu((r ⊙ σ(relu(a P1) P2 + relu(m P1) P2)) M1) M2)",
    "loss": "specs/02 §2.5: mean_b[logsumexp(c_b/τ) − c_{b,y_b}/τ], c = cos(y, S)",
}
SHAPES = ((12, 4, 3, 5, 4), (16, 6, 4, 3, 3))  # (V, d, K, B, rank) of the cases


def cases(seed: int, dtype: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The tensors of every case (named ``VDS.case{k}.<what>``) and what the manifest says about them."""
    rs = np.random.default_rng([seed, 2])
    s = SETTINGS
    out: dict[str, np.ndarray] = {}
    for k, (V, d, K, B, r) in enumerate(SHAPES):
        W = rs.standard_normal((V, r)) @ rs.standard_normal((r, d))
        ids = np.sort(rs.choice(V, K, replace=False)).astype(np.int64)
        S = semantic_bases(W, ids, method=s["basis_method"], rcond=s["rcond"])
        U = rs.standard_normal((B, d))
        a, m, rr = rs.standard_normal((B, d)), rs.standard_normal((B, d)), rs.standard_normal((B, d))
        labels = rs.integers(0, K, B).astype(np.int64)
        params = init_lambda(d, s["d_hidden"], s["mlp_ratio"], seed=[seed, k])
        y, cache = lambda_forward(params, a, m, rr, ca_sigmoid=s["ca_sigmoid"], ln_eps=s["ln_eps"])
        loss, lcache = cluster_loss(y, labels, kind="sm", S=S, tau=s["tau"], eps=s["cos_eps"])
        grads, da, dm, dr = lambda_backward(cache, cluster_loss_backward(lcache))
        p = f"VDS.case{k}."
        case = {"W": W, "label_ids": ids, "S": S, "U": U, "cos": cosine_forward(U, S, s["cos_eps"])[0],
                "cos_head": head_cosine(U, S, gram(W), s["cos_eps"]), "a": a, "m": m, "r": rr, "labels": labels, "y": y,
                "loss": np.asarray(loss), "grad.a": da, "grad.m": dm, "grad.r": dr,
                **{f"lambda.{n}": v for n, v in params.items()}, **{f"grad.{n}": g for n, g in grads.items()}}
        out |= {p + n: (v if v.dtype == np.int64 else v.astype(dtype)) for n, v in case.items()}
    about = {"settings": SETTINGS, "shapes (V, d, K, B, rank)": [list(x) for x in SHAPES], "formulas": FORMULAS,
             "note": "computed in float64, stored in the requested dtype; case 1's head is rank-deficient"}
    return out, about
