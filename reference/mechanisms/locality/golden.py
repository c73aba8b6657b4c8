"""LOC's golden cases: fixed inputs, outputs and gradients of the dial's own functions, for other implementations.

:func:`cases` draws a few small layouts and attention patterns from a seeded generator and
records, for each (``LOC.case{k}.*``): the layout arrays (``block_id``, ``target_block``,
``pointer_mask``), the pattern (B, H, T, T), the dial bias of A2 at λ = 0.6, β = 8
(``bias``), the group penalty of A4 at λ = 0.6 and its gradient with respect to the
pattern (``group_penalty``, ``group_penalty_grad``), the pointer loss of A5 and its
gradient (``pointer_loss``, ``pointer_loss_grad``), and A6's variational attention of the
pattern's logits at κ = 2 (``variational_logits``, ``variational_attention``). The
settings are stated in :data:`SETTINGS` and written to the manifest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.mechanisms.locality.dial import locality_bias
from reference.mechanisms.locality.layout import make_layout
from reference.mechanisms.locality.penalty import group_penalty, group_penalty_backward, pointer_loss, pointer_loss_backward
from reference.mechanisms.locality.variational import variational_attention

SETTINGS = {"lam": 0.6, "beta": 8.0, "n_layers": 2, "kappa": 2.0, "tau": 1.0, "causal": True,
            "group_weight": "sqrt_size", "penalty_kind": "off_target", "free_rows": "own_block"}
FORMULAS = {
    "bias": "specs/00-localist.md §2.2 (A2): −λ_ℓ·β·off",
    "group_penalty": "specs/00-localist.md §2.3 (A4): λ/(L·H·|rows|) Σ_rows Σ_{g≠g*} √k_g ‖A_{i,G_g}‖₂",
    "pointer_loss": "specs/00-localist.md §2.4 (A5): −Σ log max(PF_i, 1e-12)/(L·H·|rule rows|)",
    "variational_attention": "specs/00-localist.md §2.2 (A6): argmin −z·a + τΣa ln a + κΣ_{g≠g*} w_g‖a_g‖₂",
}
SHAPES = ((1, 2, 6), (2, 3, 9))  # (B, H, T) of the cases


def _layout(rs: np.random.Generator, b: int, t: int):
    """Contiguous blocks, every row's relevant block drawn among the blocks it sees, one pointer target per rule row."""
    block_id = np.zeros((b, t), np.int64)
    for s in range(b):
        cuts = np.sort(rs.choice(np.arange(1, t), size=min(2, t - 1), replace=False))
        block_id[s] = np.searchsorted(cuts, np.arange(t), side="right")
    target = np.full((b, t), -1, np.int64)
    mask = np.zeros((b, t, t), bool)
    for s in range(b):
        for i in range(1, t):
            if rs.random() < 0.6:
                j = int(rs.integers(0, i + 1))
                target[s, i] = block_id[s, j]
                mask[s, i, j] = True
    return make_layout(block_id, target, targets=mask, causal=True, free_rows="own_block")


def cases(seed: int, dtype: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The tensors of every case (named ``LOC.case{k}.<what>``) and what the manifest says about them."""
    rs = np.random.default_rng([seed, 7])
    out: dict[str, np.ndarray] = {}
    s = SETTINGS
    for k, (b, h, t) in enumerate(SHAPES):
        layout = _layout(rs, b, t)
        logits = rs.standard_normal((b, h, t, t)) * 2.0
        masked = np.where(layout.visible, logits, -np.inf)
        pattern = np.exp(masked - masked.max(-1, keepdims=True))
        pattern = (pattern / pattern.sum(-1, keepdims=True)).astype(dtype)
        omega, cache = group_penalty(pattern, layout, s["lam"], s["n_layers"], group_weight=s["group_weight"],
                                     kind=s["penalty_kind"])
        pointer, pointer_cache = pointer_loss(pattern, layout, s["n_layers"])
        z = np.where(layout.visible, logits, 0.0)  # A6 reads the visible keys only
        solved = variational_attention(z, layout.block_id[:, None, None, :], layout.target_block[:, None, :], s["tau"],
                                       s["kappa"], visible=layout.visible, group_weight=s["group_weight"])
        p = f"LOC.case{k}."
        out |= {
            p + "block_id": layout.block_id, p + "target_block": layout.target_block,
            p + "pointer_mask": layout.pointer_mask.astype(np.uint8), p + "pattern": pattern,
            p + "bias": locality_bias(layout, s["lam"], s["beta"], dtype)[:, 0],
            p + "group_penalty": np.asarray(omega, dtype=dtype), p + "group_penalty_grad": group_penalty_backward(cache),
            p + "pointer_loss": np.asarray(pointer, dtype=dtype), p + "pointer_loss_grad": pointer_loss_backward(pointer_cache),
            p + "variational_logits": z.astype(dtype), p + "variational_attention": solved.a.astype(dtype),
        }
    about = {"settings": SETTINGS, "shapes (B, H, T)": [list(x) for x in SHAPES], "formulas": FORMULAS,
             "layout": "block_id (B, T), target_block (B, T) −1 = free row, pointer_mask (B, T, T) 0/1; causal rows"}
    return out, about
