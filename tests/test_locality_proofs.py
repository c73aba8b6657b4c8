"""LOC theorems (proofs/locality/): registered, passing through ``clearform proofs``, and sharp.

The registry check runs ``clearform proofs --json --mechanism LOC`` with the spec's example
counts scaled by the Hypothesis profile: 200 per theorem under ``dev`` (the default), 500
under ``ci``, 5,000 under ``thorough``. The explicit tests below show each threshold is
where the theorem puts it: instances just below it break the conclusion, drawn instances
above it never do.
"""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs.locality import LOC_IDS
from proofs.locality.bounds import T5_COUNTER, t5_counter_instance
from proofs.locality.concentration import t2_threshold
from proofs.locality.rules import t8_monte_carlo
from proofs.locality.strategies import inverse_logits, penalty_of
from proofs.registry import all_theorems
from reference.cli import main
from reference.mechanisms.locality import attention_rows

# max_examples of the active profile -> examples per theorem (§4: ≥ 200 dev, 500 ci, 5,000 thorough)
EXAMPLES = {20: 200, 40: 500, 400: 5000}


def test_locality_theorems_are_registered_with_provenance():
    loc = [t for t in all_theorems() if t.mechanism == "LOC"]
    assert tuple(t.id for t in loc) == LOC_IDS
    assert all(t.provenance == "[reconstructed]" and t.symbolic and t.numeric for t in loc)


def test_locality_scopes_do_not_overclaim():
    """Issue 13: a symbolic pass on a lemma or one instance must not read as a proof of the statement."""
    kinds = {t.id: t.scope.split(":")[0] for t in all_theorems() if t.mechanism == "LOC"}
    assert kinds == {
        "LOC-1": "lemma", "LOC-2": "instance", "LOC-3": "lemma", "LOC-4": "general", "LOC-5": "lemma",
        "LOC-6": "lemma", "LOC-7": "lemma", "LOC-8": "instance", "LOC-9": "lemma",
    }


def test_locality_theorems_pass_in_clearform_proofs(capsys):
    examples = EXAMPLES.get(settings.default.max_examples, 10 * settings.default.max_examples)
    code = main(["proofs", "--json", "--mechanism", "LOC", "--examples", str(examples)])
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == list(LOC_IDS)
    for r in rows:
        assert (r["symbolic"], r["numeric"]) == ("pass", "pass"), r
        assert r["examples"] == examples, r  # every requested example ran: no strategy rejects or runs dry
    assert code == 0


# --------------------------------------------------------------------------- LOC-T2: exact, sharp

def vertex_and_objective(u, blocks, target, kappa):
    vertex = np.zeros_like(u)
    vertex[np.flatnonzero(blocks == target)[np.argmax(u[blocks == target])]] = 1.0
    return vertex, lambda a: float(-u @ a + kappa * penalty_of(a, blocks, target))


def test_locality_t2_just_below_and_above_the_threshold():
    """u = (0 | 1, 1): G* = {0}, one off block of two keys with gain 1 each; w = √2, so κ* = 1."""
    u, blocks = np.array([0.0, 1.0, 1.0]), np.array([0, 1, 1])
    kappa_star, *_ = t2_threshold(u, blocks, 0, "sqrt_size")
    assert math.isclose(kappa_star, 1.0)
    below = (1 - 1e-3) * kappa_star
    vertex, f = vertex_and_objective(u, blocks, 0, below)
    assert f(np.array([0.0, 0.5, 0.5])) < f(vertex)  # just below: the off block wins
    vertex, f = vertex_and_objective(u, blocks, 0, (1 + 1e-3) * kappa_star)
    grid = [np.array([1 - x - y, x, y]) for x in np.linspace(0, 1, 41) for y in np.linspace(0, 1, 41) if x + y <= 1]
    assert min(f(a) - f(vertex) for a in grid) >= 0.0  # just above: the vertex of G* is the minimiser


@given(st.integers(0, 2**32 - 1), st.integers(3, 30), st.floats(1e-3, 2.0))
def test_locality_t2_above_the_threshold_the_vertex_always_wins(seed, n, excess):
    rs = np.random.default_rng(seed)
    u = rs.standard_normal(n) * 3
    blocks = np.sort(rs.integers(0, 3, n))
    blocks[0], blocks[-1] = 0, 2
    target = int(rs.integers(0, 3)) if (blocks == 1).any() else 0
    kappa_star, *_ = t2_threshold(u, blocks, target, "sqrt_size")
    vertex, f = vertex_and_objective(u, blocks, target, kappa_star + excess)
    for a in rs.dirichlet(np.full(n, 0.3), size=20):
        assert f(a) >= f(vertex) - 1e-12 * (1 + np.abs(u).max())


# --------------------------------------------------------------------------- LOC-T3: soft threshold

def tight_eps(n: int, off_logit: float, kappa: float, tau: float) -> float:
    """k* = 1, singleton off blocks at equal logits: theory mode is softmax((z − κ·off)/τ) (T3(e))."""
    z = np.r_[0.0, np.full(n - 1, off_logit)]
    off = np.arange(n) > 0
    return float(attention_rows(z[None], bias=-kappa * off[None], temperature=tau)[0][off].sum())


def kappa_delta(n: int, delta: float, tau: float, margin: float) -> float:
    return tau * math.log((n - 1) * (1 - delta) / delta) - margin


def test_locality_t3_just_below_the_threshold_the_bound_fails():
    n, tau, delta, off_logit = 20, 0.7, 0.01, -1.0
    k_delta = kappa_delta(n, delta, tau, -off_logit)
    assert tight_eps(n, off_logit, k_delta - 1e-6, tau) > delta
    assert tight_eps(n, off_logit, k_delta + 1e-6, tau) <= delta
    assert math.isclose(tight_eps(n, off_logit, k_delta, tau), delta, rel_tol=1e-9)  # tight: attained


@given(st.integers(2, 64), st.floats(-10, 0), st.floats(0.1, 5.0), st.floats(1e-6, 0.5), st.floats(0.0, 20.0))
def test_locality_t3_above_the_threshold_the_bound_always_holds(n, off_logit, tau, delta, excess):
    k_delta = kappa_delta(n, delta, tau, -off_logit)
    assert tight_eps(n, off_logit, max(k_delta, 0.0) + excess, tau) <= delta * (1 + 1e-12)


@given(st.integers(0, 2**32 - 1), st.integers(2, 40), st.floats(0.1, 5.0), st.floats(0.0, 20.0))
def test_locality_t3_exact_stationary_points_obey_the_concentration_bound(seed, n, tau, kappa):
    rs = np.random.default_rng(seed)
    blocks = np.sort(rs.integers(0, 4, n))
    target = int(blocks[0])
    log_a = rs.standard_normal(n) * 4
    a = np.exp(log_a - np.log(np.exp(log_a).sum()))
    z = inverse_logits(a, blocks, target, kappa, tau, "sqrt_size")
    on = blocks == target
    eps, rest = a[~on].sum(), a[on].sum()
    if eps == 0:
        return
    z_star = z[on].max()
    r = sum((blocks == g).sum() * math.exp(-(kappa + z_star - z[blocks == g].max()) / tau) for g in set(blocks[~on]))
    assert eps / rest <= r * (1 + 1e-9)


# --------------------------------------------------------------------------- LOC-T4: the bias dial

def test_locality_t4_exact_threshold_is_sharp():
    z = np.array([1.0, 0.5, 2.0, -1.0, 0.3])
    off = np.array([False, False, True, True, True])
    tau, beta, delta = 0.8, 4.0, 0.05
    e = np.exp(z / tau)
    lam_exact = tau / beta * math.log((1 - delta) * e[off].sum() / (delta * e[~off].sum()))

    def eps(lam):
        return float(attention_rows(z[None], bias=-lam * beta * off[None], temperature=tau)[0][off].sum())

    assert 0 < lam_exact < 1
    assert eps(lam_exact - 1e-6) > delta >= eps(lam_exact + 1e-6)


@given(st.integers(0, 2**32 - 1), st.integers(2, 64), st.floats(0.1, 5.0), st.floats(0.1, 20.0), st.floats(1e-6, 0.5),
       st.floats(0.0, 3.0))
def test_locality_t4_above_the_margin_threshold_epsilon_is_at_most_delta(seed, n, tau, beta, delta, extra):
    rs = np.random.default_rng(seed)
    z = rs.standard_normal(n) * 3
    off = rs.random(n) < 0.5
    off[0] = False
    if not off.any():
        return
    margin = z[~off].max() - z[off].max()
    lam = (tau * math.log(off.sum() * (1 - delta) / delta) - margin) / beta + extra
    lam = max(lam, 0.0)
    a = attention_rows(z[None], bias=-lam * beta * off[None], temperature=tau)[0]
    assert a[off].sum() <= delta * (1 + 1e-9)


# --------------------------------------------------------------------------- LOC-T5, T7, T8

def test_locality_t5_counter_instance_entropy_rises_with_the_dial():
    eps, h = t5_counter_instance()
    assert np.allclose(eps, T5_COUNTER["eps"], atol=5e-5) and np.allclose(h, T5_COUNTER["bits"], atol=5e-5)
    assert np.all(np.diff(h) > 0) and np.all(np.diff(eps) < 0)  # entropy up, block fidelity up
    eps_star = 1 / 65
    assert eps[0] > eps_star


def test_locality_t8_monte_carlo_matches_the_closed_form():
    rate, se = t8_monte_carlo()
    assert abs(rate - 0.1575) <= 4 * se

