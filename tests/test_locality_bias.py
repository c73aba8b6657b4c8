"""LOC dial: the bias at λ = 0 and β = ∞, parameters untouched, dial dropout, schedules, theory mode, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.backend import rng
from reference.cli import main
from reference.config import ConfigError, InputError, ModelConfig, RunConfig
from reference.data.toyworld import PRESETS
from reference.layers.attention import softmax
from reference.mechanisms.locality import (
    LocalityConfig,
    LocalityPlugin,
    SolverError,
    check_layout_matches,
    dial_kwargs,
    layer_lambdas,
    layer_temperatures,
    make_layout,
    variational_attention,
    variational_forward,
)
from reference.model import init_params, run_with_cache
from reference.train import Trainer

seeds = st.integers(0, 2**32 - 1)


def small_model(causal: bool = True, n_layers: int = 2, dtype: str = "float64") -> ModelConfig:
    return ModelConfig(vocab_size=11, context=9, d_model=8, n_layers=n_layers, n_heads=2, causal=causal, init_std=0.5, dtype=dtype)


def drawn_layout(rs: np.random.Generator, b: int, t: int, causal: bool, free_rows: str = "own_block"):
    block_id = np.sort(rs.integers(0, 4, (b, t)), axis=1)  # contiguous blocks
    target = np.where(rs.random((b, t)) < 0.4, block_id[:, :1], -1)  # rule-like rows point at block of position 0
    return make_layout(block_id, target, causal=causal, free_rows=free_rows)


def patterns(params, config, tokens, **kwargs) -> tuple[np.ndarray, list]:
    logits, acts = run_with_cache(params, config, tokens, **kwargs)
    return logits, [acts[f"blocks.{i}.attn.pattern"] for i in range(config.n_layers)]


@given(seeds, st.booleans(), st.sampled_from(["float32", "float64"]))
def test_locality_lambda_zero_is_the_foundation_bit_for_bit(seed, causal, dtype):
    """E6: λ = 0 adds nothing: logits and every pattern equal the plain forward's exactly."""
    rs = np.random.default_rng(seed)
    config = small_model(causal, dtype=dtype)
    params = init_params(config, seed % 100)
    tokens = rs.integers(0, 11, (2, 9))
    layout = drawn_layout(rs, 2, 9, causal)
    kwargs = dial_kwargs(layout, 0.0, LocalityConfig(), 2, dtype=np.dtype(dtype))
    assert kwargs["attn_bias"] == [None, None]
    plain_logits, plain = patterns(params, config, tokens)
    dialled_logits, dialled = patterns(params, config, tokens, **kwargs)
    assert np.array_equal(plain_logits, dialled_logits)
    assert all(np.array_equal(a, b) for a, b in zip(plain, dialled))


@given(seeds, st.booleans(), st.floats(0.05, 1.0))
def test_locality_infinite_bias_is_the_softmax_restricted_to_the_relevant_block(seed, causal, lam):
    rs = np.random.default_rng(seed)
    config = small_model(causal)
    params = init_params(config, seed % 100)
    tokens = rs.integers(0, 11, (2, 9))
    layout = drawn_layout(rs, 2, 9, causal)
    cfg = LocalityConfig(inference_bias_max=math.inf)
    _, acts = run_with_cache(params, config, tokens, **dial_kwargs(layout, lam, cfg, 2))
    for i in range(2):
        pattern, scores = acts[f"blocks.{i}.attn.pattern"], acts[f"blocks.{i}.attn.scores"]
        on = layout.on[:, None]  # (B, 1, T, T); every row is biased (own-block free rows)
        restricted = softmax(np.where(on, scores, -np.inf))
        assert np.all(pattern[np.broadcast_to(~on, pattern.shape)] == 0.0)
        assert np.allclose(pattern, restricted, rtol=0, atol=1e-12)


@given(seeds)
def test_locality_moving_the_dial_never_touches_the_parameters(seed):
    rs = np.random.default_rng(seed)
    config = small_model()
    params = init_params(config, 3)
    before = {k: v.copy() for k, v in params.items()}
    layout = drawn_layout(rs, 2, 9, True)
    tokens = rs.integers(0, 11, (2, 9))
    outputs = [patterns(params, config, tokens, **dial_kwargs(layout, lam, LocalityConfig(), 2))[0] for lam in (0.0, 0.5, 1.0)]
    assert all(np.array_equal(before[k], params[k]) for k in params)
    assert not np.array_equal(outputs[0], outputs[2])  # ... while the outputs do move


def test_locality_dial_dropout_draws_only_grid_values_reproducibly():
    config = small_model()
    plugin = LocalityPlugin(LocalityConfig(), config)
    first = [plugin.draw_lambda(rng([7, 1])) for _ in range(1)]
    g1, g2 = rng([7, 1]), rng([7, 1])
    a = [plugin.draw_lambda(g1) for _ in range(300)]
    b = [plugin.draw_lambda(g2) for _ in range(300)]
    assert a == b and a[0] == first[0]
    assert set(a) == set(LocalityConfig().dial_grid)
    fixed = LocalityPlugin(LocalityConfig(lam=0.4, train_dial="fixed"), config)
    assert {fixed.draw_lambda(g1) for _ in range(20)} == {0.4}


@pytest.mark.parametrize(
    ("n_layers", "schedule", "power", "expected"),
    [
        (1, "uniform", 1.0, [0.8]),
        (1, "progressive", 3.0, [0.8]),
        (2, "uniform", 1.0, [0.8, 0.8]),
        (2, "progressive", 5.0, [0.0, 0.8]),
        (4, "progressive", 1.0, [0.0, 0.8 / 3, 1.6 / 3, 0.8]),
        (4, "progressive", 3.0, [0.0, 0.8 / 27, 0.8 * 8 / 27, 0.8]),
        (4, "uniform", 1.0, [0.8] * 4),
    ],
)
def test_locality_layer_schedules(n_layers, schedule, power, expected):
    cfg = LocalityConfig(layer_schedule=schedule, schedule_power=power)
    assert np.allclose(layer_lambdas(0.8, n_layers, cfg), expected, rtol=1e-15, atol=0)


def test_locality_layers_option_and_dial_temperature():
    assert layer_lambdas(1.0, 3, LocalityConfig(layers=(1,))) == [0.0, 1.0, 0.0]
    temps = layer_temperatures([0.0, 0.5, 1.0], LocalityConfig(temperature=2.0, dial_temperature=0.5))
    assert np.allclose(temps, [2.0, 1.0, 0.5])
    with pytest.raises(ConfigError, match="locality.layers"):
        layer_lambdas(1.0, 2, LocalityConfig(layers=(2,)))


def tiny_loc_run(**train) -> RunConfig:
    preset = json.loads(json.dumps(PRESETS["locality_tiny"]))
    overrides = {
        "model": {**preset["model"], "d_model": 16, "n_heads": 2, "context": 48},
        "toyworld": preset["toyworld"],
        "train": {"steps": 6, "batch_size": 4, "warmup": 2, "eval_every": 3, "eval_batches": 1, "checkpoint_every": 3,
                  "log_every": 1, **train},
        "locality": {"pointer_weight": 0.5},
    }
    return RunConfig().overridden(overrides)


def test_locality_training_is_deterministic_resumable_and_carried_by_checkpoints(tmp_path):
    run = tiny_loc_run()
    plugin = LocalityPlugin(run.locality, run.model)
    straight = Trainer(run, tmp_path / "straight", progress=False, plugins=[plugin])
    straight.train()
    again = Trainer(run, tmp_path / "again", progress=False, plugins=[plugin])
    again.train()
    metrics = (tmp_path / "straight" / "metrics.jsonl").read_bytes()
    assert metrics == (tmp_path / "again" / "metrics.jsonl").read_bytes()
    records = [json.loads(line) for line in metrics.decode().splitlines()]
    lams = [r["lam"] for r in records if "lam" in r]
    assert len(lams) == 6 and set(lams) <= set(LocalityConfig().dial_grid)
    assert all(r["locality_penalty"] >= 0 for r in records if "locality_penalty" in r)
    first = Trainer(run, tmp_path / "resumed", progress=False, plugins=[plugin])
    first.train(until=3)
    resumed = Trainer.resume(tmp_path / "resumed", progress=False, plugins=[plugin])
    resumed.train()
    assert (tmp_path / "resumed" / "metrics.jsonl").read_bytes() == metrics
    saved = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert saved["run"]["locality"]["pointer_weight"] == 0.5  # the checkpoint carries the dial's config


def test_locality_default_section_leaves_runs_unchanged():
    assert RunConfig().locality == LocalityConfig()
    old = RunConfig().to_dict()
    del old["locality"]  # a config.json written before the section existed
    assert RunConfig.from_dict(old) == RunConfig()


# --------------------------------------------------------------------------- theory mode (A6)


@given(seeds, st.integers(2, 12), st.floats(0.3, 3.0))
def test_locality_variational_at_kappa_zero_is_softmax(seed, n, tau):
    z = np.random.default_rng(seed).standard_normal((3, n)) * 3
    result = variational_attention(z, np.arange(n) % 2, 0, tau, 0.0)
    assert np.allclose(result.a, softmax(z / tau), rtol=0, atol=1e-12)


def test_locality_variational_solver_raises_at_its_cap():
    z = np.array([[0.0, 3.0, -5.0, -5.0]])
    with pytest.raises(SolverError, match="did not converge"):
        variational_attention(z, np.array([0, 1, 1, 1]), 0, 0.3, 10.0, max_iter=5)


def test_locality_variational_spreading_example():
    """§2.3: τ = 1, target logit 0, one off block (3, −5, −5): κ = 0, 2, 4 give ε = 0.953, 0.391, 0.027."""
    z = np.array([0.0, 3.0, -5.0, -5.0])
    blocks = np.array([0, 1, 1, 1])
    expected_eps = [0.953, 0.391, 0.027]
    expected_top = [0.999, 0.980, 0.796]
    for kappa, eps_ref, top_ref in zip((0.0, 2.0, 4.0), expected_eps, expected_top):
        a = variational_attention(z, blocks, 0, 1.0, kappa).a
        eps = a[1:].sum()
        assert abs(eps - eps_ref) < 5e-4 and abs(a[1] / eps - top_ref) < 5e-4


def test_locality_variational_forward_matches_softmax_at_lambda_zero_and_refuses_training():
    config = small_model(n_layers=1)
    params = init_params(config, 1)
    tokens = np.arange(9)[None] % 11
    layout = make_layout(np.array([[0, 0, 0, 1, 1, 1, 2, 2, 2]]))
    cfg = LocalityConfig(operator="variational")
    logits, _ = variational_forward(params, config, tokens, layout, 0.0, cfg)
    plain, _ = run_with_cache(params, config, tokens)
    assert np.allclose(logits, plain, rtol=0, atol=1e-10)
    concentrated, acts = variational_forward(params, config, tokens, layout, 1.0, cfg.replace(penalty_max=5.0))
    off = layout.off[:, None]
    assert acts["blocks.0.attn.pattern"][np.broadcast_to(off, acts["blocks.0.attn.pattern"].shape)].sum() < \
        run_with_cache(params, config, tokens)[1]["blocks.0.attn.pattern"][np.broadcast_to(off, off.shape[:1] + (2, 9, 9))].sum()
    with pytest.raises(ConfigError, match="locality.operator"):
        LocalityPlugin(cfg, config)


# --------------------------------------------------------------------------- errors (§2.7)


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), float("inf"), True, "0.5"])
def test_locality_lambda_outside_the_unit_interval_is_a_config_error(bad):
    with pytest.raises(ConfigError, match=r"^locality\.lam: .* is not a number in \[0\.0, 1\.0\]$"):
        LocalityConfig(lam=bad)
    layout = make_layout(np.zeros((1, 3), int))
    with pytest.raises(ConfigError, match=r"^locality\.lam"):
        dial_kwargs(layout, bad, LocalityConfig(), 2)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"dial_hooks": ()}, "dial_hooks"),
        ({"dial_hooks": ("loss", "attention")}, "dial_hooks"),
        ({"bias_max": math.inf}, "bias_max"),
        ({"bias_max": 0.0}, "bias_max"),
        ({"penalty_max": -1.0}, "penalty_max"),
        ({"temperature": 0.0}, "temperature"),
        ({"dial_temperature": 2.0}, "dial_temperature"),
        ({"operator": "hard"}, "operator"),
        ({"penalty_kind": "l1"}, "penalty_kind"),
        ({"free_rows": "all"}, "free_rows"),
        ({"pointer_target": "key"}, "pointer_target"),
        ({"pointer_weight": -0.5}, "pointer_weight"),
        ({"train_dial": "random"}, "train_dial"),
        ({"dial_grid": ()}, "dial_grid"),
        ({"dial_grid": (0.0, 1.2)}, "dial_grid"),
        ({"layer_schedule": "cubic"}, "layer_schedule"),
        ({"schedule_power": 0.0}, "schedule_power"),
        ({"layers": (-1,)}, "layers"),
        ({"max_retries": 0}, "max_retries"),
    ],
)
def test_locality_config_errors_name_the_field(changes, field):
    with pytest.raises(ConfigError) as error:
        LocalityConfig(**changes)
    message = str(error.value)
    assert message.startswith(f"locality.{field}:") and "\n" not in message


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: make_layout(np.array([[0, 0, -1, 1]])), r"^block_id: position 2 of sequence 0 has block -1"),
        (lambda: make_layout(np.zeros((2, 3, 1), int)), r"^block_id: expected a \(batch, T\) integer array"),
        (lambda: make_layout(np.array([[0, 0, 1, 1]]), np.array([[-1, -1, 5, -1]])),
         r"^target_block: row 2 .* names block 5, absent"),
        (lambda: make_layout(np.array([[0, 1, 1, 2]]), np.array([[-1, 2, -1, -1]])),
         r"^target_block: block 2 has no key visible to row 1"),
        (lambda: make_layout(np.array([[0, 0, 1, 1]]), np.array([[-1, -1, -1, 0]]), targets=np.array([[-1, -1, -1, 4]])),
         r"^targets: position 4 is outside the sequence \[0, 4\)"),
        (lambda: make_layout(np.array([[0, 0, 1, 1]]), np.array([[-1, 0, -1, -1]]), targets=np.array([[-1, 3, -1, -1]])),
         r"^targets: row 1 of sequence 0 points at position 3, after itself"),
        (lambda: make_layout(np.array([[0, 0, 1, 1]]), np.array([[-1, -1, -1, 0]]), targets=np.array([[-1, -1, -1, 2]])),
         r"^targets: row 3 of sequence 0 points at position 2, outside its relevant block 0"),
    ],
)
def test_locality_layout_errors_are_one_line(build, match):
    with pytest.raises(InputError, match=match) as error:
        build()
    assert "\n" not in str(error.value)


def test_locality_layout_must_match_the_sequence():
    layout = make_layout(np.zeros((2, 5), int))
    with pytest.raises(InputError, match=r"^block_id: layout shape \(2, 5\) does not match the sequence's shape \(2, 4\)"):
        check_layout_matches(layout, np.zeros((2, 4), int))
    with pytest.raises(InputError, match=r"^block_id: layout shape"):
        dial_kwargs(layout, 0.5, LocalityConfig(), 2, tokens=np.zeros((1, 5), int))


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--lambdas", "0", "1.5"], "locality.lam: 1.5"),
        (["--lambdas", "nan"], "locality.lam: nan"),
        (["--text", "/no/such/file.txt"], "sweep.text"),
        (["--seeds", "-1"], "sweep.seeds"),
    ],
)
def test_locality_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, text):
    code = main(["locality", "sweep", "--out", str(tmp_path / "out"), "--quiet", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert text in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
