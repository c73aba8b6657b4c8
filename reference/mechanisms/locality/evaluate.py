"""Evaluation of one model at one λ: every §5 metric, the per-row bound checks, the hot-reload probe. [reconstructed]

:func:`evaluate_dial` runs the core's :func:`reference.evaluation.evaluate` loop (loss,
perplexity, accuracy) with the dial's forward arguments and reads the attention of every
batch on the way; :func:`reload_probe` builds the §6.2 hot-reload probe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference.backend import to_host
from reference.config import RunConfig
from reference.data.batch import Batch, shift_targets
from reference.evaluation import evaluate
from reference.layers.loss import IGNORE
from reference.mechanisms.locality.bounds import (
    bias_dial_closed_form,
    entropy_rising_rows,
    row_bound_violations,
    rule_row_margins,
)
from reference.mechanisms.locality.config import LocalityConfig, check_lambda
from reference.mechanisms.locality.dial import dial_kwargs, layer_lambdas, layer_temperatures
from reference.mechanisms.locality.layout import Layout, batch_layout
from reference.mechanisms.locality.rules import hot_reload
from reference.metrics import entropy_summary, pointer_summary, row_argmax_in, row_entropy_bits, row_mass, stack_patterns
from reference.model import forward


def _quantiles(values: list[np.ndarray]) -> list[float] | None:
    """10 / 50 / 90 % quantiles of the finite values, or None."""
    flat = np.concatenate([v.ravel() for v in values]) if values else np.zeros(0)
    flat = flat[np.isfinite(flat)]
    return [float(q) for q in np.quantile(flat, [0.1, 0.5, 0.9])] if flat.size else None


E3_RTOL = 1e-9
"""E3's tolerance (spec §6.4): relative, between a row's pattern and the closed forms."""


def layer0_closed_form_mismatches(
    z: Any, pattern: Any, h: np.ndarray, layout: Layout, shift: float, tau: float
) -> tuple[int, int]:
    """E3 on one batch: layer 0's rows against T4(a), T5(d), T6(a) from its unbiased scores. [reconstructed §6.4]

    Layer 0's scores z (B, H, T, T) do not depend on λ, so the bias dial's closed forms
    (:func:`bias_dial_closed_form`) predict its pattern at any λ: the off-block mass ε and
    the entropy H (bits) on every biased row, the pointer fidelity PF on every rule row.
    h: the rows' entropies (B, H, T) in bits. Returns (checks made, checks beyond
    rtol :data:`E3_RTOL`; absolute floors 1e-300 for ε and PF, 1e-12 bits for H).
    """
    a = np.asarray(pattern, dtype=np.float64)
    closed = bias_dial_closed_form(z, layout, shift, tau)
    biased = np.broadcast_to(layout.biased_rows[:, None, :], a.shape[:3])
    rule = np.broadcast_to(layout.rule_row[:, None, :], a.shape[:3])
    eps = np.einsum("bhij,bij->bhi", a, layout.off.astype(np.float64))
    pf = np.einsum("bhij,bij->bhi", a, layout.pointer_mask.astype(np.float64))
    wrong = made = 0
    for actual, expected, rows, floor in ((eps, closed["eps"], biased, 1e-300), (h, closed["entropy"], biased, 1e-12),
                                          (pf, closed["pf"], rule, 1e-300)):
        far = np.abs(actual - expected) > floor + E3_RTOL * np.abs(expected)
        wrong += int((far & rows).sum())
        made += int(rows.sum())
    return made, wrong


def _params64(params: dict) -> dict:
    return {name: np.asarray(to_host(value), dtype=np.float64) for name, value in params.items()}


def evaluate_dial(
    params: dict,
    run: RunConfig,
    batches: Sequence[Any],
    lam: float,
    cfg: LocalityConfig | None = None,
    *,
    world: Any = None,
    probe: Sequence[Any] | None = None,
    on_batch: Callable[[], None] | None = None,
) -> dict:
    """Every §5 metric of one model at one λ, on validation batches, in float64. [reconstructed]

    batches: trainer ``Batch`` objects (toy world or text). The model runs at λ with the
    inference bias (:func:`dial_kwargs`); the λ-independent parameters are never touched.
    world: the toy world (for ``compliance``); probe: the hot-reload probe's batches
    (:func:`reload_probe`), giving ``reload_compliance``.

    Rows of the entropy mean are the positions holding a document token (toy world:
    not padding; text: all). Returns ``entropy_bits``, ``entropy_norm``,
    ``entropy_rule_rows``, ``effective_support``, ``pointer_fidelity``, ``pf_hit``,
    ``pf_block``, ``pf_anchor``, ``pf_best_head``, ``off_block_mass``,
    ``val_loss`` (mean next-token cross-entropy, nats), ``val_perplexity`` (its exp),
    ``val_accuracy`` (top-1), ``rule_accuracy``, ``compliance``, ``reload_compliance``,
    ``bound_violations`` (rows failing T4(b)/T5(a)–(c)/T6(b), all layers),
    ``rows_entropy_rising`` (share of applicable layer-0 rows with ε(0) > ε°), ``e3_rows`` and
    ``e3_violations`` (layer-0 row checks of E3, and how many failed: :func:`layer0_closed_form_mismatches`) and
    ``delta_q``, ``delta_in_q`` (10/50/90 % quantiles of the rule rows' margins Δ, Δ_in).
    """
    cfg = cfg or run.locality
    check_lambda("lam", lam)
    model = run.model.replace(dtype="float64")
    params = _params64(params)
    n_layers = model.n_layers
    lams = layer_lambdas(lam, n_layers, cfg)
    taus = layer_temperatures(lams, cfg)
    beta = cfg.inference_bias if "bias" in cfg.dial_hooks else 0.0
    shift0 = lams[0] * beta if lams[0] > 0 else 0.0
    names = [f"blocks.{layer}.attn.{kind}" for layer in range(n_layers) for kind in ("scores", "pattern")]
    parts: dict[str, list] = {k: [] for k in ("h", "pf", "hit", "block", "anchor", "eps", "rows", "rule", "biased")}
    rule_correct = rule_count = comply = comply_count = violations = e3_rows = e3_violations = 0
    margins: dict[str, list] = {"delta": [], "delta_in": []}
    rising = applicable = 0
    layouts: dict[int, Layout] = {}  # the layout of the batch in flight, shared by the two callbacks

    def dialled(batch: Any) -> dict:
        layouts[0] = layout = batch_layout(batch, cfg, causal=model.causal)
        return dial_kwargs(layout, lam, cfg, n_layers, dtype=np.float64, inference=True, lams=lams, tokens=batch.inputs)

    def observe(batch: Any, logits: Any, acts: dict, hits: np.ndarray) -> None:
        nonlocal rule_correct, rule_count, comply, comply_count, violations, rising, applicable, e3_rows, e3_violations
        layout, inputs, targets = layouts[0], batch.inputs, batch.targets
        t = inputs.shape[1]
        counted = targets != IGNORE
        patterns = stack_patterns([acts[f"blocks.{layer}.attn.pattern"] for layer in range(n_layers)])  # (L, B, H, T, T)
        h = row_entropy_bits(patterns)
        parts["h"].append(h)
        parts["pf"].append(row_mass(patterns, layout.pointer_mask))
        parts["hit"].append(row_argmax_in(patterns, layout.pointer_mask))
        parts["block"].append(row_mass(patterns, layout.on))
        parts["eps"].append(row_mass(patterns, layout.off))
        docs = batch.docs
        parts["rows"].append(np.ones(inputs.shape, bool) if docs is None else docs.valid[:, :t])
        parts["rule"].append(layout.rule_row)
        parts["biased"].append(layout.biased_rows)
        if docs is not None:
            parts["anchor"].append(row_mass(patterns, docs.pointer_mask("anchor")[:, :t, :t]))
            rule = layout.rule_row & counted
            rule_correct += int((hits & rule).sum())
            rule_count += int(rule.sum())
            if world is not None and len(world.key_ids):
                defaults = world.key_default[np.clip(inputs - int(world.key_ids[0]), 0, len(world.key_ids) - 1)]
                novel = rule & (targets != defaults)
                comply += int((hits & novel).sum())
                comply_count += int(novel.sum())
        for layer in range(n_layers):
            z = acts[f"blocks.{layer}.attn.scores"]
            shift = lams[layer] * beta if lams[layer] > 0 else 0.0  # 0·∞ would be NaN
            broken = row_bound_violations(z, patterns[layer], layout, shift, taus[layer], h=h[layer])
            violations += int(np.logical_or.reduce(list(broken.values())).sum())
            if layout.rule_row.any():
                delta, delta_in = rule_row_margins(z, layout)
                margins["delta"].append(delta)
                margins["delta_in"].append(delta_in)
        checked, wrong = layer0_closed_form_mismatches(acts["blocks.0.attn.scores"], patterns[0], h[0], layout, shift0, taus[0])
        e3_rows += checked
        e3_violations += wrong
        up, ok = entropy_rising_rows(acts["blocks.0.attn.scores"], layout, taus[0])
        rising += int(up.sum())
        applicable += int(ok.sum())
        if on_batch is not None:
            on_batch()

    # The loss / perplexity / accuracy loop is the core's; the dial's metrics ride along in ``observe``.
    scores = evaluate(params, dataclasses.replace(run, model=model), batches, dialled, names=names, observe=observe)

    per_row = ("h", "pf", "hit", "block", "anchor", "eps")  # (L, B, H, T): batches along axis 1; masks (B, T) along 0
    joined = {k: np.concatenate(v, axis=1 if k in per_row else 0) for k, v in parts.items() if v}
    result = entropy_summary(joined["h"], joined["rows"], joined["rule"], causal=model.causal)
    result.pop("entropy_layers")
    pointer = pointer_summary(joined["pf"], joined["rule"], joined["hit"], joined["block"], joined.get("anchor"))
    pointer.pop("pf_layers")
    result.update(pointer)
    biased = np.broadcast_to((joined["biased"] & joined["rows"])[None, :, None, :], joined["eps"].shape)
    result["off_block_mass"] = float(joined["eps"][biased].mean()) if biased.any() else None
    result.update(scores)  # val_loss (nats), val_perplexity = exp(val_loss), val_accuracy (top-1)
    result["rule_accuracy"] = rule_correct / rule_count if rule_count else None
    result["compliance"] = comply / comply_count if comply_count else None
    result["reload_compliance"] = None
    if probe:
        result["reload_compliance"] = _reload_compliance(params, model, probe, lam, cfg, lams, on_batch)
    result["bound_violations"] = int(violations)
    result["rows_entropy_rising"] = rising / applicable if applicable else None
    result["e3_rows"], result["e3_violations"] = e3_rows, e3_violations
    result["delta_q"] = _quantiles(margins["delta"])  # Δ on rule rows, all layers and heads: 10/50/90 %
    result["delta_in_q"] = _quantiles(margins["delta_in"])
    return result


# --------------------------------------------------------------------------- the hot-reload probe (§6.2)


@dataclass(frozen=True, eq=False)
class ProbeBatch:
    """A batch after a hot reload: ``batch`` (inputs from the edited tokens, the documents'
    layout), ``rows`` (B, T−1) the rule rows of the edited rule, ``expected`` (B, T−1) the new value."""

    batch: Any
    rows: np.ndarray
    expected: np.ndarray


def reload_probe(batch: Any, world: Any, cfg: LocalityConfig | None = None) -> ProbeBatch:
    """The §6.2 hot-reload probe on a toy-world batch. [reconstructed]

    In each document the rule named by the first emitted query gets a new value
    (the value ``1 + doc_index mod (n_values − 1)`` places further on, never the same),
    by :func:`hot_reload`, in place. The query spans of that rule follow the new rule
    (their value tokens are the targets of its rule rows), so a model that copies from
    the rule block answers with the new value; one that memorised the old answers wrong.
    """
    docs = batch.docs
    tokens = docs.tokens.copy()
    rows = np.zeros(docs.tokens.shape, bool)
    values = world.value_ids
    for s in range(tokens.shape[0]):
        emitted = np.flatnonzero(docs.query_pos[s] >= 0)
        if emitted.size == 0:
            continue
        slot = int(docs.query_slot[s, emitted[0]])
        old = int(docs.rules[s, slot, 2])
        step = 1 + int(docs.doc_index[s]) % (len(values) - 1)
        new = int(values[(old - int(values[0]) + step) % len(values)])
        reloaded = hot_reload(tokens[s], docs.rules[s], slot, new, world, cfg=cfg)
        tokens[s] = reloaded.tokens
        for q in np.flatnonzero((docs.query_slot[s] == slot) & (docs.query_pos[s] >= 0)):
            at = int(docs.query_pos[s, q])
            tokens[s, at + 2] = new  # `? k v .`: the answer follows the new rule
            rows[s, at + 1] = True
    inputs, targets = shift_targets(tokens, docs.valid)
    t = inputs.shape[1]
    return ProbeBatch(Batch(inputs, targets, docs), rows[:, :t], targets)


def _reload_compliance(params, model, probe, lam, cfg, lams, on_batch) -> float | None:
    hits = total = 0
    for item in probe:
        layout = batch_layout(item.batch, cfg, causal=model.causal)
        logits, _ = forward(params, model, item.batch.inputs, **dial_kwargs(layout, lam, cfg, model.n_layers, lams=lams))
        top = np.asarray(logits).argmax(-1)
        hits += int(((top == item.expected) & item.rows).sum())
        total += int(item.rows.sum())
        if on_batch is not None:
            on_batch()
    return hits / total if total else None
