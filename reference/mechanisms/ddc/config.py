"""The ``ddc`` config section: the DDCL block and the INCRT gate (specs/03-ddcl-incrt.md §2.5, §7).

Only the settings this package implements are accepted; choices the spec lists that are not
implemented here (``ddcl_distance="cosine"``, ``temperature_site="head_ddcl"``, layer growth,
prototype pruning/splitting, the auxiliary losses) are refused with a one-line ConfigError
rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reference.config import (
    ConfigError,
    ConfigSection,
    check_bool,
    check_choice,
    check_float,
    check_int,
    is_int,
    is_number,
)

MAX_GATE = 10**7
"""Upper bound of every gate-call count (dwell cap, patience, ages)."""


def _check_fraction(section: str, name: str, value: Any) -> None:
    check_float(section, name, value, 0.0, 1.0, lo_open=True, hi_open=True)


@dataclass(frozen=True)
class DDCConfig(ConfigSection):
    """DDCL-INCRT settings (spec §2.5; every default is the spec's).

    DDCL block: ``n_prototypes`` K ≥ 2; ``ddcl_beta`` β ≥ 0 (weight of mean L_q per layer);
    ``ddcl_loss`` "lq" | "free_energy"; ``ddcl_param`` "bank" | "dual" (``dual_anchors`` m rows);
    ``ddcl_init`` "kmeanspp" | "mean_noise"; ``ddcl_tau_mode`` "frozen" | "task_only" | "joint";
    ``ddcl_tau_init`` "auto" (2λ_max(Σ₀)) or a number τ > 0; ``proto_lr_ratio`` ρ > 0.

    Growth model widths [reconstructed]: the growing model's heads are separate named tensors, so
    this section carries its own ``d_model`` d and head width ``d_k`` (``d_v`` None → d_k);
    ``max_heads`` None → d // d_k (then d_k must divide d).

    INCRT gate: ``initial_heads`` ≤ ``max_heads``, ``min_heads``; ``grow_every`` (optimiser steps per
    gate call); ``gate_operator`` "commutator" | "psd"; ``gate_estimator`` "oja" | "exact";
    ``gate_normalise``; ``gate_eta`` None → 1/(10d); ``gate_eta_minus_ratio``; dwell
    ``dwell_kappa``, ``dwell_eps`` ∈ (0, 1), ``dwell_cap``, ``dwell_scale``, ``dwell_fixed``;
    ``calib_batches``; thresholds ``theta_w_frac``, ``phi_w_frac``, ``phi_g_frac`` ∈ (0, 1);
    ``calibrate_per_layer``; pruning ``prune_enabled``, ``prune_patience``, ``prune_min_age``
    (None → capped T_d(η⁺, 0.1)), ``keep_pruned_direction``; new heads ``new_head_init``
    "author" | "function_preserving" | "eigen_seed", ``new_head_out_scale``, ``eigen_seed_eps``;
    ``attn_tau_learnable``, ``attn_tau_clamp`` (lo, hi) with 0 < lo < hi.
    """

    SECTION = "ddc"

    n_prototypes: int = 8
    ddcl_beta: float = 1.0
    ddcl_loss: str = "lq"
    ddcl_param: str = "bank"
    dual_anchors: int = 64
    ddcl_init: str = "kmeanspp"
    ddcl_tau_mode: str = "frozen"
    ddcl_tau_init: Any = "auto"
    proto_lr_ratio: float = 10.0
    d_model: int = 32
    d_k: int = 8
    d_v: int | None = None
    initial_heads: int = 1
    max_heads: int | None = None
    min_heads: int = 1
    grow_every: int = 5
    gate_operator: str = "commutator"
    gate_estimator: str = "oja"
    gate_normalise: bool = True
    gate_eta: float | None = None
    gate_eta_minus_ratio: float = 0.5
    dwell_kappa: float = 2.0
    dwell_eps: float = 0.05
    dwell_cap: int = 10000
    dwell_scale: float = 1.0
    dwell_fixed: int | None = None
    calib_batches: int = 16
    theta_w_frac: float = 0.10
    phi_w_frac: float = 0.5
    phi_g_frac: float = 0.01
    calibrate_per_layer: bool = True
    prune_enabled: bool = True
    prune_patience: int = 100
    prune_min_age: int | None = None
    keep_pruned_direction: bool = True
    new_head_init: str = "function_preserving"
    new_head_out_scale: float = 1e-3
    eigen_seed_eps: float = 0.1
    attn_tau_learnable: bool = True
    attn_tau_clamp: tuple[float, float] = (1e-2, 1e2)

    def validate(self) -> None:
        s = self.SECTION
        check_int(s, "n_prototypes", self.n_prototypes, 2, 4096)
        check_float(s, "ddcl_beta", self.ddcl_beta, 0.0, 1e6)
        check_choice(s, "ddcl_loss", self.ddcl_loss, ("lq", "free_energy"))
        check_choice(s, "ddcl_param", self.ddcl_param, ("bank", "dual"))
        check_int(s, "dual_anchors", self.dual_anchors, 1, 1 << 16)
        check_choice(s, "ddcl_init", self.ddcl_init, ("kmeanspp", "mean_noise"))
        check_choice(s, "ddcl_tau_mode", self.ddcl_tau_mode, ("frozen", "task_only", "joint"))
        if self.ddcl_tau_init != "auto":
            if not is_number(self.ddcl_tau_init):
                raise ConfigError(f"{s}.ddcl_tau_init: {self.ddcl_tau_init!r} is not 'auto' or a number > 0")
            check_float(s, "ddcl_tau_init", self.ddcl_tau_init, 0.0, 1e12, lo_open=True)
        check_float(s, "proto_lr_ratio", self.proto_lr_ratio, 0.0, 1e6, lo_open=True)
        check_int(s, "d_model", self.d_model, 2, 1 << 16)
        check_int(s, "d_k", self.d_k, 1, 1 << 16)
        if self.d_v is not None:
            check_int(s, "d_v", self.d_v, 1, 1 << 16)
        if self.max_heads is None and self.d_model % self.d_k:
            raise ConfigError(f"{s}.d_k: {self.d_k} does not divide d_model {self.d_model} (set max_heads, or pick a divisor)")
        if self.max_heads is not None:
            check_int(s, "max_heads", self.max_heads, 1, 1024)
        check_int(s, "min_heads", self.min_heads, 1, 1024)
        check_int(s, "initial_heads", self.initial_heads, 1, 1024)
        if self.initial_heads > self.heads_max:
            raise ConfigError(f"{s}.initial_heads: {self.initial_heads} is more than max_heads {self.heads_max}")
        if self.min_heads > self.heads_max:
            raise ConfigError(f"{s}.min_heads: {self.min_heads} is more than max_heads {self.heads_max}")
        check_int(s, "grow_every", self.grow_every, 1, MAX_GATE)
        check_choice(s, "gate_operator", self.gate_operator, ("commutator", "psd"))
        check_choice(s, "gate_estimator", self.gate_estimator, ("oja", "exact"))
        check_bool(s, "gate_normalise", self.gate_normalise)
        if self.gate_eta is not None:
            check_float(s, "gate_eta", self.gate_eta, 0.0, 1.0, lo_open=True)
        check_float(s, "gate_eta_minus_ratio", self.gate_eta_minus_ratio, 0.0, 10.0, lo_open=True)
        check_float(s, "dwell_kappa", self.dwell_kappa, 0.0, 1e6, lo_open=True)
        _check_fraction(s, "dwell_eps", self.dwell_eps)
        check_int(s, "dwell_cap", self.dwell_cap, 0, MAX_GATE)
        check_float(s, "dwell_scale", self.dwell_scale, 0.0, 1e6, lo_open=True)
        if self.dwell_fixed is not None:
            check_int(s, "dwell_fixed", self.dwell_fixed, 0, MAX_GATE)
        check_int(s, "calib_batches", self.calib_batches, 1, 10**4)
        for name in ("theta_w_frac", "phi_w_frac", "phi_g_frac"):
            _check_fraction(s, name, getattr(self, name))
        check_bool(s, "calibrate_per_layer", self.calibrate_per_layer)
        check_bool(s, "prune_enabled", self.prune_enabled)
        check_int(s, "prune_patience", self.prune_patience, 1, MAX_GATE)
        if self.prune_min_age is not None:
            check_int(s, "prune_min_age", self.prune_min_age, 0, MAX_GATE)
        check_bool(s, "keep_pruned_direction", self.keep_pruned_direction)
        if not self.keep_pruned_direction:  # DDCL-T9/T11 need monotone deflation; releasing a column is not covered
            raise ConfigError(f"{s}.keep_pruned_direction: False is not implemented (E keeps a pruned head's column)")
        check_choice(s, "new_head_init", self.new_head_init, ("author", "function_preserving", "eigen_seed"))
        check_float(s, "new_head_out_scale", self.new_head_out_scale, 0.0, 1e3, lo_open=True)
        check_float(s, "eigen_seed_eps", self.eigen_seed_eps, 0.0, 1e3, lo_open=True)
        check_bool(s, "attn_tau_learnable", self.attn_tau_learnable)
        clamp = self.attn_tau_clamp
        if (not isinstance(clamp, tuple) or len(clamp) != 2 or not all(is_number(c) for c in clamp)
                or not 0 < clamp[0] < clamp[1] < float("inf")):
            raise ConfigError(f"{s}.attn_tau_clamp: {clamp!r} is not a pair (lo, hi) with 0 < lo < hi")

    @property
    def heads_max(self) -> int:
        """max_heads, or d // d_k when None."""
        return self.max_heads if self.max_heads is not None else self.d_model // self.d_k

    @property
    def eta(self) -> float:
        """η⁺: ``gate_eta``, or 1/(10d) [author-code]."""
        return self.gate_eta if self.gate_eta is not None else 1.0 / (10 * self.d_model)


def preset_config(name: str) -> DDCConfig:
    """``"toy"`` (spec §5.1: d = 32, d_k = 8, K = 8, exact gate, dwell 40, prune age 40, patience 20) or ``"default"``."""
    if name == "toy":
        return DDCConfig(d_model=32, d_k=8, n_prototypes=8, gate_estimator="exact", dwell_fixed=40,
                         prune_min_age=40, prune_patience=20)
    if name == "default":
        return DDCConfig()
    raise ConfigError(f"ddc preset: {name!r} is not one of 'toy' | 'default'")


__all__ = ["DDCConfig", "is_int", "preset_config"]
