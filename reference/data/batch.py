"""The batch record every data source yields, and next-token pairs from documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reference.layers.loss import IGNORE


@dataclass(frozen=True)
class Batch:
    """One batch of next-token pairs.

    inputs (B, T−1) int, targets (B, T−1) int with IGNORE (−1) at padding.
    ``docs`` is the toy world's ground truth for these rows (a ``ToyBatch``
    whose (B, T) fields are aligned with ``inputs`` on their first T − 1
    positions), or None for text data.
    """

    inputs: np.ndarray
    targets: np.ndarray
    docs: Any = None


def shift_targets(tokens: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Next-token pairs: inputs tokens[:, :-1], targets tokens[:, 1:] with padding → IGNORE.

    tokens, valid (B, T) -> inputs (B, T−1), targets (B, T−1).
    """
    targets = np.where(valid[:, 1:], tokens[:, 1:], IGNORE)
    return tokens[:, :-1], targets
