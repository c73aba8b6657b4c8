"""The ``clearform`` command: help, bad input (exit 2, one line, no traceback), train/eval/generate, proofs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reference.cli import build_parser

TINY = {
    "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "context": 32},
    "train": {"steps": 4, "batch_size": 2, "warmup": 1, "eval_every": 4, "eval_batches": 1, "checkpoint_every": 2},
}
COMMANDS = ["train", "eval", "generate", "demo", "proofs"]


def clearform(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reference.cli", *args], capture_output=True, text=True, timeout=300)


def write_config(tmp_path, data) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_help_lists_every_command():
    result = clearform("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
    assert set(COMMANDS) <= set(build_parser()._subparsers._group_actions[0].choices)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model": {"d_model": 30, "n_heads": 4}}, "model.n_heads: 4 does not divide d_model 30"),
        ({"train": {"lr": -0.1}}, "train.lr: -0.1 is not a number"),
        ({"model": {"widht": 3}}, "model.widht: unknown key"),
        ({"train": {"steps": "ten"}}, "train.steps: 'ten' is not an int"),
        ({"model": {"causal": 1}}, "model.causal: 1 is not a bool"),
        ({"optimizer": {}}, "optimizer: unknown section"),
    ],
)
def test_invalid_config_is_one_line_exit_2(tmp_path, overrides, message):
    result = clearform("train", "--config", write_config(tmp_path, overrides), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unreadable_config_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = clearform("train", "--config", str(bad), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_train_eval_generate_and_bad_checkpoints(tmp_path):
    run = tmp_path / "run"
    result = clearform("train", "--config", write_config(tmp_path, TINY), "--out", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "val_loss" in result.stdout and "unigram_loss" in result.stdout

    result = clearform("eval", "--run", str(run), "--batches", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert {"val_loss", "unigram_loss", "val_accuracy"} <= set(json.loads(result.stdout))

    result = clearform("generate", "--run", str(run), "--tokens", "5", "--temperature", "0")
    assert result.returncode == 0 and result.stdout.strip()

    # tampered: a config whose shapes no longer fit the weights
    config = json.loads((run / "config.json").read_text())
    config["run"]["model"]["d_model"] = 32
    (run / "config.json").write_text(json.dumps(config))
    result = clearform("eval", "--run", str(run))
    assert result.returncode == 2 and "shape" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    # truncated weights in the checkpoint: resume refuses
    weights = run / "checkpoint" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    result = clearform("train", "--out", str(run), "--resume")
    assert result.returncode == 2 and "model.safetensors" in result.stderr and "Traceback" not in result.stderr

    result = clearform("eval", "--run", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_proofs_json_keys_and_exit_status():
    result = clearform("proofs", "--json", "--examples", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout)
    assert rows, "no theorem registered"
    for row in rows:
        assert {"id", "mechanism", "provenance", "symbolic", "numeric", "examples"} <= set(row)
        assert row["symbolic"] in ("pass", "fail", "n/a") and row["numeric"] in ("pass", "fail", "n/a")
    table = clearform("proofs", "--examples", "5")
    assert table.returncode == 0
    assert all(row["id"] in table.stdout for row in rows)
