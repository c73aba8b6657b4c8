"""MSA estimators (specs/04-msma.md §5): each against closed forms on drawn Gaussians, within the spec's tolerances."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs.msma.strategies import draw_pair, exact_moments, gauss_pairs, haar
from reference.metrics.estimators import (
    EstimatorSettings,
    critic_backward,
    critic_scores,
    dv_grad,
    dv_value,
    infonce_grad,
    infonce_value,
    mi_infonce,
    mi_mine,
    mine_unshuffled,
    zero_critic,
)
from reference.metrics.information import (
    cca_similarity,
    digamma,
    distance_correlation,
    entropy,
    gaussian_mi,
    kl_diag,
    kl_diag_moments,
    kl_gauss,
    kl_gauss_moments,
    mi_gauss,
    mi_gauss_plugin,
    mi_hist,
    mi_ksg,
    pca_scores,
)
from tests.gradcheck import assert_grads_match

# Expensive checks (a trained critic, KSG on thousands of rows) run a quarter of the profile's examples.
FEWER = settings(settings.default, max_examples=max(5, settings.default.max_examples // 4))


def test_msma_entropy_is_unchanged():
    assert entropy(np.array([0.5, 0.5]), base=2) == pytest.approx(1.0)
    assert entropy(np.array([1.0, 0.0])) == 0.0


@given(st.floats(0.01, 200.0))
def test_msma_digamma_matches_mpmath(x):
    assert abs(digamma(x) - float(mpmath.digamma(x))) <= 1e-12 * max(1.0, abs(float(mpmath.digamma(x))))


# --------------------------------------------------------------------------- KL


@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_msma_kl_diag_exact_moments(d, seed):
    gen = np.random.default_rng(seed)
    mu1, mu2 = gen.normal(0, 2, d), gen.normal(0, 2, d)
    s1, s2 = np.exp(gen.uniform(-1, 1, d)), np.exp(gen.uniform(-1, 1, d))
    a = exact_moments(300, mu1, np.diag(s1), gen)
    b = exact_moments(400, mu2, np.diag(s2), gen)
    want = kl_diag_moments(mu1, s1, mu2, s2)
    assert kl_diag(a, b, eps=0.0) == pytest.approx(want, rel=1e-10, abs=1e-13)


@given(st.integers(1, 16), st.integers(256, 2048), st.integers(0, 2**31 - 1))
def test_msma_kl_diag_random_within_tolerance(d, n, seed):
    gen = np.random.default_rng(seed)
    mu1, mu2 = gen.normal(0, 0.5, d), gen.normal(0, 0.5, d)
    s1, s2 = np.exp(gen.uniform(-0.5, 0.5, d)), np.exp(gen.uniform(-0.5, 0.5, d))
    a = mu1 + np.sqrt(s1) * gen.standard_normal((n, d))
    b = mu2 + np.sqrt(s2) * gen.standard_normal((n, d))
    k = kl_diag_moments(mu1, s1, mu2, s2)
    tol = 0.05 * k + 3 * d / n + 8 * math.sqrt(2 * (k + d / n) / n)
    assert abs(kl_diag(a, b, eps=0.0) - k) <= tol


def test_msma_kl_diag_hand_example_and_eps():
    a = np.array([[0.0], [2.0]])  # mean 1, var 1
    b = np.array([[0.0], [4.0]])  # mean 2, var 4
    want = 0.5 * (1 / 4 + 1 / 4 - 1 + math.log(4))
    assert kl_diag(a, b, eps=0.0) == pytest.approx(want, rel=1e-14)
    assert kl_diag(a, b) <= kl_diag(a, b, eps=0.0)  # T2c: a common ε never raises K


def test_msma_kl_diag_is_not_rotation_invariant_but_kl_gauss_is():
    # MSA-T2f: N(0, diag(4, 1)) vs N(0, I), both rotated by 45°.
    gen = np.random.default_rng(0)
    a = exact_moments(2000, np.zeros(2), np.diag([4.0, 1.0]), gen)
    b = exact_moments(2000, np.zeros(2), np.eye(2), gen)
    r = np.array([[1, -1], [1, 1]]) / math.sqrt(2)
    assert kl_diag(a, b, eps=0) == pytest.approx(0.5 * (3 - math.log(4)), rel=1e-10)
    assert kl_diag(a @ r, b @ r, eps=0) == pytest.approx(1.5 - math.log(2.5), rel=1e-10)
    assert kl_gauss(a @ r, b @ r, dim=2) == pytest.approx(kl_gauss(a, b, dim=2), rel=1e-8)


@given(st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_msma_kl_gauss_exact_moments(k, seed):
    gen = np.random.default_rng(seed)
    c1 = np.cov(gen.standard_normal((k + 5, k)).T, bias=True).reshape(k, k) + 0.3 * np.eye(k)
    c2 = np.cov(gen.standard_normal((k + 5, k)).T, bias=True).reshape(k, k) + 0.3 * np.eye(k)
    mu1, mu2 = gen.normal(0, 1, k), gen.normal(0, 1, k)
    a, b = exact_moments(512, mu1, c1, gen), exact_moments(600, mu2, c2, gen)
    ridge = 1e-6  # part of the estimator's definition (§5.1): ridge·tr/k·I, rotation invariant
    want = kl_gauss_moments(mu1, c1 + ridge * np.trace(c1) / k * np.eye(k), mu2, c2 + ridge * np.trace(c2) / k * np.eye(k))
    assert kl_gauss(a, b, dim=k) == pytest.approx(want, rel=1e-9, abs=1e-12)


@given(st.integers(1, 8), st.integers(512, 2048), st.integers(0, 2**31 - 1))
def test_msma_kl_gauss_random_within_tolerance(k, n, seed):
    gen = np.random.default_rng(seed)
    r1, r2 = haar(k, gen), haar(k, gen)
    c1 = r1 @ np.diag(np.exp(gen.uniform(-0.5, 0.5, k))) @ r1.T
    c2 = r2 @ np.diag(np.exp(gen.uniform(-0.5, 0.5, k))) @ r2.T
    mu1, mu2 = gen.normal(0, 0.3, k), gen.normal(0, 0.3, k)
    a = gen.multivariate_normal(mu1, c1, n)
    b = gen.multivariate_normal(mu2, c2, n)
    kk = kl_gauss_moments(mu1, c1, mu2, c2)
    tol = 0.05 * kk + 2 * k * k / n + 8 * math.sqrt(2 * (2 * kk + k * k / n) / n)
    assert abs(kl_gauss(a, b, dim=k) - kk) <= tol


# --------------------------------------------------------------------------- MI


@given(gauss_pairs(kmax=8))
def test_msma_mi_gauss_within_tolerance(pair):
    kx, ky, n = pair.x.shape[1], pair.y.shape[1], pair.x.shape[0]
    tol = 6 * math.sqrt(np.sum(pair.rho**2) / n) + 6 * math.sqrt(kx * ky) / n
    est = mi_gauss(pair.x, pair.y, dim=32)
    assert abs(est["mi"] - pair.mi) <= tol, (est["mi"], pair.mi, tol)
    assert 0.0 <= est["cca1"] <= 1.0


@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_msma_mi_gauss_exact_moments_uncorrected(kx, ky, seed):
    gen = np.random.default_rng(seed)
    a = gen.standard_normal((kx + ky + 3, kx + ky))
    cov = a.T @ a / a.shape[0] + 0.2 * np.eye(kx + ky)
    z = exact_moments(300, gen.normal(0, 1, kx + ky), cov, gen)
    want = 0.5 * (np.linalg.slogdet(cov[:kx, :kx])[1] + np.linalg.slogdet(cov[kx:, kx:])[1] - np.linalg.slogdet(cov)[1])
    assert mi_gauss(z[:, :kx], z[:, kx:], bias_correct=False)["mi"] == pytest.approx(want, rel=1e-10, abs=1e-12)
    assert mi_gauss_plugin(z[:, :kx], z[:, kx:]) == pytest.approx(want, rel=1e-10, abs=1e-12)


@FEWER
@given(gauss_pairs(kmax=2, nmin=512, nmax=2048))
def test_msma_mi_ksg_low_dim_within_tolerance(pair):
    n = pair.x.shape[0]
    est = mi_ksg(pair.x, pair.y, k=3, dim=4, seed=[0, 6])
    assert abs(est - pair.mi) <= 0.1 + 0.1 * pair.mi + 4 / math.sqrt(n), (est, pair.mi)


@FEWER
@given(gauss_pairs(kmin=3, kmax=8, nmin=512, nmax=1536))
def test_msma_mi_ksg_high_dim_upper_side(pair):
    """Spec §5 row 'ksg, k ∈ [3, 8]': Î ≤ I + 0.1 + 4/√N holds (PCA-4 only loses information, KSG is biased low).

    The row's lower side 0.25I − 0.1 − 4/√N does not hold over the spec's domain (the thorough profile found
    three counterexamples, recorded in the next test): reported, not loosened, not asserted.
    """
    n = pair.x.shape[0]
    est = mi_ksg(pair.x, pair.y, k=3, dim=4, seed=[0, 6])
    assert est <= pair.mi + 0.1 + 4 / math.sqrt(n), (est, pair.mi)


KSG_LOWER_SIDE_COUNTEREXAMPLES = (  # (k_x, k_y, ρ's, N): spec §5's KSG lower side fails on each
    (8, 7, [0, 0, 0, 0, 0, 0, 0.9492], 512),  # the dependence in one direction PCA-4 drops
    (6, 8, [0.875] * 6, 512),  # Y has two independent directions
    (7, 7, [0.875] * 7, 512),  # I = 5.08: 4 of 7 directions and KSG's low bias at high MI
)


@pytest.mark.parametrize("kx, ky, rho, n", KSG_LOWER_SIDE_COUNTEREXAMPLES)
def test_msma_ksg_lower_side_counterexamples(kx, ky, rho, n):
    pair = draw_pair(kx, ky, np.array(rho, dtype=float), n, 16, 1)
    est = mi_ksg(pair.x, pair.y, k=3, dim=4, seed=[0, 6])
    assert est <= pair.mi + 0.1 + 4 / math.sqrt(n)
    assert mi_ksg(pair.x, pair.y, k=3, dim=8, seed=[0, 6]) > est  # more components see more of the dependence


@FEWER
@given(gauss_pairs(kmax=8, nmin=1024, nmax=1536, mi_max=2.5, equal_n=True))
def test_msma_infonce_and_mine_within_tolerance(pair):
    nce = mi_infonce(pair.x, pair.y, pair.x_test, pair.y_test, seed=[0, 3])
    mine = mi_mine(pair.x, pair.y, pair.x_test, pair.y_test, seed=[0, 3])
    tol = 0.15 + 0.1 * pair.mi
    assert abs(nce - pair.mi) <= tol and nce <= math.log(256), (nce, pair.mi)
    assert abs(mine - pair.mi) <= tol, (mine, pair.mi)


@FEWER
@given(gauss_pairs(kmax=2, nmin=1024, nmax=1280, mi_max=1.0, equal_n=True))
def test_msma_infonce_and_mine_from_zero_init(pair):
    s = EstimatorSettings(init="zero", steps=500, lr=0.03)
    tol = 0.1 + 0.1 * pair.mi
    assert abs(mi_infonce(pair.x, pair.y, pair.x_test, pair.y_test, s, seed=1) - pair.mi) <= tol
    assert abs(mi_mine(pair.x, pair.y, pair.x_test, pair.y_test, s, seed=1) - pair.mi) <= tol


@given(st.floats(0.0, 0.95), st.integers(8, 32), st.integers(0, 2**31 - 1))
def test_msma_mi_hist_iid_coordinates(rho, d, seed):
    gen = np.random.default_rng(seed)
    n = max(256, 8192 // d + 1)
    x = gen.standard_normal((n, d))
    y = rho * x + math.sqrt(1 - rho * rho) * gen.standard_normal((n, d))
    i, m = gaussian_mi([rho]), n * d
    assert -0.03 - 0.02 * i <= mi_hist(x, y) - i <= 0.03 + 2048 / m


def test_msma_mi_hist_hand_example():
    # two values per side, perfectly coupled: MI = ln 2 (bin 0 = the minimum, the maximum in the last bin)
    x = np.array([[0.0], [1.0], [0.0], [1.0]])
    assert mi_hist(x, x, n_bins=4) == pytest.approx(math.log(2), abs=1e-8)
    assert mi_hist(x, x[::-1] * 0 + np.array([[0.0], [0.0], [1.0], [1.0]]), n_bins=4) == pytest.approx(0.0, abs=1e-8)


# --------------------------------------------------------------------------- bounds and gradients


@given(st.integers(2, 64), st.floats(0.1, 50.0), st.integers(0, 2**31 - 1))
def test_msma_infonce_cap_and_unshuffled_sign(n, scale, seed):
    s = np.random.default_rng(seed).uniform(-scale, scale, (n, n))
    assert infonce_value(s) <= math.log(n) + 1e-12
    assert mine_unshuffled(np.diag(s)) <= 1e-12


@given(st.integers(2, 9), st.integers(1, 4), st.integers(1, 4), st.sampled_from(["infonce", "mine"]),
       st.integers(0, 2**31 - 1))
def test_msma_critic_backward_matches_autograd(n, kx, ky, kind, seed):
    import autograd.numpy as anp
    from autograd import grad

    gen = np.random.default_rng(seed)
    x, y = gen.standard_normal((n, kx)), gen.standard_normal((n, ky))
    theta = {k: gen.standard_normal(v.shape) for k, v in zero_critic(kx, ky, kind).items()}
    value = infonce_value if kind == "infonce" else dv_value
    g_s = infonce_grad if kind == "infonce" else dv_grad
    names = sorted(theta)

    def f(*vals):
        return value(critic_scores(dict(zip(names, vals)), anp.asarray(x), anp.asarray(y)))

    oracle = {k: grad(f, argnum=i)(*[theta[m] for m in names]) for i, k in enumerate(names)}
    ours = critic_backward(theta, x, y, g_s(critic_scores(theta, x, y)))
    assert_grads_match(ours, oracle)


def test_msma_similarity_diagnostics_known_answers():
    gen = np.random.default_rng(0)
    x = gen.standard_normal((400, 5))
    r = haar(5, gen)
    assert distance_correlation(x, 2.5 * x @ r + 3.0) == pytest.approx(1.0, abs=1e-12)
    # Spec §5.6 says ≤ 0.1 for independent d ≤ 8 at 1,024 rows; the V-statistic's bias gives 0.17 at d = 8
    # (reported), so the check runs where it holds, d ≤ 2.
    assert distance_correlation(gen.standard_normal((1024, 2)), gen.standard_normal((1024, 2))) <= 0.1
    assert cca_similarity(x, x @ r) == pytest.approx(1.0, abs=1e-10)


def test_msma_pca_scores_sign_rule_and_scale():
    gen = np.random.default_rng(1)
    x = gen.exponential(size=(500, 3)) @ haar(3, gen)
    s = pca_scores(x, None, 3)
    assert np.allclose(s.std(0), 1.0) and np.all(np.sum(s**3, 0) > 0)
    assert np.allclose(np.abs(pca_scores(-x, None, 3)), np.abs(s))


def test_msma_estimators_refuse_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        kl_diag(np.array([[np.nan]]), np.ones((3, 1)))
    with pytest.raises(ValueError, match="rows"):
        mi_gauss(np.ones((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="k = "):
        mi_ksg(np.ones((3, 1)), np.ones((3, 1)), k=3)


def test_msma_draw_pair_is_seeded():
    a, b = draw_pair(2, 3, np.array([0.5, 0.2]), 100, 50, 7), draw_pair(2, 3, np.array([0.5, 0.2]), 100, 50, 7)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y_test, b.y_test) and a.mi == pytest.approx(gaussian_mi([0.5, 0.2]))
