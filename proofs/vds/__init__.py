"""VDS theorems: vocabulary-defined semantics (specs/02-vocab-semantics.md §4). [reconstructed]

The paper (arXiv 2401.16184) states no theorem: every statement here is the project's own
formalisation of what its bases, similarity logits and clustering module imply. The ids
VDS-1 … VDS-9 are the spec's VDS-P1 … P9:

* :mod:`~proofs.vds.heads` — P1 (bases = least-squares pre-images; Gram formula), P2 (Penrose
  conditions), P3 (logits of a basis; leverage; the counterexample W = (1, 2, 0)ᵀ), P4 (LM-head
  logits are G-inner products with the bases), P5 (head-metric cosine = leverage-normalised logits);
* :mod:`~proofs.vds.logits` — P6 (scale invariance, bounds, loss floor), P7 (gradients in latent
  space), P8 (x-exp saturates unbounded logits), P9 (size and cost of λ);
* :mod:`~proofs.vds.strategies` — the ``heads`` strategy (V ∈ [2, 40], d ∈ [1, 12], any rank,
  well- and ill-conditioned σ).

Each record's ``scope`` says what its SymPy part proves; the numeric parts run the project's own
functions (``reference.mechanisms.vds``) on drawn heads with the spec's tolerances (ill-conditioned
draws: × κ(W)²).
"""

from proofs.vds import heads, logits  # noqa: F401  (importing registers the theorems)
from proofs.vds.heads import own_peak_rate
from proofs.vds.strategies import Head, make_head
from proofs.vds.strategies import heads as head_strategy

VDS_IDS = tuple(f"VDS-{k}" for k in range(1, 10))
"""The registered VDS theorem ids, in order."""

__all__ = ["VDS_IDS", "Head", "head_strategy", "make_head", "own_peak_rate"]
