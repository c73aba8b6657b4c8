"""The GPU glue without a GPU (issue 16): what can be checked on a CPU, checked here in CI.

* ``gpu.smoke`` skips cleanly (exit 0, the reason printed) without a device, and its whole harness runs
  with a NumPy copy standing in for the device; its comparison fails a device that is off by more
  than the manifest's tolerance;
* :class:`gpu.trainer.DeviceTrainer` with a NumPy stand-in trains exactly like the Trainer, keeps its
  arrays "on the device", and writes checkpoints the CPU Trainer resumes;
* ``bench/gpu_throughput.py`` skips cleanly, and its PyTorch twin computes clearform's loss (CPU, float64);
* ``gpu/run_device_checks.sh`` runs end to end on a machine without a device and exits 0.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_smoke_skips_without_a_device(monkeypatch, capsys):
    import gpu
    from gpu import smoke

    monkeypatch.setattr(gpu, "available", lambda: (False, "no CUDA device (test)"))
    assert smoke.main([]) == 0
    assert "SKIPPED, no CUDA device (test)" in capsys.readouterr().out


# Functions of the mechanisms' golden cases that the stand-in device refuses (they run on the host in the smoke). A new
# one is a regression: device-path code that builds a host array among device arrays fails on CuPy.
KNOWN_HOST_FALLBACKS = {
    "NEU replicate_tables": "host by design (permutation statistics; neurons/statistics.py is HOST_ONLY in the guard)",
}


def test_gpu_smoke_harness_runs_every_section_on_a_standin(capsys):
    """The dry run (strict NumPy stand-in) passes every section; each really ran device code; no new host fallback."""
    from gpu import smoke

    rows = smoke.run_checks(smoke.numpy_standin(), list(smoke.SECTIONS), quick=False, progress=False)
    assert not [r for r in rows if r.status == "FAIL"], smoke.render(rows)
    assert {r.section for r in rows} == set(smoke.SECTIONS)
    loc = [r for r in rows if r.case == "LOC golden cases"]
    assert loc and all("group_penalty×2" in r.note and r.status == "ok" for r in loc)
    hosted = {r.case for r in rows if r.status == "host"}
    assert hosted <= set(KNOWN_HOST_FALLBACKS), smoke.render([r for r in rows if r.status == "host"])
    assert smoke.main(["--dry-run-numpy", "--quick", "--sections", "layers"]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_gpu_standin_refuses_what_cupy_refuses():
    """The stand-in's rules: host arrays among device operands fail; explicit copies and scalars pass; ufunc methods as CuPy."""
    from gpu import standin
    from reference import backend

    host, dev = np.ones(3), standin.put(np.ones(3))
    with standin.standin_backend():
        xp = backend.namespace(dev)
        assert standin.is_device(xp.exp(dev)) and standin.is_device(dev * 2.0 + np.float64(1.0))
        assert standin.is_device(xp.asarray(host) + dev) and standin.is_device(np.sum(dev))
        mixed = (lambda: dev + host, lambda: host * dev, lambda: xp.where(host > 0, dev, 0.0), lambda: xp.concatenate([dev, host]))
        for bad in mixed:
            with pytest.raises(TypeError, match="host array among device arrays"):
                bad()
        with pytest.raises(NotImplementedError):
            xp.maximum.reduceat(dev, [0])
        xp.add.at(dev, standin.put(np.array([0, 0])), 1.0)
        assert dev[0] == 3.0
    assert backend.namespace(dev) is np  # the backend is restored


def test_gpu_smoke_fails_a_device_off_by_more_than_the_tolerance():
    """A stand-in whose results come back 1e-9 off (relative): float64 checks fail (1e-10), float32 ones pass."""
    from gpu import smoke

    honest = smoke.numpy_standin()
    noisy = dataclasses.replace(honest, get=lambda x: np.array(x, copy=True).view(np.ndarray) * (1 + 1e-9))
    rows = smoke.run_checks(noisy, ["layers"], quick=True, progress=False)
    float_rows = [r for r in rows if r.case != "embedding+position (repeated ids)"]
    assert all(r.status == "FAIL" for r in float_rows if r.dtype == "float64"), smoke.render(rows)
    assert all(r.status == "ok" for r in rows if r.dtype == "float32"), smoke.render(rows)
    assert all(r.status == "ok" for r in smoke.run_checks(honest, ["layers"], quick=True, progress=False))


def test_gpu_smoke_tolerance_is_the_golden_manifests():
    """gpu.smoke.tolerance is reference.golden's rule, for both dtypes (one definition in spirit, checked here)."""
    from gpu import smoke
    from reference.golden import _tolerance

    rs = np.random.default_rng(0)
    for scale in (1e-3, 1.0, 250.0):
        x64 = rs.standard_normal((4, 5)) * scale
        x32 = (x64 * (1 + 1e-7 * rs.standard_normal((4, 5)))).astype(np.float32)
        rule = _tolerance(x64, x32)
        assert smoke.tolerance(x64, x32, "float64") == rule["float64"]
        assert smoke.tolerance(x64, x32, "float32") == rule["float32"]


def test_gpu_smoke_flags_a_function_that_refuses_device_arrays():
    """on_device: a function that fails on device arrays runs on the host and is named in the log."""
    import types

    from gpu import smoke

    device = smoke.numpy_standin()

    def picky(x):
        if device.is_device(x):
            raise TypeError("Implicit conversion to a NumPy array is not allowed")
        return x * 2

    def fine(x):
        return x + 1

    module = types.ModuleType("reference_fake_golden")
    module.picky, module.fine = picky, fine
    log = smoke.CallLog()
    with smoke.on_device(module, device, log, names=["picky", "fine"]):
        assert np.array_equal(module.picky(np.arange(3)), [0, 2, 4]) and np.array_equal(module.fine(np.arange(3)), [1, 2, 3])
        assert type(module.fine(np.arange(3))) is np.ndarray  # results come back to the host
    assert module.picky is picky and log.device == {"fine": 2} and "Implicit conversion" in log.host["picky"]


@pytest.fixture
def standin_backend():
    """reference.backend treating the stand-in's arrays as device arrays (gpu.standin), for one test."""
    from gpu import standin

    with standin.standin_backend():
        yield


def _standin_trainer():
    from gpu import smoke
    from gpu.trainer import DeviceTrainer

    device = smoke.numpy_standin()

    class StandInTrainer(DeviceTrainer):
        put = staticmethod(device.put)
        get = staticmethod(device.get)

    return StandInTrainer, device


def _run():
    from reference.config import RunConfig
    from reference.data.toyworld import PRESETS
    from reference.train import prepare_run

    return prepare_run(RunConfig().overridden(PRESETS["locality_tiny"]).overridden(
        {"train": {"steps": 4, "warmup": 1, "batch_size": 4, "eval_batches": 1, "eval_every": 0}, "model": {"dtype": "float64"}}))


def test_device_trainer_glue_trains_like_the_trainer_and_resumes_on_the_cpu(tmp_path, standin_backend):
    from reference.train import Trainer

    cls, device = _standin_trainer()
    plain = Trainer(_run(), tmp_path / "plain", progress=False, threads=1)
    glued = cls(_run(), tmp_path / "glued", progress=False)
    assert all(device.is_device(v) for v in glued.params.values())
    assert all(device.is_device(v) for v in glued.optimizer.m.values())
    assert all(device.is_device(b.inputs) and device.is_device(b.targets) for b in glued.val)
    losses = {}
    for name, trainer in (("plain", plain), ("glued", glued)):
        with trainer.parallel():
            losses[name] = [trainer.train_step()["loss"] for _ in range(2)]
        trainer.checkpoint()
    # the device's scatter-add (cupy.add.at) sums an embedding's repeated ids in another order than the host's
    # sorted segment sums: equal up to rounding, not bit for bit
    assert losses["plain"][0] == losses["glued"][0] and np.allclose(losses["plain"], losses["glued"], rtol=1e-13, atol=0)
    assert all(device.is_device(v) for v in glued.params.values())  # the checkpoint's host copies were not kept
    resumed = Trainer.resume(tmp_path / "glued", progress=False, threads=1)
    assert all(type(v) is np.ndarray for v in resumed.params.values())
    with glued.parallel():
        straight = glued.train_step()["loss"]
    with resumed.parallel():
        assert abs(resumed.train_step()["loss"] - straight) <= 1e-13 * straight
    again = cls.resume(tmp_path / "glued", progress=False)
    assert all(device.is_device(v) for v in again.params.values()) and again.step == 2


def test_gpu_throughput_skips_without_a_device(capsys):
    sys.path.insert(0, str(ROOT / "bench"))
    import gpu_throughput

    if gpu_throughput.why_not() is None:
        pytest.skip("a CUDA device is here: the benchmark would run")
    assert gpu_throughput.main([]) == 0
    assert "SKIPPED" in capsys.readouterr().out


def test_gpu_throughput_cpu_dry_run_prints_the_table(capsys):
    """The benchmark's whole path (peaks, both implementations, the table) on the CPU; the first losses agree."""
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "bench"))
    import gpu_throughput

    assert gpu_throughput.main(["--cpu-dry-run", "--steps", "1", "--warmup", "1"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("dry ")]
    assert len(row) == 1, row
    loss_torch, loss_ours = (float(v) for v in row[0].split()[-2:])
    assert abs(loss_torch - loss_ours) < 1e-4 and 3.0 < loss_ours < 5.0  # ln 64 = 4.16 at initialisation


def test_gpu_throughput_torch_twin_computes_clearforms_loss():
    """The benchmark's PyTorch decoder (run on the CPU in float64) gives clearform's loss and clearform's gradients."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    sys.path.insert(0, str(ROOT / "bench"))
    import gpu_throughput

    from reference.config import ModelConfig
    from reference.model import init_params, loss_and_grads

    config = ModelConfig(vocab_size=29, context=12, d_model=16, n_heads=4, n_layers=2, dtype="float64", gelu="tanh")
    params = init_params(config, seed=5)
    rs = np.random.default_rng(0)
    tokens, targets = rs.integers(0, 29, (3, 12)), rs.integers(0, 29, (3, 12))
    loss, grads, _ = loss_and_grads(params, config, tokens, targets)
    forward, weights, _ = gpu_throughput.torch_model(config, params, device="cpu")
    theirs = F.cross_entropy(forward(torch.from_numpy(tokens)).reshape(-1, 29), torch.from_numpy(targets).reshape(-1))
    theirs.backward()
    assert abs(float(theirs.detach()) - loss) <= 1e-12 * loss
    for name in ("blocks.1.attn.w_q", "blocks.0.mlp.w_in", "embed.tok", "ln_final.g"):
        assert np.allclose(weights[name].grad.numpy(), grads[name], rtol=1e-9, atol=1e-12), name


def test_gpu_throughput_activation_estimate_fits_gpt2_small_on_an_h200():
    sys.path.insert(0, str(ROOT / "bench"))
    import gpu_throughput

    from reference.config import ModelConfig

    config = ModelConfig(**gpu_throughput.SHAPES["small"]["model"], dtype="float32")
    small = gpu_throughput.activation_bytes(config, 8)
    assert 10 * 2**30 < small < 0.7 * 139 * 2**30  # the T × T patterns dominate; batch 8 fits a 139 GiB device
    assert gpu_throughput.activation_bytes(config, 16) > 1.9 * small


def test_run_device_checks_script_skips_cleanly_without_a_device(tmp_path):
    """The device script on a CPU machine: every step runs, skips for want of a device, and the script exits 0."""
    script = ROOT / "gpu" / "run_device_checks.sh"
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path),
           "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(script), str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    out = done.stdout
    for name in ("smoke", "pytest", "throughput"):
        assert f"== {name}: exit 0" in out, out[-3000:]
    assert "gpu.smoke: SKIPPED" in out and "gpu_throughput: SKIPPED" in out
    assert (tmp_path / "out" / "smoke.log").is_file()


class ThreadGroup:
    """An in-process all-reduce for the data-parallel tests: ranks are threads, sums are taken in rank order."""

    def __init__(self, world: int):
        import threading

        self.world, self.slots, self.barrier = world, [None] * world, threading.Barrier(world)

    def member(self, rank: int):
        group = self

        class Member:
            def __init__(self):
                self.rank, self.world = rank, group.world

            def all_reduce_sum(self, buffer):
                group.slots[rank] = buffer.copy()
                group.barrier.wait()
                total = group.slots[0].copy()
                for other in group.slots[1:]:
                    total += other
                group.barrier.wait()
                buffer[...] = total

        return Member()


def _on_ranks(world: int, fn):
    """fn(member) on ``world`` threads; results in rank order."""
    from concurrent.futures import ThreadPoolExecutor

    group = ThreadGroup(world)
    with ThreadPoolExecutor(world) as pool:
        return [f.result() for f in [pool.submit(fn, group.member(r)) for r in range(world)]]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_data_parallel_step_is_the_sharded_step_bit_for_bit(world):
    """World size W with rank-order sums == sharded_loss_and_grads over W shards (== the plain step at W = 1)."""
    from gpu.data_parallel import Alone, data_parallel_loss_and_grads
    from reference.config import ModelConfig
    from reference.model import init_params, loss_and_grads
    from reference.parallel import shard_rows, sharded_loss_and_grads

    config = ModelConfig(vocab_size=31, context=10, d_model=16, n_heads=2, n_layers=2, dtype="float32")
    params = init_params(config, seed=1)
    rs = np.random.default_rng(world)
    inputs, targets = rs.integers(0, 31, (7, 10)), rs.integers(-1, 31, (7, 10))
    if world == 1:
        loss, grads = data_parallel_loss_and_grads(params, config, inputs, targets, Alone())
        plain_loss, plain, _ = loss_and_grads(params, config, inputs, targets)
        assert loss == plain_loss and all(np.array_equal(grads[n], plain[n]) for n in plain)
        return
    results = _on_ranks(world, lambda member: data_parallel_loss_and_grads(params, config, inputs, targets, member))
    ref_loss, ref = sharded_loss_and_grads(params, config, inputs, targets, shard_rows(7, world))
    for loss, grads in results:
        assert loss == ref_loss and set(grads) == set(ref)
        assert all(np.array_equal(grads[n], ref[n]) for n in ref)


def test_data_parallel_training_equals_the_trainer_with_as_many_shards(tmp_path, standin_backend):
    """Two stand-in devices training with data_parallel.train_step follow one device with train.shards = 2 exactly."""
    from gpu.data_parallel import train_step

    cls, device = _standin_trainer()
    run = _run().overridden({"train": {"shards": 2}})
    plain = cls(run, tmp_path / "plain", progress=False, plugins=[])
    with plain.parallel():
        expected = [plain.train_step()["loss"] for _ in range(3)]

    def rank(member):
        trainer = cls(run, tmp_path / f"rank{member.rank}", progress=False, plugins=[])
        losses = [train_step(trainer, member)["loss"] for _ in range(3)]
        return losses, {k: device.get(v) for k, v in trainer.params.items()}

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # as the Trainer's sharded steps run: one BLAS thread (threaded GEMMs may round differently)
        (loss0, params0), (loss1, params1) = _on_ranks(2, rank)
    assert loss0 == loss1 == expected
    single = {k: device.get(v) for k, v in plain.params.items()}
    assert all(np.array_equal(params0[n], single[n]) and np.array_equal(params1[n], single[n]) for n in single)


def test_data_parallel_refuses_fewer_rows_than_devices():
    from gpu.data_parallel import data_parallel_loss_and_grads
    from reference.config import ConfigError, ModelConfig
    from reference.model import init_params

    config = ModelConfig(vocab_size=11, context=4, d_model=8, n_heads=2, n_layers=1, dtype="float64")
    member = ThreadGroup(3).member(0)
    with pytest.raises(ConfigError, match="cannot be split over 3 devices"):
        data_parallel_loss_and_grads(init_params(config), config, np.zeros((2, 4), int), np.zeros((2, 4), int), member)
