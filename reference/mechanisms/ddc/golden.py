"""DDC's golden cases: inputs, outputs and gradients of the DDCL block, a named head and one gate call.

:func:`cases` draws small inputs from a seeded generator and records, per case ``DDC.case{k}.*``:
the block input ``z`` (B, n, d), ``prototypes`` (K, d), ``log_tau`` (1,), the upstream gradient ``dy``;
the outputs ``y`` = QP, ``assign`` Q, ``lq`` (mean L_q), ``free_energy`` (mean F); the gradients
``d_z``, ``d_prototypes``, ``d_log_tau`` of ⟨dy, y⟩ + β·L̄_q (β = :data:`SETTINGS` ``beta``); for a
named attention head the scores' temperature gradient ``head_d_log_tau`` and ``head_out``; and
one exact gate call on the planted default spectrum (``gate_lambda_max`` = 1.0, ``gate_dwell``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.mechanisms.ddc.block import ddcl_backward, ddcl_forward
from reference.mechanisms.ddc.config import DDCConfig
from reference.mechanisms.ddc.gate import GateState, dwell, track
from reference.mechanisms.ddc.heads import head_backward, head_forward
from reference.mechanisms.ddc.planted import planted

SETTINGS = {"beta": 1.0, "causal": True, "gate": "exact, planted default spectrum d = 16"}
FORMULAS = {
    "y": "specs/03-ddcl-incrt.md §2.2 (A1): Y = QP, Q = softmax(−D/τ)",
    "d_*": "specs/03-ddcl-incrt.md §2.2 backward: r_tk, ∂L/∂p_k, ∂L/∂z_t, ∂L/∂log τ",
    "head_d_log_tau": "specs/03-ddcl-incrt.md §2.2: ∂L/∂log τ_h = −Σ(∂L/∂S_h ⊙ S_h)",
    "gate_*": "specs/03-ddcl-incrt.md §2.3 (A3): λ̂_max, T_d(η⁺, Δ⁺)",
}
SHAPES = ((1, 5, 4, 3), (2, 7, 6, 5))  # (B, n, d, K)


def _recorder(into: dict) -> Any:
    def hook(name: str, value: Any) -> Any:
        into[name] = value
        return value

    return hook


def cases(seed: int, dtype: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The tensors of every case (named ``DDC.case{k}.<what>``) and what the manifest says about them."""
    rs = np.random.default_rng([seed, 3])
    out: dict[str, np.ndarray] = {}
    for k, (b, n, d, kk) in enumerate(SHAPES):
        z, p = rs.standard_normal((b, n, d)), rs.standard_normal((kk, d))
        lt, dy = np.full(1, np.log(rs.uniform(0.5, 4.0))), rs.standard_normal((b, n, d))
        rec: dict[str, Any] = {}
        y, cache = ddcl_forward({"prototypes": p, "log_tau": lt}, z, _recorder(rec))
        dz, grads = ddcl_backward(cache, dy, {"lq": SETTINGS["beta"]})
        head = {"w_q": rs.standard_normal((d, 2)), "w_k": rs.standard_normal((d, 2)), "w_v": rs.standard_normal((d, 2)),
                "w_o": rs.standard_normal((2, d)), "log_tau": np.full(1, 0.3)}
        h_out, h_cache = head_forward(head, z, SETTINGS["causal"])
        _, h_grads = head_backward(h_cache, dy)
        p_ = f"DDC.case{k}."
        arrays = {"z": z, "prototypes": p, "log_tau": lt, "dy": dy, "y": y, "assign": rec["assign"], "lq": rec["lq"],
                  "free_energy": rec["free_energy"], "d_z": dz, "d_prototypes": grads["prototypes"],
                  "d_log_tau": grads["log_tau"], **{f"head_{name}": v for name, v in head.items()},
                  "head_out": h_out, "head_d_log_tau": h_grads["log_tau"]}
        out |= {p_ + name: np.asarray(v).astype(dtype) for name, v in arrays.items()}
    pl = planted()
    cfg = DDCConfig(d_model=16, d_k=2, max_heads=8, gate_estimator="exact")
    state = GateState.new(16, float(np.linalg.norm(pl.s)), cfg, seed)
    row = track(state, pl.s, cfg)
    out |= {"DDC.gate_operator": pl.s.astype(dtype), "DDC.gate_lambda_max": np.asarray(row["lambda_max"], dtype=dtype),
            "DDC.gate_dwell": np.asarray(dwell(cfg.eta, row["gap"], cfg), dtype=np.int64)}
    about = {"settings": SETTINGS, "shapes (B, n, d, K)": [list(x) for x in SHAPES], "formulas": FORMULAS}
    return out, about
