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


@pytest.mark.skipif(not HAS_GPU, reason=WHY)
@pytest.mark.parametrize("beta", [2.5, float("inf")])
def test_locality_dial_a2_to_a5_on_the_gpu_match_numpy(beta):
    """The dial's bias (A2), attention under it (A3), group penalty (A4) and pointer loss (A5) on CuPy arrays."""
    import cupy

    from reference.data.toyworld import world_from_preset
    from reference.mechanisms.locality import (
        LocalityConfig,
        dial_kwargs,
        group_penalty,
        group_penalty_backward,
        locality_bias,
        pointer_loss,
        pointer_loss_backward,
        toy_layout,
    )

    world = world_from_preset("locality_tiny")
    docs = world.documents(3, 0, split="heldout")
    tokens = docs.tokens[:, :-1]
    layout = toy_layout(docs, LocalityConfig(), length=tokens.shape[1])
    on_gpu = cupy.asarray(tokens)
    bias_cpu, bias_gpu = locality_bias(layout, 0.7, beta), locality_bias(layout, 0.7, beta, like=on_gpu)
    assert isinstance(bias_gpu, cupy.ndarray) and np.array_equal(cupy.asnumpy(bias_gpu), bias_cpu)

    config = ModelConfig(vocab_size=len(world.vocab), context=tokens.shape[1], d_model=16, n_heads=2, n_layers=2, dtype="float64")
    params = init_params(config, seed=1)
    cfg = LocalityConfig(inference_bias_max=beta)
    names = [f"blocks.{i}.attn.pattern" for i in range(2)]
    _, cpu = run_with_cache(params, config, tokens, names=names, **dial_kwargs(layout, 0.7, cfg, 2, tokens=tokens))
    _, gpu = run_with_cache(to_device(params), config, on_gpu, names=names, **dial_kwargs(layout, 0.7, cfg, 2, tokens=on_gpu))
    for name in names:
        assert isinstance(gpu[name], cupy.ndarray)
        assert np.allclose(cupy.asnumpy(gpu[name]), cpu[name], rtol=1e-10, atol=1e-13), name

    pattern_cpu, pattern_gpu = cpu[names[1]], gpu[names[1]]
    for kind in ("off_target", "block_mass_sqrt"):
        omega_cpu, cache_cpu = group_penalty(pattern_cpu, layout, 0.7, 2, kind=kind)
        omega_gpu, cache_gpu = group_penalty(pattern_gpu, layout, 0.7, 2, kind=kind)
        assert abs(float(omega_gpu) - float(omega_cpu)) <= 1e-12 * max(1.0, abs(float(omega_cpu)))
        d_gpu = group_penalty_backward(cache_gpu, 1.3)
        assert isinstance(d_gpu, cupy.ndarray)
        assert np.allclose(cupy.asnumpy(d_gpu), group_penalty_backward(cache_cpu, 1.3), rtol=1e-10, atol=1e-13), kind
    omega_cpu, cache_cpu = pointer_loss(pattern_cpu, layout, 2)
    omega_gpu, cache_gpu = pointer_loss(pattern_gpu, layout, 2)
    assert abs(float(omega_gpu) - float(omega_cpu)) <= 1e-12 * max(1.0, abs(float(omega_cpu)))
    assert np.allclose(cupy.asnumpy(pointer_loss_backward(cache_gpu, 0.5)), pointer_loss_backward(cache_cpu, 0.5),
                       rtol=1e-10, atol=1e-13)


@pytest.mark.skipif(not HAS_GPU, reason=WHY)
def test_locality_training_step_on_the_gpu_matches_numpy():
    """A7: one plug-in step (bias + penalty + pointer loss through the core backward) on CuPy equals NumPy's."""
    import cupy

    from reference.data.batch import Batch
    from reference.data.toyworld import world_from_preset
    from reference.mechanisms.locality import LocalityConfig, LocalityPlugin

    world = world_from_preset("locality_tiny")
    docs = world.documents(4, 0, split="train")
    config = ModelConfig(vocab_size=len(world.vocab), context=docs.tokens.shape[1], d_model=16, n_heads=2, n_layers=2,
                         dtype="float64")
    plugin = LocalityPlugin(LocalityConfig(train_dial="fixed", lam=0.8, pointer_weight=0.5), config)
    inputs, targets = docs.tokens[:, :-1], np.where(docs.valid[:, 1:], docs.tokens[:, 1:], -1)
    params = init_params(config, seed=2)
    results = []
    for device in (False, True):
        batch = Batch(cupy.asarray(inputs), cupy.asarray(targets), docs) if device else Batch(inputs, targets, docs)
        terms = plugin.step_terms(0, batch, np.random.default_rng(0))
        p = to_device(params) if device else params
        loss, grads, _ = loss_and_grads(p, config, batch.inputs, batch.targets, extra_loss=terms.extra_loss,
                                        **terms.forward_kwargs)
        results.append((loss, to_host(grads), dict(terms.record)))
    (loss_cpu, grads_cpu, rec_cpu), (loss_gpu, grads_gpu, rec_gpu) = results
    assert abs(loss_cpu - loss_gpu) <= 1e-12 * abs(loss_cpu)
    assert abs(rec_cpu["locality_penalty"] - rec_gpu["locality_penalty"]) <= 1e-12 * max(1.0, rec_cpu["locality_penalty"])
    for name, value in grads_gpu.items():
        assert np.allclose(value, grads_cpu[name], rtol=1e-9, atol=1e-12), name
