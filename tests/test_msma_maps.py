"""MSA maps and objective (specs/04-msma.md §2.3, §2.4, A3, A4): Procrustes, backward passes vs autograd, training."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from proofs.msma.strategies import haar
from reference.mechanisms.msma.config import MSMAConfig
from reference.mechanisms.msma.fit import fit_pair, moment_map, pair_objective, unit_probes
from reference.mechanisms.msma.maps import (
    branch_forward,
    curvature,
    curvature_backward,
    geo_loss,
    info_term,
    init_map,
    map_backward,
    map_forward,
    procrustes,
)
from reference.metrics.information import kl_diag
from tests.gradcheck import assert_grads_match


@given(st.integers(1, 12), st.integers(0, 2**31 - 1), st.booleans())
def test_msma_procrustes_recovers_a_planted_rotation_exactly(d, seed, proper):
    gen = np.random.default_rng(seed)
    n = d + int(gen.integers(0, 60))
    a = gen.standard_normal((n, d)) * np.exp(gen.uniform(np.log(0.1), np.log(10), d))
    assume(np.linalg.cond(a - a.mean(0)) <= 1e3)
    r0 = haar(d, gen, proper=proper)
    shift = gen.normal(0, 2, d)
    p = procrustes(a, a @ r0 + shift, proper=proper)
    assert np.max(np.abs(p["R"] - r0)) <= 1e-8
    assert np.allclose(p["R"].T @ p["R"], np.eye(d), atol=1e-12)
    assert np.allclose(a @ p["A"] + p["c"], a @ r0 + shift, atol=1e-8)


def test_msma_procrustes_scale_and_proper_rotation():
    gen = np.random.default_rng(3)
    a = gen.standard_normal((50, 3))
    r0 = haar(3, gen, proper=True)
    p = procrustes(a, 2.5 * a @ r0 + 1.0, scale=True)
    assert p["s"] == pytest.approx(2.5, rel=1e-12)
    reflect = np.diag([1.0, 1.0, -1.0])
    q = procrustes(a, a @ reflect, proper=True)
    assert np.linalg.det(q["R"]) == pytest.approx(1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        procrustes(a[:2], a[:2])
    assert any("one of many" in str(w.message) for w in caught)


def _autograd_of(fn, theta):
    from autograd import grad

    names = sorted(theta)
    return {k: grad(lambda *v, k=k: fn(dict(zip(names, v))), argnum=i)(*[theta[m] for m in names]) for i, k in enumerate(names)}


@given(st.integers(2, 7), st.integers(1, 4), st.sampled_from(["sq_norm", "sq", "dist", "l2"]), st.integers(0, 2**31 - 1))
def test_msma_geo_backward_matches_autograd(n, d, kind, seed):
    gen = np.random.default_rng(seed)
    u, y, v = gen.standard_normal((n, d)), gen.standard_normal((n, d)), np.exp(gen.standard_normal(d))
    _, ours = geo_loss(kind, u, y, v)
    oracle = _autograd_of(lambda t: geo_loss(kind, t["u"], y, v)[0], {"u": u})
    assert_grads_match({"u": ours}, oracle)


@given(st.integers(2, 7), st.integers(1, 4), st.sampled_from(["infonce", "mine"]), st.integers(0, 2**31 - 1))
def test_msma_info_term_backward_matches_autograd(n, d, kind, seed):
    gen = np.random.default_rng(seed)
    u, y, w = gen.standard_normal((n, d)), gen.standard_normal((n, d)), gen.standard_normal((d, d))
    _, gw, gu = info_term(kind, w, u, y)
    oracle = _autograd_of(lambda t: info_term(kind, t["W"], t["u"], y)[0], {"W": w, "u": u})
    assert_grads_match({"W": gw, "u": gu}, oracle)


@given(st.integers(2, 6), st.integers(1, 4), st.integers(1, 6), st.booleans(), st.integers(0, 2**31 - 1))
def test_msma_map_and_curvature_backward_match_autograd(n, d, h, mlp, seed):
    gen = np.random.default_rng(seed)
    x, dy = gen.standard_normal((n, d)), gen.standard_normal((n, d))
    theta = init_map("mlp" if mlp else "linear", d, gen, x, gen.standard_normal((n, d)), hidden=h)
    if mlp:
        theta["w2"] = gen.standard_normal(theta["w2"].shape)
    u, cache = map_forward(theta, x)
    oracle = _autograd_of(lambda t: (map_forward(t, x)[0] * dy).sum(), theta)
    assert_grads_match(map_backward(theta, cache, dy), oracle)
    if mlp:
        probes = unit_probes(gen, 2, n, d)
        _, ccache = curvature(theta, x, probes, 0.05)
        branch = {k: theta[k] for k in ("w1", "b1", "w2")}

        def curv(t):
            total = 0.0
            g0 = branch_forward(t, x)[0]
            for v in probes:
                r = (branch_forward(t, x + 0.05 * v)[0] - 2 * g0 + branch_forward(t, x - 0.05 * v)[0]) / 0.05**2
                total = total + (r * r).sum()
            return total / (n * 2)

        assert_grads_match(curvature_backward(theta, ccache), _autograd_of(curv, branch))


@given(st.integers(4, 9), st.integers(1, 3), st.sampled_from(["sq_norm", "dist", "l2"]),
       st.sampled_from(["infonce", "mine", "none"]), st.integers(0, 2**31 - 1))
def test_msma_pair_objective_backward_matches_autograd(n, d, geo, info, seed):
    gen = np.random.default_rng(seed)
    x, y = gen.standard_normal((n, d)), gen.standard_normal((n, d))
    cfg = MSMAConfig(map="mlp", geo=geo, info=info, lambda_curv=0.3)
    theta = init_map("mlp", d, gen, x, y, hidden=3)
    theta["w2"] = 0.3 * gen.standard_normal(theta["w2"].shape)
    w, var = gen.standard_normal((d, d)), np.exp(gen.standard_normal(d))
    probes = unit_probes(gen, 2, n, d)
    _, ours, _ = pair_objective(theta, w, x, y, var, cfg, probes)

    assert_grads_match(ours, _autograd_of(lambda t: _total_autograd(t, w, x, y, var, cfg, probes), theta))


def _total_autograd(t, w, x, y, var, cfg, probes):
    u = map_forward(t, x)[0]
    value = cfg.lambda_geo * geo_loss(cfg.geo, u, y, var)[0]
    if cfg.info != "none":
        value = value - cfg.lambda_info * info_term(cfg.info, w, u, y)[0]
    g0 = branch_forward(t, x)[0]
    curv = 0.0
    for v in probes:
        r = (branch_forward(t, x + cfg.curv_eps * v)[0] - 2 * g0 + branch_forward(t, x - cfg.curv_eps * v)[0]) / cfg.curv_eps**2
        curv = curv + (r * r).sum()
    return value + cfg.lambda_curv * curv / (x.shape[0] * probes.shape[0])


def test_msma_affine_maps_have_no_curvature_and_w2_zero_is_procrustes():
    gen = np.random.default_rng(0)
    x, y = gen.standard_normal((40, 4)), gen.standard_normal((40, 4))
    cfg = MSMAConfig()
    lin = init_map("linear", 4, gen, x, y)
    _, _, parts = pair_objective(lin, np.zeros((4, 4)), x, y, np.ones(4), cfg, None)
    assert parts["curv"] == 0.0
    mlp = init_map("mlp", 4, gen, x, y)
    p = procrustes(x, y)
    assert np.array_equal(map_forward(mlp, x)[0], x @ p["A"] + p["c"])


def _planted(seed, n=600, d=6, noise=0.3):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((n, d)) * np.linspace(0.5, 2.0, d)
    y = np.tanh(x @ haar(d, gen)) * 1.5 + noise * gen.standard_normal((n, d)) + 0.5
    return x[:400], y[:400], x[400:500], y[400:500], x[500:], y[500:]


def test_msma_fit_pair_lowers_kl_and_beats_the_control():
    x_tr, y_tr, x_va, y_va, x_te, y_te = _planted(0)
    cfg = MSMAConfig(epochs=60, batch_size=64, map_lr=3e-3, critic_lr=3e-3)
    fit = fit_pair(x_tr, y_tr, x_va, y_va, cfg, seed=0)
    ctrl = fit_pair(x_tr, y_tr, x_va, y_va, cfg.replace(shuffle_pairs=True), seed=0)
    before = kl_diag(x_te, y_te)
    after = kl_diag(map_forward(fit.theta, x_te)[0], y_te)
    after_ctrl = kl_diag(map_forward(ctrl.theta, x_te)[0], y_te)
    assert after < 0.5 * before and after < after_ctrl
    assert fit.best_epoch >= 1 and fit.epochs_run >= fit.best_epoch
    again = fit_pair(x_tr, y_tr, x_va, y_va, cfg, seed=0)
    assert all(np.array_equal(fit.theta[k], again.theta[k]) for k in fit.theta)  # seeded


def test_msma_moment_arm_zeroes_the_diagonal_kl_without_pairs():
    gen = np.random.default_rng(2)
    x, y = gen.standard_normal((300, 5)) * 3 + 1, gen.standard_normal((300, 5)) * 0.2 - 4
    m = moment_map(x, y[gen.permutation(300)])
    assert kl_diag(map_forward(m, x)[0], y, eps=0.0) <= 1e-10
