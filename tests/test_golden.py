"""``clearform golden``: reproducible bytes, every tensor in the manifest, every mechanism's cases."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from reference import mechanisms
from reference.cli import main
from reference.golden import mechanism_cases
from reference.model import hook_names


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    assert main(["golden", "--preset", "locality_tiny", "--out", str(out / "a")]) == 0
    return out / "a", load_file(out / "a" / "golden.safetensors"), json.loads((out / "a" / "manifest.json").read_text())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_arguments_same_bytes(tmp_path, dtype):
    for name in ("one", "two"):
        assert main(["golden", "--preset", "locality_tiny", "--seed", "3", "--dtype", dtype, "--out", str(tmp_path / name)]) == 0
    for file in ("golden.safetensors", "manifest.json"):
        assert (tmp_path / "one" / file).read_bytes() == (tmp_path / "two" / file).read_bytes(), file
    assert main(["golden", "--preset", "locality_tiny", "--seed", "4", "--dtype", dtype, "--out", str(tmp_path / "other")]) == 0
    assert (tmp_path / "other" / "golden.safetensors").read_bytes() != (tmp_path / "one" / "golden.safetensors").read_bytes()


def test_the_manifest_describes_every_tensor(golden):
    _, tensors, manifest = golden
    assert set(manifest["tensors"]) == set(tensors) == set(manifest["order"])
    for name, entry in manifest["tensors"].items():
        value = tensors[name]
        assert entry["shape"] == list(value.shape) and entry["dtype"] == str(value.dtype)
        assert entry["sha256"] == hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        assert entry["tolerance"]["float64"] >= 0 and entry["tolerance"]["float32"] >= 0
    from reference.config import RunConfig

    config = RunConfig.from_dict(manifest["config"]).model
    hooks = [n[len("act."):] for n in manifest["order"] if n.startswith("act.")]
    assert hooks == hook_names(config)  # forward order: the first diverging tensor is where a bug starts
    assert all(f"grad.act.{h}" in tensors and f"grad.param.{p[len('param.'):]}" in tensors
               for h in hooks for p in manifest["order"] if p.startswith("param."))


def test_the_golden_gradients_are_the_closed_forms(golden):
    """Independent of clearform's code: the loss and dloss/dlogits from the logits and targets alone,
    and the tied head's chain rule from dlogits to the final norm."""
    _, g, _ = golden
    logits, targets = g["act.logits"], g["input.targets"]
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    counted = targets >= 0
    assert np.isclose(float(g["loss"][0]), -np.log(p[counted, targets[counted]]).mean(), rtol=1e-12)
    expected = p.copy()
    expected[counted, targets[counted]] -= 1.0
    expected[~counted] = 0.0
    expected /= counted.sum()
    assert np.allclose(g["grad.act.logits"], expected, rtol=1e-10, atol=1e-14)
    assert np.allclose(g["grad.act.final_norm"], g["grad.act.logits"] @ g["param.embed.tok"], rtol=1e-10, atol=1e-14)


def test_every_registered_mechanism_contributes_golden_cases(golden, monkeypatch):
    _, tensors, manifest = golden
    for m in mechanisms.MECHANISMS:
        mine = [k for k in tensors if k.startswith(f"{m.code}.")]
        assert mine, f"{m.code} has no golden cases"
        assert manifest["mechanisms"][m.code]["spec"] == m.spec
    without = dataclasses.replace(mechanisms.MECHANISMS[0], golden=None)
    monkeypatch.setattr(mechanisms, "MECHANISMS", (without,))
    with pytest.raises(ValueError, match="no golden cases"):
        mechanism_cases(0, "float64")


def test_locality_cases_are_its_functions(golden):
    """The LOC cases are what the package's functions give on the recorded inputs."""
    from reference.mechanisms.locality import group_penalty, make_layout, pointer_loss

    _, g, manifest = golden
    s = manifest["mechanisms"]["LOC"]["settings"]
    for k in (0, 1):
        p = f"LOC.case{k}."
        layout = make_layout(g[p + "block_id"], g[p + "target_block"], targets=g[p + "pointer_mask"].astype(bool))
        omega, _ = group_penalty(g[p + "pattern"], layout, s["lam"], s["n_layers"])
        assert float(omega) == float(g[p + "group_penalty"][0]) and float(omega) > 0
        assert float(pointer_loss(g[p + "pattern"], layout, s["n_layers"])[0]) == float(g[p + "pointer_loss"][0])
        assert np.allclose(g[p + "variational_attention"].sum(-1), 1.0)


@pytest.mark.parametrize("args", [
    ["golden", "--out", "X"],
    ["golden", "--preset", "locality_tiny", "--config", "c.json", "--out", "X"],
    ["golden", "--preset", "nope", "--out", "X"],
    ["golden", "--preset", "locality_tiny", "--mechanism", "XYZ", "--out", "X"],
    ["golden", "--preset", "locality_tiny", "--seed", "-1", "--out", "X"],
])
def test_bad_golden_arguments_are_one_line_exit_2(tmp_path, args, capsys):
    args = [a.replace("X", str(tmp_path / "g")) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
