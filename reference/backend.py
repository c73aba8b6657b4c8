"""The array namespace and the few operations that differ between backends.

clearform's forward code is written once against a NumPy-like namespace
``xp`` taken from its inputs:

* ``numpy``           — the reference, on the CPU;
* ``autograd.numpy``  — the gradient oracle in the tests (inputs are ArrayBoxes);
* ``cupy``            — the GPU (``gpu/``), when installed.

This module is the only place that looks at which one is in use. Anything
that is not spelled the same in all three (scatter-add, erf, moving to the
host, random numbers) is a function here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DTYPES = {"float32": np.float32, "float64": np.float64}


def _is_autograd(x: Any) -> bool:
    # autograd wraps traced arrays in ArrayBox; importing it lazily keeps the
    # base forward path free of the dependency's import cost.
    cls = type(x)
    return cls.__module__.startswith("autograd")


def _is_cupy(x: Any) -> bool:
    return type(x).__module__.startswith("cupy")


def namespace(*arrays: Any):
    """The array module that should process ``arrays``.

    autograd wins over everything (a traced value must stay traced), then
    CuPy, then NumPy.
    """
    if any(_is_autograd(a) for a in arrays):
        import autograd.numpy as anp

        return anp
    if any(_is_cupy(a) for a in arrays):
        import cupy

        return cupy
    return np


def resolve_dtype(name: str):
    """``"float32"`` / ``"float64"`` -> the NumPy dtype (CuPy uses the same objects)."""
    return DTYPES[name]


def erf(x: Any):
    """The error function, elementwise, in the namespace of ``x``."""
    if _is_autograd(x):
        from autograd.scipy.special import erf as autograd_erf

        return autograd_erf(x)
    if _is_cupy(x):
        from cupyx.scipy.special import erf as cupy_erf

        return cupy_erf(x)
    from scipy.special import erf as scipy_erf

    return scipy_erf(x)


def entr(x: Any):
    """−x ln x elementwise, 0 at x = 0 and −inf below 0 (SciPy's ``entr``), in the namespace of ``x``.

    NumPy uses :func:`scipy.special.entr`, CuPy :func:`cupyx.scipy.special.entr` (the same
    definition); under autograd it is written out with ``where`` so 0 ln 0 stays 0.
    """
    if _is_autograd(x):
        import autograd.numpy as anp

        positive = x > 0
        return anp.where(positive, -x * anp.log(anp.where(positive, x, 1.0)), anp.where(x == 0, 0.0, -anp.inf))
    if _is_cupy(x):
        from cupyx.scipy.special import entr as cupy_entr

        return cupy_entr(x)
    from scipy.special import entr as scipy_entr

    return scipy_entr(x)


def add_into(fresh: Any, other: Any) -> Any:
    """``fresh + other``, written into ``fresh`` when that is allowed; returns the sum.

    ``fresh`` must be an array the caller just created and nothing else holds
    (a matmul's result). NumPy and CuPy add in place, saving one allocation and
    one pass over memory; autograd cannot trace in-place updates, so a traced
    ``fresh`` gets an ordinary (new) sum.
    """
    if _is_autograd(fresh) or _is_autograd(other):
        return fresh + other
    fresh += other
    return fresh


def scatter_add(table_grad: Any, indices: Any, values: Any) -> None:
    """``table_grad[indices[k]] += values[k]`` with repeated indices summed, in place.

    Shapes: table_grad (V, D), indices (N,) int, values (N, D).
    NumPy's fancy ``+=`` would drop repeats, and ``np.add.at`` is correct but
    slow; so the rows are sorted by index, each run of equal indices is summed
    with ``np.add.reduceat``, and the sums are added to distinct rows.
    """
    if _is_cupy(table_grad):
        # ufunc.at sums repeated indices with atomic adds; CuPy deprecated ndarray.scatter_add
        # (and cupyx.scatter_add, which calls it) in its favour. Same kernel, no warning.
        import cupy

        cupy.add.at(table_grad, indices, values)
        return
    if indices.size == 0:
        return
    order = np.argsort(indices, kind="stable")
    sorted_idx = indices[order]
    starts = np.flatnonzero(np.r_[True, sorted_idx[1:] != sorted_idx[:-1]])
    sums = np.add.reduceat(values[order], starts, axis=0)
    table_grad[sorted_idx[starts]] += sums


def to_host(x: Any) -> np.ndarray:
    """A NumPy copy of ``x`` (a no-op view for NumPy arrays)."""
    if _is_cupy(x):
        return x.get()
    return np.asarray(x)


def rng(seed: int | list[int]) -> np.random.Generator:
    """A seeded host RNG (PCG64).

    All randomness (initialisation, batch sampling, generation) is drawn on
    the host and moved to the device, so a seed gives the same numbers on
    every backend.
    """
    return np.random.default_rng(seed)
