"""A7 — the dial in training: a plug-in for the trainer (spec §2.6, §3 A7). [reconstructed]"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.config import ModelConfig, RunConfig
from reference.mechanisms.locality.config import LocalityConfig
from reference.mechanisms.locality.dial import dial_kwargs, layer_lambdas
from reference.mechanisms.locality.layout import batch_layout
from reference.mechanisms.locality.penalty import locality_loss
from reference.plugins import StepTerms


class LocalityPlugin:
    """The dial in training (A7): a ``TrainingPlugin`` for :class:`reference.train.Trainer`. [reconstructed]

    Each step: λ is ``cfg.lam`` (``train_dial="fixed"``) or drawn uniformly from
    ``cfg.dial_grid`` with the trainer's checkpointed generator (``"dropout"``: one
    model good at every λ, so the dial can move at inference without retraining);
    the forward pass gets the bias −λ_ℓ β_max·off ("bias" hook) and the loss gets
    κ_max Σ_ℓ ω_ℓ ("loss" hook) + μ Ω_ptr. Validation runs at ``cfg.lam`` with the
    inference bias. The layout comes from the batch (:func:`batch_layout`): the
    toy world's ground truth on the inputs' T − 1 positions, or sentence blocks of text.
    """

    def __init__(self, cfg: LocalityConfig, model: ModelConfig) -> None:
        cfg.check_trainable()
        self.cfg = cfg
        self.model = model
        self.dtype = np.dtype(model.dtype)
        layer_lambdas(cfg.lam, model.n_layers, cfg)  # a bad `layers` entry fails here, not mid-run

    def draw_lambda(self, generator: np.random.Generator) -> float:
        """λ of one step: ``cfg.lam``, or a uniform draw from ``dial_grid`` (dial dropout)."""
        if self.cfg.train_dial == "fixed":
            return float(self.cfg.lam)
        grid = self.cfg.dial_grid
        return float(grid[int(generator.integers(len(grid)))])

    def __str__(self) -> str:
        c = self.cfg
        return f"locality dial on: train_dial={c.train_dial}, lam={c.lam}, penalty_max={c.penalty_max}, bias_max={c.bias_max}"

    def step_terms(self, step: int, batch: Any, generator: np.random.Generator) -> StepTerms:
        lam = self.draw_lambda(generator)
        layout = batch_layout(batch, self.cfg, causal=self.model.causal)
        lams = layer_lambdas(lam, self.model.n_layers, self.cfg)
        kwargs = dial_kwargs(layout, lam, self.cfg, self.model.n_layers, dtype=self.dtype, inference=False, lams=lams,
                             tokens=batch.inputs)
        record: dict[str, Any] = {"lam": lam}
        penalised = "loss" in self.cfg.dial_hooks and self.cfg.penalty_max > 0 and any(lams)
        extra = None
        if penalised or self.cfg.pointer_weight > 0:
            extra = locality_loss(layout, lams, self.cfg, self.model.n_layers, record)
        return StepTerms(forward_kwargs=kwargs, extra_loss=extra, record=record)

    def eval_kwargs(self, batch: Any) -> dict:
        layout = batch_layout(batch, self.cfg, causal=self.model.causal)
        return dial_kwargs(
            layout, self.cfg.lam, self.cfg, self.model.n_layers, dtype=self.dtype, inference=True, tokens=batch.inputs
        )


def plugin_for(run: RunConfig) -> LocalityPlugin | None:
    """The registry's plug-in factory: the dial when the run's ``locality`` section differs from the defaults.

    A run without a ``locality`` section (or with the defaults) trains the plain
    transformer; any setting switches the dial on, so a section is never silently ignored.
    """
    if run.locality == LocalityConfig():
        return None
    return LocalityPlugin(run.locality, run.model)
