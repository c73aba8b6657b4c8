"""One seed of the alignment experiment: split, standardise, arms, estimator panel, bootstraps (§3 A2, A4–A6). [reconstructed]

:func:`seed_job` is the job :func:`reference.parallel.run_jobs` runs once per seed; it is a pure
function of its payload (features, config, seed), so results do not depend on the workers.

Arms (A6): ``none`` (identity), ``procrustes`` (A3 only), ``moment`` (per-coordinate moment
match, pair-free, MSA-T10), ``msma`` (linear map, trained), ``msma_mlp`` (MLP map), ``control``
(linear map trained on shuffled pairs). GL is f_IL(f_GI(h_G)) against h_L.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.mechanisms.msma.config import MSMAConfig
from reference.mechanisms.msma.fit import fit_pair, moment_map, unit_probes
from reference.mechanisms.msma.maps import curvature, init_map, map_forward, procrustes
from reference.mechanisms.msma.scales import PAIRS, SCALES, standardise, standardise_fit
from reference.metrics.estimators import EstimatorSettings, mi_infonce, mi_mine, mine_unshuffled
from reference.metrics.information import kl_diag, kl_gauss, mi_gauss, mi_hist, mi_ksg, pca_fit

ARMS = ("none", "procrustes", "moment", "msma", "msma_mlp", "control")
ESTIMATORS = {"kl_diag": "kl", "kl_gauss": "kl", "hist": "mi", "gauss": "mi", "ksg": "mi", "infonce": "mi", "mine": "mi",
              "cca1": "sim"}
BOOT_ESTIMATORS = ("kl_diag", "kl_gauss", "hist", "gauss")
BOOT_ARMS = ("none", "msma", "control")


def split_rows(n: int, sizes: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (stream 0) split of n sequences into train / val / test of the given sizes."""
    perm = np.random.default_rng([seed, 0]).permutation(n)
    a, b, c = sizes
    return perm[:a], perm[a:a + b], perm[a + b:a + b + c]


def code_critic(d_in: int, gen: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """The code's frozen critic T([x; y]): Linear(2d→512)–ReLU–Linear(512→256)–ReLU–Linear(256→1). [author-code]

    PyTorch's Linear initialisation distribution, U(±1/√fan_in) for weights and biases.
    """
    layers, fan = [], 2 * d_in
    for out in (512, 256, 1):
        bound = 1 / np.sqrt(fan)
        layers.append((gen.uniform(-bound, bound, (fan, out)), gen.uniform(-bound, bound, out)))
        fan = out
    return layers


def code_critic_values(layers: list, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """T on the joint rows [x_b; y_b] -> (N,)."""
    h = np.hstack([x, y])
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h[:, 0]


def panel(u_tr: Any, y_tr: Any, u_te: np.ndarray, y_te: np.ndarray, cfg: MSMAConfig, seed: int,
          only: tuple[str, ...] | None = None) -> dict[str, float]:
    """A5: every §5 estimator on the test rows (PCA and critics fitted on the train rows).

    With ``only`` ⊆ {kl_diag, kl_gauss, hist, gauss}, u_tr and y_tr may be PCA triples fitted once (the bootstrap).
    """
    est = EstimatorSettings(dim=cfg.est_dim, init=cfg.est_init, steps=cfg.est_steps, lr=cfg.est_lr, batch=cfg.est_batch,
                            l2=cfg.est_l2, nce_batch=min(cfg.nce_batch, u_te.shape[0]))
    want = only or tuple(ESTIMATORS)
    out: dict[str, float] = {}
    if "kl_diag" in want:
        out["kl_diag"] = kl_diag(u_te, y_te, cfg.kl_eps)
    if "kl_gauss" in want:
        out["kl_gauss"] = kl_gauss(u_te, y_te, cfg.kl_dim)
    if "hist" in want:
        out["hist"] = mi_hist(u_te, y_te, cfg.hist_bins)
    if "gauss" in want or "cca1" in want:
        g = mi_gauss(u_te, y_te, cfg.gauss_dim, cfg.gauss_bias_correct, fit_x=u_tr, fit_y=y_tr)
        out["gauss"], out["cca1"] = g["mi"], g["cca1"]
    if "ksg" in want:
        out["ksg"] = mi_ksg(u_te, y_te, cfg.ksg_k, cfg.ksg_dim, cfg.ksg_max_rows, cfg.ksg_jitter, seed=[seed, 6])
    if "infonce" in want:
        out["infonce"] = mi_infonce(u_tr, y_tr, u_te, y_te, est, seed=[seed, 3])
    if "mine" in want:
        out["mine"] = mi_mine(u_tr, y_tr, u_te, y_te, est, seed=[seed, 3])
    return {k: out[k] for k in want if k in out}


def _apply(theta: dict, rows: np.ndarray) -> np.ndarray:
    return map_forward(theta, rows)[0]


def fit_arms(feats: dict[str, dict[str, np.ndarray]], cfg: MSMAConfig, seed: int, arms: tuple[str, ...]) -> tuple[dict, list]:
    """Maps of every arm and pair: {arm: {pair: θ}}, and the training records."""
    maps: dict[str, dict] = {}
    training = []
    tr, va = feats["train"], feats["val"]
    for arm in arms:
        maps[arm] = {}
        for code, (pair, (src, tgt)) in enumerate(PAIRS.items()):
            x, y = tr[src], tr[tgt]
            if arm == "none":
                theta = init_map("identity", x.shape[1], np.random.default_rng(0))
            elif arm == "procrustes":
                p = procrustes(x, y, scale=cfg.procrustes_scale, proper=cfg.proper_rotation)
                theta = {"A": p["A"], "c": p["c"]}
            elif arm == "moment":
                theta = moment_map(x, y)
            else:
                arm_cfg = cfg.replace(map="mlp" if arm == "msma_mlp" else "linear", shuffle_pairs=arm == "control")
                fit = fit_pair(x, y, va[src], va[tgt], arm_cfg, seed, code)
                theta = fit.theta
                training.append({"seed": seed, "arm": arm, "pair": pair, "epochs_run": fit.epochs_run,
                                 "best_epoch": fit.best_epoch, "val_loss": fit.val["total"], "geo": fit.val["geo"],
                                 "info": fit.val["info"], "curv": _curv_trace(fit, va[src], arm_cfg, seed)})
            maps[arm][pair] = theta
    return maps, training


def _curv_trace(fit: Any, x_va: np.ndarray, cfg: MSMAConfig, seed: int) -> dict | None:
    """L_curv on the val rows at the Procrustes start (W₂ = 0: exactly 0) and at the restored map; None for affine maps."""
    if "w1" not in fit.theta:
        return None
    probes = unit_probes(np.random.default_rng([seed, 7, 99]), cfg.curv_probes, x_va.shape[0], x_va.shape[1])
    start = dict(fit.theta, w2=np.zeros_like(fit.theta["w2"]))
    return {"start": curvature(start, x_va, probes, cfg.curv_eps)[0], "end": curvature(fit.theta, x_va, probes, cfg.curv_eps)[0]}


def mapped(maps: dict, arm: str, split: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{pair: (mapped source rows, target rows)} of one split, GL included."""
    gi, il = maps[arm]["GI"], maps[arm]["IL"]
    return {"GI": (_apply(gi, split["global"]), split["intermediate"]),
            "IL": (_apply(il, split["intermediate"]), split["local"]),
            "GL": (_apply(il, _apply(gi, split["global"])), split["local"])}


def seed_job(payload: dict) -> dict:
    """All of one seed: split, A2, arms, panels, bootstraps, H3/H4 sanity values. Pure in its payload."""
    cfg: MSMAConfig = payload["cfg"]
    seed: int = payload["seed"]
    features: dict[str, np.ndarray] = payload["features"]
    arms: tuple[str, ...] = payload["arms"]
    n = features["local"].shape[0]
    idx = dict(zip(("train", "val", "test"), split_rows(n, payload["sizes"], seed)))
    feats = {name: {s: features[s][rows] for s in SCALES} for name, rows in idx.items()}
    if cfg.standardize == "joint":
        mu, sd = standardise_fit(feats["train"])
        feats = {name: {s: standardise(v, mu, sd) for s, v in f.items()} for name, f in feats.items()}
    maps, training = fit_arms(feats, cfg, seed, arms)
    rows, boot = [], []
    for arm in arms:
        test, train = mapped(maps, arm, feats["test"]), mapped(maps, arm, feats["train"])
        for pair in ("GI", "IL", "GL"):
            (u_tr, y_tr), (u_te, y_te) = train[pair], test[pair]
            values = panel(u_tr, y_tr, u_te, y_te, cfg, seed)
            rows.append({"seed": seed, "arm": arm, "pair": pair, "values": values})
            if arm in BOOT_ARMS and payload["bootstrap"] > 0:
                boot.append({"arm": arm, "pair": pair, "draws": _bootstrap(u_tr, y_tr, u_te, y_te, cfg, seed,
                                                                         payload["bootstrap"])})
    sanity = _sanity(maps, feats, cfg, seed, arms)
    return {"seed": seed, "rows": rows, "boot": boot, "training": training, "sanity": sanity,
            "d": int(features["local"].shape[1])}


def _bootstrap(u_tr, y_tr, u_te, y_te, cfg: MSMAConfig, seed: int, n_boot: int) -> dict[str, list[float]]:
    """``n_boot`` resamples of the test rows (stream 5; the same resamples for every arm) -> per estimator values."""
    gen = np.random.default_rng([seed, 5])
    n = u_te.shape[0]
    fx, fy = pca_fit(u_tr, cfg.gauss_dim), pca_fit(y_tr, cfg.gauss_dim)  # fitted once: the train rows do not change
    out: dict[str, list[float]] = {k: [] for k in BOOT_ESTIMATORS}
    for _ in range(n_boot):
        r = gen.integers(0, n, n)
        v = panel(fx, fy, u_te[r], y_te[r], cfg, seed, only=BOOT_ESTIMATORS)
        for k in BOOT_ESTIMATORS:
            out[k].append(v[k])
    return out


def _sanity(maps: dict, feats: dict, cfg: MSMAConfig, seed: int, arms: tuple[str, ...]) -> dict:
    """H3: the moment arm's train-split kl_diag; H4: the code critic's unshuffled MINE on the msma GI test pair."""
    out: dict[str, Any] = {}
    if "moment" in arms:
        tr = mapped(maps, "moment", feats["train"])
        out["moment_train_kl"] = {p: kl_diag(u, y, 0.0) for p, (u, y) in tr.items() if p != "GL"}
    arm = "msma" if "msma" in arms else arms[0]
    u, y = mapped(maps, arm, feats["test"])["GI"]
    critic = code_critic(u.shape[1], np.random.default_rng([seed, 8]))
    out["mine_unshuffled"] = mine_unshuffled(code_critic_values(critic, u, y))
    cond = {p: float(np.linalg.cond(maps[arm][p]["A"])) for p in ("GI", "IL")}
    out["cond_A"] = cond
    return out
