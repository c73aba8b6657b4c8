"""Write ``tests/data/cupy_namespace.json``: CuPy's public namespace, for the single-code-path guard.

    pip install cupy-cuda12x            # imports without a GPU; no device is touched below
    python tests/data/make_cupy_namespace.py [--out tests/data/cupy_namespace.json]

``tests/test_backend_guard.py`` checks every ``np.X`` / ``xp.X`` that ``reference/`` uses against
this listing when CuPy is absent (CI), and against the live namespace (the same
:func:`describe` below) when it is installed. What is recorded, per module (``cupy``,
``cupy.linalg``, ``cupy.random``, ``cupy.fft``):

* every public attribute name and its kind: ``module``, ``ufunc``, ``function``, ``class``, ``other``
  (constants, dtype objects);
* for functions and classes, the parameters ``[name, kind, has_default]`` where
  :func:`inspect.signature` works (or the Cython docstring's first line gives one), else None;
* for ufuncs: ``nin``, ``nout``, the keyword arguments their call accepts (probed: CuPy answers
  ``TypeError: Wrong arguments`` before touching a device), and the methods (``at``, ``reduce``,
  ``accumulate``, ``reduceat``, ``outer``) that are implemented for that ufunc, with their
  parameters. CuPy defines every method on every ufunc but raises ``NotImplementedError`` for most
  (``maximum.reduceat``, say); the probe calls each with a dummy operand and records the method
  only if CuPy gets past that check.

The output is deterministic for one CuPy version (sorted keys, no timestamps).
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import sys
from pathlib import Path
from typing import Any

MODULES = ("cupy", "cupy.linalg", "cupy.random", "cupy.fft")
UFUNC_METHODS = ("at", "reduce", "accumulate", "reduceat", "outer")
# NumPy's ufunc keyword arguments, each with a value NumPy itself accepts: the probe asks CuPy about each.
UFUNC_KWARG_PROBES = {
    "out": None, "where": True, "casting": "same_kind", "order": "K", "dtype": None, "subok": True,
    "signature": None, "axes": None, "axis": None, "keepdims": False,
}
KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional_only",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional_or_keyword",
    inspect.Parameter.VAR_POSITIONAL: "var_positional",
    inspect.Parameter.KEYWORD_ONLY: "keyword_only",
    inspect.Parameter.VAR_KEYWORD: "var_keyword",
}


def _params_of(signature: inspect.Signature, drop_self: bool = False) -> list[list]:
    params = list(signature.parameters.values())
    if drop_self and params and params[0].name == "self":
        params = params[1:]
    return [[p.name, KINDS[p.kind], p.default is not inspect.Parameter.empty] for p in params]


def _docstring_signature(obj: Any) -> inspect.Signature | None:
    """The signature Cython writes as the first docstring line (``name(a, b=None)``), parsed without evaluating defaults."""
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    if not doc or "(" not in doc[0] or not doc[0].rstrip().endswith(")"):
        return None
    text = doc[0].strip()
    args = text[text.index("(") + 1 : -1]
    import ast

    try:
        tree = ast.parse(f"def f({args}): pass")
    except SyntaxError:
        return None
    a = tree.body[0].args
    out: list[inspect.Parameter] = []
    plain = a.posonlyargs + a.args
    first_default = len(plain) - len(a.defaults)
    for i, arg in enumerate(plain):
        kind = inspect.Parameter.POSITIONAL_ONLY if i < len(a.posonlyargs) else inspect.Parameter.POSITIONAL_OR_KEYWORD
        out.append(inspect.Parameter(arg.arg, kind, default=None if i >= first_default else inspect.Parameter.empty))
    if a.vararg:
        out.append(inspect.Parameter(a.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        out.append(inspect.Parameter(arg.arg, inspect.Parameter.KEYWORD_ONLY,
                                     default=inspect.Parameter.empty if default is None else None))
    if a.kwarg:
        out.append(inspect.Parameter(a.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    try:
        return inspect.Signature(out)
    except ValueError:
        return None


def _signature(obj: Any, drop_self: bool = False) -> list[list] | None:
    try:
        return _params_of(inspect.signature(obj), drop_self)
    except (TypeError, ValueError):
        pass
    sig = _docstring_signature(obj)
    return None if sig is None else _params_of(sig, drop_self=True)


class _Dummy:
    """An operand no CuPy method can use: a probe that gets past CuPy's "not supported" check fails on it instead."""


def _ufunc_entry(ufunc: Any) -> dict:
    kwargs = []
    for name, value in UFUNC_KWARG_PROBES.items():
        try:
            ufunc(*([1.0] * ufunc.nin), **{name: value})
        except TypeError as exc:
            if "Wrong arguments" in str(exc) or "unexpected keyword" in str(exc):
                continue
            kwargs.append(name)
        except Exception:  # reached the kernel launch (no device here, or a value CuPy refuses): the name is accepted
            kwargs.append(name)
        else:
            kwargs.append(name)
    methods = {}
    for method in UFUNC_METHODS:
        bound = getattr(ufunc, method, None)
        if bound is None:
            continue
        try:
            if method == "at":
                bound(_Dummy(), _Dummy(), _Dummy())
            elif method == "reduceat":
                bound(_Dummy(), _Dummy())
            elif method == "outer":
                bound(_Dummy(), _Dummy())
            else:
                bound(_Dummy())
        except NotImplementedError:
            continue
        except Exception:  # got past CuPy's support check and failed on the dummy: implemented
            pass
        methods[method] = _signature(bound, drop_self=True)
    return {"kind": "ufunc", "nin": ufunc.nin, "nout": ufunc.nout, "kwargs": sorted(kwargs), "methods": methods}


def describe_attr(value: Any) -> dict:
    """One attribute's entry (see the module docstring)."""
    import cupy

    if inspect.ismodule(value):
        return {"kind": "module"}
    if isinstance(value, cupy.ufunc):
        return _ufunc_entry(value)
    if inspect.isclass(value):
        return {"kind": "class", "params": _signature(value)}
    if callable(value):
        return {"kind": "function", "params": _signature(value)}
    return {"kind": "other"}


def describe(modules: tuple[str, ...] = MODULES) -> dict:
    """``{module: {attribute: entry}}`` for the installed CuPy."""
    import importlib

    out = {}
    for name in modules:
        module = importlib.import_module(name)
        attrs = {}
        for attr in sorted(dir(module)):
            if attr.startswith("_"):
                continue
            try:
                value = getattr(module, attr)
            except Exception:  # a lazy attribute that needs a device or a missing optional library
                attrs[attr] = {"kind": "other"}
                continue
            attrs[attr] = describe_attr(value)
        out[name] = attrs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("cupy_namespace.json")))
    args = parser.parse_args()
    import cupy
    import numpy

    listing = {
        "cupy_version": cupy.__version__,
        "numpy_version": numpy.__version__,
        "python": platform.python_version(),
        "generated_by": "python tests/data/make_cupy_namespace.py (pip install cupy-cuda12x; no GPU needed)",
        "modules": describe(),
    }
    Path(args.out).write_text(json.dumps(listing, indent=1, sort_keys=True) + "\n")
    counts = ", ".join(f"{m}: {len(a)}" for m, a in listing["modules"].items())
    print(f"wrote {args.out}: CuPy {cupy.__version__} ({counts})", file=sys.stderr)


if __name__ == "__main__":
    main()
