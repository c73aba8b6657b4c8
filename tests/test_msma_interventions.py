"""MSA interventions (A8), generation with common random numbers (A9), text metrics (§5.8) and statistics (§5.7)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.config import ConfigError, ModelConfig
from reference.data.toyworld import ToyWorld, preset_config
from reference.mechanisms.msma.intervene import neutral_bit_identical, pc1_direction
from reference.mechanisms.msma.interventions import (
    NEUTRAL,
    Intervention,
    check_intervention,
    draw_noise,
    forward_kwargs,
    generate_batch,
    logit_kl,
    top_p_pick,
)
from reference.mechanisms.msma.stats import effect_sizes, holm, paired_t, wilcoxon
from reference.mechanisms.msma.text import corpus_distinct, idf_table, mattr, text_metrics, ttr
from reference.model import forward, init_params

CONFIG = ModelConfig(vocab_size=13, context=12, d_model=8, n_layers=3, n_heads=2, norm="pre", dtype="float64")
PARTS = ((1,), (2,), (3,))


@pytest.fixture(scope="module")
def model():
    return init_params(CONFIG, seed=3), np.random.default_rng(0).integers(0, 13, (4, 10))


def test_msma_neutral_strengths_are_bit_identical(model):
    params, tokens = model
    assert neutral_bit_identical(params, CONFIG, tokens, PARTS, CONFIG.d_model)
    for kind, value in NEUTRAL.items():
        assert forward_kwargs(Intervention((1,), kind, value), CONFIG.n_layers) == {}


@pytest.mark.parametrize("kind, strength", [("scale", 1.5), ("noise", 1.0), ("translate", 0.5), ("attn", 2.0)])
@pytest.mark.parametrize("scale", [0, 1, 2])
def test_msma_non_neutral_interventions_change_logits(model, kind, strength, scale):
    params, tokens = model
    idx = PARTS[scale]
    noise = draw_noise([[0, 200, 0, b, 0] for b in range(tokens.shape[0])], len(idx), tokens.shape[1], 8)
    # not the all-ones direction: a pre-LN model's LayerNorms subtract the mean, so that translation is invisible
    direction = np.random.default_rng(5).standard_normal(8)
    iv = Intervention(idx, kind, strength, noise=noise, direction=direction / np.linalg.norm(direction))
    plain, _ = forward(params, CONFIG, tokens)
    changed, _ = forward(params, CONFIG, tokens, **forward_kwargs(iv, CONFIG.n_layers))
    assert not np.array_equal(plain, changed) and logit_kl(plain, changed) > 0


def test_msma_attn_on_the_embedding_alone_is_refused():
    with pytest.raises(ConfigError, match="attn"):
        check_intervention("attn", (0,))
    check_intervention("attn", (0, 1))


def test_msma_noise_is_fixed_per_position_across_generation_steps(model):
    """The core recomputes the window each step (no KV cache): the noise at a position must not change between steps."""
    params, tokens = model
    noise = draw_noise([[0, 200, 1, b, 0] for b in range(2)], 1, 12, 8)
    iv = Intervention((2,), "noise", 1.0, noise=noise)
    short, _ = forward(params, CONFIG, tokens[:2, :6], **forward_kwargs(iv, CONFIG.n_layers))
    full, _ = forward(params, CONFIG, tokens[:2, :10], **forward_kwargs(iv, CONFIG.n_layers))
    assert np.allclose(short, full[:, :6], atol=1e-12)  # causal: the prefix sees the same noise


def test_msma_generation_is_reproducible_with_common_random_numbers(model):
    params, tokens = model
    u = np.random.default_rng([0, 100]).random((4, 5))
    a = generate_batch(params, CONFIG, tokens[:, :4], u, new_tokens=5, temperature=1.0, top_p=0.9)
    b = generate_batch(params, CONFIG, tokens[:, :4], u, new_tokens=5, temperature=1.0, top_p=0.9)
    assert np.array_equal(a, b) and a.shape == (4, 5)


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=12), st.floats(0.0, 1.0, exclude_max=True), st.floats(0.05, 1.0))
def test_msma_top_p_keeps_the_shortest_prefix(logits, u, top_p):
    z = np.array(logits)
    pick = top_p_pick(z, u, 1.0, top_p)
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    keep = int(np.searchsorted(np.cumsum(p[order]), top_p - 1e-12) + 1)
    assert pick in order[:keep].tolist()


def test_msma_text_metrics_on_hand_written_texts():
    world = ToyWorld(preset_config("msma_tiny"))
    docs = world.documents(6, data_seed=2)
    idf = idf_table(docs.tokens, world)
    m = text_metrics(docs.tokens[0, :8], docs.tokens[0, 8:], int(docs.doc_topic[0]), world, idf)
    assert m["grammatical_rate"] == 1.0 and m["topic_coherence"] >= 0.5 and m["sentence_count"] >= 1
    eos = np.full(10, world.eos_id)
    empty = text_metrics(docs.tokens[0, :8], eos, 0, world, idf)
    assert empty["ttr"] is None and empty["grammatical_rate"] is None and empty["topic_coherence"] is None
    tid = world.token_id
    sentence = ["the", world.vocab[docs.tokens[0, 2]]]
    assert all(w in tid for w in sentence)
    assert ttr([1, 2, 3, 4]) is None and ttr([1, 1, 2, 2, 3]) == pytest.approx(0.6)
    assert mattr(list(range(30)), window=25) == 1.0
    assert corpus_distinct([[1, 2, 1], [2, 3]]) == {"distinct_1": 0.6, "distinct_2": 1.0}


def test_msma_pc1_direction_sign():
    gen = np.random.default_rng(0)
    x = gen.standard_normal((200, 3)) * np.array([5.0, 1.0, 0.5]) + np.array([2.0, 0.0, 0.0])
    u = pc1_direction(x)
    assert abs(abs(u[0]) - 1) < 0.01 and x.mean(0) @ u >= 0


def test_msma_statistics_against_scipy_and_tables():
    scipy_stats = pytest.importorskip("scipy.stats")
    gen = np.random.default_rng(1)
    for n in (3, 5, 9):
        a, b = gen.standard_normal(n), gen.standard_normal(n)
        assert abs(paired_t(a, b)["p_t"] - scipy_stats.ttest_rel(a, b).pvalue) <= 1e-10
        assert wilcoxon(a - b) == pytest.approx(scipy_stats.wilcoxon(a - b).pvalue, abs=1e-12)
    assert wilcoxon([1, 2, 3, 4, 5]) == pytest.approx(0.0625)  # n = 5: the smallest two-sided p
    assert paired_t([1, 2], [1, 2])["p_t"] == 1.0 and paired_t([2, 3], [1, 2])["p_t"] == 0.0
    assert holm([0.01, 0.04, 0.03, None]) == [0.03, 0.06, 0.06, None]
    e = effect_sizes([2.0, 3.0, 4.0], [1.0, 1.0, 2.0])
    assert e["cliff_delta"] == pytest.approx(8 / 9) and e["d_z"] == pytest.approx(5 / 3 / np.std([1, 2, 2], ddof=1))


def test_msma_bootstrap_is_reproducible_by_seed():
    from reference.mechanisms.msma.stats import bootstrap_mean_ci

    values = [0.1, 0.5, 0.2, 0.9, 0.4]
    assert bootstrap_mean_ci(values, 500, [0, 5, 1]) == bootstrap_mean_ci(values, 500, [0, 5, 1])
    lo, hi = bootstrap_mean_ci(values, 500, [0, 5, 1])
    assert min(values) <= lo <= np.mean(values) <= hi <= max(values)
    assert bootstrap_mean_ci(values, 0, 0) is None
