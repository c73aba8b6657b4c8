"""NEU analysis on planted fixtures (spec §6.1, §6.4): H1 (P1), H2 (P2), H3 (P3 calibration), H4 (P4), H8, zones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from reference.mechanisms.neurons import NeuronsConfig, analyze_arrays, next_layer_arrays, verdict
from reference.mechanisms.neurons.layer import sentence, summarise
from reference.mechanisms.neurons.statistics import neuron_tests, permutations
from reference.mechanisms.neurons.zones import core_zones, rank_zones
from reference.metrics import agreement as ag

TOL = 1e-12


def _rows(res, zone):
    return [r for r in res["rows"] if r["zone"] == zone]


# --------------------------------------------------------------------------- P1 perfect (H1)


def test_neurons_planted_perfect_neuron_is_maximal():
    cats = np.repeat(np.arange(4), 25)
    abar = 10 - 2 * cats - 0.001 * np.tile(np.arange(25), 4)
    res = analyze_arrays(abar[:, None], cats, cfg=NeuronsConfig(core_size=100, core_fraction=1.0, permutations=999))
    b = 999
    assert len(res["rows"]) == 4 and not res["skipped"]
    for r in res["rows"]:
        for key in ("association", "homog_cat", "purity", "cramers_v", "nmi", "ari"):
            assert abs(r[key] - 1) <= TOL, (r["zone"], key, r[key])
        assert r["p_value"] <= 2 / (b + 1)
        assert r["majority_category"] == r["zone"]
    n = res["neurons"][0]
    for key in ("cramers_v", "nmi", "ari", "hom", "com"):
        assert abs(n[key] - 1) <= TOL, key


# --------------------------------------------------------------------------- P2 top only (H2)


def _p2(noise_base: int = 2):
    cats = np.repeat(np.arange(6), 100)
    mu = np.array([3.0, 2, 2, 0, 0, 0])
    cols = [mu[cats] + np.random.default_rng([s, noise_base]).normal(0, 0.6, cats.size) for s in range(20)]
    return np.stack(cols, 1), cats


def test_neurons_planted_top_only_pattern_holds():
    abar, cats = _p2()
    res = analyze_arrays(abar, cats, cfg=NeuronsConfig(core_size=100, permutations=999))
    top = sum(r["p_value"] <= 0.05 for r in _rows(res, 0))
    bottom = sum(r["p_value"] <= 0.05 for r in _rows(res, 3))
    delta = np.mean([a["association"] - b["association"] for a, b in zip(_rows(res, 0), _rows(res, 3))])
    assert top >= 14 and bottom <= 2 and delta >= 0.5, (top, bottom, delta)
    summary = res["layers"][0]
    assert summary["top_vs_bottom"]["verdict"] == "holds"
    assert "→ the top-zone finding holds" in sentence(summary)


# --------------------------------------------------------------------------- P3 calibration (H3, NEU-T7)


def test_neurons_permutation_pvalues_are_calibrated_under_independence():
    r_neurons, b = 300, 199
    rs = np.random.default_rng(12345)
    cats = rs.integers(0, 6, 600)
    abar = rs.standard_normal((600, r_neurons))
    res = analyze_arrays(abar, cats, cfg=NeuronsConfig(core_size=100, permutations=b, bootstrap=100, sign_flips=99))
    assert len(res["neurons"]) == r_neurons
    keys_zone = ("p_value", "p_cramers_v", "p_nmi", "p_ari", "p_cos")
    for alpha in (0.01, 0.05, 0.1, 0.25, 0.5):
        bound = 3 * np.sqrt(alpha * (1 - alpha) / r_neurons)
        for key in ("p_value", "p_cramers_v", "p_delta_top_bottom", "p_ari", "p_eta2", "p_delta_top_rest"):
            p = np.array([n[key] for n in res["neurons"]])
            share = float((p <= alpha).mean())
            assert share <= alpha + bound, (key, alpha, share)
            if key in ("p_value", "p_cramers_v", "p_delta_top_bottom"):
                assert share >= alpha - bound, (key, alpha, share)
        for z in range(4):
            for key in keys_zone[:4]:
                p = np.array([r[key] for r in _rows(res, z)])
                assert float((p <= alpha).mean()) <= alpha + bound, (z, key, alpha)
    for key in ("p_value", "p_cramers_v", "p_delta_top_bottom"):
        p = np.array([n[key] for n in res["neurons"]])
        assert stats.kstest(p, "uniform").pvalue > 0.001, key
        assert p.min() >= 1 / (b + 1) and p.max() <= 1


# --------------------------------------------------------------------------- P4 restructuring (H4)


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def test_neurons_next_layer_finds_the_planted_precursors():
    n = 600
    cats = np.repeat(np.arange(6), 100)
    rs = np.random.default_rng([0, 4])
    mu = np.zeros((n, 40))
    for j in range(6):
        mu[cats == j, j] = 2.0
    a = _gelu(mu + rs.normal(0, 0.5, (n, 40)))
    target = _gelu(a[:, 0] + a[:, 1] + rs.normal(0, 0.3, n))[:, None]
    w = np.abs(rs.normal(0, 0.1, (40, 1)))
    w[0, 0] = w[1, 0] = 1.0
    cfg = NeuronsConfig(core_size=100, permutations=19)
    r0, r1 = analyze_arrays(a, cats, cfg=cfg), analyze_arrays(target, cats, cfg=cfg, layer=1)
    nl = next_layer_arrays(w, r0["cores"], r1["cores"], cats, 4, layer_from=0)
    t = nl["targets"][0]
    assert t["precursors"][:2] == [0, 1]
    pairs = {(p["role"], p["neuron"]): p for p in nl["pairs"]}
    for j in (0, 1):
        assert pairs[("precursor", j)]["enrich_top"] >= 4 and pairs[("precursor", j)]["p_top"] <= 1e-10
    for j in (2, 3, 4, 5):
        if ("precursor", j) in pairs:
            assert pairs[("precursor", j)]["enrich_top"] <= 0.5
    assert all(p["enrich_top"] <= 3 for p in nl["pairs"] if p["role"] == "control")
    assert not set(t["controls"]) & set(t["precursors"])
    assert {0, 1} <= set(t["sources"]) and {0, 1} <= set(t["source_categories"])
    assert t["recombined_share"] >= 0.9 and t["recombines"] is True
    for p in nl["pairs"]:
        assert len(p["zone_counts"]) == 5 and sum(p["zone_counts"]) == 100


# --------------------------------------------------------------------------- zones, ties, permutations


def test_neurons_core_boundary_tie_resolves_by_id_and_rank_zone_sizes():
    abar = np.array([5.0, 4, 3, 3, 3, 1, 0.5, 0.2])
    cats = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    core = core_zones(abar, np.arange(8), cats, 4, 2)
    assert list(core.pos) == [0, 1, 2, 3]  # ids 2, 3, 4 tie at 3.0: the smaller ids enter
    assert list(rank_zones(10, 4)) == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    assert core_zones(-np.ones(8), np.arange(8), cats, 4, 2) == "dead"
    assert core_zones(np.ones(8), np.arange(8), cats, 4, 2) == "constant"
    assert core_zones(abar, np.arange(8), np.zeros(8, int), 4, 2) == "single_category"


def test_neurons_empty_value_zone_keeps_its_row_with_null_statistics():
    abar = np.array([10.0, 9.9, 9.8, 1.0, 0.9, 0.0, 0.1, 0.2])  # a gap: value zone 1 of 3 is empty
    cats = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    cfg = NeuronsConfig(core_size=8, core_fraction=1.0, zones=3, zone_mode="value", permutations=19)
    res = analyze_arrays(abar[:, None], cats, cfg=cfg)
    rows = res["rows"]
    assert [r["zone"] for r in rows] == [0, 1, 2] and sum(r["n_tokens"] for r in rows) == 8
    empty = rows[1]
    assert empty["n_tokens"] == 0 and np.isnan(empty["association"]) and np.isnan(empty["p_value"])
    assert empty["majority_category"] is None


def test_neurons_permutation_stream_is_the_stated_one():
    p = permutations(12, 5, 7, 1, 3)
    expected = np.random.default_rng([7, 0, 1, 3]).permuted(np.tile(np.arange(12), (5, 1)), axis=1)
    assert np.array_equal(p, expected)
    assert all(sorted(row) == list(range(12)) for row in p)


def test_neurons_observed_equal_to_permuted_counts_against_the_observation():
    # every zone of this core holds one token of each category, so every replicate ties the observation exactly
    cats = np.tile(np.arange(2), 4)
    abar = np.arange(8, 0, -1).astype(float)
    zone = np.repeat(np.arange(4), 2)
    res = neuron_tests(abar, cats, zone, 4, b=19, seed=0, layer=0, neuron=0)
    assert res["neuron"]["p_ari"] >= 1 / 20
    # H_cat is 0 in every zone of the observation; any replicate ≥ 0 counts: p = 1 when nothing can be smaller
    assert all(z["p_value"] == 1.0 for z in res["zones"])


def test_neurons_same_replicates_give_one_p_per_group():
    # NEU-T3(c): MI, NMI, hom, com share the neuron-level p-value
    rs = np.random.default_rng(3)
    cats = rs.integers(0, 4, 200)
    res = analyze_arrays(rs.standard_normal((200, 3)) + cats[:, None] * 0.3, cats,
                         cfg=NeuronsConfig(permutations=99))
    for n in res["neurons"]:
        assert n["p_value"] == n["p_nmi"]


# --------------------------------------------------------------------------- verdict rule (H8)


@pytest.mark.parametrize("deltas, expected", [
    ([0.5, 0.4, 0.6, 0.3], "undetermined"),  # n < 5
    ([-0.2, -0.1, -0.3, -0.2, -0.1, -0.2], "does not hold"),  # mean ≤ 0
    ([0.3, -0.29, 0.01, -0.02, 0.02, -0.01], "does not hold"),  # mean > 0, p > α
    ([0.2, 0.3, 0.25, 0.22, 0.28, 0.3, 0.27, 0.26], "holds"),
])
def test_neurons_verdict_follows_the_rule(deltas, expected):
    cfg = NeuronsConfig(sign_flips=999, bootstrap=200)
    neurons = [{"layer": 0, "neuron": i, "delta_top_bottom": d, "q_bh_delta": 0.5, "q_bh": 0.5, "cramers_v": 0.1,
                "nmi": 0.1, "ari": 0.0, "hom": 0.1, "eta2": 0.1, "interleave": 0.5, "spearman_freq": None,
                "sep_low": None, "sep_high": None} for i, d in enumerate(deltas)]
    s = summarise([], neurons, [], cfg, 0, 0)
    top = s["top_vs_bottom"]
    assert top["verdict"] == expected
    assert top["verdict"] == verdict(top["n"], top["mean_delta"], top["p_signflip"], cfg.alpha)
    rule = "undetermined" if top["n"] < 5 else (
        "holds" if top["mean_delta"] > 0 and top["p_signflip"] <= cfg.alpha else "does not hold")
    assert top["verdict"] == rule


def test_neurons_analyze_arrays_rejects_a_core_below_2z():
    from reference.config import ConfigError

    with pytest.raises(ConfigError, match="neurons.core_size"):
        analyze_arrays(np.ones((10, 1)), np.arange(10) % 2, cfg=NeuronsConfig(core_size=6, zones=4))


def test_neurons_zone_association_matches_its_definition():
    t = np.array([[3, 1, 0], [0, 2, 2]])
    hcat, a, pi2 = ag.zone_association(t)
    assert hcat[0] == (3 * 2) / (4 * 3) and pi2 == (3 * 2 + 3 * 2 + 2 * 1) / (8 * 7)
    assert abs(a[0] - (hcat[0] - pi2) / (1 - pi2)) <= TOL


def test_neurons_majority_category_ties_go_to_the_smaller_category_then_smaller_id():
    from reference.mechanisms.neurons.statistics import majority

    nb = np.array([[2, 2, 1], [0, 1, 1], [3, 0, 3]])
    kc = np.array([5, 3, 4])
    assert list(majority(nb, kc)) == [1, 1, 2]  # row 1: tie between 1 (K_c 3) and 2 (K_c 4); row 2: 2 (K_c 4) beats 0
    assert list(majority(nb, np.array([3, 3, 3]))) == [0, 1, 0]  # equal K_c: the smaller id
