"""``clearform compare``: tolerance per tensor, the first divergence in forward order, one-line bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from reference.cli import main


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    for dtype in ("float64", "float32"):
        assert main(["golden", "--preset", "locality_tiny", "--dtype", dtype, "--out", str(base / dtype)]) == 0
    return base


def run_compare(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_golden_tensors_pass_against_themselves_and_float32_within_its_tolerance(golden, capsys):
    same = str(golden / "float64" / "golden.safetensors")
    code, out, _ = run_compare(capsys, "--golden", str(golden / "float64"), "--theirs", same)
    assert code == 0 and "within the float64 tolerance" in out
    theirs = str(golden / "float32" / "golden.safetensors")
    code, out, _ = run_compare(capsys, "--golden", str(golden / "float64"), "--theirs", theirs, "--json")
    report = json.loads(out)
    assert code == 0 and report["precision"] == "float32" and report["passed"] and report["first_divergence"] is None
    code, out, _ = run_compare(capsys, "--golden", str(golden / "float64"), "--theirs", theirs, "--precision", "float64", "--json")
    assert code == 1 and json.loads(out)["first_divergence"] == "param.embed.tok"  # float32 rounding is far past 1e-10


def test_the_first_divergence_is_the_earliest_in_forward_order(golden, tmp_path, capsys):
    tensors = load_file(golden / "float64" / "golden.safetensors")
    theirs = {k: v for k, v in tensors.items() if k.startswith(("act.", "grad."))}
    theirs["grad.param.embed.tok"] = theirs["grad.param.embed.tok"] + 1e-6  # a later tensor, also wrong
    theirs["act.blocks.1.mlp.post"] = theirs["act.blocks.1.mlp.post"] * (1 + 1e-8)
    theirs["act.blocks.0.attn.pattern"] = theirs["act.blocks.0.attn.pattern"] + 1e-9
    save_file(theirs, tmp_path / "theirs.safetensors")
    code, out, _ = run_compare(capsys, "--golden", str(golden / "float64"), "--theirs", str(tmp_path / "theirs.safetensors"),
                               "--json")
    report = json.loads(out)
    assert code == 1 and report["first_divergence"] == "act.blocks.0.attn.pattern"
    failing = [r["name"] for r in report["tensors"] if not r["passed"]]
    assert failing == ["act.blocks.0.attn.pattern", "act.blocks.1.mlp.post", "grad.param.embed.tok"]
    code, out, _ = run_compare(capsys, "--golden", str(golden / "float64"), "--theirs", str(tmp_path / "theirs.safetensors"))
    assert code == 1 and "FIRST DIVERGENCE" in out and "act.blocks.0.attn.pattern" in out.splitlines()[-1]


def test_a_map_renames_their_tensors_and_npz_works(golden, tmp_path, capsys):
    tensors = load_file(golden / "float64" / "golden.safetensors")
    np.savez(tmp_path / "mine.npz", my_logits=tensors["act.logits"], my_loss=tensors["loss"])
    (tmp_path / "map.json").write_text(json.dumps({"my_logits": "act.logits", "my_loss": "loss"}))
    code, out, _ = run_compare(capsys, "--golden", str(golden / "float64"), "--theirs", str(tmp_path / "mine.npz"),
                               "--map", str(tmp_path / "map.json"), "--json")
    assert code == 0 and [r["name"] for r in json.loads(out)["tensors"]] == ["act.logits", "loss"]


def bad_inputs(golden, tmp_path):
    tensors = load_file(golden / "float64" / "golden.safetensors")
    save_file({"act.logits": tensors["act.logits"][:, :-1].copy()}, tmp_path / "shape.safetensors")
    save_file({"act.nope": tensors["act.logits"]}, tmp_path / "unknown.safetensors")
    np.savez(tmp_path / "pickle.npz", x=np.array([{"a": 1}], dtype=object))
    (tmp_path / "text.safetensors").write_text("not safetensors")
    (tmp_path / "map.json").write_text("[1, 2]")
    g = str(golden / "float64")
    (tmp_path / "ghost.json").write_text(json.dumps({"not_there": "act.logits"}))
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "manifest.json").write_text((golden / "float64" / "manifest.json").read_text())
    save_file({"act.logits": tensors["act.logits"]}, damaged / "golden.safetensors")
    return {
        "map names a missing tensor": ["--golden", g, "--theirs", str(tmp_path / "shape.safetensors"),
                                       "--map", str(tmp_path / "ghost.json")],
        "golden file missing a tensor": ["--golden", str(damaged), "--theirs", str(tmp_path / "shape.safetensors")],
        "missing file": ["--golden", g, "--theirs", str(tmp_path / "none.safetensors")],
        "wrong shape": ["--golden", g, "--theirs", str(tmp_path / "shape.safetensors")],
        "unknown names": ["--golden", g, "--theirs", str(tmp_path / "unknown.safetensors")],
        "pickle npz": ["--golden", g, "--theirs", str(tmp_path / "pickle.npz")],
        "not safetensors": ["--golden", g, "--theirs", str(tmp_path / "text.safetensors")],
        "bad map": ["--golden", g, "--theirs", str(tmp_path / "shape.safetensors"), "--map", str(tmp_path / "map.json")],
        "not a golden folder": ["--golden", str(tmp_path), "--theirs", str(tmp_path / "shape.safetensors")],
    }


@pytest.mark.parametrize("case", ["missing file", "wrong shape", "unknown names", "pickle npz", "not safetensors", "bad map",
                                  "not a golden folder", "map names a missing tensor", "golden file missing a tensor"])
def test_bad_input_is_one_line_exit_2(golden, tmp_path, capsys, case):
    code, _, err = run_compare(capsys, *bad_inputs(golden, tmp_path)[case])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    if case == "unknown names":
        assert "act.nope" in err
    if case == "pickle npz":
        assert "pickle" in err


def test_a_nan_in_theirs_is_never_within_tolerance(golden, tmp_path, capsys):
    tensors = load_file(golden / "float64" / "golden.safetensors")
    logits = tensors["act.logits"].copy()
    logits[0, 0, 0] = np.nan
    save_file({"act.logits": logits}, tmp_path / "nan.safetensors")
    code, out, _ = run_compare(capsys, "--golden", str(golden / "float64"), "--theirs", str(tmp_path / "nan.safetensors"), "--json")
    report = json.loads(out)  # strict JSON: the infinite difference is null
    assert code == 1 and report["first_divergence"] == "act.logits" and report["tensors"][0]["max_abs"] is None
