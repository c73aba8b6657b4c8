"""NEU-T8 (multiplicity), NEU-T9 (top-down statistics), NEU-T10 (next layer). [classical, reconstructed]"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import sympy as sp
from hypothesis import strategies as st
from sympy.utilities.iterables import multiset_permutations

from proofs.registry import NumericCheck, Theorem, register
from reference.mechanisms.neurons.nextlayer import virtual_weights
from reference.metrics import agreement as ag

TOL = 1e-12

# =========================================================================== NEU-T8


def _t8_symbolic() -> bool:
    # instance + lemma: the spec's example in exact Rationals; i(M − i + 1) − M = (i − 1)(M − i), so M/i ≤ M − i + 1.
    p = [sp.Rational(1, 100), sp.Rational(4, 100), sp.Rational(3, 100), sp.Rational(5, 1000)]
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    q = [None] * m
    running = sp.Integer(1)
    for rank in range(m - 1, -1, -1):
        running = min(running, min(sp.Integer(1), m * p[order[rank]] / (rank + 1)))
        q[order[rank]] = running
    holm = [None] * m
    running = sp.Integer(0)
    for rank in range(m):
        running = max(running, min(sp.Integer(1), (m - rank) * p[order[rank]]))
        holm[order[rank]] = running
    ok = q == [sp.Rational(2, 100), sp.Rational(4, 100), sp.Rational(4, 100), sp.Rational(2, 100)]
    ok = ok and holm == [sp.Rational(3, 100), sp.Rational(6, 100), sp.Rational(6, 100), sp.Rational(2, 100)]
    i, big_m = sp.symbols("i M", integer=True, positive=True)
    return bool(ok and sp.expand(i * (big_m - i + 1) - big_m - (i - 1) * (big_m - i)) == 0)


@st.composite
def _pvectors(draw: st.DrawFn) -> np.ndarray:
    m = draw(st.integers(1, 200))
    seed = draw(st.integers(0, 2**32 - 1))
    rs = np.random.default_rng(seed)
    p = rs.uniform(0, 1, m) ** draw(st.sampled_from([1.0, 3.0, 8.0]))
    if draw(st.booleans()):
        p = np.round(p, 2)  # ties
    return p


def _t8_numeric(p: np.ndarray) -> None:
    m = p.size
    q, h = ag.bh(p), ag.holm(p)
    assert np.all(p <= q + TOL) and np.all(q <= h + TOL) and np.all(h <= np.minimum(1, m * p) + TOL), \
        "T8: p ≤ q ≤ p̃ ≤ min(1, Mp) fails"
    order = np.argsort(p, kind="stable")
    loop = np.empty(m)
    run = 0.0
    for rank, idx in enumerate(order):
        run = max(run, min(1.0, (m - rank) * p[idx]))
        loop[idx] = run
    assert np.all(np.abs(h - loop) <= TOL), "T8(a): Holm ≠ the step-down loop"
    for alpha in (0.0123, 0.0517, 0.1033, 0.2467):  # off the ties' boundaries M·p/i, which float rounding decides
        sp_sorted = p[order]
        hits = np.flatnonzero(sp_sorted <= np.arange(1, m + 1) * alpha / m)
        step_up = set() if not hits.size else set(np.flatnonzero(p <= sp_sorted[hits[-1]]))
        assert set(np.flatnonzero(q <= alpha)) == step_up, f"T8(b): {{q ≤ {alpha}}} is not the step-up set"


register(Theorem(
    id="NEU-8", mechanism="NEU", provenance="[classical]",
    statement="Holm p̃ and BH q satisfy p ≤ q ≤ p̃ ≤ min(1, Mp); {q ≤ α} is the Benjamini–Hochberg step-up set",
    scope="instance: the spec's 4-value example; lemma: i(M − i + 1) − M = (i − 1)(M − i)",
    symbolic=_t8_symbolic, numeric=NumericCheck(_t8_numeric, _pvectors()),
))

# =========================================================================== NEU-T9


def _t9_symbolic() -> bool:
    # lemma: SS_total = SS_between + SS_within for two symbolic groups of two values.
    x1, x2, y1, y2 = sp.symbols("x1 x2 y1 y2", real=True)
    grand = (x1 + x2 + y1 + y2) / 4
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    total = sum((v - grand) ** 2 for v in (x1, x2, y1, y2))
    between = 2 * (mx - grand) ** 2 + 2 * (my - grand) ** 2
    within = (x1 - mx) ** 2 + (x2 - mx) ** 2 + (y1 - my) ** 2 + (y2 - my) ** 2
    return bool(sp.expand(total - between - within) == 0)


@st.composite
def _groups(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    k = draw(st.integers(2, 5))
    sizes = draw(st.lists(st.integers(1, 8), min_size=k, max_size=k))
    labels = np.concatenate([np.full(s, i) for i, s in enumerate(sizes)])
    grid = draw(st.booleans())
    # continuous values on a 10⁻⁶ grid: no magnitudes whose squares underflow (η² needs Σ(ā − ā̄)² > 0 to be exact)
    values = draw(st.lists(st.integers(0, 4) if grid else st.integers(-3 * 10**6, 3 * 10**6).map(lambda v: v / 10**6),
                           min_size=labels.size, max_size=labels.size))
    return np.array(values, dtype=np.float64), labels


def _t9_numeric(case: tuple[np.ndarray, np.ndarray]) -> None:
    x, lab = case
    eta = ag.eta_squared(x, lab)
    assert -TOL <= eta <= 1 + TOL, "T9(a): η² out of range"
    means = [x[lab == g].mean() for g in np.unique(lab)]
    if np.ptp(means) == 0:
        assert eta <= TOL, "T9(a): equal means but η² > 0"
    const_in = all(np.ptp(x[lab == g]) == 0 for g in np.unique(lab))
    if const_in and np.ptp(x) > 0:
        assert abs(eta - 1) <= TOL, "T9(a): constant within categories but η² < 1"
    groups = [g for g in np.unique(lab) if (lab == g).sum() >= 2]
    for g, h in itertools.combinations(np.unique(lab), 2):
        assert abs(ag.prob_superiority(x[lab == g], x[lab == h]) + ag.prob_superiority(x[lab == h], x[lab == g]) - 1) <= TOL
    ii = ag.interleaving_index(x, lab)["interleave"]
    if len(groups) >= 2:
        assert -TOL <= ii <= 1 + TOL, "T9(c): II out of range"
        ps = [ag.prob_superiority(x[lab == g], x[lab == h]) for g, h in itertools.combinations(groups, 2)]
        assert (abs(ii) <= TOL) == all(p in (0.0, 1.0) for p in ps), "T9(c): II = 0 iff every pair separated"
        assert (abs(ii - 1) <= TOL) == all(abs(p - 0.5) <= TOL for p in ps), "T9(c): II = 1 iff every PS = ½"
    if x.size <= 8:  # (d) E[PS_gh] = ½ over every arrangement of the labels on ā (= every permutation of ā)
        g, h = np.unique(lab)[:2]
        total, count = 0, 0
        for arr in multiset_permutations(list(lab)):
            arr = np.array(arr)
            xg, xh = x[arr == g], x[arr == h]
            total += 2 * int((xg[:, None] > xh[None, :]).sum()) + int((xg[:, None] == xh[None, :]).sum())
            count += 1
        assert Fraction(total, 2 * xg.size * xh.size * count) == Fraction(1, 2), "T9(d): E[PS] ≠ ½"


register(Theorem(
    id="NEU-9", mechanism="NEU", provenance="[reconstructed]",
    statement="η² ∈ [0, 1] (1 iff constant inside categories, 0 iff equal means); PS_gh + PS_hg = 1; II ∈ [0, 1], 0 iff "
              "every pair is separated, 1 iff every PS = ½; E[PS] = ½ under permutations",
    scope="lemma: SS_total = SS_between + SS_within for two groups of two symbolic values",
    symbolic=_t9_symbolic, numeric=NumericCheck(_t9_numeric, _groups()),
))

# =========================================================================== NEU-T10


def _t10_symbolic() -> bool:
    # lemma (2×3 · 3×2, symbolic): the centring/scaling route equals W_out·M·W_in, and adding u𝟙ᵀ to W_out changes
    # nothing, pre- and post-LN; instance: E[Hypergeometric(N, n, K)] = K·n/N for every N ≤ 12.
    from sympy.stats import E, Hypergeometric

    d = 3
    w_out = sp.Matrix(2, d, sp.symbols("a0:6", real=True))
    w_in = sp.Matrix(d, 2, sp.symbols("b0:6", real=True))
    g1, g2 = sp.symbols("g0:3", real=True), sp.symbols("h0:3", real=True)
    u = sp.Matrix(2, 1, sp.symbols("u0:2", real=True))
    pc = sp.eye(d) - sp.ones(d, d) / d

    def route(w, gains):
        for g in gains:
            w = (w - w * sp.ones(d, 1) * sp.ones(1, d) / d) * sp.diag(*g)
        return w * w_in

    ok = True
    for gains in ((g1,), (g1, g2)):
        explicit = w_out
        for g in gains:
            explicit = explicit * pc * sp.diag(*g)
        explicit = explicit * w_in
        ok = ok and sp.expand(route(w_out, gains) - explicit) == sp.zeros(2, 2)
        ok = ok and sp.expand(route(w_out + u * sp.ones(1, d), gains) - explicit) == sp.zeros(2, 2)
    for big in range(1, 13):
        for n in range(0, big + 1):
            for k in range(0, big + 1):
                if sp.simplify(E(Hypergeometric("X", big, n, k)) - sp.Rational(k * n, big)) != 0:
                    return False
    return bool(ok)


@st.composite
def _next_cases(draw: st.DrawFn) -> tuple[int, ...]:
    return draw(st.integers(0, 2**32 - 1)), draw(st.integers(2, 12)), draw(st.integers(1, 8)), draw(st.integers(1, 8))


def _t10_numeric(case: tuple[int, ...]) -> None:
    seed, d, m1, m2 = case
    rs = np.random.default_rng(seed)
    w_out, w_in = rs.standard_normal((m1, d)) * 3, rs.standard_normal((d, m2))
    g1, g2 = rs.uniform(0.1, 2, d), rs.uniform(0.1, 2, d)
    pc = np.eye(d) - np.ones((d, d)) / d
    u = rs.standard_normal((m1, 1))
    for norm, gains in (("pre", (g1,)), ("post", (g1, g2))):
        explicit = w_out
        for g in gains:
            explicit = explicit @ pc @ np.diag(g)
        explicit = explicit @ w_in
        scale = 1e-12 * (1 + np.abs(w_out).max() * np.abs(w_in).max() * d * 4)
        got = virtual_weights(w_out, w_in, norm, gains)
        assert np.all(np.abs(got - explicit) <= scale), "T10(a): row centring/column scaling ≠ W_out M W_in"
        shifted = virtual_weights(w_out + u @ np.ones((1, d)), w_in, norm, gains)
        assert np.all(np.abs(shifted - got) <= scale * (1 + np.abs(u).max())), "T10(a): u𝟙ᵀ changed W_virt"
    assert np.allclose(virtual_weights(w_out, w_in, mode="raw"), w_out @ w_in)
    # (b)-(c): enrichment of a random K-subset in the zones of a random neuron
    big = int(rs.integers(8, 60))
    kk = int(rs.integers(1, big))
    zones = rs.integers(-1, 4, big)  # −1: outside the neuron's core set
    target = rs.choice(big, kk, replace=False)
    x = np.array([(zones[target] == z).sum() for z in range(4)])
    nz = np.array([(zones == z).sum() for z in range(4)])
    e = np.where(nz > 0, x * big / (kk * np.maximum(nz, 1)), 0.0)
    assert np.all(e >= 0) and np.all(e <= big / np.maximum(kk, np.maximum(nz, 1)) + TOL), "T10(c): E out of range"
    assert abs((nz / big) @ e - x.sum() / kk) <= TOL and x.sum() / kk <= 1 + TOL, "T10(c): Σ (n_z/N) E_z ≠ (K − x_out)/K"
    for z in range(4):
        exact = sum(Fraction(math.comb(int(nz[z]), i) * math.comb(big - int(nz[z]), kk - i), math.comb(big, kk))
                    for i in range(int(x[z]), min(int(nz[z]), kk) + 1))
        got = ag.hypergeom_sf(int(x[z]), big, int(nz[z]), kk)
        assert abs(got - float(exact)) <= 1e-10 * max(float(exact), 1e-300) + 1e-15, "T10(b): hypergeometric tail"


register(Theorem(
    id="NEU-10", mechanism="NEU", provenance="[reconstructed]",
    statement="Virtual weights by row centring and column scaling equal W_out·Π P_c diag(γ)·W_in and ignore u𝟙ᵀ added "
              "to W_out; enrichment is 1 in expectation, 0 ≤ E_jz ≤ N/max(K, n_jz), Σ_z (n_jz/N) E_jz ≤ 1",
    scope="lemma: the 2×3 · 3×2 symbolic identity, pre- and post-LN; instance: E[Hypergeometric] = Kn/N for N ≤ 12",
    symbolic=_t10_symbolic, numeric=NumericCheck(_t10_numeric, _next_cases()),
))
