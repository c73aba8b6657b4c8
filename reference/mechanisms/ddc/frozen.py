"""A5: the gate on a frozen operator (C and M_a fixed, no model), for E2–E4 and E7 (spec §3).

Γ = ‖A_res‖_F with E empty (one calibration operator); thresholds as A2; then ``calls`` gate calls.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.mechanisms.ddc.config import DDCConfig
from reference.mechanisms.ddc.gate import GateState, calibrate, gate_call, residual_operator


def frozen_gate(
    c: np.ndarray,
    m_a: np.ndarray | None,
    cfg: DDCConfig,
    calls: int,
    *,
    seed: int = 0,
    heads: dict[int, np.ndarray] | None = None,
    max_heads: int | None = None,
    gamma: float | None = None,
) -> tuple[list[dict[str, Any]], GateState]:
    """Run A5: ``calls`` gate calls on C with a fixed M_a (or a fixed head list ``heads``, whose sum is M_a).

    Returns (trace rows, final state). Grown heads carry no matrix (the operator is frozen), so only
    the given heads can be pruned. ``gamma`` overrides Γ (E4 uses E2's θ_w).
    """
    d = c.shape[0]
    heads = dict(heads or {})
    total = m_a if m_a is not None else sum(heads.values())
    if gamma is None:
        gamma = calibrate([residual_operator(c, total, np.zeros((d, 0)), cfg.gate_operator)])
    state = GateState.new(d, gamma, cfg, seed, n_heads=len(heads))
    live = dict(heads)

    def on_prune(head_id: int) -> None:
        live.pop(head_id, None)

    rows: list[dict[str, Any]] = []
    key, a = None, None
    for _ in range(calls):
        fixed = m_a if m_a is not None else (sum(live.values()) if live else np.zeros((d, d)))
        if key != (state.e.shape[1], tuple(live)):  # the operator changes only when E or the head set does
            key, a = (state.e.shape[1], tuple(live)), residual_operator(c, fixed, state.e, cfg.gate_operator)
        rows.append(gate_call(state, c, live, cfg, m_a=fixed, on_prune=on_prune, max_heads=max_heads, a=a))
    return rows, state


def events(rows: list[dict[str, Any]], kind: str = "grow") -> list[dict[str, Any]]:
    """The rows with an event of ``kind``, as {call, trigger or g, head}."""
    return [{"call": r["call"], **e} for r in rows for e in r["events"] if e["kind"] == kind]
