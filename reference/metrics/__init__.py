"""Measures shared across mechanisms, one module per family.

* :mod:`reference.metrics.information` — information-theoretic measures (entropy; the
  KL / MI / clustering-agreement estimators that NEU and MSA share);
* :mod:`reference.metrics.attention` — measures on attention patterns (row entropy, mass
  on a key set, pointer fidelity, off-block mass).

The rule: a measure lives here when more than one mechanism (or the proofs) uses it, or
when its definition needs nothing of one mechanism's spec; a measure that only one
mechanism defines and uses lives in that mechanism's package.
"""

from reference.metrics.attention import (
    POINTER_KEYS,
    attention_entropy,
    entropy_summary,
    off_block_mass,
    pointer_fidelity,
    pointer_summary,
    pointer_targets,
    row_argmax_in,
    row_entropy_bits,
    row_mask,
    row_mass,
    stack_patterns,
)
from reference.metrics.information import entropy

__all__ = [
    "POINTER_KEYS",
    "attention_entropy",
    "entropy",
    "entropy_summary",
    "off_block_mass",
    "pointer_fidelity",
    "pointer_summary",
    "pointer_targets",
    "row_argmax_in",
    "row_entropy_bits",
    "row_mask",
    "row_mass",
    "stack_patterns",
]
