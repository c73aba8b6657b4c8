"""LOC theorems: the locality dial's thresholds and bounds (specs/00-localist.md §4). [reconstructed]

Every statement here is the project's own formalisation, consistent with the papers'
abstracts; none is a quotation (the paper bodies were not available):

* LOC-T2 … T6 formalise the threshold and exponential-bound claims of LOC
  [paper-abstract 2510.09338]: "once the penalty is large enough, attention provably
  gathers on the semantically relevant blocks, and both attention entropy and pointer
  fidelity obey exponential bounds"; T3 is REC's stationary-point form
  [paper-abstract 2510.17358].
* LOC-T7 and T8 formalise RULE's anchor-redundancy and compliance claims
  [paper-abstract 2510.05106].
* LOC-T1 explains the design choice of an *off-target* group lasso; LOC-T9 is the
  standard zero-group condition of the group lasso, for a dial on parameter groups.

Each theorem is checked twice: symbolically in SymPy (closed forms, identities,
inequalities reduced to a term of known sign), and numerically by Hypothesis on drawn
instances (logits, block layouts, penalties), evaluating the proved expressions
(``lambdify``) on attention computed by the project's own code:
:func:`reference.mechanisms.locality.attention_rows` runs the core attention layer
(A3), :func:`~reference.mechanisms.locality.variational_attention` is A6, and the
penalty comes from :func:`~reference.mechanisms.locality.group_penalty` (A4). Where a
threshold is claimed, instances just below it are drawn too, and the conclusion is
shown to fail there: the threshold is where the theorem says.

Strategy ``loc_rows`` (§4): n ∈ [2, 64] keys; 2 ≤ NB ≤ min(n, 8) contiguous blocks of
random sizes, optionally shuffled; g* ∈ [0, NB); z = σ·N(0, 1) with σ ∈ [0.1, 6], or
floats in [−10, 10]; τ ∈ [0.1, 5]; κ, β ∈ [0, 20]; λ ∈ [0, 1]; δ ∈ [10⁻⁶, 0.5].
Tolerances: identities rtol 10⁻⁹; inequalities a relative slack of 10⁻¹² (10⁻¹⁰ for
T2 and for T5(d)'s λ grid, as the spec says); solver-based 10⁻⁸. T3(c), (d) take the
larger of 10⁻¹² and the error their inputs provably carry: A6's own stationarity residual
for solver rows (a is exactly stationary for logits that close to z), and rounding,
ε-machine × the operands' magnitude (:func:`proofs.toolkit.rounding_slack`); the check
says so. ε and 1 − ε are always summed separately.

The package, by theorem group (the slug is the mechanism's, ``reference/mechanisms/locality``):

* :mod:`~proofs.locality.strategies` — ``loc_rows`` and the helpers the theorems share;
* :mod:`~proofs.locality.concentration` — T1 (off-target lasso), T2 (hard threshold),
  T3 (theory mode's soft threshold);
* :mod:`~proofs.locality.bias` — T4 (the bias dial in closed form);
* :mod:`~proofs.locality.bounds` — T5 (entropy), T6 (pointer fidelity);
* :mod:`~proofs.locality.rules` — T7 (anchor redundancy), T8 (dual enforcement);
* :mod:`~proofs.locality.groups` — T9 (zero-group condition).

Importing the package registers LOC-1 … LOC-9. Each record's ``scope``
says what its SymPy part proves (the statement for every size, a lemma, or one instance).
"""

from proofs.locality import (  # noqa: F401  (importing registers the theorems; the registry orders them by id)
    bias,
    bounds,
    concentration,
    groups,
    rules,
)
from proofs.locality.bounds import T5_COUNTER, t5_counter_instance
from proofs.locality.concentration import t2_threshold
from proofs.locality.rules import t8_monte_carlo
from proofs.locality.strategies import LocRow, inverse_logits, loc_rows, penalty_of

LOC_IDS = tuple(f"LOC-{k}" for k in range(1, 10))
"""The registered LOC theorem ids, in order."""

__all__ = [
    "LOC_IDS",
    "T5_COUNTER",
    "LocRow",
    "inverse_logits",
    "loc_rows",
    "penalty_of",
    "t2_threshold",
    "t5_counter_instance",
    "t8_monte_carlo",
]
