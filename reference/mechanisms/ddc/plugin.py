"""The DDCL objective in training: L = L_task + β Σ_ℓ L̄_q^{(ℓ)} (spec §2.2 "Objective") [reconstructed].

A model with ``model.ffn = "ddcl"`` exposes each layer's mean L̄_q at the hook ``blocks.{i}.ddcl.lq``
(and F̄ at ``blocks.{i}.ddcl.free_energy``). This plug-in adds β times their sum to the loss
(``ddcl_loss="free_energy"``: β Σ F̄ instead); the block's backward turns the upstream gradient β of
the hook into the §2.2 terms β' w_tk. It records the per-layer L̄_q. Temperature modes act on the
optimiser, not here: ``"frozen"`` τ is a fixed parameter (see :func:`frozen_names`).

Head growth and pruning change the parameter dict and the optimiser between steps, which the
trainer's plug-in interface (forward arguments, extra losses, records) cannot do; growth is
therefore the pair of functions in :mod:`reference.mechanisms.ddc.growth` plus the gate, driven by
the DDC experiment's own loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.config import ModelConfig, RunConfig
from reference.mechanisms.ddc.config import DDCConfig
from reference.plugins import StepTerms


def hook_name(layer: int, loss: str) -> str:
    """``blocks.{layer}.ddcl.lq`` or ``blocks.{layer}.ddcl.free_energy``."""
    return f"blocks.{layer}.ddcl.{'lq' if loss == 'lq' else 'free_energy'}"


def frozen_names(model: ModelConfig, cfg: DDCConfig) -> list[str]:
    """Parameters the optimiser must leave alone: every ``ddcl.log_tau`` when ``ddcl_tau_mode="frozen"``."""
    return [f"blocks.{i}.ddcl.log_tau" for i in range(model.n_layers)] if cfg.ddcl_tau_mode == "frozen" else []


def ddcl_extra_loss(model: ModelConfig, cfg: DDCConfig, record: dict) -> Any:
    """``activations -> (β Σ_ℓ L̄_ℓ, {hook: β})``: the DDCL term as an extra loss on the recorded hooks."""

    def extra(acts: dict) -> tuple[float, dict]:
        names = [hook_name(i, cfg.ddcl_loss) for i in range(model.n_layers)]
        values = [float(acts[n]) for n in names]
        for i, v in enumerate(values):
            record[f"ddcl_{cfg.ddcl_loss}_{i}"] = v
        return cfg.ddcl_beta * sum(values), {n: cfg.ddcl_beta for n in names}

    return extra


class DDCPlugin:
    """The β·L̄_q term for models with DDCL blocks (a ``TrainingPlugin``)."""

    def __init__(self, cfg: DDCConfig, model: ModelConfig) -> None:
        self.cfg, self.model = cfg, model

    def __str__(self) -> str:
        return f"DDCL blocks on: beta={self.cfg.ddcl_beta}, loss={self.cfg.ddcl_loss}"

    def step_terms(self, step: int, batch: Any, generator: np.random.Generator) -> StepTerms:
        record: dict[str, Any] = {}
        return StepTerms(extra_loss=ddcl_extra_loss(self.model, self.cfg, record), record=record)

    def eval_kwargs(self, batch: Any) -> dict:
        return {}


def plugin_for(run: RunConfig) -> DDCPlugin | None:
    """The DDC plug-in when ``model.ffn == "ddcl"`` and β > 0; None otherwise."""
    if run.model.ffn != "ddcl" or run.ddc.ddcl_beta == 0:
        return None
    return DDCPlugin(run.ddc, run.model)
