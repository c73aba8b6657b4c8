"""CuPy glue: move a parameter dict to the GPU and back.

The model code is the same for both devices (``reference.backend`` picks the
array module from the inputs); this package only moves arrays and tells
whether a CUDA device is there. Install CuPy for your CUDA version
(``pip install cupy-cuda12x``) to use it. Beside it (docs/gpu.md):
``gpu.trainer`` (the Trainer with its arrays on the device), ``gpu.smoke``
(CuPy against NumPy), ``gpu.standin`` (a strict NumPy stand-in for CPU tests),
``gpu.data_parallel`` (several GPUs over NCCL) and ``run_device_checks.sh``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def available() -> tuple[bool, str]:
    """(True, device name) when CuPy imports and sees a CUDA device, else (False, why not)."""
    try:
        import cupy
    except ImportError:
        return False, "CuPy is not installed (pip install cupy-cuda12x)"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver errors come in several classes
        return False, f"no usable CUDA device ({exc.__class__.__name__})"
    if count == 0:
        return False, "no CUDA device"
    props = cupy.cuda.runtime.getDeviceProperties(0)
    return True, props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])


def to_device(arrays: Mapping[str, Any]) -> dict[str, Any]:
    """Copy every array of a dict to the current GPU."""
    import cupy

    return {name: cupy.asarray(value) for name, value in arrays.items()}


def to_host(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Copy every array of a dict back to NumPy."""
    from reference.backend import to_host as one_to_host

    return {name: one_to_host(value) for name, value in arrays.items()}
