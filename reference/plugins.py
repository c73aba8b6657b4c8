"""The training plug-in contract: what a mechanism may add to a training step, and how several add up.

A plug-in (the locality dial, say) never forks the training loop. Once per step the
:class:`reference.train.Trainer` asks every plug-in for its :class:`StepTerms` and
combines them with :func:`combine_terms`; for validation it asks for forward arguments
only and combines them with :func:`combine_forward_kwargs`. Mechanisms import this
module, not ``train``, so their plug-ins sit below the trainer.

How terms add up (so two mechanisms can train together):

* forward arguments: an additive attention bias (``attn_bias``: one array, or one entry
  per layer, None meaning "no bias") is summed; any other argument (``temperature`` …)
  may be set by one plug-in only — two that set it are a :class:`PluginConflict`;
* extra losses: values add, and gradients at the same hook add;
* records: merged; two plug-ins writing the same key are a :class:`PluginConflict`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

ADDITIVE_KWARGS = ("attn_bias",)
"""Forward arguments that several plug-ins may set: their values are summed."""


class PluginConflict(ValueError):
    """Two plug-ins set the same non-additive forward argument or metric key."""


@dataclass
class StepTerms:
    """What a plug-in adds to one training step.

    forward_kwargs: extra arguments of :func:`reference.model.forward`
        (``attn_bias``, ``temperature`` ...).
    extra_loss: ``activations -> (value, {hook name: gradient})``, a penalty
        on recorded activations whose gradients enter the backward pass.
    record: metric values to add to this step's metrics line.
    """

    forward_kwargs: dict = field(default_factory=dict)
    extra_loss: Callable | None = None
    record: dict = field(default_factory=dict)


class TrainingPlugin(Protocol):
    """A mechanism that shapes training without forking the loop (LOC's dial, say).

    ``step_terms`` is called once per step with the batch and the trainer's
    checkpointed generator (draw from it, never from global state, so runs
    stay deterministic and resumable). ``eval_kwargs`` gives the forward
    arguments used for validation batches.
    """

    def step_terms(self, step: int, batch: Any, generator: np.random.Generator) -> StepTerms: ...

    def eval_kwargs(self, batch: Any) -> dict: ...


def _add(a: Any, b: Any) -> Any:
    """a + b where None is "nothing"."""
    if a is None:
        return b
    return a if b is None else a + b


def _add_bias(a: Any, b: Any) -> Any:
    """Sum two ``attn_bias`` values: arrays (every layer) or per-layer sequences."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        n = len(a) if isinstance(a, (list, tuple)) else len(b)
        per_a = a if isinstance(a, (list, tuple)) else [a] * n
        per_b = b if isinstance(b, (list, tuple)) else [b] * n
        if len(per_a) != len(per_b):
            raise PluginConflict(f"attn_bias: one plug-in gives {len(per_a)} layers, another {len(per_b)}")
        return [_add(x, y) for x, y in zip(per_a, per_b)]
    return _add(a, b)


def combine_forward_kwargs(parts: Sequence[dict]) -> dict:
    """The forward arguments of several plug-ins as one dict (see the module docstring)."""
    out: dict[str, Any] = {}
    for kwargs in parts:
        for key, value in kwargs.items():
            if key not in out:
                out[key] = value
            elif key in ADDITIVE_KWARGS:
                out[key] = _add_bias(out[key], value)
            else:
                raise PluginConflict(f"two plug-ins set the forward argument {key!r}; only {ADDITIVE_KWARGS} add up")
    return out


def _merge_records(parts: Sequence[StepTerms], into: dict) -> dict:
    """Every part's record in ``into``; a key written by two plug-ins is a PluginConflict."""
    into.clear()
    for terms in parts:
        clash = sorted(set(into) & set(terms.record))
        if clash:
            raise PluginConflict(f"two plug-ins record the metric {clash[0]!r}")
        into.update(terms.record)
    return into


def combine_terms(parts: Sequence[StepTerms]) -> StepTerms:
    """One :class:`StepTerms` for a step with several plug-ins: forward arguments, losses and records add up.

    A plug-in's extra loss may fill its record when it runs (the penalty's value, say), so
    the combined loss merges the records again after every part has run.
    """
    if len(parts) == 1:
        return parts[0]
    record = _merge_records(parts, {})
    losses = [t.extra_loss for t in parts if t.extra_loss is not None]

    def extra_loss(activations: dict) -> tuple[float, dict]:
        total, grads = 0.0, {}
        for loss in losses:
            value, part = loss(activations)
            total += value
            for name, grad in part.items():
                grads[name] = _add(grads.get(name), grad)
        _merge_records(parts, record)
        return total, grads

    return StepTerms(
        forward_kwargs=combine_forward_kwargs([t.forward_kwargs for t in parts]),
        extra_loss=extra_loss if losses else None,
        record=record,
    )
