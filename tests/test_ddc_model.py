"""DDC: the FFN-slot switch (``model.ffn = "ddcl"``) — a full DDCL model's gradient vs autograd, hooks, sizes, CLI errors."""

from __future__ import annotations

import json

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.config import ConfigError, ModelConfig, RunConfig, parameter_count
from reference.layers.loss import cross_entropy_forward
from reference.mechanisms.ddc.grown import init_model, total_loss
from reference.mechanisms.ddc.grown import loss_and_grads as grown_grads
from reference.mechanisms.ddc.growth import head_prefix
from reference.mechanisms.ddc.heads import new_head
from reference.mechanisms.ddc.plugin import ddcl_extra_loss, plugin_for
from reference.model import hook_names, init_params, loss_and_grads, param_shapes, run_with_cache
from tests.cli_harness import run_cli
from tests.gradcheck import assert_grads_match


@st.composite
def ddcl_models(draw):
    heads = draw(st.integers(1, 2))
    return ModelConfig(
        vocab_size=draw(st.integers(2, 9)), context=draw(st.integers(1, 5)), d_model=heads * draw(st.integers(1, 3)) + heads,
        n_layers=draw(st.integers(1, 2)), n_heads=heads, norm=draw(st.sampled_from(["pre", "post"])),
        bias=draw(st.booleans()), tied_head=draw(st.booleans()), causal=draw(st.booleans()),
        final_norm=draw(st.booleans()), d_mlp=draw(st.integers(2, 5)), dtype="float64", ffn="ddcl",
    )


@given(ddcl_models(), st.integers(0, 2**31 - 1), st.floats(0, 3), st.sampled_from(["lq", "free_energy"]))
def test_ddc_full_model_gradient_matches_autograd(config, seed, beta, loss):
    """L = cross-entropy + β Σ_ℓ L̄_ℓ (L_q or F) through the plug-in's extra loss: hand backward == autograd (1e-8)."""
    rs = np.random.default_rng(seed)
    params = {k: v + 0.1 * rs.standard_normal(v.shape) for k, v in init_params(config, seed=seed % 1000).items()}
    t = int(rs.integers(1, config.context + 1))
    tokens, targets = rs.integers(0, config.vocab_size, (2, t)), rs.integers(0, config.vocab_size, (2, t))
    run = RunConfig().with_section("model", config)
    cfg = run.ddc.replace(ddcl_beta=beta, ddcl_loss=loss)
    names = [f"blocks.{i}.ddcl.{loss}" for i in range(config.n_layers)]

    def total(p):
        logits, acts = run_with_cache(p, config, tokens, names=names)
        return cross_entropy_forward(logits, targets)[0] + beta * anp.sum(anp.array([acts[n] for n in names]))

    oracle = autograd.grad(total)(params)
    record: dict = {}
    value, ours, _ = loss_and_grads(params, config, tokens, targets, extra_loss=ddcl_extra_loss(config, cfg, record))
    assert np.isclose(value, total(params), rtol=1e-12)
    assert set(record) == {f"ddcl_{loss}_{i}" for i in range(config.n_layers)}
    assert_grads_match(ours, oracle)


@given(ddcl_models())
def test_ddc_model_hooks_and_sizes(config):
    tokens = np.zeros((1, config.context), dtype=np.int64)
    _, cache = run_with_cache(init_params(config, seed=0), config, tokens)
    assert list(cache) == hook_names(config)
    shapes = param_shapes(config)
    assert parameter_count(config) == sum(int(np.prod(s)) for s in shapes.values())
    assert ("blocks.0.ln2.g" in shapes) == (config.norm == "post")
    assert shapes["blocks.0.ddcl.prototypes"] == (config.d_mlp, config.d_model)
    q = cache["blocks.0.ddcl.assign"]
    assert q.shape == (1, config.context, config.d_mlp) and np.allclose(q.sum(-1), 1, atol=1e-12)


def test_ddc_mlp_models_are_unchanged():
    """ffn = "mlp" (the default) builds the same parameters, names and numbers as before the switch existed."""
    config = ModelConfig(dtype="float64", n_layers=1, d_model=8, n_heads=2, vocab_size=11, context=6)
    assert config.ffn == "mlp"
    params = init_params(config, seed=3)
    assert "blocks.0.mlp.w_in" in params and not any("ddcl" in n for n in params)
    same = init_params(ModelConfig.from_dict({**config.to_dict()}), seed=3)
    assert all(np.array_equal(params[n], same[n]) for n in params)
    assert "blocks.0.mlp.pre" in hook_names(config)
    assert plugin_for(RunConfig()) is None


def test_ddc_ffn_validation():
    with pytest.raises(ConfigError, match="model.ffn: 'nope' is not one of"):
        ModelConfig(ffn="nope")
    with pytest.raises(ConfigError, match="model.d_mlp: 1 is not >= 2"):
        ModelConfig(ffn="ddcl", d_mlp=1)
    assert plugin_for(RunConfig().with_section("model", ModelConfig(ffn="ddcl"))) is not None


@pytest.mark.parametrize(("section", "message"), [
    ({"ddc": {"d_model": 30, "d_k": 8}}, "ddc.d_k: 8 does not divide d_model 30"),
    ({"ddc": {"n_prototypes": 1}}, "ddc.n_prototypes: 1 is not an int"),
    ({"ddc": {"ddcl_tau_init": -0.5}}, "ddc.ddcl_tau_init"),
    ({"ddc": {"theta_w_frac": 0.0}}, "ddc.theta_w_frac: 0.0 is not a number in (0.0, 1.0)"),
    ({"ddc": {"initial_heads": 9}}, "ddc.initial_heads: 9 is more than max_heads 4"),
    ({"model": {"ffn": "ddcl", "d_mlp": 1}}, "model.d_mlp: 1 is not >= 2"),
])
def test_ddc_bad_input_exits_2_with_one_line(tmp_path, section, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(section))
    status, _, err, _ = run_cli(["train", "--config", str(path), "--out", str(tmp_path / "run")])
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--experiments", "e1,e9"], ["--seeds", "1", "1"], ["--e3-draws", "0"]])
def test_ddc_eval_bad_arguments_exit_2(tmp_path, argv):
    status, _, err, _ = run_cli(["ddc", "eval", "--out", str(tmp_path / "o"), *argv])
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@given(st.integers(1, 2), st.integers(1, 3), st.integers(0, 2**31 - 1), st.floats(0, 3), st.sampled_from(["lq", "free_energy"]),
       st.booleans())
def test_ddc_growing_model_gradient_matches_autograd(n_layers, n_heads, seed, beta, loss, causal):
    """The growing model (named heads with τ_h + DDCL blocks): hand backward == autograd, float64, 1e-8."""
    rs = np.random.default_rng(seed)
    params = init_model(7, 5, 6, n_layers, 3, rs)
    for i in range(n_layers):
        for j in range(n_heads):
            for name, value in new_head(6, 2, 3, 5, rs, init="author").items():
                params[head_prefix(i, j * 2) + name] = value + 0.1 * rs.standard_normal(value.shape)
    params = {k: v + 0.05 * rs.standard_normal(v.shape) for k, v in params.items()}
    t = int(rs.integers(1, 6))
    tokens, targets = rs.integers(0, 7, (2, t)), rs.integers(-1, 7, (2, t))
    oracle = autograd.grad(lambda p: total_loss(p, tokens, targets, beta, loss, causal))(params)
    value, _, ours, _ = grown_grads(params, tokens, targets, beta, loss, causal)
    assert np.isclose(value, float(total_loss(params, tokens, targets, beta, loss, causal)), rtol=1e-12)
    assert_grads_match(ours, oracle)
