"""Growth and pruning edits of the parameter dict and the optimiser together (spec §2.3, A3) [author-code; reconstructed].

A head of layer i with stable id j is the tensors ``blocks.{i}.attn.h{j}.{w_q,w_k,w_v,w_o,log_tau}``.
:func:`add_head` puts a new head's tensors into the parameter dict and starts them in the AdamW
optimiser as a new group with zero moments and their own step counter (bias correction from their
first update), the same weight decay for matrices and none for ``log_tau`` (the author's
``add_param_group`` fix); the current scheduled learning rate applies to them at the next step
because AdamW reads the rate per step. :func:`remove_head` deletes the tensors and their moments.
Ids are never reused (the gate's ``next_id``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reference.optim import AdamW

HEAD_TENSORS = ("w_q", "w_k", "w_v", "w_o", "log_tau")


def head_prefix(layer: int, head_id: int) -> str:
    """``blocks.{layer}.attn.h{head_id}.``"""
    return f"blocks.{layer}.attn.h{head_id}."


def head_ids(params: Mapping[str, Any], layer: int) -> list[int]:
    """The live head ids of ``layer``, ascending."""
    lead = f"blocks.{layer}.attn.h"
    return sorted({int(n[len(lead):].split(".", 1)[0]) for n in params if n.startswith(lead)})


def head_params(params: Mapping[str, Any], layer: int, head_id: int) -> dict[str, Any]:
    """One head's tensors by local name (``w_q`` …)."""
    p = head_prefix(layer, head_id)
    return {n[len(p):]: v for n, v in params.items() if n.startswith(p)}


def add_head(params: dict[str, Any], opt: AdamW, layer: int, head_id: int, tensors: Mapping[str, Any],
             weight_decay: float, lr_scale: float = 1.0) -> list[str]:
    """Insert a head's tensors and their fresh optimiser moments; returns the new names.

    Raises ValueError if the id is taken (ids are stable and never reused).
    """
    p = head_prefix(layer, head_id)
    names = [p + t for t in HEAD_TENSORS]
    if any(n in params for n in names):
        raise ValueError(f"head id {head_id} of layer {layer} is already in use")
    for t in HEAD_TENSORS:
        params[p + t] = tensors[t]
    matrices = [p + t for t in HEAD_TENSORS if t != "log_tau"]
    opt.add_group(matrices, params, weight_decay, lr_scale)
    opt.add_group([p + "log_tau"], params, 0.0, lr_scale)
    return names


def remove_head(params: dict[str, Any], opt: AdamW, layer: int, head_id: int) -> list[str]:
    """Delete a head's tensors and their moments, step counters and group entries; returns the removed names."""
    p = head_prefix(layer, head_id)
    names = [n for n in params if n.startswith(p)]
    for n in names:
        del params[n]
        opt.m.pop(n, None)
        opt.v.pop(n, None)
        opt.steps.pop(n, None)
    for group in opt.groups:
        group.names = [n for n in group.names if n not in names]
    opt.groups = [g for g in opt.groups if g.names]
    return names
