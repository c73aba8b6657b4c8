"""Representations (A3), clustering training (A5) and the four predictions (A6) of specs/02 §3.

The LM is frozen: its final-norm states are pooled once per prompt and cached (A3); λ is
trained on those cached, detached representations (A5) — the LM is never back-propagated
[paper-v6 App. A.2]. A6's methods: ``lm_head`` (zero-shot W_𝓛 h + b_𝓛), ``similarity``
(zero-shot cos(h, S_𝓛)), ``calibrated`` (cos(λ(x), S_𝓛)), ``knn`` (cosine kNN on raw h).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference.config import ConfigError, ModelConfig
from reference.mechanisms.vds.clustering import init_lambda, lambda_backward, lambda_forward
from reference.mechanisms.vds.config import VDSConfig
from reference.mechanisms.vds.losses import cluster_loss, cluster_loss_backward
from reference.mechanisms.vds.measures import knn_predict
from reference.mechanisms.vds.similarity import similarity_logits
from reference.model import run_with_cache
from reference.optim import AdamW

METHODS = ("lm_head", "similarity", "calibrated", "knn")


class ClusteringDiverged(RuntimeError):
    """The clustering loss became NaN or Inf; λ training stopped before the bad update."""


@dataclass(frozen=True)
class Representations:
    """Pooled final-norm states of N prompts, float64 (N, d) each: masked mean, masked max, readout."""

    mean: np.ndarray
    max: np.ndarray
    last: np.ndarray

    def take(self, rows: np.ndarray) -> Representations:
        return Representations(self.mean[rows], self.max[rows], self.last[rows])

    def inputs(self, ca_pool: str = "sequence") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """λ's input (a, m, r); ``ca_pool="last"``: a = m = r."""
        if ca_pool == "last":
            return self.last, self.last, self.last
        return self.mean, self.max, self.last


def head_of(params: dict, model: ModelConfig) -> np.ndarray:
    """W (V, d) of a model's LM head, float64: ``embed.tok`` when tied, else ``head.w`` transposed (stored (d, V))."""
    W = params["embed.tok"] if model.tied_head else np.asarray(params["head.w"]).T
    return np.array(W, dtype=np.float64)


def pool_states(H: np.ndarray, lengths: np.ndarray) -> Representations:
    """A3 pooling: H (B, T, d) final-norm states, valid positions [0, length) -> Representations (B, d).

    mean and max over the valid positions only; readout = the state at length − 1 (last prompt token).
    """
    B, T, _ = H.shape
    lengths = np.asarray(lengths)
    if np.any(lengths < 1) or np.any(lengths > T):
        raise ConfigError(f"vds: prompt lengths must lie in [1, {T}]")
    mask = (np.arange(T)[None, :] < lengths[:, None])[:, :, None]
    mean = np.where(mask, H, 0.0).sum(1) / lengths[:, None]
    mx = np.where(mask, H, -np.inf).max(1)
    last = H[np.arange(B), lengths - 1]
    return Representations(mean.astype(np.float64), mx.astype(np.float64), last.astype(np.float64))


def representations(
    params: dict, model: ModelConfig, prompts: np.ndarray, lengths: np.ndarray, *, batch: int = 256,
    on_batch: Callable[[], None] | None = None,
) -> Representations:
    """A3: the frozen LM's final-norm states (the head's input) on prompts (N, T), pooled per prompt."""
    hook = "final_norm" if model.final_norm else f"blocks.{model.n_layers - 1}.resid_post"
    parts = []
    for start in range(0, prompts.shape[0], batch):
        _, cache = run_with_cache(params, model, prompts[start:start + batch], names=[hook])
        parts.append(pool_states(np.asarray(cache[hook]), lengths[start:start + batch]))
        if on_batch is not None:
            on_batch()
    return Representations(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("mean", "max", "last")))


def train_lambda(
    reps: Representations, labels: np.ndarray, S: np.ndarray, cfg: VDSConfig, seed: int, *, W: np.ndarray | None = None,
    b: np.ndarray | None = None, on_epoch: Callable[[], None] | None = None,
) -> tuple[dict, list[float]]:
    """A5: train λ on cached representations with labels (N,) -> (parameters, mean loss per epoch).

    Init from ``default_rng([cfg.seed, seed, 0])``; each epoch a permutation from
    ``default_rng([cfg.seed, seed, 1])`` (reshuffled every epoch, last partial batch kept);
    the core's AdamW (decoupled weight decay on every λ parameter), constant lr.
    W, b: the label rows of the head (K, d), (K,) for ``cluster_logits="mm"``.
    Raises :class:`ClusteringDiverged` on a non-finite loss, before updating.
    """
    A, Mx, R = reps.inputs(cfg.ca_pool)
    n, d = R.shape
    params = init_lambda(d, cfg.d_hidden(d), cfg.mlp_ratio, seed=[cfg.seed, seed, 0])
    opt = AdamW(beta1=cfg.betas[0], beta2=cfg.betas[1], eps=cfg.adam_eps)
    opt.add_group(list(params), params, cfg.weight_decay)
    order = np.random.default_rng([cfg.seed, seed, 1])
    exp = cfg.cluster_exp or cfg.loss_mode == "code_faithful"
    reduce = "sum" if cfg.loss_mode == "code_faithful" else "mean"
    history = []
    for epoch in range(cfg.epochs):
        perm = order.permutation(n)
        total = 0.0
        for start in range(0, n, cfg.batch_size):
            rows = perm[start:start + cfg.batch_size]
            Y, cache = lambda_forward(params, A[rows], Mx[rows], R[rows], ca_sigmoid=cfg.ca_sigmoid, ln_eps=cfg.ln_eps)
            loss, lcache = cluster_loss(Y, labels[rows], kind=cfg.cluster_logits, S=S, W=W, b=b, tau=cfg.temperature,
                                        exp=exp, reduce=reduce, eps=cfg.cos_eps)
            if not np.isfinite(loss):
                raise ClusteringDiverged(f"vds: clustering loss is {loss} at epoch {epoch + 1}; stopped before updating")
            grads, *_ = lambda_backward(cache, cluster_loss_backward(lcache))
            opt.step(params, grads, cfg.lr)
            total += float(loss) * len(rows)
        history.append(total / n)
        if on_epoch is not None:
            on_epoch()
    return params, history


def apply_lambda(params: dict, reps: Representations, cfg: VDSConfig) -> np.ndarray:
    """λ(x) of every row (N, d)."""
    A, Mx, R = reps.inputs(cfg.ca_pool)
    return lambda_forward(params, A, Mx, R, ca_sigmoid=cfg.ca_sigmoid, ln_eps=cfg.ln_eps)[0]


def lm_head_predict(R: np.ndarray, W_L: np.ndarray, b_L: np.ndarray | None = None) -> np.ndarray:
    """A6 ``lm_head``: argmax_k (W_𝓛 h + b_𝓛)_k."""
    z = R @ W_L.T
    return np.argmax(z if b_L is None else z + b_L, axis=1)


def similarity_predict(U: np.ndarray, S: np.ndarray, cfg: VDSConfig, G: np.ndarray | None = None) -> np.ndarray:
    """A6 ``similarity`` / ``calibrated``: argmax_k of the similarity logits of U against S_𝓛."""
    return np.argmax(similarity_logits(U, S, metric=cfg.similarity_metric, G=G, eps=cfg.cos_eps), axis=1)


def predict_all(
    train: Representations, y_train: np.ndarray, test: Representations, lam: dict, S: np.ndarray, W_L: np.ndarray,
    cfg: VDSConfig, K: int, *, b_L: np.ndarray | None = None, G: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """A6: the predictions of the four methods on the test rows, by method name."""
    lam_test = apply_lambda(lam, test, cfg)
    calibrated = (lm_head_predict(lam_test, W_L, b_L) if cfg.infer_logits == "mm"
                  else similarity_predict(lam_test, S, cfg, G))
    return {
        "lm_head": lm_head_predict(test.last, W_L, b_L),
        "similarity": similarity_predict(test.last, S, cfg, G),
        "calibrated": calibrated,
        "knn": knn_predict(train.last, y_train, test.last, K, cfg.knn_k, cfg.cos_eps),
    }


def anchors_for(kind: str, S_vocab: np.ndarray, reps: Representations, labels: np.ndarray, K: int, seed: Any) -> np.ndarray:
    """The anchors λ clusters to (§2.2): ``vocab`` bases, per-class ``class_mean`` of training h, seeded ``random``."""
    if kind == "vocab":
        return S_vocab
    if kind == "class_mean":
        missing = [k for k in range(K) if not np.any(labels == k)]
        if missing:
            raise ConfigError(f"vds: class {missing[0]} has no training example; class_mean anchors need every class")
        return np.stack([reps.last[labels == k].mean(0) for k in range(K)])
    if kind == "random":
        return np.random.default_rng(seed).standard_normal(S_vocab.shape)
    raise ConfigError(f"vds.anchors: {kind!r} is not one of 'vocab' | 'class_mean' | 'random'")


def label_token_ids(words: Any, encode: Callable[[str], list[int]], mode: str = "error", *,
                    decode: Callable[[int], str] | None = None) -> np.ndarray:
    """The single token id of each label word (K,) int64; ConfigError (one line) naming a word that is not one token.

    ``encode(word) -> ids``; ``mode`` (``multi_token_label``): "error" (default), "first" or
    "last" piece ([author-code] uses the last). Two words on one token are refused too.
    """
    ids = []
    for word in words:
        if not isinstance(word, str) or not word.strip():
            raise ConfigError(f"vds: label word {word!r} is empty")
        try:
            pieces = list(encode(word))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"vds: label word {word!r} is not in the vocabulary ({str(exc)[:80]})") from None
        if len(pieces) != 1 and mode == "error" or not pieces:
            shown = [decode(p) for p in pieces[:8]] if decode is not None else pieces[:8]
            shown += ["…"] if len(pieces) > 8 else []
            raise ConfigError(f"vds: label word {word!r} is not one token (pieces: {shown}); "
                              "set vds.multi_token_label to 'first' or 'last' to use one piece")
        ids.append(pieces[0] if mode == "first" else pieces[-1])
    arr = np.array(ids, np.int64)
    values, counts = np.unique(arr, return_counts=True)
    if np.any(counts > 1):
        shared = [w for w, i in zip(words, arr) if i == values[counts > 1][0]]
        raise ConfigError(f"vds: label words {shared} share one token; each class needs its own token")
    return arr
