"""VDS λ (A4) and the clustering losses: hand-written backward == autograd in float64 (tests/gradcheck.py).

Drawn B, d, d_h, MLP ratio, flags (sigmoid on/off, ``ca_pool``), loss kinds ``sm``, ``mm``, ``sm_gt``,
x-exp and code-faithful; rel. error ≤ 1e-8. Also: size (33/8)d² + 2d, determinism of training,
the NaN stop, and the masked pooling of A3 against a per-example loop (padded batches included).
"""

from __future__ import annotations

import autograd
import numpy as np
import pytest
from gradcheck import assert_grads_match  # noqa: E402  (tests/ is on sys.path)
from hypothesis import given
from hypothesis import strategies as st

from reference.mechanisms.vds import (
    ClusteringDiverged,
    Representations,
    VDSConfig,
    cluster_loss,
    cluster_loss_backward,
    cosine_backward,
    cosine_forward,
    init_lambda,
    lambda_backward,
    lambda_forward,
    lambda_size,
    pool_states,
    train_lambda,
)

seeds = st.integers(0, 2**32 - 1)


def _inputs(rs, b, d):
    return rs.standard_normal((b, d)), rs.standard_normal((b, d)) + 0.5, rs.standard_normal((b, d))


@given(seeds, st.integers(1, 6), st.integers(1, 9), st.integers(1, 4), st.integers(1, 3), st.booleans(), st.booleans())
def test_vds_lambda_backward_matches_autograd(seed, b, d, d_h, ratio, sigmoid, last):
    rs = np.random.default_rng(seed)
    params = init_lambda(d, d_h, ratio, seed=seed)
    params["vds.ln.g"] = rs.standard_normal(d)  # away from the init's γ = 1, β = 0
    params["vds.ln.b"] = rs.standard_normal(d)
    A, Mx, R = _inputs(rs, b, d)
    if last:  # ca_pool="last": a = m = r are one array; its gradient is the sum of the three
        A = Mx = R
    dY = rs.standard_normal((b, d))
    names = list(params)

    def scalar(values):
        p = dict(zip(names, values[:-3]))
        y, _ = lambda_forward(p, *values[-3:], ca_sigmoid=sigmoid)
        return (y * dY).sum()

    oracle = autograd.grad(scalar)([params[n] for n in names] + [A, Mx, R])
    _, cache = lambda_forward(params, A, Mx, R, ca_sigmoid=sigmoid)
    grads, dA, dMx, dR = lambda_backward(cache, dY)
    ours = {**grads, "A": dA, "Mx": dMx, "R": dR}
    assert_grads_match(ours, dict(zip(names + ["A", "Mx", "R"], oracle)))


@given(seeds, st.integers(1, 6), st.integers(2, 6), st.integers(2, 5), st.sampled_from(["sm", "mm", "sm_gt"]),
       st.sampled_from(["ce", "exp", "code_faithful"]), st.floats(0.1, 3.0), st.booleans())
def test_vds_losses_backward_matches_autograd(seed, b, d, K, kind, mode, tau, bias):
    if kind == "sm_gt" and mode != "ce":
        return  # no logits over 𝓛 to exponentiate (a config error)
    rs = np.random.default_rng(seed)
    Y = rs.standard_normal((b, d))
    S, W = rs.standard_normal((K, d)), rs.standard_normal((K, d))
    bb = rs.standard_normal(K) if bias else None
    labels = rs.integers(0, K, b)
    kw = dict(kind=kind, S=S, W=W, b=bb, tau=tau, exp=mode != "ce", reduce="sum" if mode == "code_faithful" else "mean")
    oracle = autograd.grad(lambda y: cluster_loss(y, labels, **kw)[0])(Y)
    loss, cache = cluster_loss(Y, labels, **kw)
    assert_grads_match({"Y": cluster_loss_backward(cache)}, {"Y": oracle})
    # The value, from the §2.5 formulas written out in plain NumPy.
    c = (Y / np.linalg.norm(Y, axis=1, keepdims=True)) @ (S / np.linalg.norm(S, axis=1, keepdims=True)).T
    rows = np.arange(b)
    if kind == "sm_gt":
        ref = np.mean(1.0 - c[rows, labels])
    else:
        z = (c if kind == "sm" else Y @ W.T + (bb if bias else 0.0)) / tau
        if mode != "ce":  # x-exp: q = softmax(z) used as logits
            z = np.exp(z - z.max(1, keepdims=True))
            z = z / z.sum(1, keepdims=True)
        ce = np.log(np.exp(z).sum(1)) - z[rows, labels]
        ref = ce.sum() if mode == "code_faithful" else ce.mean()
    assert np.isclose(loss, ref, rtol=1e-10, atol=1e-12)


@given(seeds, st.integers(1, 5), st.integers(2, 6), st.integers(1, 4))
def test_vds_cosine_backward_matches_autograd(seed, b, d, K):
    rs = np.random.default_rng(seed)
    U, S, dC = rs.standard_normal((b, d)), rs.standard_normal((K, d)), rs.standard_normal((b, K))
    oracle = autograd.grad(lambda u, s: (cosine_forward(u, s)[0] * dC).sum(), argnum=(0, 1))(U, S)
    dU, dS = cosine_backward(cosine_forward(U, S)[1], dC)
    assert_grads_match({"U": dU, "S": dS}, {"U": oracle[0], "S": oracle[1]})
    # (d = 1 is left out: every cosine is ±1 there, its gradient zero in theory, rounding noise on both sides.)
    # Latent-space gradient of one cosine is orthogonal to u (VDS-P7).
    assert np.all(np.abs(np.sum(dU * U, axis=1)) <= 1e-10 * np.linalg.norm(U, axis=1) * np.linalg.norm(dU, axis=1) + 1e-300)


@pytest.mark.parametrize("d", [16, 64, 768, 4096])
def test_vds_lambda_size_is_33_over_8_d_squared(d):
    cfg = VDSConfig()
    expected = 33 * d * d // 8 + 2 * d
    assert lambda_size(d, cfg.d_hidden(d), cfg.mlp_ratio) == expected
    if d <= 768:
        assert sum(p.size for p in init_lambda(d, cfg.d_hidden(d)).values()) == expected
    assert {64: 16_896 + 128, 768: 2_433_024 + 1_536, 4096: 69_206_016 + 8_192}.get(d, expected) == expected


def _toy_reps(rs, n=96, d=8, K=3):
    labels = np.arange(n) % K
    centres = rs.standard_normal((K, d)) * 2
    R = centres[labels] + rs.standard_normal((n, d))
    return Representations(R + 0.1, R + 1.0, R), labels, rs.standard_normal((K, d))


def test_vds_training_is_deterministic_and_lowers_the_loss():
    rs = np.random.default_rng(0)
    reps, labels, S = _toy_reps(rs)
    cfg = VDSConfig(epochs=20, batch_size=32, lr=3e-3, ca_reduction=4)
    a, hist_a = train_lambda(reps, labels, S, cfg, seed=1)
    b, hist_b = train_lambda(reps, labels, S, cfg, seed=1)
    c, _ = train_lambda(reps, labels, S, cfg, seed=2)
    assert hist_a == hist_b and all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert hist_a[-1] < hist_a[0]


def test_vds_nan_loss_stops_with_a_clear_error():
    rs = np.random.default_rng(1)
    reps, labels, S = _toy_reps(rs)
    bad = Representations(reps.mean, reps.max, np.full_like(reps.last, np.nan))
    with pytest.raises(ClusteringDiverged, match="epoch 1"):
        train_lambda(bad, labels, S, VDSConfig(epochs=2, ca_reduction=4), seed=0)


@given(seeds, st.integers(1, 5), st.integers(1, 7), st.integers(1, 4))
def test_vds_masked_pooling_matches_a_per_example_loop(seed, b, t, d):
    rs = np.random.default_rng(seed)
    H = rs.standard_normal((b, t, d))
    lengths = rs.integers(1, t + 1, b)
    H_padded = H.copy()
    for i, n in enumerate(lengths):
        H_padded[i, n:] = 1e6  # padding must not leak into mean or max
    reps = pool_states(H_padded, lengths)
    for i, n in enumerate(lengths):
        assert np.allclose(reps.mean[i], H[i, :n].mean(0), rtol=1e-12)
        assert np.array_equal(reps.max[i], H[i, :n].max(0))
        assert np.array_equal(reps.last[i], H[i, n - 1])
