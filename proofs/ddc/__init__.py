"""DDC theorems: DDCL-T1 … T4, T6 … T12 as DDC-1 … DDC-4, DDC-6 … DDC-12 (specs/03-ddcl-incrt.md §4). [reconstructed]

DDCL-T5 (two-timescale stability) has no explicit ratio condition available, so it is an
experiment (E6), not a registered proof. Every statement is the project's own formalisation
(the paper bodies were not available); provenance labels follow the spec.

* :mod:`~proofs.ddc.ddcl` — T1 (decomposition), T2 (gradients, τ monotonicity, free energy),
  T3 (critical temperature), T4 (Lyapunov descent), T6 (mutual reinforcement lemmas);
* :mod:`~proofs.ddc.gate` — T7 (commutator structure), T8 (spectral ordering), T9 (finite growth),
  T10 (minimality and uniqueness), T11 (pruning safety), T12 (gate convergence).
"""

from proofs.ddc import ddcl, gate  # noqa: F401  (importing registers the theorems)

DDC_IDS = tuple(f"DDC-{k}" for k in (1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12))
"""The registered DDC theorem ids, in order."""

__all__ = ["DDC_IDS"]
