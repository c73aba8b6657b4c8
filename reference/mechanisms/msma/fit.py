"""A4: training the cross-scale maps on frozen features (specs/04-msma.md §2.4, §3 A4). [reconstructed]

Per pair (GI: h_G → h_I, IL: h_I → h_L), minibatches of a seeded permutation each epoch:

1. critic ascent step on Î − 10⁻⁴‖W‖² (when ``info`` ≠ none and ``critic_trainable``);
2. map descent step on L_pair = λ_geo L_geo − λ_info Î + λ_curv L_curv with the updated critic;

at each epoch's end L_pair on the whole validation split (the information term in chunks of
``batch_size``); stop after ``patience`` epochs without a relative improvement > 10⁻⁶ and restore
the best map. Adam β (0.9, 0.999), eps 10⁻⁸, no weight decay. The control (``shuffle_pairs``)
permutes the target rows of train and val (stream 4): same marginals, no pairing.

RNG streams ``np.random.default_rng([seed, stream])``: 1 map init, 2 batch order, 4 control
permutation, 7 curvature probes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reference.config import ConfigError
from reference.mechanisms.msma.config import MSMAConfig
from reference.mechanisms.msma.maps import (
    curvature,
    curvature_backward,
    geo_loss,
    info_term,
    init_map,
    map_backward,
    map_forward,
)

RIDGE = 1e-4
"""Ridge of the bilinear critic, 10⁻⁴‖W‖² (§2.4)."""


class Adam:
    """Adam on a dict of arrays: β (0.9, 0.999), eps 10⁻⁸, no weight decay (§2.6)."""

    def __init__(self, params: dict, lr: float) -> None:
        self.lr, self.t = lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict, grads: dict, sign: float = -1.0) -> None:
        """In place: descent (sign −1) or ascent (+1) along ``grads``."""
        self.t += 1
        for k, g in grads.items():
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            mh = self.m[k] / (1 - 0.9**self.t)
            vh = self.v[k] / (1 - 0.999**self.t)
            params[k] = params[k] + sign * self.lr * mh / (np.sqrt(vh) + 1e-8)


def unit_probes(gen: np.random.Generator, n_probes: int, n: int, d: int) -> np.ndarray:
    """v (P, n, d), uniform on the unit sphere (normalised Gaussians)."""
    v = gen.standard_normal((n_probes, n, d))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def pair_objective(theta: dict, w: np.ndarray, x: np.ndarray, y: np.ndarray, var: np.ndarray, cfg: MSMAConfig,
                   probes: np.ndarray | None, mapped: tuple | None = None) -> tuple[float, dict, dict]:
    """L_pair on one batch: value, ∂L/∂θ, and the parts {geo, info, curv} (§2.4).

    Affine maps have no curvature (term 0, not computed); ``param_norm`` is the code's ‖θ‖₂.
    ``mapped``: (u, cache) of :func:`map_forward` at θ when the caller already has it.
    """
    u, cache = map_forward(theta, x) if mapped is None else mapped
    geo, du = geo_loss(cfg.geo, u, y, var)
    du = cfg.lambda_geo * du
    parts = {"geo": float(geo), "info": 0.0, "curv": 0.0}
    if cfg.info != "none":
        info, _, d_u = info_term(cfg.info, w, u, y)
        parts["info"] = float(info)
        du = du - cfg.lambda_info * d_u
    grads = map_backward(theta, cache, du)
    if "w1" in theta and cfg.curv == "fd_hessian" and cfg.lambda_curv > 0 and probes is not None:
        value, ccache = curvature(theta, x, probes, cfg.curv_eps)
        parts["curv"] = value
        for k, g in curvature_backward(theta, ccache).items():
            grads[k] = grads[k] + cfg.lambda_curv * g
    elif cfg.curv == "param_norm" and cfg.lambda_curv > 0:
        norm = float(np.sqrt(sum(float(np.sum(v * v)) for v in theta.values())))
        parts["curv"] = norm
        if norm > 0:
            for k in grads:
                grads[k] = grads[k] + cfg.lambda_curv * theta[k] / norm
    total = cfg.lambda_geo * parts["geo"] - cfg.lambda_info * parts["info"] + cfg.lambda_curv * parts["curv"]
    return total, grads, parts


def val_loss(theta: dict, w: np.ndarray, x: np.ndarray, y: np.ndarray, var: np.ndarray, cfg: MSMAConfig) -> dict:
    """L_pair on a whole split; the information term averaged over chunks of ``batch_size`` rows (no curvature probe)."""
    u, _ = map_forward(theta, x)
    geo = float(geo_loss(cfg.geo, u, y, var)[0]) if cfg.geo != "dist" else _chunked_geo(u, y, var, cfg)
    info = 0.0
    if cfg.info != "none":
        b = cfg.batch_size
        vals = [float(info_term(cfg.info, w, u[i:i + b], y[i:i + b])[0]) for i in range(0, u.shape[0] - 1, b)
                if min(b, u.shape[0] - i) >= 2]
        info = float(np.mean(vals))
    total = cfg.lambda_geo * geo - cfg.lambda_info * info
    return {"total": total, "geo": geo, "info": info}


def _chunked_geo(u: np.ndarray, y: np.ndarray, var: np.ndarray, cfg: MSMAConfig) -> float:
    b = cfg.batch_size
    return float(np.mean([float(geo_loss("dist", u[i:i + b], y[i:i + b], var)[0]) for i in range(0, u.shape[0], b)]))


@dataclass
class FitResult:
    """A trained map: parameters, critic, and the training record of §6.3."""

    theta: dict
    critic: np.ndarray
    epochs_run: int
    best_epoch: int
    val: dict
    history: list[dict] = field(default_factory=list)


def fit_pair(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray, cfg: MSMAConfig,
             seed: int, pair_code: int = 0) -> FitResult:
    """A4 for one pair: Procrustes start, alternating critic ascent / map descent, early stopping on val."""
    if cfg.info == "mine" and cfg.mine_marginals != "all_pairs":
        raise ConfigError(f"msma.mine_marginals: {cfg.mine_marginals!r} is not trained in paper mode (use 'all_pairs')")
    if cfg.shuffle_pairs:
        control = np.random.default_rng([seed, 4, pair_code])
        y_tr, y_va = y_tr[control.permutation(len(y_tr))], y_va[control.permutation(len(y_va))]
    d = x_tr.shape[1]
    init_kind = "mlp" if cfg.map == "mlp" else cfg.map
    theta = init_map(init_kind, d, np.random.default_rng([seed, 1, pair_code]), None if cfg.map == "identity" else x_tr,
                     y_tr, cfg.mlp_hidden, cfg.procrustes_scale, cfg.proper_rotation)
    w = np.zeros((d, y_tr.shape[1]))
    var = y_tr.var(0)
    var = np.maximum(var, 1e-12 * var.max())
    if cfg.map in ("identity", "orthogonal"):
        return FitResult(theta, w, 0, 0, val_loss(theta, w, x_va, y_va, var, cfg))
    order, probe_gen = np.random.default_rng([seed, 2, pair_code]), np.random.default_rng([seed, 7, pair_code])
    map_opt, critic_opt = Adam(theta, cfg.map_lr), Adam({"W": w}, cfg.critic_lr)
    critic = {"W": w}
    best = val_loss(theta, critic["W"], x_va, y_va, var, cfg)
    best_state = ({k: v.copy() for k, v in theta.items()}, critic["W"].copy())
    best_epoch, since, history = 0, 0, []
    n, b = x_tr.shape[0], cfg.batch_size
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        perm = order.permutation(n)
        for start in range(0, n, b):
            idx = perm[start:start + b]
            if idx.size < 2:
                continue
            xb, yb = x_tr[idx], y_tr[idx]
            mapped = map_forward(theta, xb)  # θ does not change before the map step: one forward serves both steps
            if cfg.info != "none" and cfg.critic_trainable and cfg.lambda_info > 0:
                _, g_w, _ = info_term(cfg.info, critic["W"], mapped[0], yb)
                critic_opt.step(critic, {"W": g_w - 2 * RIDGE * critic["W"]}, sign=+1.0)
            probes = unit_probes(probe_gen, cfg.curv_probes, idx.size, d) if "w1" in theta else None
            _, grads, _ = pair_objective(theta, critic["W"], xb, yb, var, cfg, probes, mapped)
            map_opt.step(theta, grads)
        current = val_loss(theta, critic["W"], x_va, y_va, var, cfg)
        history.append({"epoch": epoch, **current})
        if current["total"] < best["total"] - 1e-6 * abs(best["total"]):
            best, best_epoch, since = current, epoch, 0
            best_state = ({k: v.copy() for k, v in theta.items()}, critic["W"].copy())
        else:
            since += 1
            if since >= cfg.patience:
                break
    return FitResult(best_state[0], best_state[1], epoch, best_epoch, best, history)


def moment_map(x: np.ndarray, y: np.ndarray) -> dict:
    """The pair-free ``moment`` arm: f_j(x) = μ_Y,j + (σ_Y,j/σ_X,j)(x_j − μ_X,j) (MSA-T10). [reconstructed]"""
    sx = x.std(0)
    ratio = y.std(0) / np.where(sx > 0, sx, 1.0)
    return {"A": np.diag(ratio), "c": y.mean(0) - x.mean(0) * ratio}
