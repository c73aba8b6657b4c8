"""VDS golden cases and demo section: the cases are what the spec's formulas give; the demo writes its table and plot."""

from __future__ import annotations

import autograd
import numpy as np
from gradcheck import assert_grads_match  # noqa: E402  (tests/ is on sys.path)

from reference.golden import mechanism_cases
from reference.mechanisms.vds import cluster_loss, lambda_forward, semantic_bases
from reference.mechanisms.vds.golden import SETTINGS, SHAPES, cases


def test_vds_golden_cases_follow_the_formulas():
    tensors, about = cases(3, "float64")
    assert about["settings"] == SETTINGS
    for k in range(len(SHAPES)):
        c = {name[len(f"VDS.case{k}."):]: v for name, v in tensors.items() if name.startswith(f"VDS.case{k}.")}
        W = c["W"]
        assert np.max(np.abs(c["S"] - semantic_bases(W, c["label_ids"], method="pinv"))) <= 1e-10
        U, S = c["U"], c["S"]
        ref = (U / np.linalg.norm(U, axis=1, keepdims=True)) @ (S / np.linalg.norm(S, axis=1, keepdims=True)).T
        assert np.allclose(c["cos"], ref, atol=1e-14)
        params = {n[len("lambda."):]: v for n, v in c.items() if n.startswith("lambda.")}
        y, _ = lambda_forward(params, c["a"], c["m"], c["r"])
        assert np.array_equal(y, c["y"])
        names = list(params)

        def loss(values, names=names, labels=c["labels"], S=S):
            out, _ = lambda_forward(dict(zip(names, values[:-3])), *values[-3:])
            return cluster_loss(out, labels, kind="sm", S=S)[0]

        oracle = autograd.grad(loss)([params[n] for n in names] + [c["a"], c["m"], c["r"]])
        ours = {**{n: c[f"grad.{n}"] for n in names}, "a": c["grad.a"], "m": c["grad.m"], "r": c["grad.r"]}
        assert_grads_match(ours, dict(zip(names + ["a", "m", "r"], oracle)))
    assert np.linalg.matrix_rank(tensors["VDS.case1.W"]) < min(tensors["VDS.case1.W"].shape)  # the rank-deficient case


def test_vds_golden_cases_come_out_of_clearform_golden():
    per = mechanism_cases(0, "float32", ["VDS"])
    tensors = per[0]
    assert tensors and all(name.startswith("VDS.case") for name in tensors)
    assert tensors["VDS.case0.S"].dtype == np.float32 and tensors["VDS.case0.label_ids"].dtype == np.int64


def test_vds_demo_section_writes_its_table_and_plot(tmp_path):
    from reference.mechanisms.vds.experiment import demo_section

    section = demo_section(tmp_path, steps=60)  # trains 300 steps: the section's floor
    assert "Vocabulary-defined semantics" in section.title and section.images == ["vds/vds.png"]
    assert (tmp_path / "vds" / "vds.png").is_file() and "calibrated" in section.body and "clearform vds eval" in section.body
