"""clearform's theorems, stated in SymPy and checked with Hypothesis.

One module per mechanism (``core``, ``localist``, later ``neurons`` ...); each
registers its :class:`~proofs.registry.Theorem` records when imported, and
importing this package imports them all::

    import proofs
    results = proofs.run_all(examples=100, mechanism="CORE")
"""

from proofs import (
    core,  # noqa: F401  (registers the CORE theorems)
    localist,  # noqa: F401  (registers the LOC theorems)
)
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
