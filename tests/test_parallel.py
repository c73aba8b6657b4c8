"""Threads and workers (reference/parallel.py): shards add up to the whole batch, the
thread count and the worker count never change a number, bad counts are one-line errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.config import ConfigError, ModelConfig, RunConfig
from reference.layers.loss import IGNORE
from reference.mechanisms.locality.experiment import SweepSettings, run_sweep
from reference.model import init_params, loss_and_grads
from reference.parallel import (
    ENV_THREADS,
    Jobs,
    choose_threads,
    run_jobs,
    shard_rows,
    sharded_loss_and_grads,
)
from reference.train import Trainer
from tests.cli_harness import run_cli

SMALL = ModelConfig(vocab_size=23, context=8, d_model=16, n_layers=2, n_heads=2, dtype="float64")


@given(st.integers(1, 200), st.integers(1, 70))
def test_shard_rows_cover_the_batch_once_in_order_with_sizes_within_one(batch, shards):
    rows = shard_rows(batch, shards)
    assert len(rows) == min(batch, shards)
    assert rows[0].start == 0 and rows[-1].stop == batch
    assert all(a.stop == b.start for a, b in zip(rows, rows[1:]))
    sizes = [r.stop - r.start for r in rows]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert sizes == sorted(sizes, reverse=True)  # array_split's rule: the extra rows go first


@pytest.mark.parametrize("shards", [2, 3, 5])
def test_sharded_loss_and_grads_equal_the_whole_batch_in_float64_with_ignored_targets(shards):
    rs = np.random.default_rng(0)
    params = init_params(SMALL, seed=1)
    inputs = rs.integers(0, SMALL.vocab_size, (5, 8))
    targets = rs.integers(0, SMALL.vocab_size, (5, 8))
    targets[0, 3:] = IGNORE  # shards count different numbers of tokens: the weights must follow
    targets[4, :6] = IGNORE
    loss, grads, _ = loss_and_grads(params, SMALL, inputs, targets)
    s_loss, s_grads = sharded_loss_and_grads(params, SMALL, inputs, targets, shard_rows(5, shards))
    assert s_loss == pytest.approx(loss, rel=1e-13)
    for name, g in grads.items():
        np.testing.assert_allclose(s_grads[name], g, rtol=1e-11, atol=1e-13, err_msg=name)


def test_sharded_step_does_not_depend_on_the_pool():
    from concurrent.futures import ThreadPoolExecutor

    config = ModelConfig(**{**SMALL.to_dict(), "dtype": "float32"})
    rs = np.random.default_rng(2)
    params = init_params(config, seed=3)
    inputs, targets = rs.integers(0, 23, (6, 8)), rs.integers(0, 23, (6, 8))
    rows = shard_rows(6, 3)
    serial = sharded_loss_and_grads(params, config, inputs, targets, rows, None)
    with ThreadPoolExecutor(3) as pool:
        threaded = sharded_loss_and_grads(params, config, inputs, targets, rows, pool)
    assert serial[0] == threaded[0]
    for name in serial[1]:
        assert np.array_equal(serial[1][name], threaded[1][name]), name


def _tiny_run(steps: int = 12) -> RunConfig:
    return RunConfig().overridden({
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "context": 32},
        "train": {"steps": steps, "batch_size": 6, "shards": 3, "eval_every": 4, "log_every": 1, "checkpoint_every": 0,
                  "eval_batches": 1},
    })


def test_trainer_metrics_are_identical_with_one_and_three_threads(tmp_path):
    lines = []
    for threads in (1, 3):
        trainer = Trainer(_tiny_run(), tmp_path / f"t{threads}", progress=False, threads=threads)
        trainer.train()
        lines.append((tmp_path / f"t{threads}" / "metrics.jsonl").read_text())
    assert lines[0] == lines[1]
    assert '"loss"' in lines[0]


def test_trainer_with_shards_learns_like_one_shard(tmp_path):
    """Shards change float32 rounding only: the loss curve stays within rounding of the one-shard run."""
    finals = []
    for shards in (1, 3):
        run = _tiny_run(20).overridden({"train": {"shards": shards}})
        finals.append(Trainer(run, tmp_path / f"s{shards}", progress=False, threads=1).train().final_eval["val_loss"])
    assert finals[0] == pytest.approx(finals[1], rel=1e-3)


def test_choose_threads_honours_the_flag_then_the_environment(monkeypatch):
    monkeypatch.delenv(ENV_THREADS, raising=False)
    assert choose_threads(3) == 3
    monkeypatch.setenv(ENV_THREADS, "2")
    assert choose_threads() == 2 and choose_threads(5) == 5
    monkeypatch.setenv(ENV_THREADS, "many")
    with pytest.raises(ConfigError, match=ENV_THREADS):
        choose_threads()
    monkeypatch.delenv(ENV_THREADS)
    assert choose_threads(shards=1, largest_gemm=10) == 1  # small work: one thread whatever the machine
    assert 1 <= choose_threads(shards=2) <= 2
    for bad in (0, -1, 10**6, True, 1.5):
        with pytest.raises(ConfigError, match="--threads"):
            choose_threads(bad)


def test_cli_threads_and_workers_reject_bad_counts_in_one_line(tmp_path):
    for argv in (["train", "--out", str(tmp_path / "r"), "--threads", "0"],
                 ["locality", "sweep", "--out", str(tmp_path / "s"), "--workers", "0"],
                 ["locality", "sweep", "--out", str(tmp_path / "s"), "--workers", "100000"],
                 ["locality", "sweep", "--out", str(tmp_path / "s"), "--scheduler", "tcp://a b"]):
        code, out, err, _ = run_cli(argv)
        assert code == 2, (argv, out, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _square(x: int) -> int:
    return x * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


def test_run_jobs_keeps_the_order_over_worker_processes_and_raises_a_jobs_error():
    assert run_jobs(_square, range(7), Jobs(workers=3)) == [x * x for x in range(7)]
    assert run_jobs(_square, [], Jobs(workers=2)) == []
    with pytest.raises(ValueError, match="three"):
        run_jobs(_fail_on_three, range(6), Jobs(workers=2))
    with pytest.raises(ConfigError, match="--workers"):
        Jobs(workers=0)


SWEEP = SweepSettings(preset="locality_tiny", seeds=(0, 1), lambdas=(0.0, 1.0), mode="retrain", steps=6, eval_docs=16,
                      probe_docs=16)


def _sweep_rows(out, jobs: Jobs | None) -> list:
    run_sweep(SWEEP, out, progress=False, log=None, jobs=jobs)
    return json.loads((out / "sweep.json").read_text())


def test_locality_sweep_is_the_same_serial_over_two_workers_and_on_a_local_dask_cluster(tmp_path):
    serial = _sweep_rows(tmp_path / "serial", None)
    assert len(serial) == 4 and all(math.isfinite(r["val_perplexity"]) for r in serial)
    assert _sweep_rows(tmp_path / "workers", Jobs(workers=2)) == serial
    distributed = pytest.importorskip("dask.distributed", reason="the cluster extra (dask[distributed]) is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert _sweep_rows(tmp_path / "dask", Jobs(scheduler=cluster.scheduler_address)) == serial
