"""One training step of the authors' code (specs/04-msma.md §2.5, A7). [author-code]

The pretrained LM itself is fine-tuned (``finetune_backbone``) so that the pooled scale vectors
approach each other — the "map" is the identity:

* pooled h_L, h_I, h_G (``pad_in_pool``: every position, padding included);
* three linear heads d → K_s, L_cls = mean of the three cross-entropies (``lambda_cls``);
* ``geo="l2"``: L_geo = mean‖h_G − h_I‖₂ + mean‖h_I − h_L‖₂ (unsquared);
* ``info="mine"`` with ``mine_marginals="unshuffled"``: MI_GI = mean_b T(h_G,b, h_I,b) −
  ln mean_b exp T(h_G,b, sg(h_I,b)) — the same joint pairs in both terms, so never > 0 (MSA-6) —
  likewise MI_IL; L_info = −(MI_GI + MI_IL). The critics are built after the optimiser in the
  code: they are **never updated**, yet their gradients are computed, **never zeroed**, and
  counted by the global clip (``critic_grad_accumulates``: G_c ← G_c + g_c, rescaled in place);
* ``curv="param_norm"``: ‖θ‖₂ over every registered parameter (LM, heads, critics), unsquared;
* L = λ_cls L_cls + λ_geo L_geo + λ_info L_info + λ_curv L_curv; global clip; AdamW on LM + heads.

Pooled gradients reach the model through the pooling's adjoint, as extra upstream gradients at
the hooks of S_L ∪ S_I ∪ S_G (:func:`reference.model.backward`'s ``extra``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference.mechanisms.msma.config import MSMAConfig
from reference.mechanisms.msma.scales import SCALES, hook_of, pool_backward, pool_sequence
from reference.model import backward, forward, run_with_cache
from reference.optim import AdamW


def critic_forward(layers: list, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, list]:
    """T([x; y]) of the code's MLP critic -> (N,) and the cache (pre-activations per layer)."""
    h = np.hstack([x, y])
    cache = [h]
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        cache.append(h)
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h[:, 0], cache


def critic_backward(layers: list, cache: list, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """From ∂/∂T (N,): ∂/∂x, ∂/∂y and the parameter gradients [(dW, db), …]."""
    d = dt[:, None]
    grads = []
    for i in reversed(range(len(layers))):
        w, _ = layers[i]
        inp = cache[i] if i == 0 else np.maximum(cache[i], 0.0)
        grads.append((inp.T @ d, d.sum(0)))
        d = d @ w.T
        if i > 0:
            d = d * (cache[i] > 0)
    grads.reverse()
    k = cache[0].shape[1] // 2
    return d[:, :k], d[:, k:], grads


def unshuffled_mine(layers: list, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, list]:
    """The code's MI = mean T(x_b, y_b) − ln mean exp T(x_b, sg(y_b)): value, ∂/∂x, ∂/∂y, critic grads.

    Both terms see the same joint values t_b; y's gradient comes from the first term only (stop-gradient).
    """
    t, cache = critic_forward(layers, x, y)
    n = t.size
    m = t.max()
    e = np.exp(t - m)
    value = float(t.mean() - (np.log(e.mean()) + m))
    d_first = np.full(n, 1.0 / n)
    d_second = -e / e.sum()
    dx1, dy1, g1 = critic_backward(layers, cache, d_first)
    dx2, _, g2 = critic_backward(layers, cache, d_second)
    grads = [(a[0] + b[0], a[1] + b[1]) for a, b in zip(g1, g2)]
    return value, dx1 + dx2, dy1, grads


@dataclass
class CodeState:
    """Everything the code's step updates or accumulates."""

    params: dict
    heads: dict
    critics: dict
    critic_grads: dict = field(default_factory=dict)
    opt: AdamW | None = None
    step: int = 0


def init_state(params: dict, d: int, n_classes: tuple[int, int, int], gen: np.random.Generator, cfg: MSMAConfig) -> CodeState:
    """Heads d → K_s (n_classes in SCALES order: local, intermediate, global) and two frozen critics
    (PyTorch Linear init U(±1/√fan_in)); AdamW on LM + heads only."""
    heads = {}
    bound = 1 / np.sqrt(d)
    for s, k in zip(SCALES, n_classes):
        heads[f"head.{s}.w"] = gen.uniform(-bound, bound, (d, k))
        heads[f"head.{s}.b"] = gen.uniform(-bound, bound, k)
    critics = {}
    for pair in ("GI", "IL"):
        fan = 2 * d
        for j, out in enumerate((512, 256, 1)):
            b = 1 / np.sqrt(fan)
            critics[f"critic.{pair}.{j}.w"] = gen.uniform(-b, b, (fan, out))
            critics[f"critic.{pair}.{j}.b"] = gen.uniform(-b, b, out)
            fan = out
    opt = AdamW(beta1=0.9, beta2=0.999, eps=1e-8)
    trainable = {**params, **heads}  # names only: the group is keyed by name
    opt.add_group(list(trainable), trainable, cfg.ft_weight_decay)  # PyTorch AdamW: one group, every parameter decays
    own = {k: np.array(v, copy=True) for k, v in params.items()}  # AdamW updates in place: never touch the caller's
    return CodeState(own, heads, critics, {k: np.zeros_like(v) for k, v in critics.items()}, opt)


def _layers(critics: dict, pair: str) -> list:
    return [(critics[f"critic.{pair}.{j}.w"], critics[f"critic.{pair}.{j}.b"]) for j in range(3)]


def code_loss(state: CodeState, model: Any, tokens: np.ndarray, labels: dict[str, np.ndarray], parts: tuple,
              cfg: MSMAConfig) -> tuple[float, dict, dict, dict]:
    """The §2.5 loss of one batch: value, gradients (LM + heads), critic gradients, and the terms."""
    n_layers = model.n_layers
    names = {s: [hook_of(k, n_layers) for k in ks] for s, ks in zip(SCALES, parts)}
    wanted = {h for hs in names.values() for h in hs}
    acts: dict[str, Any] = {}

    def record(name: str, value: Any) -> Any:
        if name in wanted:
            acts[name] = value
        return value

    logits, fcache = forward(state.params, model, tokens, hook=record)
    w = np.ones(tokens.shape) if cfg.pad_in_pool else (tokens >= 0)
    h = {s: pool_sequence([acts[n] for n in names[s]], w) for s in SCALES}
    dh = {s: np.zeros_like(h[s]) for s in SCALES}
    grads: dict[str, Any] = {}
    terms: dict[str, float] = {}
    # classification heads
    cls = 0.0
    for s in SCALES:
        z = h[s] @ state.heads[f"head.{s}.w"] + state.heads[f"head.{s}.b"]
        z = z - z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        y = labels[s]
        cls += float(-np.mean(np.log(p[np.arange(len(y)), y]))) / 3
        dz = p.copy()
        dz[np.arange(len(y)), y] -= 1.0
        dz *= cfg.lambda_cls / (3 * len(y))
        grads[f"head.{s}.w"] = h[s].T @ dz
        grads[f"head.{s}.b"] = dz.sum(0)
        dh[s] += dz @ state.heads[f"head.{s}.w"].T
    terms["cls"] = cls
    # unsquared L2 geometry, both sides trainable (the LM produces both)
    geo = 0.0
    for a, b in (("global", "intermediate"), ("intermediate", "local")):
        e = h[a] - h[b]
        norm = np.linalg.norm(e, axis=1)
        geo += float(norm.mean())
        g = np.where(norm[:, None] > 0, e / (len(norm) * np.where(norm > 0, norm, 1.0)[:, None]), 0.0) * cfg.lambda_geo
        dh[a] += g
        dh[b] -= g
    terms["geo"] = geo
    # the unshuffled "MINE" with frozen critics
    critic_grads = {}
    info = 0.0
    for pair, (a, b) in (("GI", ("global", "intermediate")), ("IL", ("intermediate", "local"))):
        value, dx, dy, cg = unshuffled_mine(_layers(state.critics, pair), h[a], h[b])
        terms[f"mine_{pair.lower()}"] = value
        info -= value
        dh[a] -= cfg.lambda_info * dx
        dh[b] -= cfg.lambda_info * dy
        for j, (gw, gb) in enumerate(cg):
            critic_grads[f"critic.{pair}.{j}.w"] = -cfg.lambda_info * gw
            critic_grads[f"critic.{pair}.{j}.b"] = -cfg.lambda_info * gb
    terms["info"] = info
    # "curvature": the unsquared norm of every registered parameter
    everything = {**state.params, **state.heads, **state.critics}
    norm = float(np.sqrt(sum(float(np.sum(v * v)) for v in everything.values())))
    terms["curv"] = norm
    extra: dict[str, Any] = {}
    for s in SCALES:
        for hook in names[s]:
            extra[hook] = extra.get(hook, 0) + pool_backward(dh[s], w, len(names[s]))
    lm = backward(model, fcache, np.zeros_like(logits), extra)  # no language-model loss in the code's objective
    grads.update(lm)
    if cfg.lambda_curv > 0 and norm > 0:
        for k in grads:
            grads[k] = grads[k] + cfg.lambda_curv * everything[k] / norm
        for k in critic_grads:
            critic_grads[k] = critic_grads[k] + cfg.lambda_curv * state.critics[k] / norm
    total = cfg.lambda_cls * cls + cfg.lambda_geo * geo + cfg.lambda_info * info + cfg.lambda_curv * norm
    terms["total"] = total
    return total, grads, critic_grads, terms


def code_step(state: CodeState, model: Any, tokens: np.ndarray, labels: dict[str, np.ndarray], parts: tuple,
              cfg: MSMAConfig, lr: float) -> dict:
    """One optimiser step of the code: accumulate critic gradients, clip over everything, AdamW on LM + heads."""
    _, grads, critic_grads, terms = code_loss(state, model, tokens, labels, parts, cfg)
    if cfg.critic_grad_accumulates:  # never zeroed: G_c ← G_c + g_c
        for k, g in critic_grads.items():
            state.critic_grads[k] = state.critic_grads[k] + g
    counted = {**grads, **(state.critic_grads if cfg.critic_grad_accumulates else {})}
    total_norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in counted.values())))
    if total_norm > cfg.ft_clip:
        scale = cfg.ft_clip / (total_norm + 1e-6)  # torch.nn.utils.clip_grad_norm_
        grads = {k: g * scale for k, g in grads.items()}
        if cfg.critic_grad_accumulates:
            state.critic_grads = {k: g * scale for k, g in state.critic_grads.items()}  # rescaled in place
    trainable = {**state.params, **state.heads}
    state.opt.step(trainable, grads, lr)
    state.params = {k: trainable[k] for k in state.params}
    state.heads = {k: trainable[k] for k in state.heads}
    state.step += 1
    return {**terms, "grad_norm": total_norm}


# --------------------------------------------------------------------------- data, labels and evaluation of A7


ARMS_CODE = {  # (λ_geo, λ_info, λ_curv); λ_cls = 1 throughout [author-code]
    "baseline": (0.0, 0.0, 0.0), "full_msma": (0.1, 0.1, 0.01), "no_geo": (0.0, 0.1, 0.01),
    "no_info": (0.1, 0.0, 0.01), "no_curv": (0.1, 0.1, 0.0),
}


def code_labels(tokens: np.ndarray, topics: np.ndarray, world: Any, train_rows: np.ndarray) -> dict[str, np.ndarray]:
    """Code-mode labels (§6.1): global = topic; intermediate = tercile of mean sentence length; local = tercile of TTR.

    Terciles from the train split's quantiles, ties to the lower class. [reconstructed]
    """
    lengths, ttrs = [], []
    for row in tokens:
        sents = world.split_sentences(row)
        words = [[t for t in s.tolist() if world.is_word[t]] for s in sents]
        lengths.append(float(np.mean([len(w) for w in words])) if words else 0.0)
        flat = [t for w in words for t in w]
        ttrs.append(len(set(flat)) / len(flat) if flat else 0.0)

    def tercile(values: list[float]) -> np.ndarray:
        v = np.asarray(values)
        cuts = np.quantile(v[train_rows], [1 / 3, 2 / 3])
        return np.searchsorted(cuts, v, side="left").astype(np.int64)

    return {"global": np.asarray(topics, np.int64), "intermediate": tercile(lengths), "local": tercile(ttrs)}


def pooled_features(params: dict, model: Any, tokens: np.ndarray, parts: tuple, cfg: MSMAConfig) -> dict[str, np.ndarray]:
    """Pooled h_L, h_I, h_G as the code's evaluation sees them (padding in the mean; fp16 round trip when set)."""
    names = {s: [hook_of(k, model.n_layers) for k in ks] for s, ks in zip(SCALES, parts)}
    out: dict[str, list] = {s: [] for s in SCALES}
    wanted = sorted({h for hs in names.values() for h in hs})
    for start in range(0, tokens.shape[0], 128):
        tok = tokens[start:start + 128]
        _, acts = run_with_cache(params, model, tok, names=wanted)
        w = np.ones(tok.shape) if cfg.pad_in_pool else (tok >= 0)
        for s in SCALES:
            out[s].append(pool_sequence([acts[n] for n in names[s]], w))
    feats = {s: np.concatenate(v) for s, v in out.items()}
    if cfg.fp16_features:
        feats = {s: v.astype(np.float16).astype(np.float64) for s, v in feats.items()}
    return feats


def procrustes_centred(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The code's validation-time Procrustes: (x − x̄)R, R from the centred SVD, target mean not added. [author-code]"""
    xc, yc = x - x.mean(0), y - y.mean(0)
    u, _, vt = np.linalg.svd(xc.T @ yc)
    return xc @ (u @ vt)


def head_accuracy(heads: dict, feats: dict[str, np.ndarray], labels: dict[str, np.ndarray], procrustes: bool) -> dict:
    """Accuracy of each head; with ``procrustes_in_forward`` h_G ← P(h_G, h_I), h_I ← P(h_I, h_L) per batch of 128 rows."""
    n = labels["global"].size
    correct = {s: 0 for s in SCALES}
    for start in range(0, n, 128):
        sl = slice(start, start + 128)
        h = {s: feats[s][sl] for s in SCALES}
        if procrustes and h["global"].shape[0] > 1:
            h = {"global": procrustes_centred(h["global"], h["intermediate"]),
                 "intermediate": procrustes_centred(h["intermediate"], h["local"]), "local": h["local"]}
        for s in SCALES:
            pred = np.argmax(h[s] @ heads[f"head.{s}.w"] + heads[f"head.{s}.b"], axis=1)
            correct[s] += int(np.sum(pred == labels[s][sl]))
    return {f"{s}_acc": correct[s] / n for s in SCALES}
