"""VDS measures (§5.2) against sklearn, the kNN tie-break, and the checks' verdicts and marks in the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, f1_score

from reference.mechanisms.vds import adjusted_rand_index, knn_predict, macro_f1, spearman_rows, vote
from reference.mechanisms.vds.evaluate import eval_checks
from reference.mechanisms.vds.experiment import EvalResult, eval_table

labelings = st.integers(1, 6).flatmap(lambda K: st.tuples(
    st.just(K), st.lists(st.integers(0, K - 1), min_size=1, max_size=60)).flatmap(
    lambda t: st.tuples(st.just(t[0]), st.just(t[1]), st.lists(st.integers(0, t[0] - 1), min_size=len(t[1]), max_size=len(t[1])))))


@given(labelings)
def test_vds_macro_f1_and_ari_match_sklearn(case):
    K, y, p = case
    assert np.isclose(macro_f1(p, y, K), f1_score(y, p, labels=list(range(K)), average="macro", zero_division=0), atol=1e-12)
    assert np.isclose(adjusted_rand_index(y, p), adjusted_rand_score(y, p), atol=1e-12)


def test_vds_majority_predictor_macro_f1_is_0399_at_665_percent():
    """v6's ICL MRPC F1 .399 for every model = always predicting the majority class (66.5% positive)."""
    y = np.array([1] * 665 + [0] * 335)
    assert round(macro_f1(np.ones_like(y), y, 2), 3) == 0.399


@given(st.integers(0, 2**32 - 1), st.integers(2, 8), st.integers(3, 12))
def test_vds_spearman_matches_scipy(seed, n, k):
    from scipy.stats import spearmanr

    rs = np.random.default_rng(seed)
    a, b = rs.integers(0, 4, (n, k)).astype(float), rs.standard_normal((n, k))
    ours = spearman_rows(a, b)
    for i in range(n):
        ref = spearmanr(a[i], b[i]).statistic
        assert (np.isnan(ours[i]) and np.isnan(ref)) or np.isclose(ours[i], ref, atol=1e-12)


def test_vds_knn_tie_break_is_deterministic():
    # Two neighbours, one vote each: the larger summed similarity wins; equal sums: the smaller class.
    sim = np.array([[0.9, 0.8, 0.1], [0.5, 0.5, 0.1]])
    assert vote(sim, np.array([1, 0, 0]), K=2, k=2).tolist() == [1, 0]
    # The majority comes first: two weak votes beat one strong one.
    assert vote(np.array([[0.99, 0.3, 0.3]]), np.array([1, 0, 0]), K=2, k=3).tolist() == [0]
    train = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    assert knn_predict(train, np.array([0, 1, 0]), np.array([[1.0, 0.05]]), K=2, k=16).tolist() == [0]  # k = min(16, 3)


def _rows(cal, lm, sim, task="topic"):
    out = []
    for seed in (0, 1):
        for method, acc in (("lm_head", lm), ("similarity", sim), ("calibrated", cal), ("knn", 0.5)):
            out.append({"task": task, "seed": seed, "method": method, "accuracy": acc, "macro_f1": acc, "n_test": 10})
    return out


def test_vds_violated_hard_checks_are_marked_in_the_table():
    diag = [{"task": "topic", "seed": s, "K": 8, "ari_without": 0.3, "ari_with": 0.1, "knn1_h": 0.5, "knn1_lambda": 0.4}
            for s in (0, 1)]
    rows = _rows(cal=0.4, lm=0.6, sim=0.5)
    checks = eval_checks(rows, diag, [], None)
    verdicts = {c["id"]: c["passed"] for c in checks if c["task"] == "topic"}
    assert verdicts["H1"] is False and verdicts["H2"] is False and verdicts["H3"] is False
    s4 = next(c for c in checks if c["id"] == "S4")
    assert s4["passed"] is False  # kNN on λ(h) worse than on h: flagged
    text = eval_table(EvalResult(rows, diag, [], {}, checks, 1.0, Path(".")), "text")
    assert "VIOLATED: H1, H2, H3" in text and "-0.200" in text and "[FLAG] S4" in text
    result = EvalResult(rows, diag, [], {}, checks, 1.0, Path("."))
    assert "S4: flagged —" in eval_table(result, "markdown") and "- H1: FAIL —" in eval_table(result, "markdown")
    assert "S4: flagged —" in eval_table(result, "html")
    good = eval_checks(_rows(cal=0.9, lm=0.6, sim=0.5), [dict(d, ari_with=0.8) for d in diag], [], None)
    assert all(c["passed"] for c in good if c["hard"])
