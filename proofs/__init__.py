"""clearform's theorems, stated in SymPy and checked with Hypothesis.

One module or package per mechanism, under the mechanism's slug (``core``,
``locality``, later ``neurons`` ...); each registers its
:class:`~proofs.registry.Theorem` records when imported, and importing this
package imports them all. :mod:`proofs.toolkit` holds what they share
(symbolic sums, strategies, tolerances)::

    import proofs
    results = proofs.run_all(examples=100, mechanism="CORE")
"""

import importlib

from proofs import core  # noqa: F401  (registers the CORE theorems)
from proofs.registry import (
    NumericCheck,
    Theorem,
    TheoremResult,
    all_theorems,
    get,
    register,
    run_all,
    run_theorem,
)
from reference.mechanisms import MECHANISMS as _MECHANISMS

for _mechanism in _MECHANISMS:  # each registered mechanism's theorems (proofs.<slug>), from the registry
    importlib.import_module(_mechanism.proofs)

__all__ = [
    "NumericCheck",
    "Theorem",
    "TheoremResult",
    "all_theorems",
    "get",
    "register",
    "run_all",
    "run_theorem",
]
