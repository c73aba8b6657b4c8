"""gpu/smoke.py under pytest, and the GPU glue's own checks (issue 16): each needs CuPy and a CUDA device.

Skipped, with the reason, where either is missing. The smoke runs here in its quick form (a few
variants and presets); ``python -m gpu.smoke`` runs all of them and prints the table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gpu import available

pytestmark = pytest.mark.gpu
HAS_GPU, WHY = available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason=WHY)


def _run(sections: list[str]):
    from gpu.smoke import cupy_device, render, run_checks

    rows = run_checks(cupy_device(), sections, quick=True, progress=False)
    failed = [r for r in rows if r.status == "FAIL"]
    assert rows and not failed, "\n" + render(rows)
    return rows


@needs_gpu
def test_gpu_smoke_layers_models_and_ffn_kinds():
    """Every layer kind, whole models and each FFN kind: CuPy equals NumPy (float64 1e-10, float32 golden rule)."""
    rows = _run(["layers", "models", "ffn"])
    assert {r.dtype for r in rows if r.section == "layers"} == {"float64", "float32"}


@needs_gpu
def test_gpu_smoke_golden_core_tensors():
    """reference.golden.core_tensors with forward and backward on the GPU equals the CPU files' tensors."""
    _run(["golden"])


@needs_gpu
def test_gpu_smoke_mechanism_cases():
    """Each registered mechanism's golden cases with its functions on the GPU equal the CPU's (host-only ones listed)."""
    rows = _run(["mechanisms"])
    assert any(r.status == "ok" and "on the device: nothing" not in r.note for r in rows)


@needs_gpu
def test_gpu_smoke_training_runs():
    """DeviceTrainer (Trainer on CuPy arrays) follows the CPU Trainer's losses step by step."""
    _run(["train"])


@needs_gpu
def test_gpu_scatter_add_sums_repeats_without_deprecated_api():
    """backend.scatter_add on CuPy: repeated ids summed like NumPy's, and no deprecation warning (cupy.add.at)."""
    import cupy

    from reference.backend import scatter_add

    rs = np.random.default_rng(0)
    ids, values = rs.integers(0, 4, 50), rs.standard_normal((50, 3))
    host = np.zeros((7, 3))
    scatter_add(host, ids, values)
    device = cupy.zeros((7, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scatter_add(device, cupy.asarray(ids), cupy.asarray(values))
    assert np.allclose(cupy.asnumpy(device), host, rtol=1e-12, atol=1e-14)


@needs_gpu
def test_gpu_entr_matches_scipy():
    """backend.entr on CuPy (cupyx.scipy.special.entr) equals SciPy's on the host."""
    import cupy
    from scipy.special import entr as scipy_entr

    from reference.backend import entr

    x = np.array([0.0, 1e-300, 1e-8, 0.25, 1.0, 2.5, -0.1])
    got = entr(cupy.asarray(x))
    assert isinstance(got, cupy.ndarray)
    assert np.allclose(cupy.asnumpy(got), scipy_entr(x), rtol=1e-14, atol=0, equal_nan=True)


@needs_gpu
def test_gpu_checkpoint_resumes_on_the_cpu(tmp_path):
    """A DeviceTrainer checkpoint (written from host copies) resumes on the CPU where the GPU run goes on."""
    from gpu.trainer import DeviceTrainer
    from reference.config import RunConfig
    from reference.data.toyworld import PRESETS
    from reference.train import Trainer, prepare_run

    run = prepare_run(RunConfig().overridden(PRESETS["locality_tiny"]).overridden(
        {"train": {"steps": 4, "warmup": 1, "batch_size": 4, "eval_batches": 1, "eval_every": 0}, "model": {"dtype": "float64"}}))
    gpu_run = DeviceTrainer(run, tmp_path / "gpu", progress=False)
    with gpu_run.parallel():
        for _ in range(2):
            gpu_run.train_step()
    gpu_run.checkpoint()
    cpu_run = Trainer.resume(tmp_path / "gpu", progress=False, threads=1)
    with gpu_run.parallel():
        on_gpu = gpu_run.train_step()["loss"]
    with cpu_run.parallel():
        on_cpu = cpu_run.train_step()["loss"]
    assert cpu_run.step == gpu_run.step == 3
    assert abs(on_gpu - on_cpu) <= 1e-9 * abs(on_cpu)
