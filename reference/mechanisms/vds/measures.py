"""Measures only VDS uses (specs/02 §5.2, §6): accuracy, macro-F1, ARI, Spearman, cosine / KL kNN.

Macro-F1: F1_k = 2TP/(2TP + FP + FN) (0 if the denominator is 0), averaged over all K classes.
ARI: the adjusted Rand index of Hubert & Arabie (sklearn's ``adjusted_rand_score``).
kNN (A6): majority vote of the k nearest training examples, k = min(k, N_train); ties go to the
larger summed similarity, then to the smaller class index [reconstructed].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.mechanisms.vds.similarity import cosine_forward, log_softmax


def accuracy(pred: Any, labels: Any) -> float:
    """Share of predictions equal to the labels."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    return float(np.mean(pred == labels)) if labels.size else 0.0


def macro_f1(pred: Any, labels: Any, K: int) -> float:
    """Mean over the K classes of 2TP/(2TP + FP + FN), 0 for a class with a zero denominator."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    scores = []
    for k in range(K):
        tp = int(np.sum((pred == k) & (labels == k)))
        fp = int(np.sum((pred == k) & (labels != k)))
        fn = int(np.sum((pred != k) & (labels == k)))
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def _comb2(x: Any) -> Any:
    x = np.asarray(x, dtype=np.float64)
    return x * (x - 1) / 2


def adjusted_rand_index(a: Any, b: Any) -> float:
    """ARI of two labelings of the same items (1 for identical partitions; 1 when both are a single cluster)."""
    a, b = np.asarray(a), np.asarray(b)
    n = a.size
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    index = _comb2(table).sum()
    rows, cols = _comb2(table.sum(1)).sum(), _comb2(table.sum(0)).sum()
    expected = rows * cols / _comb2(n) if n > 1 else 0.0
    top = (rows + cols) / 2
    if top == expected:  # both partitions trivial (one cluster each, or all singletons)
        return 1.0
    return float((index - expected) / (top - expected))


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    order = np.argsort(x, axis=-1, kind="stable")
    ranks = np.empty_like(x, dtype=np.float64)
    np.put_along_axis(ranks, order, np.arange(x.shape[-1], dtype=np.float64)[None, :].repeat(x.shape[0], 0), axis=-1)
    for row in range(x.shape[0]):  # ties: few and short, so a per-row pass is cheap
        values, inverse, counts = np.unique(x[row], return_inverse=True, return_counts=True)
        if np.any(counts > 1):
            ranks[row] = np.bincount(inverse, ranks[row])[inverse] / counts[inverse]
    return ranks


def spearman_rows(a: Any, b: Any) -> np.ndarray:
    """Spearman correlation of each row of a with the same row of b, (N, K) -> (N,); NaN for a constant row."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    denom = np.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(1) / denom


def vote(similarity: np.ndarray, train_labels: np.ndarray, K: int, k: int) -> np.ndarray:
    """Majority vote of the k most similar training items per row; ties: larger summed similarity, then smaller class.

    similarity (N, N_train) -> predictions (N,). The k neighbours are chosen by a stable sort of
    −similarity (equal similarities: the earlier training item).
    """
    k = min(k, similarity.shape[1])
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    rows = np.arange(similarity.shape[0])[:, None]
    votes = np.zeros((similarity.shape[0], K))
    mass = np.zeros((similarity.shape[0], K))
    np.add.at(votes, (rows, train_labels[nearest]), 1.0)
    np.add.at(mass, (rows, train_labels[nearest]), similarity[rows, nearest])
    # Lexicographic: most votes, then largest summed similarity; argmax takes the smallest index on ties.
    best = votes == votes.max(1, keepdims=True)
    return np.argmax(np.where(best, mass, -np.inf), axis=1)


def knn_predict(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, K: int, k: int, eps: float = 1e-8,
                chunk: int = 2048) -> np.ndarray:
    """A6 ``knn``: cosine kNN of each test row among the training rows -> (N_test,) predictions."""
    out = []
    for start in range(0, test.shape[0], chunk):
        sim, _ = cosine_forward(test[start:start + chunk], train, eps)
        out.append(vote(sim, np.asarray(train_labels), K, k))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def knn_kl_predict(train_logits: np.ndarray, train_labels: np.ndarray, test_logits: np.ndarray, K: int, k: int) -> np.ndarray:
    """KP-style kNN [reconstructed]: similarity −KL(p_test ‖ p_train) between LM output distributions (full V)."""
    lp_train, lp_test = log_softmax(train_logits), log_softmax(test_logits)
    p_test = np.exp(lp_test)
    cross = p_test @ lp_train.T  # Σ_v p_test log p_train
    own = np.sum(p_test * lp_test, axis=1, keepdims=True)
    return vote(cross - own, np.asarray(train_labels), K, k)  # −KL = Σ p log q − Σ p log p
