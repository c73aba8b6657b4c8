"""MSA theorems: multi-scale manifold alignment (specs/04-msma.md §4), ids MSA-1 … MSA-10 for the spec's T1 … T10.

No loss, theorem or table of the paper body was available: T4–T6 are the project's checkable
forms of the paper's claim that the alignment error, measured as KL, is bounded [paper v1];
T1–T3, T7 are classical results the method rests on; T8–T10 say what the estimators and the
interventions can and cannot show. Each record's ``scope`` says what its SymPy part proves.

* :mod:`~proofs.msma.strategies` — ``gauss_pairs``, ``exact_moments``, ``haar``;
* :mod:`~proofs.msma.geometry` — T1 (Procrustes), T2 (diagonal KL), T4 (geometric bound), T10 (moment arm);
* :mod:`~proofs.msma.information` — T3 (Gaussian MI), T5 (chaining), T6 (DV, unshuffled), T7 (InfoNCE cap), T8 (maps and MI);
* :mod:`~proofs.msma.scaling` — T9 (scaling a pre-LN stream).
"""

from proofs.msma import geometry, information, scaling  # noqa: F401  (importing registers the theorems)

MSA_IDS = tuple(f"MSA-{k}" for k in range(1, 11))
"""The registered MSA theorem ids, in order."""

__all__ = ["MSA_IDS"]
