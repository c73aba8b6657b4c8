"""The λ sweep (spec §6.4): E1–E6 on ``locality_tiny`` in the default run; the full preset on request.

One module-scoped sweep (3 seeds × 150 steps, 64 held-out documents, about a minute on
two cores) is shared by the tests. The full default sweep (``locality_sweep``, 800 steps, 3
seeds, just under 10 minutes on two cores) would take the whole project's test budget,
so it runs only under ``pytest -m slow`` (see ``conftest.py``).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from reference.checkpoint import load_weights
from reference.cli import main
from reference.mechanisms.locality import (
    LOC_GRID,
    SWEEP_KEYS,
    SweepSettings,
    batch_layout,
    dial_kwargs,
    layer0_closed_form_mismatches,
    run_sweep,
    sweep_eval_batches,
)
from reference.metrics import row_entropy_bits
from reference.model import run_with_cache

TINY = SweepSettings(preset="locality_tiny", seeds=(0, 1, 2), steps=150, eval_docs=64)


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    printed: list[str] = []
    result = run_sweep(TINY, tmp_path_factory.mktemp("sweep"), progress=False, log=printed.append)
    return result, "\n".join(printed)


def means(result, key: str) -> list[float]:
    return [e[f"{key}_mean"] for e in result.summary if e["mode"] == "redial"]


def test_locality_sweep_e1_e2_entropy_falls_and_fidelity_rises_with_lambda(tiny_sweep):
    result, _ = tiny_sweep
    entropy, fidelity = means(result, "entropy_bits"), means(result, "pointer_fidelity")
    assert all(b <= a for a, b in zip(entropy, entropy[1:])) and entropy[0] > entropy[-1]
    assert all(b >= a for a, b in zip(fidelity, fidelity[1:])) and fidelity[-1] > fidelity[0]


def test_locality_sweep_e4_no_row_breaks_a_bound(tiny_sweep):
    result, _ = tiny_sweep
    assert all(row["bound_violations"] == 0 for row in result.rows)


def test_locality_sweep_e5_schema_and_files(tiny_sweep):
    result, printed = tiny_sweep
    rows = json.loads((result.out / "sweep.json").read_text())
    assert isinstance(rows, list) and len(rows) == len(LOC_GRID) * 3
    for row in rows:
        assert set(SWEEP_KEYS) <= set(row) and row["mode"] == "redial"
        assert all(isinstance(row[k], float) for k in ("entropy_bits", "pointer_fidelity", "val_perplexity", "val_accuracy"))
    assert sorted({r["lambda"] for r in rows}) == list(LOC_GRID) and {r["seed"] for r in rows} == {0, 1, 2}
    for name in ("sweep.png", "sweep.md", "sweep.html", "config.json"):
        assert (result.out / name).stat().st_size > 0
    config = json.loads((result.out / "config.json").read_text())
    assert config["settings"]["steps"] == 150 and config["run"]["train"]["steps"] == 150
    assert result.seconds < 600
    # the table: mean ± sd per λ, AILA's figures in a separate context column
    for figure in ("7.18", "5.36", "4.65", "84.7"):
        assert figure in printed
    assert "not a target" in printed and "±" in printed
    markdown = (result.out / "sweep.md").read_text()
    assert "context: AILA" in markdown and "| redial | 0.6 |" in markdown


def trained(result, seed: int = 0):
    params, run = load_weights(result.out / "models" / f"seed{seed}")
    params = {k: v.astype(np.float64) for k, v in params.items()}
    return params, run, run.model.replace(dtype="float64")


def test_locality_sweep_e3_is_checked_on_every_layer0_row_of_every_row_of_the_table(tiny_sweep):
    """The sweep itself checks E3 on every biased and rule row of layer 0, at every λ and seed."""
    result, printed = tiny_sweep
    assert all(row["e3_rows"] > 0 and row["e3_violations"] == 0 for row in result.rows)
    assert len({row["e3_rows"] for row in result.rows if row["seed"] == 0}) == 1  # the same rows at every λ
    assert "[ok  ] E3" in printed


def test_locality_sweep_e3_premise_holds_and_its_check_can_fail(tiny_sweep):
    """E3's premise: layer 0's scores do not depend on λ. Its check passes at the true shift λβ and
    fails on most rows at a shift off by one part in a million."""
    result, _ = tiny_sweep
    params, run, model = trained(result)
    batch = sweep_eval_batches(run, TINY)[0][0]
    layout = batch_layout(batch, run.locality)
    names = ["blocks.0.attn.scores", "blocks.0.attn.pattern"]
    _, at_zero = run_with_cache(params, model, batch.inputs, names=names)
    for lam in LOC_GRID:
        _, acts = run_with_cache(params, model, batch.inputs, names=names, **dial_kwargs(layout, lam, run.locality, 2))
        z, pattern = acts["blocks.0.attn.scores"], acts["blocks.0.attn.pattern"]
        assert np.array_equal(z, at_zero["blocks.0.attn.scores"])
        h, shift = row_entropy_bits(pattern)[0], lam * run.locality.bias_max
        made, wrong = layer0_closed_form_mismatches(z, pattern, h, layout, shift, 1.0)
        assert made > 0 and wrong == 0
        if lam > 0:
            made, wrong = layer0_closed_form_mismatches(z, pattern, h, layout, shift * (1 + 1e-6), 1.0)
            assert wrong > made // 4, (lam, made, wrong)


def test_locality_sweep_e6_lambda_zero_is_the_foundation(tiny_sweep):
    result, _ = tiny_sweep
    params, run, model = trained(result, seed=1)
    batch = sweep_eval_batches(run, TINY)[0][1]
    plain_logits, plain = run_with_cache(params, model, batch.inputs)
    dialled_logits, dialled = run_with_cache(params, model, batch.inputs, **dial_kwargs(batch_layout(batch), 0.0, run.locality, 2))
    assert np.array_equal(plain_logits, dialled_logits)
    assert all(np.array_equal(plain[f"blocks.{i}.attn.pattern"], dialled[f"blocks.{i}.attn.pattern"]) for i in range(2))


def test_locality_sweep_text_file_gives_null_pointer_metrics(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("The cat sat. A dog ran! Why? Héllo wörld.\nNew line here. " * 60, encoding="utf-8")
    out = tmp_path / "text"
    code = main(["locality", "sweep", "--out", str(out), "--text", str(text), "--preset", "locality_tiny", "--steps", "5",
                 "--seeds", "0", "--lambdas", "0", "1", "--eval-docs", "8", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    rows = json.loads((out / "sweep.json").read_text())
    assert [r["lambda"] for r in rows] == [0.0, 1.0]
    assert all(r["pointer_fidelity"] is None and r["compliance"] is None for r in rows)
    assert all(math.isfinite(r["entropy_bits"]) and r["val_perplexity"] > 1 for r in rows)
    assert rows[1]["entropy_bits"] < rows[0]["entropy_bits"]  # sentence blocks still concentrate attention
    assert "no rule rows" in printed and "entropy (bits)" in printed


def test_locality_sweep_retrain_and_both_modes_write_rows_per_mode(tmp_path, capsys):
    out = tmp_path / "both"
    code = main(["locality", "sweep", "--out", str(out), "--mode", "both", "--preset", "locality_tiny", "--steps", "4",
                 "--seeds", "3", "--lambdas", "0", "1", "--eval-docs", "8", "--no-probe", "--quiet"])
    assert code == 0
    rows = json.loads((out / "sweep.json").read_text())
    assert sorted((r["mode"], r["lambda"]) for r in rows) == [("redial", 0.0), ("redial", 1.0), ("retrain", 0.0), ("retrain", 1.0)]
    assert sorted(p.name for p in (out / "models").iterdir()) == ["seed3", "seed3-lam0", "seed3-lam1"]
    fixed = json.loads((out / "models" / "seed3-lam1" / "config.json").read_text())["run"]["locality"]
    assert (fixed["train_dial"], fixed["lam"]) == ("fixed", 1.0)
    assert all(r["reload_compliance"] is None for r in rows)  # --no-probe
    assert "retrain" in capsys.readouterr().out


def test_locality_sweep_progressive_schedule_uses_the_deep_preset():
    from reference.mechanisms.locality import sweep_run_config

    settings = SweepSettings(schedule="progressive", schedule_power=3.0)
    run = sweep_run_config(settings, 0)
    assert settings.used_preset == "locality_deep" and run.model.n_layers == 4
    assert (run.locality.layer_schedule, run.locality.schedule_power) == ("progressive", 3.0)
    assert run.train.lr == 3e-3 and run.train.weight_decay == 0.01 and run.train.warmup == 50 and run.train.grad_clip == 1.0


@pytest.mark.slow(selected_only=True)
def test_locality_full_default_sweep(tmp_path):
    result = run_sweep(SweepSettings(), tmp_path, progress=False, log=None)
    entropy, fidelity = means(result, "entropy_bits"), means(result, "pointer_fidelity")
    assert all(b <= a for a, b in zip(entropy, entropy[1:])) and entropy[0] > entropy[-1]
    assert all(b >= a for a, b in zip(fidelity, fidelity[1:])) and fidelity[-1] > fidelity[0]
    assert all(row["bound_violations"] == 0 and row["e3_violations"] == 0 for row in result.rows)
    assert result.seconds < 600
