"""DDC: a growing model trains (A4) — growth and pruning edit parameters and optimiser together, same seed same trace,
checkpoint and resume give the identical remaining trace (spec §2.3, §5.3 H7, §7)."""

from __future__ import annotations

import json

import numpy as np

from reference.mechanisms.ddc.config import preset_config
from reference.mechanisms.ddc.e5 import E5Settings, train
from reference.mechanisms.ddc.growth import head_ids

CFG = preset_config("toy").replace(dwell_fixed=2, calib_batches=2, prune_min_age=2, prune_patience=3)
SMALL = E5Settings(steps=40, batch=4, log_every=5, warmup=5)


def _trace(run) -> str:
    return json.dumps(run.trace, default=str)


def test_ddc_growth_run_edits_params_and_moments_together():
    run = train(CFG, SMALL, 0)
    grows = [r for r in run.trace if r["event"] and r["event"]["kind"] == "grow"]
    assert grows, "no growth in the small run"
    for r in grows:
        name = f"blocks.{r['layer']}.attn.h{r['event']['head']}.w_q"
        if name in run.params:  # born after step s: its own step counter counts only the steps since
            assert run.opt.steps[name] == SMALL.steps - r["step"] - 1
    live = {n for g in run.opt.groups for n in g.names}
    assert {n for n in run.params if ".attn.h" in n} <= live <= set(run.params)
    assert set(run.opt.m) == set(run.opt.v) == set(run.opt.steps) == live
    for i, gate in enumerate(run.gates):
        assert [h.id for h in gate.heads] == head_ids(run.params, i)
        assert 1 <= len(gate.heads) <= CFG.heads_max
        e = gate.e
        assert np.max(np.abs(e.T @ e - np.eye(e.shape[1]))) <= 1e-12
    for m in run.metrics:
        for lay in m["layers"]:
            assert lay["identity_residual"] <= 1e-9 * lay["lq"]
    for r in grows:  # function-preserving growth: the same batch's loss barely moves
        assert abs(r["event"]["loss_after"] - r["event"]["loss_before"]) <= 1e-2 * r["event"]["loss_before"]


def test_ddc_growth_run_is_deterministic_and_resumes(tmp_path):
    first = train(CFG, SMALL, 1, checkpoint_at=20, checkpoint_path=tmp_path / "ckpt")
    again = train(CFG, SMALL, 1)
    assert _trace(first) == _trace(again)
    resumed = train(CFG, SMALL, 1, resume=tmp_path / "ckpt")
    assert _trace(resumed) == json.dumps([r for r in first.trace if r["step"] >= 20], default=str)
    assert all(np.array_equal(first.params[n], resumed.params[n]) for n in first.params)
    assert set(first.params) == set(resumed.params)


def test_ddc_growth_run_prunes_a_silenced_head():
    """A head whose W_Q is frozen at ~0 has G_h < φ_g: pruned after ``prune_patience`` checks; tensors and moments go."""
    run = train(CFG, SMALL, 2, stop_at=20)
    assert len(head_ids(run.params, 0)) >= 2
    run.params["blocks.0.attn.h0.w_q"] *= 1e-9
    for group in run.opt.groups:  # freeze it there: AdamW's steps do not shrink with the weights
        if "blocks.0.attn.h0.w_q" in group.names:
            group.lr_scale, group.weight_decay = 0.0, 0.0
    while run.step_no < SMALL.steps:
        run.step()
    pruned = [(r["layer"], e["head"]) for r in run.trace for e in r["events"] if e["kind"] == "prune"]
    assert (0, 0) in pruned, pruned
    assert 0 not in head_ids(run.params, 0)
    assert not any(n.startswith("blocks.0.attn.h0.") for n in (*run.opt.m, *run.opt.v, *run.opt.steps))
    assert all(r["heads"] >= 1 for r in run.trace)
