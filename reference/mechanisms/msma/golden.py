"""MSA's golden cases: fixed inputs, outputs and gradients of the maps, the objective and the closed-form estimators.

For each case k (``MSA.case{k}.*``): source and target rows x, y (N, d); the Procrustes map
(A3: ``procrustes_A``, ``procrustes_c``); an MLP map's output (``map_u``) and the gradients of
⟨u, dy⟩ with respect to its parameters (``map_grad_<name>``); each geometric loss and its
gradient with respect to u (``geo_<kind>``, ``geo_<kind>_grad``); the InfoNCE and DV values of
the bilinear critic and their gradients (``info_<kind>``, ``info_<kind>_grad_W``,
``info_<kind>_grad_u``); and the estimators ``kl_diag``, ``kl_gauss``, ``mi_hist``,
``mi_gauss`` of (u, y). Settings in :data:`SETTINGS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.mechanisms.msma.maps import geo_loss, info_term, init_map, map_backward, map_forward, procrustes
from reference.metrics.information import kl_diag, kl_gauss, mi_gauss, mi_hist

SETTINGS = {"mlp_hidden": 6, "kl_eps": 1e-6, "kl_dim": 4, "hist_bins": 16, "gauss_dim": 4, "gelu": "tanh"}
SHAPES = ((12, 3), (40, 5))  # (N, d) of the cases
FORMULAS = {
    "procrustes": "specs/04-msma.md §2.3 (A3): X_cᵀY_c = UΣVᵀ, A = UVᵀ, c = μ_Y − μ_X A",
    "map": "§2.3: f(x) = xA + c + GELU(xW₁ + b₁)W₂",
    "geo": "§2.4: sq_norm, sq, dist, l2",
    "info": "§2.4: InfoNCE / DV (all off-diagonal pairs) of s_bc = u_bᵀWy_c",
    "estimators": "§5.1, §5.2, §5.4",
}


def cases(seed: int, dtype: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The tensors of every case (named ``MSA.case{k}.<what>``) and what the manifest says about them."""
    rs = np.random.default_rng([seed, 4])
    out: dict[str, np.ndarray] = {}
    for k, (n, d) in enumerate(SHAPES):
        x = rs.standard_normal((n, d))
        y = np.tanh(x @ rs.standard_normal((d, d))) + 0.1 * rs.standard_normal((n, d))
        p = f"MSA.case{k}."
        pr = procrustes(x, y)
        theta = init_map("mlp", d, rs, x, y, hidden=SETTINGS["mlp_hidden"])
        theta["w2"] = 0.2 * rs.standard_normal(theta["w2"].shape)
        u, cache = map_forward(theta, x)
        dy = rs.standard_normal(u.shape)
        var = y.var(0)
        w = 0.3 * rs.standard_normal((d, d))
        out |= {p + "x": x, p + "y": y, p + "procrustes_A": pr["A"], p + "procrustes_c": pr["c"], p + "map_u": u, p + "map_dy": dy}
        out |= {p + f"map_param_{name}": v for name, v in theta.items()}
        out |= {p + f"map_grad_{name}": g for name, g in map_backward(theta, cache, dy).items()}
        for kind in ("sq_norm", "sq", "dist", "l2"):
            value, grad = geo_loss(kind, u, y, var)
            out |= {p + f"geo_{kind}": np.asarray(value), p + f"geo_{kind}_grad": grad}
        out[p + "critic_W"] = w
        for kind in ("infonce", "mine"):
            value, gw, gu = info_term(kind, w, u, y)
            out |= {p + f"info_{kind}": np.asarray(value), p + f"info_{kind}_grad_W": gw, p + f"info_{kind}_grad_u": gu}
        out |= {
            p + "kl_diag": np.asarray(kl_diag(u, y, SETTINGS["kl_eps"])),
            p + "kl_gauss": np.asarray(kl_gauss(u, y, SETTINGS["kl_dim"])),
            p + "mi_hist": np.asarray(mi_hist(u, y, SETTINGS["hist_bins"])),
            p + "mi_gauss": np.asarray(mi_gauss(u, y, SETTINGS["gauss_dim"])["mi"]),
        }
    out = {name: v.astype(dtype) for name, v in out.items()}
    about = {"settings": SETTINGS, "shapes (N, d)": [list(s) for s in SHAPES], "formulas": FORMULAS,
             "computed": "float64, cast to the requested dtype"}
    return out, about
