"""NEU statistics (reference/metrics/agreement.py) against SciPy / scikit-learn oracles (spec §5, §8).

Bounded statistics to 10⁻¹² absolute, unbounded (χ², MI) to 10⁻¹⁰ relative, V_bc against exact
Rationals; batched calls equal single-table calls. Degenerate tables (one block, all singletons,
empty rows/columns) are forced by the ``label_pairs`` strategy.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.stats.contingency import association

from proofs.neurons.strategies import label_pairs
from reference.metrics import agreement as ag

sk = pytest.importorskip("sklearn.metrics")


def _table(pair):
    return ag.contingency(pair.zones, pair.cats)


@given(label_pairs())
def test_neurons_metrics_match_sklearn_on_label_pairs(pair):
    z, c = pair.zones, pair.cats
    t = _table(pair)
    assert t.sum() == z.size
    assert abs(ag.mutual_info(t) - sk.mutual_info_score(c, z)) <= 1e-10 * max(1.0, sk.mutual_info_score(c, z))
    assert abs(ag.nmi(t) - sk.normalized_mutual_info_score(c, z)) <= 1e-12
    hom, com, v = ag.homogeneity_completeness(t)
    h2, c2, v2 = sk.homogeneity_completeness_v_measure(labels_true=c, labels_pred=z)
    assert abs(hom - h2) <= 1e-12 and abs(com - c2) <= 1e-12 and abs(v - v2) <= 1e-12
    assert abs(ag.ari(t) - sk.adjusted_rand_score(c, z)) <= 1e-12


@given(label_pairs())
def test_neurons_chi2_and_v_match_scipy(pair):
    t = _table(pair)
    r, k = ag.n_nonempty(t)
    if min(r, k) < 2:
        assert ag.cramers_v(t) == 0.0 and ag.cramers_v(t, bias_correction=True) == 0.0
        return
    kept = t[t.sum(1) > 0][:, t.sum(0) > 0]
    x2 = stats.chi2_contingency(kept, correction=False).statistic
    assert abs(ag.chi2(t) - x2) <= 1e-10 * max(1.0, x2)
    assert abs(ag.cramers_v(t) - association(kept, method="cramer")) <= 1e-12


def _v_bc_exact(t: np.ndarray) -> float:
    t = t[t.sum(1) > 0][:, t.sum(0) > 0]
    n = int(t.sum())
    r, k = t.shape
    if min(r, k) < 2 or n < 2:
        return 0.0
    a, b = t.sum(1), t.sum(0)
    x2 = sum(Fraction(int(t[i, j]) ** 2 * n, int(a[i] * b[j])) for i in range(r) for j in range(k)) - n
    phi2 = max(Fraction(0), x2 / n - Fraction((r - 1) * (k - 1), n - 1))
    rt = r - Fraction((r - 1) ** 2, n - 1)
    kt = k - Fraction((k - 1) ** 2, n - 1)
    lo = min(rt - 1, kt - 1)
    return 0.0 if lo <= 0 else float(phi2 / lo) ** 0.5


@given(label_pairs(max_n=60))
def test_neurons_v_bc_matches_exact_rationals(pair):
    t = _table(pair)
    assert abs(ag.cramers_v(t, bias_correction=True) - _v_bc_exact(t)) <= 1e-12


@given(st.lists(label_pairs(max_n=40), min_size=1, max_size=5))
def test_neurons_batched_equals_single(pairs):
    tables = []
    for p in pairs:
        t = np.zeros((40, 40), np.int64)
        s = _table(p)
        t[: s.shape[0], : s.shape[1]] = s
        tables.append(t)
    stack = np.stack(tables)
    for fn in (ag.chi2, ag.cramers_v, ag.mutual_info, ag.nmi, ag.ari, lambda x: ag.cramers_v(x, True),
               lambda x: ag.homogeneity_completeness(x)[0], lambda x: ag.zone_association(x)[0]):
        batched = fn(stack)
        for i, t in enumerate(tables):
            np.testing.assert_array_equal(batched[i], fn(t))


@given(label_pairs(max_n=120), st.integers(0, 7))
def test_neurons_zone_match_2x2_matches_sklearn(pair, which):
    z, c = pair.zones, pair.cats
    zone, cat = which % (z.max() + 1), which % (c.max() + 1)
    x, y = (z == zone).astype(int), (c == cat).astype(int)
    got = ag.two_by_two(int((x & y).sum()), int(x.sum()), int(y.sum()), z.size)
    t = ag.contingency(x, y, 2, 2)
    assert abs(got["nmi"] - sk.normalized_mutual_info_score(y, x)) <= 1e-12
    assert abs(got["ari"] - sk.adjusted_rand_score(y, x)) <= 1e-12
    assert abs(got["cramers_v"] - ag.cramers_v(t)) <= 1e-12
    if min(ag.n_nonempty(t)) == 2:
        assert abs(got["cramers_v"] - association(t, method="cramer")) <= 1e-12
        assert abs(got["phi"] - np.corrcoef(x, y)[0, 1]) <= 1e-12


@given(st.lists(st.integers(0, 5), min_size=1, max_size=30), st.lists(st.integers(0, 5), min_size=1, max_size=30),
       st.booleans())
def test_neurons_prob_superiority_matches_mannwhitneyu(x, y, scale):
    x, y = np.array(x, float), np.array(y, float)
    if scale:
        x, y = x * 0.37 + 1.0, y * 0.37 + 1.0
    ps = ag.prob_superiority(x, y)
    assert abs(ps - stats.mannwhitneyu(x, y).statistic / (x.size * y.size)) <= 1e-12
    assert abs(ps + ag.prob_superiority(y, x) - 1.0) <= 1e-12


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=200), st.integers(0, 2**32 - 1))
def test_neurons_bh_and_holm_match_scipy_and_a_loop(p, seed):
    rs = np.random.default_rng(seed)
    p = np.array(p)
    if rs.random() < 0.5:  # ties
        p = np.round(p, 1)
    q = ag.bh(p)
    assert np.all(np.abs(q - stats.false_discovery_control(p, method="bh")) <= 1e-12)
    m = p.size
    order = np.argsort(p, kind="stable")
    holm = np.empty(m)
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        holm[idx] = running
    assert np.all(np.abs(ag.holm(p) - holm) <= 1e-15)
    assert np.all(p <= q + 1e-15) and np.all(q <= ag.holm(p) + 1e-15)


def test_neurons_bh_holm_example_of_neu_t8():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(ag.bh(p), [0.02, 0.04, 0.04, 0.02], atol=1e-15)
    np.testing.assert_allclose(ag.holm(p), [0.03, 0.06, 0.06, 0.02], atol=1e-15)
    with_nan = ag.bh(np.array([0.01, np.nan, 0.04]))
    assert np.isnan(with_nan[1]) and with_nan[0] == 0.02


@given(st.integers(1, 300), st.data())
def test_neurons_hypergeom_sf_matches_scipy(big_n, data):
    n = data.draw(st.integers(0, big_n))
    k = data.draw(st.integers(0, big_n))
    x = data.draw(st.integers(-1, k + 1))
    ours = ag.hypergeom_sf(x, big_n, n, k)
    ref = float(stats.hypergeom.sf(x - 1, big_n, n, k))
    assert abs(ours - ref) <= 1e-10 * max(ref, 1e-300) or abs(ours - ref) <= 1e-15


@given(st.lists(st.integers(-3, 3), min_size=2, max_size=40), st.integers(0, 2**32 - 1))
def test_neurons_spearman_matches_scipy(x, seed):
    x = np.array(x, float)
    y = np.random.default_rng(seed).integers(-2, 3, x.size).astype(float)
    ours = ag.spearman(x, y)
    if np.all(x == x[0]) or np.all(y == y[0]):
        assert ours is None
    else:
        assert abs(ours - stats.spearmanr(x, y).statistic) <= 1e-12
    np.testing.assert_array_equal(ag.rankdata(x), stats.rankdata(x))


def test_neurons_perm_pvalue_counts_ties_against_the_observation():
    s = np.array([3, 3, 2, 4, 1])
    assert ag.perm_pvalue(s, exact=True) == (1 + 2) / 5
    assert ag.perm_pvalue(np.array([0.5, 0.5 - 1e-13, 0.1]), tie_rtol=1e-12) == 2 / 3
    assert ag.perm_pvalue(np.array([0.5, 0.5 - 1e-13, 0.1]), tie_rtol=0.0) == 1 / 3
    assert np.isnan(ag.perm_pvalue(np.array([np.nan, 1.0])))


def test_neurons_sign_flip_and_bootstrap():
    rs = np.random.default_rng(0)
    signs = rs.integers(0, 2, (999, 5)) * 2 - 1
    assert ag.sign_flip_pvalue(np.ones(5), signs) <= 2 / 32 + 0.01  # only all-plus flips tie
    assert ag.sign_flip_pvalue(-np.ones(5), signs) == 1.0
    idx = rs.integers(0, 5, (200, 5))
    lo, hi = ag.bootstrap_ci(np.arange(5.0), idx)
    assert 0 <= lo < 2 < hi <= 4


@given(label_pairs(max_n=80))
def test_neurons_eta_squared_and_cosine_homogeneity_against_loops(pair):
    rs = np.random.default_rng(pair.zones.size)
    x = rs.standard_normal(pair.zones.size)
    c = pair.cats
    grand = x.mean()
    total = ((x - grand) ** 2).sum()
    between = sum((c == g).sum() * (x[c == g].mean() - grand) ** 2 for g in np.unique(c))
    assert abs(ag.eta_squared(x, c) - (between / total if total > 0 else 0.0)) <= 1e-12
    e = rs.standard_normal((x.size, 3))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    onehot = np.eye(pair.zones.max() + 1)[pair.zones].T
    got = ag.cosine_homogeneity(e @ e.T, onehot)
    for g in range(onehot.shape[0]):
        members = np.flatnonzero(pair.zones == g)
        if members.size < 2:
            assert np.isnan(got[g])
            continue
        loop = np.mean([e[u] @ e[v] for u in members for v in members if u != v])
        assert abs(got[g] - loop) <= 1e-12
