"""Lookup tables: token, position and token-type embeddings."""

from __future__ import annotations

from typing import Any

from reference.backend import namespace, scatter_add


def embedding_forward(params: dict, ids: Any) -> tuple[Any, dict]:
    """ids (B, T) int, params {"w": (V, D)} -> rows w[ids] (B, T, D)."""
    table = params["w"]
    return table[ids], {"ids": ids, "table_shape": table.shape, "dtype": table.dtype}


def embedding_backward(cache: dict, dy: Any) -> tuple[None, dict]:
    """dy (B, T, D) -> (None, {"w": (V, D)}); repeated ids accumulate."""
    xp = namespace(dy)
    d_table = xp.zeros(cache["table_shape"], dtype=dy.dtype)
    scatter_add(d_table, cache["ids"].reshape(-1), dy.reshape(-1, dy.shape[-1]))
    return None, {"w": d_table}


def position_forward(params: dict, length: int) -> tuple[Any, dict]:
    """params {"w": (context, D)} -> the first ``length`` rows (T, D), broadcast over the batch."""
    table = params["w"]
    return table[:length], {"length": length, "table_shape": table.shape}


def position_backward(cache: dict, dy: Any) -> tuple[None, dict]:
    """dy (B, T, D) -> (None, {"w": (context, D)}), zero past T."""
    xp = namespace(dy)
    d_table = xp.zeros(cache["table_shape"], dtype=dy.dtype)
    d_table[: cache["length"]] = xp.sum(dy, axis=0)
    return None, {"w": d_table}
