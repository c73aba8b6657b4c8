"""MSA config section, partitions, pooling and the CLI's bad input (specs/04-msma.md §2.1, §2.2, §2.6)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.config import ConfigError, InputError, ModelConfig, RunConfig
from reference.mechanisms.msma.config import MSMAConfig
from reference.mechanisms.msma.scales import hook_of, partition, pool_backward, pool_sequence, pool_tokens, scale_features
from reference.model import init_params, run_with_cache
from tests.cli_harness import run_cli


def test_msma_defaults_and_section_round_trip():
    cfg = MSMAConfig()
    assert cfg.mode == "paper" and cfg.map == "linear" and cfg.lambda_geo == 0.1 and cfg.seeds == (0, 1, 2, 3, 4)
    run = RunConfig().with_section("msma", cfg.replace(partition=((1,), (2, 3), (4,))))
    again = RunConfig.from_dict(run.to_dict())
    assert again.msma == run.msma and again.msma.partition == ((1,), (2, 3), (4,))


def test_msma_code_faithful_bundle_is_flag_by_flag():
    cf = MSMAConfig.code_faithful("gpt2")
    assert (cf.partition, cf.pad_in_pool, cf.standardize, cf.map, cf.geo, cf.info, cf.mine_marginals) == (
        "code", True, "none", "identity", "l2", "mine", "unshuffled")
    assert cf.finetune_backbone and not cf.critic_trainable and cf.curv == "param_norm" and cf.ft_lr == 1e-5
    assert MSMAConfig.code_faithful("bert").partition == "code_bert"
    assert cf.replace(info="infonce").info == "infonce"  # one corrected flag at a time


@pytest.mark.parametrize("field, value, match", [
    ("mode", "x", "msma.mode"), ("lambda_geo", -0.1, "msma.lambda_geo"), ("lambda_info", float("nan"), "msma.lambda_info"),
    ("hist_bins", 1, "msma.hist_bins"), ("ksg_k", 0, "msma.ksg_k"), ("est_dim", 0, "msma.est_dim"),
    ("gauss_dim", 0, "msma.gauss_dim"), ("kl_dim", 0, "msma.kl_dim"), ("nce_batch", 1, "msma.nce_batch"),
    ("top_p", 0.0, "msma.top_p"), ("top_p", 1.5, "msma.top_p"), ("temperature", 0.0, "msma.temperature"),
    ("seeds", (0,), "msma.seeds"), ("partition", "nope", "msma.partition"), ("partition", ((1,), (2,)), "msma.partition"),
    ("geo", "l1", "msma.geo"), ("map", "affine", "msma.map"),
])
def test_msma_config_errors_are_one_line(field, value, match):
    with pytest.raises(ConfigError, match=match) as info:
        MSMAConfig(**{field: value})
    assert "\n" not in str(info.value)


def test_msma_finetune_needs_identity_map_and_sequence_pool():
    with pytest.raises(ConfigError, match="finetune_backbone"):
        MSMAConfig(finetune_backbone=True, map="linear")
    with pytest.raises(ConfigError, match="finetune_backbone"):
        MSMAConfig(finetune_backbone=True, map="identity", pool="token")


def test_msma_partition_presets():
    assert partition("thirds", 6) == ((1, 2), (3, 4), (5, 6))
    assert partition("thirds", 4) == ((1,), (2, 3), (4,))
    assert partition("thirds", 12) == (tuple(range(1, 5)), tuple(range(5, 9)), tuple(range(9, 13)))
    assert partition("figure", 12) == partition("thirds", 12)
    assert partition("code", 12) == (tuple(range(0, 4)), tuple(range(4, 8)), tuple(range(8, 12)))
    assert partition("code_bert", 12) == (tuple(range(0, 4)), tuple(range(4, 8)), tuple(range(8, 11)))
    assert partition("readme_gpt2", 12) == (tuple(range(0, 3)), tuple(range(3, 9)), tuple(range(9, 13)))
    assert partition("readme_bert", 12) == (tuple(range(0, 5)), tuple(range(5, 9)), tuple(range(9, 13)))
    assert partition("readme_t5", 6) == ((0, 1, 2), (3, 4), (5, 6))


@given(st.integers(3, 12))
def test_msma_thirds_cover_every_block_in_order(n):
    parts = partition("thirds", n)
    flat = [k for p in parts for k in p]
    assert flat == list(range(1, n + 1)) and all(parts)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes[0] >= sizes[2]


@pytest.mark.parametrize("spec, n, match", [
    ("thirds", 2, "needs n_L >= 3"), ("figure", 6, "needs n_L = 12"), (((1,), (), (3,)), 4, "non-empty"),
    (((1, 2), (2,), (3,)), 4, "overlapping|ordered"), (((3,), (1,), (4,)), 4, "ordered"), (((1,), (2,), (9,)), 4, "outside"),
])
def test_msma_bad_partitions(spec, n, match):
    with pytest.raises(ConfigError, match=match) as info:
        partition(spec, n)
    assert str(info.value).startswith("msma.partition") and "\n" not in str(info.value)


def test_msma_pooling_matches_a_loop_and_its_adjoint():
    gen = np.random.default_rng(0)
    hidden = [gen.standard_normal((3, 5, 4)) for _ in range(2)]
    valid = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)
    pooled = pool_sequence(hidden, valid)
    for b in range(3):
        rows = np.concatenate([h[b][valid[b]] for h in hidden])
        assert np.allclose(pooled[b], rows.mean(0))
    padded = pool_sequence(hidden, np.ones_like(valid))
    assert np.allclose(padded[0], np.mean([h[0].mean(0) for h in hidden], 0))
    # adjoint: <pool(H), g> = Σ_layers <H, pool_backward(g)>
    g = gen.standard_normal(pooled.shape)
    lhs = np.sum(pooled * g)
    rhs = sum(np.sum(h * pool_backward(g, valid, 2)) for h in hidden)
    assert lhs == pytest.approx(rhs, rel=1e-12)
    assert pool_tokens(hidden, valid).shape == (valid.sum(), 4)
    with pytest.raises(InputError, match="no valid token"):
        pool_sequence(hidden, np.zeros_like(valid))


def test_msma_hook_table_and_features():
    config = ModelConfig(vocab_size=9, context=6, d_model=8, n_layers=3, n_heads=2, dtype="float64")
    assert hook_of(0, 3) == "blocks.0.resid_pre" and hook_of(2, 3) == "blocks.1.resid_post"
    assert hook_of(3, 3, "final_norm") == "final_norm" and hook_of(3, 3) == "blocks.2.resid_post"
    params = init_params(config, seed=1)
    tokens = np.random.default_rng(0).integers(0, 9, (5, 6))
    valid = np.ones((5, 6), bool)
    feats = scale_features(params, config, tokens, valid, ((0,), (1, 2), (3,)), batch=2)
    _, cache = run_with_cache(params, config, tokens)
    want = (cache["blocks.0.resid_post"].mean(1) + cache["blocks.1.resid_post"].mean(1)) / 2
    assert np.allclose(feats["intermediate"], want) and np.allclose(feats["local"], cache["blocks.0.resid_pre"].mean(1))


@pytest.mark.parametrize("argv, match", [
    (["msma", "run", "--out", "{tmp}/a", "--seeds", "0"], "msma.seeds"),
    (["msma", "run", "--out", "{tmp}/a", "--seeds", "0,x"], "--seeds"),
    (["msma", "run", "--out", "{tmp}/a", "--partition", "9,9/1/2"], "msma.partition"),
    (["msma", "run", "--out", "{tmp}/a", "--lm-steps", "0"], "lm_steps"),
    (["msma", "run", "--out", "{tmp}/a", "--arms", "msma"], "'none' is needed"),
    (["msma", "partition", "--layers", "4", "--partition", "figure"], "needs n_L = 12"),
])
def test_msma_cli_bad_input_is_one_line_exit_2(tmp_path, argv, match):
    code, out, err, _ = run_cli([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2 and "Traceback" not in err and match in err and len(err.strip().splitlines()) == 1, err


def test_msma_cli_partition_prints_the_presets():
    code, out, err, _ = run_cli(["msma", "partition", "--layers", "12"])
    assert code == 0 and "thirds" in out and "global [9, 10, 11, 12]" in out and "readme_t5" in out


def test_msma_pooled_gradients_injected_at_hooks_match_autograd():
    """Code mode's gradient path (§2.5): pooled gradients through the pooling adjoint into model.backward's ``extra``."""
    from autograd import grad

    from reference.model import backward, forward
    from tests.gradcheck import assert_grads_match

    config = ModelConfig(vocab_size=9, context=5, d_model=8, n_layers=3, n_heads=2, dtype="float64")
    params = init_params(config, seed=2)
    gen = np.random.default_rng(1)
    tokens = gen.integers(0, 9, (3, 5))
    valid = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    parts = ((0,), (1, 2), (3,))
    target = gen.standard_normal((3, 8))
    names = [[hook_of(k, 3) for k in p] for p in parts]

    def loss(p):
        _, cache = run_with_cache(p, config, tokens)
        pooled = [sum((cache[h] * valid[:, :, None]).sum(1) / valid.sum(1)[:, None] for h in hs) / len(hs) for hs in names]
        return ((pooled[2] - pooled[1]) ** 2).sum() + (pooled[0] * target).sum()

    _, fcache = forward(params, config, tokens)
    _, acts = run_with_cache(params, config, tokens)
    pooled = [pool_sequence([acts[h] for h in hs], valid) for hs in names]
    d_pooled = [target, -2 * (pooled[2] - pooled[1]), 2 * (pooled[2] - pooled[1])]
    extra: dict = {}
    for hs, dp in zip(names, d_pooled):
        for h in hs:
            extra[h] = extra.get(h, 0) + pool_backward(dp, valid, len(hs))
    ours = backward(config, fcache, np.zeros((3, 5, 9)), extra)
    assert_grads_match(ours, grad(loss)(params))
