"""The INCRT gate: residual operator, Oja/EXIN trackers, dwell, thresholds, growth and pruning (spec §2.3, A3, A5).

Everything here is float64 on the host (d × d is small), whatever the model's backend, so numpy
and cupy runs make the same decisions. A layer's gate is a :class:`GateState` (checkpointable as
plain arrays and numbers: :meth:`GateState.to_state` / :meth:`GateState.from_state`); one gate call
is :func:`gate_call`, which returns the trace row (A3) and the events it caused. Heads are
abstract here: ``heads`` maps a stable head id to its M_{a,h} (or None when the operator is
frozen, as in E2), and growth calls back ``on_grow(v, state)`` so the caller can add the tensors
and their optimiser moments together (:mod:`reference.mechanisms.ddc.growth`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference.mechanisms.ddc.config import DDCConfig

GAP_FLOOR = 1e-8
"""Δ⁺, Δ⁻ floor and the "no gap" threshold of the dwell [author-code]."""
NO_GAP_DWELL = 10_000
"""T_d when Δ < 10⁻⁸ [author-code]."""


# --------------------------------------------------------------------------- operators


def sym(y: np.ndarray) -> np.ndarray:
    """sym(Y) = (Y + Yᵀ)/2."""
    return 0.5 * (y + y.T)


def unit(v: np.ndarray) -> np.ndarray:
    """n̂(v) = v/‖v‖."""
    return v / np.linalg.norm(v)


def antisym(m: np.ndarray) -> np.ndarray:
    """M_a = (M − Mᵀ)/2."""
    return 0.5 * (m - m.T)


def projector(e: np.ndarray, d: int) -> np.ndarray:
    """Π⊥ = I − EEᵀ for orthonormal E (d, m); I when m = 0."""
    return np.eye(d) - e @ e.T if e.shape[1] else np.eye(d)


def residual_operator(c: np.ndarray, m_a: np.ndarray, e: np.ndarray, kind: str = "commutator") -> np.ndarray:
    """A_res = Π⊥ sym(C M_a) Π⊥ (``"commutator"`` [companion; author-code]) or Π⊥ C Π⊥ (``"psd"`` [reconstructed]).

    For ``"psd"`` the caller passes the centred covariance as ``c``. C (d, d) symmetric, M_a (d, d)
    antisymmetric, E (d, m) orthonormal. sym(C M_a) = ½[C, M_a] (DDCL-T7).
    """
    p = projector(e, c.shape[0])
    inner = sym(c @ m_a) if kind == "commutator" else c
    return sym(p @ inner @ p)


def second_moment(x: np.ndarray) -> np.ndarray:
    """C = Σ_t x_t x_tᵀ (un-normalised) of x (n, d), in float64."""
    x = np.asarray(x, dtype=np.float64)
    return x.T @ x


def dwell(eta: float, gap: float, cfg: DDCConfig) -> int:
    """T_d(η, Δ) = ⌈κ_T ln(1/ε)/(η Δ²)⌉ [author-code], × ``dwell_scale``, capped by ``dwell_cap`` [reconstructed].

    10,000 when Δ < 10⁻⁸; ``dwell_fixed`` overrides all of it. At η = 1/(10d): ⌈59.9146·d/Δ²⌉.
    """
    if cfg.dwell_fixed is not None:
        return cfg.dwell_fixed
    raw = NO_GAP_DWELL if gap < GAP_FLOOR else math.ceil(cfg.dwell_kappa * math.log(1.0 / cfg.dwell_eps) / (eta * gap * gap))
    return min(math.ceil(raw * cfg.dwell_scale), cfg.dwell_cap)


def prune_min_age(cfg: DDCConfig) -> int:
    """``prune_min_age``, or the capped T_d(η⁺, 0.1) [author-code; cap reconstructed]."""
    return cfg.prune_min_age if cfg.prune_min_age is not None else dwell(cfg.eta, 0.1, cfg)


def thresholds(gamma: float, cfg: DDCConfig) -> tuple[float, float, float]:
    """(θ_w, φ_w, φ_g) = (f_θ Γ, f_φ θ_w, f_g θ_w) [author-code] from the calibration scale Γ."""
    theta = cfg.theta_w_frac * gamma
    return theta, cfg.phi_w_frac * theta, cfg.phi_g_frac * theta


def calibrate(operators: list[np.ndarray]) -> float:
    """Γ = median over calibration batches of ‖A_res‖_F (E empty, weights frozen) [author-code] (A2)."""
    return float(np.median([np.linalg.norm(a) for a in operators]))


# --------------------------------------------------------------------------- the trackers


def gaps(lam_desc: np.ndarray) -> tuple[float, float, float]:
    """(Δ⁺, Δ⁻, γ*) from eigenvalues in descending order (already scaled): spec §2.3 step 2."""
    if lam_desc.size < 2:
        return GAP_FLOOR, GAP_FLOOR, 0.5
    dp = max(float(lam_desc[0] - lam_desc[1]), GAP_FLOOR)
    dm = max(float(lam_desc[-2] - lam_desc[-1]), GAP_FLOOR)
    return dp, dm, dp / (dp + dm + GAP_FLOOR)


def oja_step(u_plus: np.ndarray, u_minus: np.ndarray, a: np.ndarray, eta: float, gamma: float) -> np.ndarray:
    """u⁺ ← n̂(u⁺ + η⁺[(Ãu⁺ − R u⁺) − (1 − γ*) c u⁻]), R = u⁺ᵀÃu⁺, c = u⁺ᵀÃu⁻ [author-code]."""
    au = a @ u_plus
    r, c = float(u_plus @ au), float(u_plus @ a @ u_minus)
    return unit(u_plus + eta * ((au - r * u_plus) - (1.0 - gamma) * c * u_minus))


def exin_step(u_minus: np.ndarray, u_plus: np.ndarray, a: np.ndarray, eta: float, gamma: float) -> np.ndarray:
    """MCA-EXIN with the new u⁺ [author-code]: y = u⁻ᵀÃu⁻, ν = ‖u⁻‖², c = u⁺ᵀÃu⁻;
    u⁻ ← n̂(u⁻ − (η⁻y/ν)(Ãu⁻ − (y/ν)u⁻) + η⁻γ*(1 − γ*) c u⁺); then u⁻ ← n̂(u⁻ − (u⁻·u⁺)u⁺)."""
    au = a @ u_minus
    y, nu, c = float(u_minus @ au), float(u_minus @ u_minus), float(u_plus @ au)
    u = unit(u_minus - (eta * y / nu) * (au - (y / nu) * u_minus) + eta * gamma * (1.0 - gamma) * c * u_plus)
    return unit(u - float(u @ u_plus) * u_plus)


# --------------------------------------------------------------------------- state


@dataclass
class HeadState:
    """One head as the gate sees it: stable id (never reused), age and prune counter in gate calls."""

    id: int
    age: int = 0
    counter: int = 0


@dataclass
class GateState:
    """A layer's gate: E (d, m), trackers u⁺, u⁻, thresholds, heads, counters and its own RNG.

    ``last_trigger`` starts at 0: the dwell clock runs from the first gate call [reconstructed]
    (the author starts it at −10,000).
    """

    d: int
    theta_w: float
    phi_w: float
    phi_g: float
    e: np.ndarray
    u_plus: np.ndarray
    u_minus: np.ndarray
    rng: np.random.Generator
    heads: list[HeadState] = field(default_factory=list)
    next_id: int = 0
    last_trigger: int = 0
    calls: int = 0
    memo: tuple | None = field(default=None, repr=False, compare=False)  # (A, eigenvalues, eigenvectors); not state

    @classmethod
    def new(cls, d: int, gamma: float, cfg: DDCConfig, seed: int, n_heads: int = 0) -> GateState:
        """A fresh gate with thresholds from Γ, random unit trackers (u⁻ ⊥ u⁺) and ``n_heads`` heads (ids 0…)."""
        rng = np.random.default_rng(seed)
        theta, phi_w, phi_g = thresholds(gamma, cfg)
        u_plus = unit(rng.standard_normal(d))
        u_minus = rng.standard_normal(d)
        u_minus = unit(u_minus - float(u_minus @ u_plus) * u_plus)
        heads = [HeadState(i) for i in range(n_heads)]
        return cls(d, theta, phi_w, phi_g, np.zeros((d, 0)), u_plus, u_minus, rng, heads, n_heads)

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state (arrays as lists, the RNG's bit-generator state): resuming gives the same decisions."""
        return {"d": self.d, "theta_w": self.theta_w, "phi_w": self.phi_w, "phi_g": self.phi_g,
                "e": self.e.tolist(), "u_plus": self.u_plus.tolist(), "u_minus": self.u_minus.tolist(),
                "rng": self.rng.bit_generator.state, "heads": [[h.id, h.age, h.counter] for h in self.heads],
                "next_id": self.next_id, "last_trigger": self.last_trigger, "calls": self.calls}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> GateState:
        rng = np.random.default_rng()
        rng.bit_generator.state = s["rng"]
        e = np.asarray(s["e"], dtype=np.float64).reshape(s["d"], -1)
        return cls(s["d"], s["theta_w"], s["phi_w"], s["phi_g"], e, np.asarray(s["u_plus"], dtype=np.float64),
                   np.asarray(s["u_minus"], dtype=np.float64), rng, [HeadState(*h) for h in s["heads"]],
                   s["next_id"], s["last_trigger"], s["calls"])


# --------------------------------------------------------------------------- one gate call (A3)


def track(state: GateState, a: np.ndarray, cfg: DDCConfig) -> dict[str, float]:
    """Steps 1–5 of a gate call on A: update u⁺, u⁻ and return λ̂_max, λ̂_min, λ_1, λ_d, Δ⁺ (for the dwell)."""
    memo = state.memo
    if memo is not None and memo[0] is a:  # a frozen operator (A5): one eigendecomposition until it changes
        vals, vecs = memo[1], memo[2]
    else:
        vals, vecs = np.linalg.eigh(a)
        state.memo = (a, vals, vecs)
    lam = vals[::-1]
    s = float(np.max(np.abs(lam)))
    scale = s if (cfg.gate_normalise and s > 0) else 1.0
    a_tilde, lam_tilde = a / scale, lam / scale
    dp, _, gamma = gaps(lam_tilde)
    if cfg.gate_estimator == "exact":
        state.u_plus = vecs[:, -1].copy()
        state.u_minus = vecs[:, 0].copy()
        lmax, lmin = float(lam[0]), float(lam[-1])
    else:
        state.u_plus = oja_step(state.u_plus, state.u_minus, a_tilde, cfg.eta, gamma)
        state.u_minus = exin_step(state.u_minus, state.u_plus, a_tilde, cfg.eta * cfg.gate_eta_minus_ratio, gamma)
        lmax, lmin = float(state.u_plus @ a @ state.u_plus), float(state.u_minus @ a @ state.u_minus)
    return {"lambda_max": lmax, "lambda_min": lmin, "lambda_1": float(lam[0]), "lambda_d": float(lam[-1]), "gap": dp}


def redraw_trackers(state: GateState) -> None:
    """After a growth: u⁺ ← n̂(Π⊥ξ), u⁻ ← unit random vector projected off [E, u⁺] (spec §2.3 growth step 3)."""
    p = projector(state.e, state.d)
    state.u_plus = unit(p @ state.rng.standard_normal(state.d))
    basis = np.column_stack([state.e, state.u_plus])
    u = state.rng.standard_normal(state.d)
    state.u_minus = unit(u - basis @ (basis.T @ u))


def gate_call(
    state: GateState,
    c: np.ndarray,
    heads: dict[int, np.ndarray | None],
    cfg: DDCConfig,
    *,
    m_a: np.ndarray | None = None,
    on_grow: Callable[[np.ndarray, GateState], np.ndarray | None] | None = None,
    on_prune: Callable[[int], None] | None = None,
    max_heads: int | None = None,
    a: np.ndarray | None = None,
) -> dict[str, Any]:
    """One gate call (A3) at ``state.calls``; returns the trace row and advances the call counter.

    The row's ``events`` lists what happened (a growth, then a prune, either may be absent); ``event`` is the first.

    c: the gate input's C (d, d) (the centred covariance for ``"psd"``). heads: {head id: M_{a,h} or None};
    M_a = Σ_h M_{a,h} unless ``m_a`` (a frozen operator, E2) is given. on_grow(v, state) adds a head and
    returns its M_{a,h} (or None); on_prune(id) removes one. ``a``: the operator A_res when the caller has it
    (a frozen operator reuses one array, and its eigendecomposition, until E changes). Growth needs the dwell, λ̂_max > θ_w,
    λ̂_min < φ_w and H < max_heads; a λ̂_min veto alone is flagged in the row (``veto``).
    """
    now = state.calls
    if m_a is None:
        mats = [m for m in heads.values() if m is not None]
        m_a = sum(mats) if mats else np.zeros((state.d, state.d))
    if a is None:
        a = residual_operator(c, m_a, state.e, cfg.gate_operator)
    row = {"call": now, **track(state, a, cfg), "theta_w": state.theta_w, "event": None, "events": [], "veto": False}
    t_d = dwell(cfg.eta, row["gap"], cfg)
    limit = max_heads if max_heads is not None else cfg.heads_max
    ready = now - state.last_trigger >= t_d and row["lambda_max"] > state.theta_w and len(state.heads) < limit
    row["veto"] = bool(ready and not row["lambda_min"] < state.phi_w)
    if ready and row["lambda_min"] < state.phi_w:
        v = unit(projector(state.e, state.d) @ state.u_plus)
        state.e = np.column_stack([state.e, v])
        head = HeadState(state.next_id)
        state.next_id += 1
        state.heads.append(head)
        new_m = on_grow(v, state) if on_grow else None
        heads = {**heads, head.id: new_m}
        redraw_trackers(state)
        state.last_trigger = now
        row["events"].append({"kind": "grow", "head": head.id, "trigger": row["lambda_max"]})
    if cfg.prune_enabled:
        pruned = _prune(state, c, heads, cfg, on_prune)
        if pruned is not None:
            row["events"].append(pruned)
    row["event"] = row["events"][0] if row["events"] else None
    for h in state.heads:
        h.age += 1
    row["heads"] = len(state.heads)
    state.calls += 1
    return row


def head_strength(c: np.ndarray, m_ah: np.ndarray) -> float:
    """G_h = ‖C M_{a,h}‖_F [author-code]: the prune statistic (DDCL-T11 bounds the trigger change by it)."""
    return float(np.linalg.norm(c @ m_ah))


def _prune(state: GateState, c: np.ndarray, heads: dict, cfg: DDCConfig, on_prune: Callable | None) -> dict | None:
    """Counters of heads old enough; prune the first at ``prune_patience`` while H > ``min_heads`` (E unchanged)."""
    event = None
    min_age = prune_min_age(cfg)
    for h in list(state.heads):
        m = heads.get(h.id)
        if m is None or h.age < min_age:
            continue
        g = head_strength(c, m)
        h.counter = h.counter + 1 if g < state.phi_g else 0
        if h.counter >= cfg.prune_patience and len(state.heads) > cfg.min_heads and event is None:
            state.heads.remove(h)
            if on_prune:
                on_prune(h.id)
            event = {"kind": "prune", "head": h.id, "g": g}
    return event
