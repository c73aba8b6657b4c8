"""R1 and R3 (spec §6.2) on trained ``neurons`` preset models: H7 timings, S1–S8 reported and flagged (slow).

Run with ``pytest -m slow tests/test_neurons_toy.py``: each model trains 600 steps (about a minute on a
loaded 2-core machine) and its analysis takes about another. The soft checks are printed, never asserted;
what is asserted is that they are present in neurons.json and in the printed table, that the verdicts
follow the H8 rule on the reported numbers, and the H7 time bounds.
"""

from __future__ import annotations

import json
import time

import pytest

from reference.mechanisms.neurons import NeuronsConfig, verdict
from reference.mechanisms.neurons.experiment import pooled_summary, run_analysis

pytestmark = pytest.mark.slow(selected_only=True)


def _check(data: dict, cfg: NeuronsConfig) -> None:
    for s in data["layers"]:
        top = s["top_vs_bottom"]
        assert top["verdict"] == verdict(top["n"], top["mean_delta"], top["p_signflip"], cfg.alpha)
    ids = {f["id"] for s in data["layers"] for f in s["flags"]}
    assert ids >= {"S1", "S2", "S3", "S4", "S5", "S6", "S8"}


def test_neurons_r1_trains_and_analyses_within_h7(tmp_path, capsys):
    cfg = NeuronsConfig()
    lines: list[str] = []
    start = time.perf_counter()
    data = run_analysis(cfg, tmp_path, progress=False, log=lines.append)
    total = time.perf_counter() - start
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["seconds_model"] <= 150 and total - record["seconds_model"] < 300, record
    _check(data, cfg)
    printed = "\n".join(lines)
    assert "S1" in printed and "top-zone finding" in printed
    with capsys.disabled():
        print(f"\nR1: train {record['seconds_model']} s, total {total:.0f} s")
        for s in data["layers"]:
            print("  ", s["layer"], s["top_vs_bottom"], [(f["id"], f["passed"]) for f in s["flags"]])


def test_neurons_r3_three_seeds_per_seed_and_pooled(tmp_path, capsys):
    datas = []
    for seed in (0, 1, 2):
        cfg = NeuronsConfig(seed=seed, plots=False)
        datas.append(run_analysis(cfg, tmp_path / f"seed{seed}", progress=False, log=None))
        _check(datas[-1], cfg)
    pooled = pooled_summary(datas, NeuronsConfig(), 2)
    top = pooled["top_vs_bottom"]
    assert top["n"] == sum(s["top_vs_bottom"]["n"] for d in datas for s in d["layers"] if s["layer"] == "all")
    assert top["verdict"] == verdict(top["n"], top["mean_delta"], top["p_signflip"], 0.05)
    with capsys.disabled():
        for seed, d in enumerate(datas):
            print(f"\nR3 seed {seed}:", [(s["layer"], s["top_vs_bottom"]["verdict"]) for s in d["layers"]])
        print("R3 pooled:", top)
