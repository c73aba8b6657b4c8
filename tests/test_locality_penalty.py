"""LOC gradients: the penalty (A4) and pointer loss (A5) backward, and a whole model trained with the dial.

Hand-written backward == autograd, float64, relative error ≤ 1e-8 with the measure of
tests/test_gradients.py (max |ours − oracle| / max(max |oracle|, 1e-6 · global scale)).
Layouts are drawn: block ids need not be contiguous, free rows come in both kinds,
attention is causal or bidirectional.
"""

from __future__ import annotations

import autograd
import numpy as np
from gradcheck import assert_grads_match  # noqa: E402  (tests/ is on sys.path)
from hypothesis import given
from hypothesis import strategies as st

from reference.config import ModelConfig
from reference.layers.loss import cross_entropy_forward
from reference.mechanisms.locality import (
    LocalityConfig,
    dial_kwargs,
    group_penalty,
    group_penalty_backward,
    layer_lambdas,
    locality_loss,
    make_layout,
    pointer_loss,
    pointer_loss_backward,
)
from reference.model import init_params, loss_and_grads, run_with_cache

seeds = st.integers(0, 2**32 - 1)



def random_layout(rs: np.random.Generator, b: int, t: int, causal: bool, free_rows: str, with_targets: bool = True):
    """A valid drawn layout: random (possibly non-contiguous) blocks, some rule rows with targets in G* ∩ vis."""
    n_blocks = int(rs.integers(1, t + 1))
    block_id = rs.integers(0, n_blocks, (b, t))
    target = np.full((b, t), -1)
    targets = np.zeros((b, t, t), bool)
    for s in range(b):
        for i in range(t):
            if rs.random() < 0.5:
                visible = np.arange(i + 1) if causal else np.arange(t)
                j = int(rs.choice(visible))
                target[s, i] = block_id[s, j]
                keys = visible[block_id[s, visible] == target[s, i]]
                chosen = keys[rs.random(len(keys)) < 0.5]
                targets[s, i, chosen if len(chosen) else keys[:1]] = True
    return make_layout(block_id, target, targets=targets if with_targets else None, causal=causal, free_rows=free_rows)


def random_pattern(rs: np.random.Generator, b: int, h: int, t: int, causal: bool) -> np.ndarray:
    """Softmax rows of random logits (every visible entry well above 1e-6), masked when causal."""
    logits = rs.standard_normal((b, h, t, t)) * 2.0
    if causal:
        logits = np.where(np.tril(np.ones((t, t), bool)), logits, -np.inf)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@given(
    seeds, st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.booleans(),
    st.sampled_from(["own_block", "none"]), st.sampled_from(["sqrt_size", "one"]),
    st.sampled_from(["off_target", "block_mass_sqrt"]), st.floats(0.05, 1.0), st.integers(1, 3),
)
def test_locality_penalty_backward_matches_autograd(seed, b, h, t, causal, free_rows, weight, kind, lam, n_layers):
    rs = np.random.default_rng(seed)
    layout = random_layout(rs, b, t, causal, free_rows)
    pattern = random_pattern(rs, b, h, t, causal)
    d_omega = float(rs.standard_normal())

    def value(a):
        return group_penalty(a, layout, lam, n_layers, group_weight=weight, kind=kind)[0] * d_omega

    oracle = autograd.grad(value)(pattern)
    _, cache = group_penalty(pattern, layout, lam, n_layers, group_weight=weight, kind=kind)
    assert_grads_match({"A": group_penalty_backward(cache, d_omega)}, {"A": oracle})


@given(seeds, st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.booleans(), st.integers(1, 3))
def test_locality_pointer_loss_backward_matches_autograd(seed, b, h, t, causal, n_layers):
    rs = np.random.default_rng(seed)
    layout = random_layout(rs, b, t, causal, "none")
    pattern = random_pattern(rs, b, h, t, causal)
    oracle = autograd.grad(lambda a: pointer_loss(a, layout, n_layers)[0])(pattern)
    _, cache = pointer_loss(pattern, layout, n_layers)
    assert_grads_match({"A": pointer_loss_backward(cache)}, {"A": oracle})


def test_locality_penalty_value_is_the_spec_formula():
    """Three blocks of two keys, row 5 (relevant block 0) of a bidirectional layout: ψ by hand."""
    block_id = np.array([[0, 0, 1, 1, 2, 2]])
    layout = make_layout(block_id, np.zeros((1, 6), int), causal=False, free_rows="none")
    a = np.array([0.1, 0.2, 0.3, 0.1, 0.25, 0.05])
    pattern = np.broadcast_to(a, (1, 1, 6, 6)).copy()
    psi = np.sqrt(2) * np.hypot(0.3, 0.1) + np.sqrt(2) * np.hypot(0.25, 0.05)  # blocks 1 and 2; G* = 0 is free
    omega, _ = group_penalty(pattern, layout, 0.5, 2)
    assert np.isclose(float(omega), 0.5 * psi / 2, rtol=1e-14)  # λ_ℓ · mean over L·H·|rows| = λ ψ / L


@st.composite
def dial_models(draw):
    heads = draw(st.integers(1, 3))
    return ModelConfig(
        vocab_size=draw(st.integers(2, 10)),
        context=draw(st.integers(2, 7)),
        # D ≥ 4: LayerNorm over D = 2 gives x̂ = ±1 whatever the input, so every gradient
        # upstream of it is rounding noise and a relative comparison means nothing
        d_model=heads * draw(st.integers(-(-4 // heads), 4)),
        n_layers=draw(st.integers(1, 2)),
        n_heads=heads,
        d_mlp=draw(st.integers(1, 8)),
        norm=draw(st.sampled_from(["pre", "post"])),
        causal=draw(st.booleans()),
        tied_head=draw(st.booleans()),
        init_std=0.5,
        dtype="float64",
    )


@given(
    dial_models(), seeds, st.integers(1, 3), st.floats(0.0, 1.0), st.floats(0.1, 20.0), st.floats(0.25, 4.0),
    st.sampled_from(["uniform", "progressive"]), st.sampled_from([0.0, 0.7]), st.sampled_from(["own_block", "none"]),
)
def test_locality_model_gradient_with_penalty_bias_and_pointer_loss(config, seed, batch, lam, beta, tau, schedule, mu,
                                                                    free_rows):
    """CE + κ Σ_ℓ ω_ℓ + μ Ω_ptr under the bias −λ_ℓβ·off and temperature τ: hand-written backward vs autograd."""
    rs = np.random.default_rng(seed)
    params = {k: v + 0.1 * rs.standard_normal(v.shape) for k, v in init_params(config, seed=seed % 1000).items()}
    t = int(rs.integers(2, config.context + 1))
    tokens = rs.integers(0, config.vocab_size, (batch, t))
    targets = rs.integers(-1, config.vocab_size, (batch, t))
    cfg = LocalityConfig(penalty_max=1.3, bias_max=beta, temperature=tau, pointer_weight=mu, layer_schedule=schedule,
                         schedule_power=3.0, free_rows=free_rows)
    layout = random_layout(rs, batch, t, config.causal, free_rows)
    lams = layer_lambdas(lam, config.n_layers, cfg)
    kwargs = dial_kwargs(layout, lam, cfg, config.n_layers, inference=False, lams=lams)
    assert (tau == 1.0) != ("temperature" in kwargs)  # τ reaches every layer's softmax

    loss, ours, _ = loss_and_grads(
        params, config, tokens, targets, extra_loss=locality_loss(layout, lams, cfg, config.n_layers), **kwargs
    )

    def total(p):
        logits, acts = run_with_cache(p, config, tokens, **kwargs)
        value = cross_entropy_forward(logits, targets)[0]
        for layer in range(config.n_layers):
            pattern = acts[f"blocks.{layer}.attn.pattern"]
            if lams[layer] > 0:
                value = value + cfg.penalty_max * group_penalty(pattern, layout, lams[layer], config.n_layers)[0]
            if mu > 0:
                value = value + mu * pointer_loss(pattern, layout, config.n_layers)[0]
        return value

    assert np.isclose(loss, float(total(params)), rtol=1e-12)
    assert_grads_match(ours, autograd.grad(total)(params))


def test_locality_extra_loss_records_the_penalty():
    rs = np.random.default_rng(0)
    layout = random_layout(rs, 2, 5, True, "own_block")
    record: dict = {}
    extra = locality_loss(layout, [0.5, 1.0], LocalityConfig(), 2, record)
    acts = {f"blocks.{i}.attn.pattern": random_pattern(rs, 2, 2, 5, True) for i in range(2)}
    value, grads = extra(acts)
    assert set(grads) == set(acts)
    assert record["locality_penalty"] == value > 0
