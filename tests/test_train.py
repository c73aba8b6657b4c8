"""Trainer: determinism, exact resume, NaN guard, checkpoints, the optimiser and schedule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.checkpoint import CheckpointError, load_checkpoint, load_weights
from reference.config import RunConfig
from reference.optim import AdamW, clip_by_global_norm, global_norm, lr_at
from reference.train import Batch, Trainer, TrainingDiverged, unigram_loss

TINY = {
    "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "context": 32},
    "train": {"steps": 8, "batch_size": 4, "warmup": 2, "eval_every": 4, "eval_batches": 1, "checkpoint_every": 4, "log_every": 1},
}


def tiny_run(**train) -> RunConfig:
    overrides = json.loads(json.dumps(TINY))
    overrides["train"].update(train)
    return RunConfig().overridden(overrides)


def test_same_seed_same_metrics(tmp_path):
    for name in ("a", "b"):
        Trainer(tiny_run(), tmp_path / name, progress=False).train()
    a = (tmp_path / "a" / "metrics.jsonl").read_bytes()
    assert a == (tmp_path / "b" / "metrics.jsonl").read_bytes()
    records = [json.loads(line) for line in a.decode().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))
    assert any("val_loss" in r and "unigram_loss" in r for r in records)


def test_other_seed_other_metrics(tmp_path):
    Trainer(tiny_run(seed=0), tmp_path / "a", progress=False).train()
    Trainer(tiny_run(seed=1), tmp_path / "b", progress=False).train()
    assert (tmp_path / "a" / "metrics.jsonl").read_bytes() != (tmp_path / "b" / "metrics.jsonl").read_bytes()


@pytest.mark.parametrize("source", ["toyworld", "text"])
def test_resume_is_bit_identical(tmp_path, source):
    run = tiny_run()
    if source == "text":
        text = tmp_path / "corpus.txt"
        text.write_text("the quick brown fox jumps over the lazy dog. " * 40 + "héllo wörld ✓ " * 10)
        run = run.overridden({"data": {"source": "text", "path": str(text)}})
    straight = Trainer(run, tmp_path / "straight", progress=False)
    straight.train()
    first = Trainer(run, tmp_path / "resumed", progress=False)
    first.train(until=3)
    assert first.step == 3
    resumed = Trainer.resume(tmp_path / "resumed", progress=False)
    assert resumed.step == 3
    resumed.train()
    for name, value in straight.params.items():
        assert np.array_equal(value, resumed.params[name]), name
    assert (tmp_path / "straight" / "metrics.jsonl").read_bytes() == (tmp_path / "resumed" / "metrics.jsonl").read_bytes()


def test_training_learns_and_saves_loadable_weights(tmp_path):
    trainer = Trainer(tiny_run(steps=80, batch_size=8, eval_every=80, lr=1e-2), tmp_path, progress=False)
    before = trainer.evaluate()["val_loss"]
    assert before == pytest.approx(math.log(trainer.run.model.vocab_size), rel=0.05)  # near-uniform at init
    result = trainer.train()
    assert result.final_eval["val_loss"] < 0.8 * before  # a broken gradient stays near ln V
    params, run = load_weights(tmp_path)
    assert run == trainer.run
    for name in params:
        assert np.array_equal(params[name], trainer.params[name])


def test_nan_stops_training_and_keeps_last_good_checkpoint(tmp_path):
    trainer = Trainer(tiny_run(checkpoint_every=2), tmp_path, progress=False)
    trainer.train(until=2)
    good = {k: v.copy() for k, v in trainer.params.items()}
    trainer.params["blocks.0.mlp.w_in"][0, 0] = np.nan
    with pytest.raises(TrainingDiverged, match="step 3: loss is nan"):
        trainer.train()
    params, _, _, state = load_checkpoint(tmp_path)
    assert state["step"] == 2
    for name in good:
        assert np.array_equal(params[name], good[name])


def test_tampered_checkpoint_is_refused(tmp_path):
    Trainer(tiny_run(), tmp_path, progress=False).train(until=2)
    weights = tmp_path / "checkpoint" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes((tmp_path / "model.safetensors").read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_weights(tmp_path)


# --------------------------------------------------------------------------- optimiser pieces


def test_lr_schedule_shape():
    lrs = [lr_at(s, 1.0, 10, 100, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lr_at(100, 1.0, 10, 100, 0.1) == pytest.approx(0.1)


@given(st.integers(0, 2**31), st.floats(0.01, 10.0))
def test_clip_by_global_norm(seed, max_norm):
    rs = np.random.default_rng(seed)
    grads = {"a": rs.standard_normal((3, 4)), "b": rs.standard_normal(5)}
    before = global_norm(grads)
    returned = clip_by_global_norm(grads, max_norm)
    assert returned == pytest.approx(before)
    assert global_norm(grads) <= max_norm * (1 + 1e-9) or before <= max_norm


def test_adamw_matches_formula_and_groups_added_later():
    rs = np.random.default_rng(0)
    params = {"w": rs.standard_normal((2, 3)), "b": rs.standard_normal(3)}
    opt = AdamW.for_params(params, weight_decay=0.1, beta1=0.9, beta2=0.99, eps=1e-8)
    theta = params["w"].copy()
    g = rs.standard_normal((2, 3))
    opt.step(params, {"w": g, "b": np.zeros(3)}, lr=0.01)
    m, v = 0.1 * g, 0.01 * g * g
    expected = theta - 0.01 * ((m / 0.1) / (np.sqrt(v / 0.01) + 1e-8) + 0.1 * theta)
    assert np.allclose(params["w"], expected, rtol=1e-12, atol=0)
    params["new"] = np.ones(2)
    opt.add_group(["new"], params, weight_decay=0.0, lr_scale=2.0)
    opt.step(params, {"w": g, "b": np.zeros(3), "new": np.ones(2)}, lr=0.01)
    # first step of the new group: bias-corrected m̂/√v̂ = 1, lr·scale = 0.02
    assert np.allclose(params["new"], 1.0 - 0.02 * (1 / (1 + 1e-8)))
    with pytest.raises(ValueError, match="already"):
        opt.add_group(["w"], params, 0.0)


def test_unigram_loss_is_entropy_of_targets():
    targets = np.array([[0, 0, 1, -1]])
    p = np.array([2 / 3, 1 / 3])
    assert unigram_loss([Batch(targets, targets)]) == pytest.approx(-(p * np.log(p)).sum())


def test_evaluate_takes_forward_arguments_and_observers():
    """evaluate(): a mechanism's per-batch forward arguments change the result; observe sees every batch."""
    from reference.evaluation import evaluate
    from reference.model import init_params
    from reference.train import make_data, prepare_run

    run = prepare_run(tiny_run())
    params = init_params(run.model, seed=0)
    batches = make_data(run).val_batches(2, 3)
    plain = evaluate(params, run, batches)
    assert evaluate(params, run, batches, lambda batch: {}) == plain
    seen = []

    def observe(batch, logits, acts, hits):
        seen.append((batch, set(acts), int(hits.sum())))

    t = batches[0].inputs.shape[1]
    only_first = np.where(np.arange(t)[None, :] > 0, -1e9, 0.0)[None, None]  # every query attends to position 0 only
    biased = evaluate(params, run, batches, lambda batch: {"attn_bias": only_first}, names=["blocks.0.attn.pattern"],
                      observe=observe)
    assert biased["val_loss"] != plain["val_loss"]
    assert [b for b, _, _ in seen] == batches and all(names == {"blocks.0.attn.pattern"} for _, names, _ in seen)
    counted = sum(int((b.targets != -1).sum()) for b in batches)
    assert sum(h for _, _, h in seen) == round(biased["val_accuracy"] * counted)


def test_generate_takes_forward_arguments_per_step():
    from reference.model import generate, init_params

    run = tiny_run()
    config = run.model.replace(vocab_size=40, dtype="float64", init_std=0.5)  # large weights: attention matters
    params = init_params(config, seed=3)
    windows = []

    def none(window):
        windows.append(window.shape[1])
        return {}

    plain = generate(params, config, [1, 2, 3], 5, temperature=0)
    assert generate(params, config, [1, 2, 3], 5, temperature=0, forward_kwargs=none) == plain
    assert windows == [3, 4, 5, 6, 7]  # called once per step, with the tokens so far

    def first_only(window):
        t = window.shape[1]
        return {"attn_bias": np.where(np.arange(t)[None, :] > 0, -np.inf, 0.0)[None, None]}

    steered = generate(params, config, [1, 2, 3], 5, temperature=0, forward_kwargs=first_only)
    assert steered != plain and steered[:3] == [1, 2, 3]
