"""Token-level cross-entropy, the training loss."""

from __future__ import annotations

from typing import Any

from reference.backend import namespace

IGNORE = -1


def log_softmax(logits: Any, axis: int = -1) -> Any:
    """log softmax, shifted by the row max so exp never overflows."""
    xp = namespace(logits)
    shifted = logits - xp.max(logits, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def cross_entropy_forward(logits: Any, targets: Any) -> tuple[Any, dict]:
    """Mean of −log p(target) over positions whose target is not IGNORE (−1).

    logits (B, T, V), targets (B, T) int -> scalar loss (nats).
    With no counted position the loss is 0.
    """
    xp = namespace(logits)
    vocab = logits.shape[-1]
    logp = log_softmax(logits).reshape(-1, vocab)
    flat = targets.reshape(-1)
    counted = flat != IGNORE
    n_counted = max(int(counted.sum()), 1)
    picked = logp[xp.arange(flat.shape[0]), xp.where(counted, flat, 0)]
    loss = -xp.sum(picked * counted) / n_counted
    return loss, {"logp": logp, "targets": flat, "counted": counted, "n": n_counted, "shape": logits.shape}


def cross_entropy_backward(cache: dict, dloss: float = 1.0) -> Any:
    """-> dlogits (B, T, V) = (softmax − onehot) · counted / n · dloss."""
    xp = namespace(cache["logp"])
    d = xp.exp(cache["logp"])
    rows = xp.arange(d.shape[0])
    d[rows, xp.where(cache["counted"], cache["targets"], 0)] -= 1.0
    d *= (cache["counted"] * (dloss / cache["n"]))[:, None].astype(d.dtype)
    return d.reshape(cache["shape"])
