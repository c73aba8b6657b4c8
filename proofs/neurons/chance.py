"""NEU-T4 (chance level), NEU-T5 (per-zone homogeneity), NEU-T6 (additivity), NEU-T7 (valid p-values)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import sympy as sp
from hypothesis import strategies as st
from sympy.utilities.iterables import multiset_permutations

from proofs.neurons.strategies import LabelPair, SmallTable, label_pairs, small_tables
from proofs.registry import NumericCheck, Theorem, register
from reference.mechanisms.neurons.statistics import neuron_tests
from reference.mechanisms.neurons.zones import core_zones
from reference.metrics import agreement as ag

TOL = 1e-12


@lru_cache(maxsize=256)
def _arrangements(cats: tuple[int, ...]) -> np.ndarray:
    """Every distinct arrangement of the multiset ``cats`` (A, n): uniform under a uniform permutation."""
    return np.array(list(multiset_permutations(list(cats))), dtype=np.int64)


def _enumerated(case: SmallTable) -> tuple[np.ndarray, np.ndarray]:
    arr = _arrangements(tuple(int(x) for x in case.cats))
    zones = np.broadcast_to(case.zones, arr.shape)
    return arr, ag.contingency(zones, arr, int(case.zones.max()) + 1, int(case.cats.max()) + 1)


def expected_mi(a: np.ndarray, b: np.ndarray) -> float:
    """E[MI] under fixed margins: Σ_ij Σ_x (x/n) ln(nx/(a_i b_j)) Hyp(x; n, a_i, b_j) (Vinh, Epps & Bailey 2010)."""
    n = int(a.sum())
    total = 0.0
    for ai in a:
        for bj in b:
            for x in range(max(1, int(ai + bj - n)), int(min(ai, bj)) + 1):
                p = math.comb(int(bj), x) * math.comb(n - int(bj), int(ai) - x) / math.comb(n, int(ai))
                total += (x / n) * math.log(n * x / (ai * bj)) * p
    return total


# =========================================================================== NEU-T4


def _t4_symbolic() -> bool:
    # lemma: the hypergeometric factorial moment E[X(X−1)] = a(a−1)b(b−1)/(n(n−1)) for every (n, a, b), n ≤ 8, exactly;
    # and Σ_ij E[n_ij²]/(a_i b_j) = 1 + (r−1)(k−1)/(n−1) for r = 2, k = 3 with symbolic margins.
    from sympy.stats import E, Hypergeometric

    for n in range(2, 9):
        for a in range(0, n + 1):
            for b in range(1, n + 1):
                x = Hypergeometric("X", n, b, a)
                if sp.simplify(E(x * (x - 1)) - sp.Rational(a * (a - 1) * b * (b - 1), n * (n - 1))) != 0:
                    return False
    n, a1, b1, b2 = sp.symbols("n a1 b1 b2", positive=True)
    rows, cols = [a1, n - a1], [b1, b2, n - b1 - b2]
    s = sum(((n - ai) * (n - bj) / (n**2 * (n - 1)) + ai * bj / n**2) for ai in rows for bj in cols)
    return bool(sp.simplify(s - (1 + 2 / (n - 1))) == 0)


def _t4_numeric(case: SmallTable) -> None:
    arr, tables = _enumerated(case)
    n = case.zones.size
    a, b = tables[0].sum(1), tables[0].sum(0)
    r, k = a.size, b.size
    s, sa, sb, pairs = ag.pair_counts(tables)
    assert abs(s.mean() - sa[0] * sb[0] / pairs[0]) <= TOL * max(1, s.mean()), "T4(a): E[S] ≠ S_a S_b/C(n, 2)"
    m = (sa[0] + sb[0]) / 2
    if m > sa[0] * sb[0] / pairs[0]:
        assert abs(ag.ari(tables).mean()) <= 1e-12, "T4(a): E[ARI] ≠ 0"
    hcat, assoc, pi2 = ag.zone_association(tables)
    ok = a >= 2
    assert np.all(np.abs(hcat[:, ok].mean(0) - pi2[0]) <= TOL), "T4(b): E[H_cat] ≠ π₂"
    if pi2[0] < 1:
        assert np.all(np.abs(assoc[:, ok].mean(0)) <= TOL), "T4(b): E[A_z] ≠ 0"
    ex2 = n * (r - 1) * (k - 1) / (n - 1)
    assert abs(ag.chi2(tables).mean() - ex2) <= 1e-10 * ex2, "T4(c): E[χ²] ≠ n(r−1)(k−1)/(n−1)"
    v2 = ag.cramers_v(tables) ** 2
    assert abs(v2.mean() - (max(r, k) - 1) / (n - 1)) <= 1e-10, "T4(c): E[V²] ≠ (max(r, k) − 1)/(n − 1)"
    assert ag.cramers_v(tables).mean() <= math.sqrt((max(r, k) - 1) / (n - 1)) + TOL, "T4(c): E[V] bound"
    emi = ag.mutual_info(tables).mean()
    assert abs(emi - expected_mi(a, b)) <= 1e-10 * max(emi, 1e-300) + 1e-15, "T4(d): E[MI] ≠ the hypergeometric sum"
    assert emi <= math.log(1 + (r - 1) * (k - 1) / (n - 1)) + TOL, "T4(d): E[MI] above ln(1 + (r−1)(k−1)/(n−1))"


register(Theorem(
    id="NEU-4", mechanism="NEU", provenance="[classical]",
    statement="Under uniform arrangements with fixed margins E[ARI] = 0, E[H_cat] = π₂ (E[A_z] = 0), "
              "E[χ²] = n(r−1)(k−1)/(n−1), and E[MI] is the Vinh–Epps–Bailey sum ≤ ln(1 + (r−1)(k−1)/(n−1))",
    scope="lemma: the hypergeometric factorial moment for n ≤ 8 and the r = 2, k = 3 moment sum",
    symbolic=_t4_symbolic, numeric=NumericCheck(_t4_numeric, small_tables()),
))

# =========================================================================== NEU-T5


def _t5_symbolic() -> bool:
    # instance + lemma: regular simplices (3 in ℝ², 4 in ℝ³) give H_cos = −1/(n−1); Σ_{u≠v} ê_u·ê_v = ‖Σ ê‖² − n for
    # three symbolic planar unit vectors.
    tri = [sp.Matrix([sp.cos(2 * sp.pi * i / 3), sp.sin(2 * sp.pi * i / 3)]) for i in range(3)]
    tet = [sp.Matrix(v) / sp.sqrt(3) for v in ([1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1])]
    ok = True
    for vs in (tri, tet):
        n = len(vs)
        total = sum(vs, sp.zeros(len(vs[0]), 1))
        hcos = (total.dot(total) - n) / (n * (n - 1))
        ok = ok and sp.simplify(hcos + sp.Rational(1, n - 1)) == 0
    t = sp.symbols("t0:3", real=True)
    vs = [sp.Matrix([sp.cos(x), sp.sin(x)]) for x in t]
    total = sum(vs, sp.zeros(2, 1))
    pairs = sum(vs[u].dot(vs[v]) for u in range(3) for v in range(3) if u != v)
    return bool(ok and sp.simplify(sp.expand_trig(total.dot(total) - 3 - pairs)) == 0)


@st.composite
def _planted(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray]:
    z = draw(st.integers(2, 6))
    per = draw(st.integers(2, 30))
    extra = draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rs = np.random.default_rng(seed)
    k = z + extra
    sizes = [per] * z + [int(rs.integers(1, 40)) for _ in range(extra)]
    cats = np.concatenate([np.full(s, c) for c, s in enumerate(sizes)])
    g = -np.arange(k, dtype=np.float64) * draw(st.sampled_from([1.0, 0.3, 7.0]))
    gap = np.min(np.abs(np.diff(g)))
    delta = rs.uniform(-0.49, 0.49, cats.size) * gap
    order = rs.permutation(cats.size)
    emb = rs.standard_normal((cats.size, 4))
    return (g[cats] + delta)[order], cats[order], z, z * per, emb[order]


def _t5_numeric(case) -> None:
    abar, cats, z, kk, emb = case
    core = core_zones(abar, np.arange(abar.size), cats, kk, z, "rank", site="pre")
    assert not isinstance(core, str), "T5(d): the planted neuron was skipped"
    assert set(cats[core.pos]) == set(range(z)), "T5(d): T is not the union of the Z top categories"
    assert np.array_equal(cats[core.pos], core.zone), "T5(d): zone z is not the (z+1)-th category"
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    gram = unit @ unit.T
    res = neuron_tests(abar[core.pos], cats[core.pos], core.zone, z, b=19, seed=0, layer=0, neuron=0,
                       gram=gram[np.ix_(core.pos, core.pos)])
    for zr in res["zones"]:
        for key in ("association", "homog_cat", "purity", "homog_ent", "cramers_v", "nmi", "ari"):
            assert abs(zr[key] - 1) <= TOL, f"T5(d): zone {zr['zone']} {key} = {zr[key]}"
        assert -1 / (zr["n_tokens"] - 1) - TOL <= zr["homog_cos"] <= 1 + TOL, "T5(c): H_cos out of range"
    for key in ("cramers_v", "nmi", "ari", "hom", "com"):
        assert abs(res["neuron"][key] - 1) <= TOL, f"T5(d): neuron {key} = {res['neuron'][key]}"
    # (a), (b) on a mixed table: bounds, with equality iff one category
    rs = np.random.default_rng(abar.size)
    t = ag.contingency(rs.integers(0, z, abar.size), cats)
    hcat, assoc, pi2 = ag.zone_association(t)
    kmin = (t.sum(0) > 0).sum()
    for zi in range(t.shape[0]):
        if t[zi].sum() < 2 or pi2 >= 1:
            continue
        one = (t[zi] > 0).sum() == 1
        assert -TOL <= hcat[zi] <= 1 + TOL and (abs(hcat[zi] - 1) <= TOL) == one, "T5(a): H_cat bounds"
        assert -pi2 / (1 - pi2) - TOL <= assoc[zi] <= 1 + TOL, "T5(b): A_z bounds"
        purity = t[zi].max() / t[zi].sum()
        assert 1 / kmin - TOL <= purity <= 1 + TOL, "T5(b): purity bounds"


register(Theorem(
    id="NEU-5", mechanism="NEU", provenance="[reconstructed]",
    statement="H_cat ∈ [0, 1], −π₂/(1−π₂) ≤ A_z ≤ 1, purity ∈ [1/k, 1], H_cos ∈ [−1/(n_z−1), 1]; a neuron whose "
              "activation is defined by category gives every zone and neuron statistic the value 1",
    scope="instance: H_cos of the regular 3- and 4-simplex; lemma: the pair-sum identity for three planar unit vectors",
    symbolic=_t5_symbolic, numeric=NumericCheck(_t5_numeric, _planted()),
))

# =========================================================================== NEU-T6


def _t6_symbolic() -> bool:
    # lemma: (a) S − Ê = Σ_z C(n_z, 2)(H_cat(z) − π₂) on a symbolic 2×2 table; (d) V-measure = NMI (arithmetic).
    n = sp.symbols("n00 n01 n10 n11", positive=True)
    t = sp.Matrix(2, 2, n)
    a = [t[0, 0] + t[0, 1], t[1, 0] + t[1, 1]]
    b = [t[0, 0] + t[1, 0], t[0, 1] + t[1, 1]]
    tot = sum(a)

    def c2(x):
        return x * (x - 1) / 2

    s = sum(c2(x) for x in n)
    sa, sb = sum(c2(x) for x in a), sum(c2(x) for x in b)
    pi2 = sb / c2(tot)
    rhs = sum(c2(a[i]) * ((c2(t[i, 0]) + c2(t[i, 1])) / c2(a[i]) - pi2) for i in range(2))
    ok_a = sp.simplify(s - sa * sb / c2(tot) - rhs) == 0
    mi, hz, hc = sp.symbols("MI H_Z H_C", positive=True)
    h, c = mi / hc, mi / hz
    ok_d = sp.simplify(2 * h * c / (h + c) - mi / ((hz + hc) / 2)) == 0
    return bool(ok_a and ok_d)


def _t6_numeric(pair: LabelPair) -> None:
    t = ag.contingency(pair.zones, pair.cats)
    nz, kc, n = t.sum(1), t.sum(0), t.sum()
    hcat, assoc, pi2 = ag.zone_association(t)
    s, sa, sb, pairs = ag.pair_counts(t)
    e = sa * sb / pairs if pairs else 0.0
    comb = nz * (nz - 1) / 2
    part = np.nansum(np.where(nz >= 2, comb * (hcat - pi2), 0.0)) if pairs else 0.0
    assert abs((s - e) - part) <= 1e-9 * max(1.0, abs(s)), "T6(a): S − Ê ≠ Σ C(n_z, 2)(H_cat − π₂)"
    m = (sa + sb) / 2
    if pairs and pi2 < 1 and m > e:
        via = (1 - pi2) * np.nansum(np.where(nz >= 2, comb * assoc, 0.0)) / (m - e)
        assert abs(via - ag.ari(t)) <= 1e-10, "T6(a): ARI from per-zone A_z"
    hom, com, v = ag.homogeneity_completeness(t)
    hc = ag.entropy_counts(kc)
    if hc > 0:
        hom_z = 1 - ag.entropy_counts(t) / hc
        assert abs((nz / n) @ hom_z - hom) <= TOL, "T6(b): Σ (n_z/K) hom_z ≠ hom"
    rows = nz > 0
    kl = np.array([np.sum(np.where(t[i] > 0, t[i] / nz[i] * np.log(np.where(t[i] > 0, t[i] * n / (nz[i] * kc), 1)), 0))
                   for i in np.flatnonzero(rows)])
    mi = ag.mutual_info(t)
    assert abs((nz[rows] / n) @ kl - mi) <= 1e-10 * max(mi, 1e-12) + 1e-15, "T6(c): MI ≠ Σ (n_z/K) KL"
    if mi > 0:
        assert abs(v - ag.nmi(t)) <= TOL, "T6(d): V-measure ≠ NMI"


register(Theorem(
    id="NEU-6", mechanism="NEU", provenance="[reconstructed]",
    statement="Per-zone statistics add up: S − Ê = Σ_z C(n_z, 2)(H_cat(z) − π₂) (so ARI is a weighted sum of A_z), "
              "hom = Σ_z (n_z/K) hom_z, MI = Σ_z (n_z/K) KL(p(·|z) ‖ p), and the V-measure equals NMI",
    scope="lemma: the ARI decomposition on a symbolic 2×2 table and the V-measure = NMI identity",
    symbolic=_t6_symbolic, numeric=NumericCheck(_t6_numeric, label_pairs()),
))

# =========================================================================== NEU-T7


def _exhaustive_valid(values: list) -> bool:
    """#{σ : p_ex(σ) ≤ α} ≤ α·#arrangements for every attained α, p_ex(σ) = #{π : T(π) ≥ T(σ)}/#arrangements."""
    total = len(values)
    ps = [sp.Rational(sum(1 for u in values if u >= v), total) for v in values]
    return all(sum(1 for p in ps if p <= alpha) <= alpha * total for alpha in set(ps))


def _t7_symbolic() -> bool:
    # instance: a 2×3 table, n = 7 (zones 4 + 3, categories 3 + 2 + 2), exact Rationals, for H_cat of zone 0, MI and S.
    zones = [0, 0, 0, 0, 1, 1, 1]
    arrs = list(multiset_permutations([0, 0, 0, 1, 1, 2, 2]))
    hcat, mis, ss = [], [], []
    for arr in arrs:
        t = [[sum(1 for z, c in zip(zones, arr) if z == i and c == j) for j in range(3)] for i in range(2)]
        hcat.append(sum(x * (x - 1) for x in t[0]))
        # with both margins fixed, MI = (Σ n_ij ln n_ij + const)/n orders like the integer Π n_ij^n_ij: exact
        mis.append(math.prod(x**x for r in t for x in r))
        ss.append(sum(x * (x - 1) // 2 for r in t for x in r))
    return all(_exhaustive_valid(v) for v in (hcat, mis, ss))


def _t7_numeric(case: SmallTable) -> None:
    arr, tables = _enumerated(case)
    same = (tables * (tables - 1)).sum(-1)[:, 0]
    mi = ag.mutual_info(tables)
    s = ag.pair_counts(tables)[0]
    _, assoc, _ = ag.zone_association(tables)
    r = tables.shape[1]
    delta = assoc[:, 0] - assoc[:, r - 1]
    total = arr.shape[0]
    for name, v in (("A_z", same), ("MI", np.round(mi, 12)), ("S", s), ("Δ_tb", np.round(delta, 12))):
        if np.isnan(v).any() if v.dtype.kind == "f" else False:
            continue
        p = (v[None, :] >= v[:, None]).sum(1) / total
        for alpha in np.unique(p):
            assert (p <= alpha).sum() <= alpha * total + 1e-9, f"T7(c): {name}: P(p_ex ≤ {alpha}) > {alpha}"
    b = 19
    rs = np.random.default_rng(total)
    stats = np.concatenate([[same[0]], same[rs.integers(0, total, b)]])
    p = ag.perm_pvalue(stats, exact=True)
    assert 1 / (b + 1) <= p <= 1, "T7(a): p outside [1/(B+1), 1]"
    floats = stats.astype(np.float64)
    assert ag.perm_pvalue(floats, 1e-6) >= ag.perm_pvalue(floats, 0.0), "T7(d): the tolerance lowered p"


register(Theorem(
    id="NEU-7", mechanism="NEU", provenance="[classical]",
    statement="Permutation p-values (1 + #{T_b ≥ T_0})/(B + 1) lie in [1/(B+1), 1] and are super-uniform under the null; "
              "the exhaustive p-value satisfies #{p_ex ≤ α} ≤ α·#arrangements; ties and the tolerance only raise p",
    scope="instance: a 2×3 table with n = 7, exact Rationals, for H_cat, MI and S",
    symbolic=_t7_symbolic, numeric=NumericCheck(_t7_numeric, small_tables()),
))
