"""Held-out evaluation: loss, perplexity and next-token accuracy, and the unigram baseline.

:func:`evaluate` is the one loop over validation batches. A mechanism that needs more
than the loss (attention statistics at a dial setting, say) passes its forward arguments
and the hook names it wants, and reads the activations through ``observe``, rather than
writing a second loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from reference.backend import to_host
from reference.config import RunConfig
from reference.data.batch import Batch
from reference.layers.loss import IGNORE, cross_entropy_forward
from reference.model import run_with_cache


def unigram_loss(batches: Sequence[Batch]) -> float:
    """Cross-entropy (nats) of the targets under their own empirical unigram distribution.

    It is the best any context-free predictor can do on exactly these
    targets, the baseline the demo's loss is compared with.
    """
    targets = np.concatenate([to_host(b.targets)[to_host(b.targets) != IGNORE] for b in batches])
    counts = np.bincount(targets).astype(np.float64)
    probs = counts[counts > 0] / counts.sum()
    return float(-(probs * np.log(probs)).sum())


def evaluate(
    params: dict,
    run: RunConfig,
    batches: Iterable[Batch],
    forward_kwargs: Callable[[Batch], dict] | None = None,
    *,
    names: Iterable[str] = (),
    observe: Callable[[Batch, Any, dict, np.ndarray], None] | None = None,
) -> dict:
    """Mean loss (nats per counted token), perplexity and next-token accuracy on ``batches``.

    forward_kwargs(batch): per-batch forward arguments (an attention bias, say), as a
        plug-in gives in training.
    names: hook points to record for ``observe`` (none by default: a plain forward).
    observe(batch, logits, activations, hits): called after each batch, with hits
        (B, T) bool, the counted positions whose top-1 prediction is the target.
    Returns ``val_loss``, ``val_perplexity`` (``inf`` when the mean loss is past ~709.78 nats:
    see :func:`perplexity`), ``val_accuracy``.
    """
    keep = list(names)
    total_loss, total_correct, total_count = 0.0, 0, 0
    for batch in batches:
        inputs, targets = batch.inputs, batch.targets
        kwargs = forward_kwargs(batch) if forward_kwargs else {}
        logits, acts = run_with_cache(params, run.model, inputs, names=keep, **kwargs)
        loss, cache = cross_entropy_forward(logits, targets)
        count = int(cache["counted"].sum())
        total_loss += float(loss) * count
        host_targets = to_host(targets)
        hits = (to_host(logits).argmax(-1) == host_targets) & (host_targets != IGNORE)
        total_correct += int(hits.sum())
        total_count += count
        if observe is not None:
            observe(batch, logits, acts, hits)
    mean = total_loss / max(total_count, 1)
    return {"val_loss": mean, "val_perplexity": perplexity(mean), "val_accuracy": total_correct / max(total_count, 1)}


def perplexity(mean_loss: float) -> float:
    """exp(mean loss), and ``inf`` (a value, not an OverflowError) past float64's range (loss > ~709.78 nats).

    A NaN loss gives NaN. [reconstructed] JSON has no infinity: :func:`json_safe` writes a non-finite
    metric as ``null`` (meaning "not a finite number") wherever metrics are serialised as JSON
    (``clearform eval --json``; ``metrics.jsonl`` when its writer uses it), so the output stays
    strictly valid JSON (``json.dumps`` alone would write the non-standard ``Infinity``).
    """
    try:
        return math.exp(mean_loss)
    except OverflowError:
        return math.inf


def json_safe(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with every non-finite float (inf, -inf, NaN) replaced by ``None``. [reconstructed]

    ``json.dumps(json_safe(r), allow_nan=False)`` is then strict JSON: a perplexity that overflowed
    is written ``null``, not ``Infinity`` (which Python reads back but strict JSON parsers refuse).
    """
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value for key, value in record.items()}
