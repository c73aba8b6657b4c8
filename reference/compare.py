"""``clearform compare``: another implementation's tensors against golden files, tensor by tensor.

:func:`compare_golden` reads ``DIR/manifest.json`` and ``DIR/golden.safetensors`` (written by
:func:`reference.golden.write_golden`) and the user's file (safetensors, or ``.npz`` read
without pickle), renames the user's tensors through an optional map, and compares every
tensor the user gives with the golden one: max absolute difference, the same relative to
max|golden|, and the manifest's tolerance for the chosen precision. The *first* tensor
beyond tolerance in the manifest's order (inputs, parameters, activations in forward
order, loss, gradients, mechanism cases) is where a bug starts.

Bad input (a missing or unreadable file, a pickle, unknown names, a shape mismatch) is a
one-line :class:`~reference.config.InputError`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reference.config import InputError
from reference.io import read_bytes, read_json, read_safetensors, short

MAX_THEIRS_BYTES = 2**34


@dataclass
class Comparison:
    """The result: one row per compared tensor, in the manifest's order, and the first that diverges."""

    precision: str
    rows: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r["passed"] for r in self.rows)

    @property
    def first_divergence(self) -> str | None:
        return next((r["name"] for r in self.rows if not r["passed"]), None)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "precision": self.precision, "first_divergence": self.first_divergence,
                "tensors": self.rows}

    def format(self) -> str:
        from reference.report import render_table

        table = render_table(
            ("tensor", "max |Δ|", "max |Δ| / max|golden|", "tolerance", ""),
            [[r["name"], f"{r['max_abs']:.3g}", f"{r['max_rel']:.3g}", f"{r['tolerance']:.3g}",
              "ok" if r["passed"] else ("FIRST DIVERGENCE" if r["name"] == self.first_divergence else "beyond")]
             for r in self.rows],
            align="<>>><",
        )
        verdict = (f"all {len(self.rows)} tensors within the {self.precision} tolerance" if self.passed else
                   f"{sum(not r['passed'] for r in self.rows)} of {len(self.rows)} beyond tolerance; "
                   f"the first in forward order is {self.first_divergence}")
        return f"{table}\n{verdict}"


def read_theirs(path: str | Path) -> dict[str, np.ndarray]:
    """The user's tensors: a safetensors file, or an ``.npz`` archive read with ``allow_pickle=False``."""
    path = Path(path)
    if path.suffix == ".npz":
        data = read_bytes(path, error=InputError, max_bytes=MAX_THEIRS_BYTES, what="--theirs")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        except ValueError as exc:  # object arrays need pickle: refused
            raise InputError(f"--theirs {path}: not a plain .npz ({short(str(exc), 80)}); pickled arrays are refused") from None
        except Exception as exc:  # zipfile / format errors of a damaged archive
            raise InputError(f"--theirs {path}: not a readable .npz ({type(exc).__name__})") from None
    return read_safetensors(path, error=InputError, max_bytes=MAX_THEIRS_BYTES)


def compare_golden(golden_dir: str | Path, theirs: str | Path, *, rename: dict[str, str] | None = None,
                   precision: str | None = None) -> Comparison:
    """Compare the user's tensors with the golden ones (see the module docstring)."""
    golden_dir = Path(golden_dir)
    manifest = read_json(golden_dir / "manifest.json", error=InputError, what="--golden")
    if not isinstance(manifest, dict) or manifest.get("format") != "clearform-golden" or "tensors" not in manifest:
        raise InputError(f"--golden {golden_dir}: manifest.json is not a clearform golden manifest")
    golden = read_safetensors(golden_dir / "golden.safetensors", error=InputError)
    absent = [name for name in manifest["tensors"] if name not in golden]
    if absent:
        raise InputError(f"--golden {golden_dir}: golden.safetensors lacks {short(absent[0], 60)}, listed in manifest.json")
    given = read_theirs(theirs)
    rename = rename or {}
    missing = sorted(set(rename) - set(given))
    if missing:
        raise InputError(f"--map: names {short(missing[0], 60)}, which is not a tensor of --theirs")
    named = {rename.get(name, name): value for name, value in given.items()}
    unknown = sorted(set(named) - set(golden))
    if unknown:
        listed = ", ".join(short(n, 40) for n in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise InputError(f"--theirs: {len(unknown)} tensor name(s) not in the golden files: {listed} (rename them with --map)")
    if not named:
        raise InputError("--theirs: no tensors to compare")
    if precision is None:
        floats = [v.dtype for v in named.values() if v.dtype.kind == "f"]
        precision = "float32" if floats and all(d.itemsize <= 4 for d in floats) else "float64"
    result = Comparison(precision)
    for name in manifest.get("order", sorted(golden)):
        if name not in named:
            continue
        ours, yours = golden[name], np.asarray(named[name])
        if tuple(yours.shape) != tuple(ours.shape):
            raise InputError(f"--theirs: tensor {name} has shape {tuple(yours.shape)}, the golden one {tuple(ours.shape)}")
        diff = np.abs(yours.astype(np.float64) - ours.astype(np.float64))
        if diff.size == 0:
            max_abs = 0.0
        elif np.isnan(diff).any():
            max_abs = math.inf  # a NaN (or inf) where the golden value is a number is never within tolerance
        else:
            max_abs = float(diff.max())
        top = float(np.max(np.abs(ours))) if ours.size else 0.0
        tolerance = float(manifest["tensors"][name]["tolerance"][precision])
        result.rows.append({"name": name, "max_abs": max_abs, "max_rel": max_abs / top if top else max_abs,
                            "tolerance": tolerance, "passed": bool(max_abs <= tolerance)})
    return result
