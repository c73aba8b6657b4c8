"""``clearform vds eval`` (specs/02 §5): fast checks on a small LM, the errors of bad input, and the slow full run.

The fast tests share one toy LM (300 steps of the ``vds`` preset, trained once per module) and run
reduced evaluations on it: the semantic-gap task's margin, identical JSON serial and over two
workers, the exact row keys. The full default run (5 seeds, 3 tasks, the spec's sizes) is the
``slow`` test: H1–H5 asserted.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_harness import run_cli  # noqa: E402  (tests/ is on sys.path)

from reference.config import ConfigError
from reference.mechanisms.vds import METHODS, VDSConfig, check_head, label_token_ids, representations
from reference.mechanisms.vds.evaluate import ROW_KEYS, TASKS, split_indices
from reference.mechanisms.vds.experiment import EvalSettings, lm_run_config, run_eval
from reference.parallel import Jobs
from reference.train import Trainer

SMALL = {"split": (48, 0, 48), "natural_split": (128, 0, 128), "vds": (("epochs", 30), ("lr", 1e-3))}


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vds_lm")
    Trainer(lm_run_config(EvalSettings(lm_steps=300)), folder, progress=False, plugins=[]).train()
    return str(folder)


def _rows(out):
    return json.loads((out / "vds.json").read_text())


def test_vds_semantic_gap_task_is_closed_by_calibration(lm, tmp_path):
    """Fast test of §7: one seed, topic_unseen, reduced sizes: calibrated > lm_head by ≥ 0.15 and > similarity."""
    settings = EvalSettings(seeds=(0,), tasks=("topic_unseen",), model=lm, **SMALL)
    result = run_eval(settings, tmp_path, progress=False, log=None)
    acc = {r["method"]: r["accuracy"] for r in result.rows}
    assert acc["calibrated"] - acc["lm_head"] >= 0.15, acc
    assert acc["calibrated"] > acc["similarity"], acc
    rows = _rows(tmp_path)
    assert all(tuple(r) == ROW_KEYS for r in rows) and [r["method"] for r in rows] == list(METHODS)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["vds_overrides"] == {"epochs": 30, "lr": 1e-3}  # preset overrides go into the run metadata
    for name in ("vds_diagnostics.json", "vds.md", "vds.html", "vds.png"):
        assert (tmp_path / name).is_file()


def test_vds_results_do_not_depend_on_the_workers(lm, tmp_path):
    settings = EvalSettings(seeds=(0, 1), tasks=("topic_unseen", "topic_vs_rest"), model=lm, **SMALL)
    run_eval(settings, tmp_path / "serial", progress=False, log=None)
    run_eval(settings, tmp_path / "two", jobs=Jobs(workers=2), progress=False, log=None)
    for name in ("vds.json", "vds_diagnostics.json"):
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    rows = _rows(tmp_path / "serial")
    assert {(r["task"], r["seed"]) for r in rows} == {(t, s) for t in ("topic_unseen", "topic_vs_rest") for s in (0, 1)}
    assert len(rows) == 4 * 4


def test_vds_lm_per_seed_trains_one_lm_per_seed(tmp_path):
    settings = EvalSettings(seeds=(3, 4), tasks=("topic_unseen",), lm_steps=10, lm_per_seed=True, **SMALL)
    result = run_eval(settings, tmp_path, progress=False, log=None)
    assert (tmp_path / "lm-seed3" / "model.safetensors").is_file() and (tmp_path / "lm-seed4" / "model.safetensors").is_file()
    assert [h["lm_seed"] for h in result.head["per_lm"]] == [3, 4]
    diag = json.loads((tmp_path / "vds_diagnostics.json").read_text())
    assert len(diag["head"]["per_lm"]) == 2 and len(result.rows) == 2 * 4
    with pytest.raises(ConfigError, match="lm-per-seed"):
        EvalSettings(lm_per_seed=True, model=str(tmp_path))


def test_vds_cli_eval_prints_the_table_and_marks_checks(lm, tmp_path):
    status, out, err, _ = run_cli(["vds", "eval", "--out", str(tmp_path), "--model", lm, "--seeds", "0", "--tasks", "topic",
                                   "--split", "48", "0", "48", "--epochs", "30", "--lr", "1e-3", "--quiet"], limit=120)
    assert status in (0, 1)
    assert "calibrated − lm_head" in out and "hard checks:" in out and "H1: topic" in out
    rows = _rows(tmp_path)
    assert [r["method"] for r in rows] == list(METHODS)
    failed = any(line.startswith("[FAIL] H") for line in out.splitlines())
    assert (status == 1) == failed


@pytest.mark.parametrize("argv, match", [
    (["--labels", "topic0", "topic1 topic2", "topic2", "topic3", "topic4", "topic5", "topic6", "topic7"], "is not one token"),
    (["--labels", "topic0", "nonsense", "topic2", "topic3", "topic4", "topic5", "topic6", "topic7"], "not in the vocabulary"),
    (["--labels", "topic0", "topic0", "topic2", "topic3", "topic4", "topic5", "topic6", "topic7"], "share one token"),
    (["--labels", "topic0", "topic1"], "K = 8"),
    (["--tasks", "topic_vs_rest", "--natural-split", "2", "0", "1"], "empty class"),
    (["--seeds", "1", "1"], "distinct"),
    (["--epochs", "0"], "vds.epochs"),
    (["--lr", "-1"], "vds.lr"),
    (["--split", "0", "0", "1"], "split"),
    (["--model", "/nonexistent/vds"], "not a directory"),
    (["--hf", "/tmp", "--model", "/tmp"], "takes no --model"),
    (["--lm-per-seed", "--model", "/tmp"], "cannot be combined"),
])
def test_vds_bad_input_is_one_line_exit_2(tmp_path, argv, match):
    status, out, err, seconds = run_cli(["vds", "eval", "--out", str(tmp_path / "o"), "--quiet", *argv], limit=60)
    assert status == 2, (out, err)
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and match in lines[0], err
    assert "Traceback" not in err and seconds < 30  # refused before any training


def test_vds_bad_dimensions_and_temperature_are_config_errors():
    with pytest.raises(ConfigError, match="does not match"):
        check_head(np.ones((20, 4)), 5)
    with pytest.raises(ConfigError, match="vds.temperature"):
        VDSConfig(temperature=0.0)
    with pytest.raises(ConfigError, match="V = 3 ≤ d = 4"):
        check_head(np.ones((3, 4)))
    with pytest.raises(ConfigError, match="not one token"):
        label_token_ids(["a b"], lambda w: [1, 2], decode=str)
    assert label_token_ids(["a b"], lambda w: [1, 2], "last").tolist() == [2]
    with pytest.raises(ConfigError, match="cluster_exp"):
        VDSConfig(cluster_exp=True, cluster_logits="sm_gt")


def test_vds_splits_are_seeded_disjoint_and_balanced():
    labels = np.repeat(np.arange(4), 20)
    tr, va, te = split_indices(labels, 4, seed=3, task_index=0, split=(8, 4, 8), balanced=True)
    assert len(set(tr) | set(va) | set(te)) == len(tr) + len(va) + len(te) == 80
    assert np.all(np.bincount(labels[tr], minlength=4) == 8)
    again = split_indices(labels, 4, seed=3, task_index=0, split=(8, 4, 8), balanced=True)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    other = split_indices(labels, 4, seed=4, task_index=0, split=(8, 4, 8), balanced=True)
    assert not np.array_equal(other[0], tr)


def test_vds_representations_reject_a_dimension_mismatch(lm):
    from reference.checkpoint import load_weights

    params, run = load_weights(lm)
    prompts = np.full((2, 10), 1, np.int64)
    reps = representations(params, run.model, prompts, np.array([3, 10]))
    assert reps.last.shape == (2, run.model.d_model)
    with pytest.raises(ConfigError, match="does not match"):
        check_head(np.ones((371, run.model.d_model + 1)), reps.last.shape[1])


@pytest.mark.slow(selected_only=True)
def test_vds_full_eval_meets_the_hard_checks(tmp_path):
    """§5.3 on the default preset: H1–H3 per task (mean over 5 seeds), H4 (< 300 s), H5; exact rows."""
    result = run_eval(EvalSettings(), tmp_path, jobs=Jobs(workers=2), progress=False, log=None)
    hard = {(c["id"], c["task"]): c["passed"] for c in result.checks if c["hard"]}
    for task in TASKS:
        for check in ("H1", "H2", "H3"):
            assert hard[(check, task)] is True, (check, task, result.checks)
    assert hard[("H5", None)] is True and hard[("H4", None)] is True
    rows = _rows(tmp_path)
    assert len(rows) == len(TASKS) * 5 * 4
    for task in TASKS:
        for seed in range(5):
            group = [r for r in rows if r["task"] == task and r["seed"] == seed]
            assert sorted(r["method"] for r in group) == sorted(METHODS)
            assert all(set(r) == set(ROW_KEYS) for r in group)
