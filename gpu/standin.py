"""A strict NumPy stand-in for CuPy: the GPU harness on a CPU, refusing what CuPy refuses.

For the CPU dry run of ``gpu.smoke`` (and its CI test). "Device" arrays are NumPy arrays of the
subclass :class:`DeviceArray`; inside :func:`standin_backend`, ``reference.backend.namespace`` gives
device arrays the module :data:`xp` (NumPy whose results are device arrays), and the backend's
CuPy branches (scatter-add, erf, entr, to_host) take device arrays as CuPy's would. The rules
emulated, from CuPy's behaviour:

* a host array (a plain ``numpy.ndarray`` of one or more dimensions) among the operands of a device
  operation — an arithmetic operator, a ufunc, ``xp.where``, ``xp.concatenate`` … — is an error
  (CuPy: ``TypeError: Unsupported type <class 'numpy.ndarray'>``); ``xp.asarray(host)`` is the
  explicit copy and is allowed; Python and NumPy scalars are allowed;
* ``np.X(device)`` dispatches to the device (CuPy implements ``__array_function__``), with the same rule;
* ``xp.<ufunc>.<method>`` exists only where CuPy implements it (``at`` for add / maximum / minimum,
  ``reduceat`` for add, ``reduce`` and ``accumulate`` for add and multiply); array methods
  (``x.max()``) are CuPy's too and are not restricted.

Not emulated: ``np.asarray(device)`` gives a host copy here (CuPy refuses implicit conversion), and
indexing or assigning with host index arrays is allowed. So the stand-in finds the commonest
GPU bug — a host array built inside device code — without a GPU, and a clean dry run is evidence,
not proof.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

UFUNC_METHODS = {"at": {"add", "maximum", "minimum"}, "reduceat": {"add"}, "reduce": {"add", "multiply"},
                 "accumulate": {"add", "multiply"}, "outer": None}
EXPLICIT_COPIES = {"asarray", "array", "ascontiguousarray"}


class DeviceArray(np.ndarray):
    """A NumPy array standing for a CuPy array (see the module docstring)."""

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, out: Any = None, **kwargs: Any) -> Any:
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        _refuse_host(name, inputs)
        if out is not None:
            out = out if isinstance(out, tuple) else (out,)  # xp.sqrt(a, out=a) as well as NumPy's own out=(a,)
            _refuse_host(name, out)
            kwargs["out"] = tuple(plain(o) for o in out)
        result = getattr(ufunc, method)(*(plain(x) for x in inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return device_tree(result)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        if func.__name__ not in EXPLICIT_COPIES:
            _refuse_host(func.__name__, args, kwargs)
        return device_tree(func(*plain_tree(args), **plain_tree(kwargs)))


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _refuse_host(name: str, *values: Any) -> None:
    for leaf in _leaves(list(values)):
        if type(leaf) is np.ndarray and leaf.ndim > 0:
            raise TypeError(f"Unsupported type {type(leaf)} in {name}: a host array among device arrays")


def plain(x: Any) -> Any:
    return x.view(np.ndarray) if isinstance(x, DeviceArray) else x


def plain_tree(value: Any) -> Any:
    if isinstance(value, DeviceArray):
        return plain(value)
    if isinstance(value, dict):
        return {k: plain_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(plain_tree(v) for v in value)
    return value


def device_tree(value: Any) -> Any:
    if type(value) is np.ndarray:
        return value.view(DeviceArray)
    if isinstance(value, np.floating | np.complexfloating):
        return np.asarray(value).view(DeviceArray)  # CuPy's reductions give 0-d device arrays, not scalars
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(device_tree(v) for v in value)
    if isinstance(value, list):
        return [device_tree(v) for v in value]
    return value


def put(x: Any) -> DeviceArray:
    """Host -> "device": a copy."""
    return np.array(x, copy=True).view(DeviceArray)


def get(x: Any) -> np.ndarray:
    """"Device" -> host: a copy."""
    return np.array(x, copy=True).view(np.ndarray) if isinstance(x, DeviceArray) else np.asarray(x)


def is_device(x: Any) -> bool:
    return isinstance(x, DeviceArray)


class _Namespace:
    """NumPy as CuPy: results are device arrays; host arrays among the operands are refused."""

    def __init__(self, module: Any):
        self._module = module

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._module, name)
        if isinstance(value, type(np)):
            return _Namespace(value)
        if isinstance(value, np.ufunc):
            return _Ufunc(value)
        if isinstance(value, type) or not callable(value):
            return value  # dtypes, scalar types, constants

        def call(*args: Any, **kwargs: Any) -> Any:
            if name not in EXPLICIT_COPIES:
                _refuse_host(name, args, kwargs)
            return device_tree(value(*plain_tree(args), **plain_tree(kwargs)))

        return call


class _Ufunc:
    def __init__(self, ufunc: np.ufunc):
        self._ufunc = ufunc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return DeviceArray.__array_ufunc__(None, self._ufunc, "__call__", *args, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, method: str) -> Any:
        if method not in UFUNC_METHODS:
            return getattr(self._ufunc, method)
        allowed = UFUNC_METHODS[method]
        if allowed is not None and self._ufunc.__name__ not in allowed:
            raise NotImplementedError(f"`cupy_{self._ufunc.__name__}.{method}` is not supported yet")
        return lambda *args, **kwargs: DeviceArray.__array_ufunc__(None, self._ufunc, method, *args, **kwargs)  # type: ignore


xp = _Namespace(np)


@contextlib.contextmanager
def standin_backend() -> Iterator[None]:
    """``reference.backend`` treating :class:`DeviceArray` as CuPy arrays, for the duration of the block."""
    from reference import backend

    original = backend.namespace
    saved = {name: getattr(backend, name) for name in ("erf", "entr", "scatter_add", "to_host")}

    def namespace(*arrays: Any) -> Any:
        if not any(backend._is_autograd(a) for a in arrays) and any(isinstance(a, DeviceArray) for a in arrays):
            return xp
        return original(*arrays)

    def on_device(host_fn: Any) -> Any:
        def run(x: Any) -> Any:
            return device_tree(host_fn(plain(x))) if isinstance(x, DeviceArray) else host_fn(x)

        return run

    def scatter_add(table: Any, indices: Any, values: Any) -> None:
        if isinstance(table, DeviceArray):  # CuPy's branch: cupy.add.at
            _refuse_host("add.at", indices, values)
            np.add.at(plain(table), plain(indices), plain(values))
            return
        saved["scatter_add"](table, indices, values)

    replacements = {
        "namespace": namespace, "erf": on_device(saved["erf"]), "entr": on_device(saved["entr"]),
        "scatter_add": scatter_add, "to_host": lambda x: get(x) if isinstance(x, DeviceArray) else saved["to_host"](x),
    }
    patched: list[tuple[Any, str, Any]] = []
    originals = {"namespace": original, **saved}
    for module in list(sys.modules.values()):
        if module is None or not getattr(module, "__name__", "").startswith(("reference", "gpu")):
            continue
        for name, new in replacements.items():
            if getattr(module, name, None) is originals[name]:
                patched.append((module, name, originals[name]))
                setattr(module, name, new)
    try:
        yield
    finally:
        for module, name, value in patched:
            setattr(module, name, value)
        # a module imported inside the block bound a replacement by name: give it the original back
        for module in list(sys.modules.values()):
            for name, new in replacements.items():
                if module is not None and getattr(module, name, None) is new:
                    setattr(module, name, originals[name])
