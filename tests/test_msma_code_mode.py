"""MSA code-faithful mode (specs/04-msma.md §2.5, A7): the step's terms by hand, gradients vs autograd, frozen critics."""

from __future__ import annotations

import numpy as np
import pytest

from reference.config import ModelConfig
from reference.mechanisms.msma.code_mode import code_loss, code_step, critic_backward, critic_forward, init_state
from reference.mechanisms.msma.config import MSMAConfig
from reference.mechanisms.msma.scales import SCALES, hook_of
from reference.model import init_params, run_with_cache
from tests.gradcheck import assert_grads_match

CONFIG = ModelConfig(vocab_size=11, context=6, d_model=8, n_layers=3, n_heads=2, dtype="float64")
PARTS = ((0,), (1,), (2, 3))  # the "code" preset of 3 blocks would be thirds of {0, 1, 2}; this covers index 3 too


@pytest.fixture
def setup():
    cfg = MSMAConfig.code_faithful("toy")
    gen = np.random.default_rng(0)
    state = init_state(init_params(CONFIG, seed=1), 8, (2, 2, 3), gen, cfg)
    tokens = gen.integers(0, 11, (5, 6))
    labels = {"global": gen.integers(0, 3, 5), "intermediate": gen.integers(0, 2, 5), "local": gen.integers(0, 2, 5)}
    return cfg, state, tokens, labels


def _autograd_loss(cfg, state, tokens, labels):
    import autograd.numpy as anp

    names = {s: [hook_of(k, 3) for k in ks] for s, ks in zip(SCALES, PARTS)}

    def pooled(params):
        _, acts = run_with_cache(params, CONFIG, tokens)
        return {s: sum(acts[h].mean(1) for h in hs) / len(hs) for s, hs in names.items()}

    def critic(pair, x, y):
        h = anp.concatenate([x, y], axis=1)
        for j in range(3):
            h = h @ state.critics[f"critic.{pair}.{j}.w"] + state.critics[f"critic.{pair}.{j}.b"]
            if j < 2:
                h = anp.maximum(h, 0.0)
        return h[:, 0]

    def loss(both):
        params, heads = both
        h = pooled(params)
        cls = 0.0
        for s in SCALES:
            z = h[s] @ heads[f"head.{s}.w"] + heads[f"head.{s}.b"]
            lse = anp.log(anp.sum(anp.exp(z - anp.max(z, 1, keepdims=True)), 1)) + anp.max(z, 1)
            cls = cls + anp.mean(lse - z[anp.arange(5), labels[s]]) / 3
        geo = anp.mean(anp.sqrt(anp.sum((h["global"] - h["intermediate"]) ** 2, 1)))
        geo = geo + anp.mean(anp.sqrt(anp.sum((h["intermediate"] - h["local"]) ** 2, 1)))
        info = 0.0
        for pair, a, b in (("GI", "global", "intermediate"), ("IL", "intermediate", "local")):
            t = critic(pair, h[a], h[b])
            t_sg = critic(pair, h[a], getattr(h[b], "_value", h[b]))  # stop-gradient on the target
            info = info - (anp.mean(t) - anp.log(anp.mean(anp.exp(t_sg))))
        flat = [v for v in list(params.values()) + list(heads.values())]
        norm2 = sum(anp.sum(v * v) for v in flat) + sum(float(np.sum(v * v)) for v in state.critics.values())
        return cfg.lambda_cls * cls + cfg.lambda_geo * geo + cfg.lambda_info * info + cfg.lambda_curv * anp.sqrt(norm2)

    return loss


def test_msma_code_loss_gradients_match_autograd(setup):
    from autograd import grad

    cfg, state, tokens, labels = setup
    value, grads, critic_grads, terms = code_loss(state, CONFIG, tokens, labels, PARTS, cfg)
    loss = _autograd_loss(cfg, state, tokens, labels)
    assert value == pytest.approx(float(loss((state.params, state.heads))), rel=1e-10)
    g_params, g_heads = grad(loss)((state.params, state.heads))
    assert_grads_match({k: grads[k] for k in g_params}, g_params)
    assert_grads_match({k: grads[k] for k in g_heads}, g_heads)
    assert terms["mine_gi"] <= 1e-12 and terms["mine_il"] <= 1e-12  # CF1 / MSA-6


def test_msma_critic_backward_matches_autograd():
    from autograd import grad

    gen = np.random.default_rng(2)
    layers = [(gen.standard_normal((6, 5)), gen.standard_normal(5)), (gen.standard_normal((5, 4)), gen.standard_normal(4)),
              (gen.standard_normal((4, 1)), gen.standard_normal(1))]
    x, y, dt = gen.standard_normal((7, 3)), gen.standard_normal((7, 3)), gen.standard_normal(7)
    _, cache = critic_forward(layers, x, y)
    dx, dy, grads = critic_backward(layers, cache, dt)

    def f(x_, y_, flat):
        import autograd.numpy as anp

        h = anp.concatenate([x_, y_], axis=1)
        for j in range(3):
            h = h @ flat[2 * j] + flat[2 * j + 1]
            if j < 2:
                h = anp.maximum(h, 0.0)
        return anp.sum(h[:, 0] * dt)

    flat = [a for pair in layers for a in pair]
    assert np.allclose(dx, grad(f, 0)(x, y, flat), atol=1e-12) and np.allclose(dy, grad(f, 1)(x, y, flat), atol=1e-12)
    oracle = grad(f, 2)(x, y, flat)
    for (gw, gb), ow, ob in zip(grads, oracle[::2], oracle[1::2]):
        assert np.allclose(gw, ow, atol=1e-12) and np.allclose(gb, ob, atol=1e-12)


def test_msma_code_steps_never_update_the_critics_but_clip_counts_them(setup):
    cfg, state, tokens, labels = setup
    before = {k: v.copy() for k, v in state.critics.items()}
    params0 = {k: v.copy() for k, v in state.params.items()}
    r1 = code_step(state, CONFIG, tokens, labels, PARTS, cfg, lr=1e-3)
    acc1 = {k: v.copy() for k, v in state.critic_grads.items()}
    r2 = code_step(state, CONFIG, tokens, labels, PARTS, cfg, lr=1e-3)
    assert all(np.array_equal(before[k], state.critics[k]) for k in before)  # CF2: bit-identical to init
    assert any(not np.array_equal(params0[k], state.params[k]) for k in params0)  # the LM moved
    assert any(np.any(v != 0) for v in acc1.values())  # gradients were computed and kept
    assert r1["grad_norm"] > 0 and r2["grad_norm"] > 0
    # the accumulated critic gradients enter the clip's norm: without accumulation the norm differs
    plain = cfg.replace(critic_grad_accumulates=False)
    fresh = init_state(init_params(CONFIG, seed=1), 8, (2, 2, 3), np.random.default_rng(0), plain)
    s1 = code_step(fresh, CONFIG, tokens, labels, PARTS, plain, lr=1e-3)
    assert s1["grad_norm"] < r1["grad_norm"]


def test_msma_replicate_config_bugs_flag_exists():
    assert MSMAConfig(replicate_config_bugs=True).replicate_config_bugs is True


def test_msma_code_state_owns_its_parameters(setup):
    cfg, _, tokens, labels = setup
    params = init_params(CONFIG, seed=1)
    keep = {k: v.copy() for k, v in params.items()}
    state = init_state(params, 8, (2, 2, 3), np.random.default_rng(0), cfg)
    code_step(state, CONFIG, tokens, labels, PARTS, cfg, lr=1e-2)
    assert all(np.array_equal(keep[k], params[k]) for k in keep)  # arms start from the same LM


@pytest.mark.slow(selected_only=True)
def test_msma_code_faithful_run_tiny(tmp_path):
    from reference.mechanisms.msma.experiment import RunSettings, run_code_faithful

    result = run_code_faithful(RunSettings(preset="tiny", seeds=(0, 1), lm_steps=100), tmp_path, docs=256, epochs=3, batch=32,
                               progress=False)
    checks = {c["id"]: c for c in result["checks"]}
    assert checks["CF1"]["pass"] and checks["CF2"]["pass"]
    assert {"KL_global-mid", "MI_mid-local", "cca_similarity_mid-local", "global_acc", "mine_gi", "critics_unchanged"} <= set(
        result["rows"][0])
