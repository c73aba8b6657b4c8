"""The ``locality`` config section: the dial λ and everything it drives (specs/00-localist.md §2.7). [reconstructed]"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from reference.config import ConfigError, ConfigSection, check_choice, check_float, check_int, is_int, is_number

DIAL_HOOKS = ("loss", "bias")
LOC_GRID = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def check_lambda(name: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is a dial setting λ ∈ [0, 1] (NaN and ±inf refused).

    Used for the config's ``lam`` and for λ given at run time (``forward``, eval, the sweep),
    so both read the same: ``locality.lam: 1.5 is not a number in [0.0, 1.0]``.
    """
    check_float("locality", name, value, 0.0, 1.0)


@dataclass(frozen=True)
class LocalityConfig(ConfigSection):
    """The locality dial λ and everything it drives (specs/00-localist.md §2.7). [reconstructed]

    λ = ``lam`` ∈ [0, 1] (1 fully localist, 0 fully distributed [paper-abstract 2511.03559])
    scales two hooks (``dial_hooks``): the group-sparsity penalty ``κ_max·Ω_loc`` in the loss
    (κ_max = ``penalty_max``) and the off-block attention bias ``−λ_ℓ·β_max·off``
    (β_max = ``bias_max``). The defaults leave a run without a locality plug-in unchanged: the
    section only matters to code that asks for it (this package's plug-in, sweep and evaluation).

    Fields (spec §2.2–§2.6): ``inference_bias_max`` None → ``bias_max``, ``inf`` → hard mask at
    inference only; ``temperature`` τ > 0; ``dial_temperature`` None or τ_min ∈ (0, τ) (ablation:
    τ_ℓ = τ(τ_min/τ)^{λ_ℓ}); ``operator`` "bias" | "variational" (theory mode, forward only);
    ``penalty_kind`` "off_target" | "block_mass_sqrt"; ``group_weight`` "sqrt_size" | "one";
    ``norm_eps`` guard of zero block norms; ``free_rows`` "own_block" | "none";
    ``pointer_target`` "value" | "anchor" | "block"; ``pointer_weight`` μ ≥ 0; ``train_dial``
    "dropout" (λ drawn from ``dial_grid`` per batch) | "fixed" (λ = ``lam``);
    ``layer_schedule`` "uniform" (λ on ``layers``, None = all) | "progressive"
    (λ_ℓ = λ((ℓ−1)/(L−1))^p, p = ``schedule_power``); ``variational_max_iter``,
    ``variational_tol`` (solver A6); ``max_retries`` K of dual enforcement.
    """

    SECTION = "locality"

    lam: float = 0.0
    dial_hooks: tuple[str, ...] = DIAL_HOOKS
    penalty_max: float = 1.0
    bias_max: float = 8.0
    inference_bias_max: float | None = None
    temperature: float = 1.0
    dial_temperature: float | None = None
    operator: str = "bias"
    penalty_kind: str = "off_target"
    group_weight: str = "sqrt_size"
    norm_eps: float = 1e-12
    free_rows: str = "own_block"
    pointer_target: str = "value"
    pointer_weight: float = 0.0
    train_dial: str = "dropout"
    dial_grid: tuple[float, ...] = LOC_GRID
    layer_schedule: str = "uniform"
    schedule_power: float = 1.0
    layers: tuple[int, ...] | None = None
    variational_max_iter: int = 50_000
    variational_tol: float = 1e-11
    max_retries: int = 3

    def validate(self) -> None:
        s = self.SECTION
        check_lambda("lam", self.lam)
        hooks = self.dial_hooks
        if (
            not isinstance(hooks, tuple) or not hooks or len(set(hooks)) != len(hooks)
            or any(isinstance(h, bool) or h not in DIAL_HOOKS for h in hooks)
        ):
            raise ConfigError(f"{s}.dial_hooks: {hooks!r} is not a non-empty subset of {DIAL_HOOKS!r}")
        check_float(s, "penalty_max", self.penalty_max, 0.0)
        check_float(s, "bias_max", self.bias_max, 0.0, lo_open=True)  # finite: β = ∞ is refused in training
        if self.inference_bias_max is not None and self.inference_bias_max != math.inf:
            check_float(s, "inference_bias_max", self.inference_bias_max, 0.0, lo_open=True)
        check_float(s, "temperature", self.temperature, 0.0, lo_open=True)
        if self.dial_temperature is not None:
            check_float(s, "dial_temperature", self.dial_temperature, 0.0, self.temperature, lo_open=True, hi_open=True)
        check_choice(s, "operator", self.operator, ("bias", "variational"))
        check_choice(s, "penalty_kind", self.penalty_kind, ("off_target", "block_mass_sqrt"))
        check_choice(s, "group_weight", self.group_weight, ("sqrt_size", "one"))
        check_float(s, "norm_eps", self.norm_eps, 0.0, lo_open=True)
        check_choice(s, "free_rows", self.free_rows, ("own_block", "none"))
        check_choice(s, "pointer_target", self.pointer_target, ("value", "anchor", "block"))
        check_float(s, "pointer_weight", self.pointer_weight, 0.0)
        check_choice(s, "train_dial", self.train_dial, ("dropout", "fixed"))
        grid = self.dial_grid
        if (
            not isinstance(grid, tuple) or not grid
            or any(not is_number(v) or not math.isfinite(v) or not 0.0 <= v <= 1.0 for v in grid)
        ):
            raise ConfigError(f"{s}.dial_grid: {grid!r} is not a non-empty tuple of numbers in [0.0, 1.0]")
        check_choice(s, "layer_schedule", self.layer_schedule, ("uniform", "progressive"))
        check_float(s, "schedule_power", self.schedule_power, 0.0, lo_open=True)
        if self.layers is not None and (
            not isinstance(self.layers, tuple) or any(not is_int(v) or v < 0 for v in self.layers)
        ):
            raise ConfigError(f"{s}.layers: {self.layers!r} is not None or a tuple of layer indices >= 0")
        check_int(s, "variational_max_iter", self.variational_max_iter, 1, 10**7)
        check_float(s, "variational_tol", self.variational_tol, 0.0, lo_open=True)
        check_int(s, "max_retries", self.max_retries, 1, 1000)
        if self.operator == "variational" and self.penalty_kind != "off_target":
            raise ConfigError(f"{s}.operator: 'variational' needs penalty_kind 'off_target', got {self.penalty_kind!r}")

    def check_trainable(self) -> None:
        """Raise ConfigError for settings that may be used at inference only (§2.7).

        Theory mode has no backward pass, and an infinite bias would make every off-block
        gradient vanish: training with either is refused.
        """
        if self.operator == "variational":
            raise ConfigError("locality.operator: 'variational' is forward only (theory mode); train with 'bias'")

    @property
    def inference_bias(self) -> float:
        """β used at inference: ``inference_bias_max``, or ``bias_max`` when None."""
        return self.bias_max if self.inference_bias_max is None else self.inference_bias_max
