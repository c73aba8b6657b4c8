"""The same core on the GPU: CuPy forward and backward equal NumPy's (float64).

Skipped, with the reason, where CuPy or a CUDA device is missing.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpu import available, to_device, to_host
from reference.config import ModelConfig
from reference.model import init_params, loss_and_grads, run_with_cache

pytestmark = pytest.mark.gpu
HAS_GPU, WHY = available()


@pytest.mark.skipif(not HAS_GPU, reason=WHY)
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_cupy_matches_numpy(norm):
    import cupy

    config = ModelConfig(vocab_size=50, context=16, d_model=32, n_heads=4, n_layers=2, norm=norm, dtype="float64")
    params = init_params(config, seed=0)
    rs = np.random.default_rng(0)
    tokens, targets = rs.integers(0, 50, (3, 16)), rs.integers(-1, 50, (3, 16))
    loss_cpu, grads_cpu, _ = loss_and_grads(params, config, tokens, targets)
    loss_gpu, grads_gpu, _ = loss_and_grads(to_device(params), config, cupy.asarray(tokens), cupy.asarray(targets))
    assert abs(loss_cpu - loss_gpu) <= 1e-12 * abs(loss_cpu)
    for name, value in to_host(grads_gpu).items():
        assert np.allclose(value, grads_cpu[name], rtol=1e-9, atol=1e-12), name
    logits, cache = run_with_cache(to_device(params), config, cupy.asarray(tokens), names=["blocks.1.attn.pattern"])
    assert isinstance(logits, cupy.ndarray) and isinstance(cache["blocks.1.attn.pattern"], cupy.ndarray)


def test_availability_reports_a_reason():
    ok, why = available()
    assert isinstance(ok, bool) and why
