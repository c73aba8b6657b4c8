"""NEU-T1 (zones), NEU-T2 (ranges and maxima), NEU-T3 (invariance and shared p-values). [reconstructed, classical]"""

from __future__ import annotations

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from proofs.neurons.strategies import LabelPair, NeuronCase, label_pairs, neuron_cases
from proofs.registry import NumericCheck, Theorem, register
from reference.mechanisms.neurons.statistics import permutations, replicate_tables
from reference.mechanisms.neurons.zones import core_order, core_zones, rank_zones, value_zones
from reference.metrics import agreement as ag

TOL = 1e-12

# =========================================================================== NEU-T1


def _t1_symbolic() -> bool:
    # instance: every K ≤ 40 and Z ≤ K: zone z holds exactly the ranks ⌈zK/Z⌉ ≤ r < ⌈(z+1)K/Z⌉, a size in {⌊K/Z⌋, ⌈K/Z⌉}.
    for kk in range(2, 41):
        for z in range(2, kk + 1):
            for zi in range(z):
                size = sp.ceiling(sp.Rational((zi + 1) * kk, z)) - sp.ceiling(sp.Rational(zi * kk, z))
                count = sum(1 for r in range(kk) if sp.floor(sp.Rational(r * z, kk)) == zi)
                if size != count or size not in (sp.floor(sp.Rational(kk, z)), sp.ceiling(sp.Rational(kk, z))):
                    return False
    return True


def _t1_numeric(case: NeuronCase) -> None:
    ids = np.arange(case.abar.size)
    grid = np.round(np.clip(case.abar, -5, 5), 3)  # spacing ≥ 10⁻³: every f below stays strictly increasing in floats
    kk, z = case.core, case.zones
    core = core_zones(grid, ids, case.cats, kk, z, "rank", site="pre")
    if isinstance(core, str):
        assert core in ("constant", "single_category")
        return
    pos, zone = core.pos, core.zone
    sizes = np.bincount(zone, minlength=z)
    expected = np.array([-(-(zi + 1) * kk // z) - -(-zi * kk // z) for zi in range(z)])
    assert np.array_equal(sizes, expected) and sizes.sum() == kk, f"T1(a): sizes {sizes} vs {expected}"
    assert np.all(np.diff(zone) >= 0), "T1(b): zones not non-decreasing in rank"
    a = grid[pos]
    for zi in range(z - 1):
        assert a[zone == zi].min() >= a[zone == zi + 1].max(), "T1(b): zone order"
    outside = np.setdiff1d(ids, pos)
    if outside.size:
        last = pos[-1]
        worse = (grid[outside] < grid[last]) | ((grid[outside] == grid[last]) & (outside > last))
        assert worse.all(), "T1(b): a token outside T beats the last core token"
    for f in (np.exp, lambda x: x**3 + x, lambda x: 2 * x + 1):
        other = core_zones(f(grid), ids, case.cats, kk, z, "rank", site="pre")
        assert not isinstance(other, str) and np.array_equal(other.pos, pos) and np.array_equal(other.zone, zone), \
            "T1(c): a strictly increasing f changed (T, z)"
        ii = ag.interleaving_index(f(grid)[pos], case.cats[pos])["interleave"]
        assert ii == ag.interleaving_index(a, case.cats[pos])["interleave"], "T1(c): II changed"
    v = value_zones(a, z)
    assert v[0] == 0 and v[-1] == z - 1 and np.all(np.diff(v) >= 0), "T1(d): value zones not contiguous from 0 to Z−1"
    for alpha in (0.5, 2.0, 8.0):
        assert np.array_equal(value_zones(alpha * a, z), v), "T1(d): value zones changed by ā ↦ αā"
    assert np.array_equal(core_order(grid, ids)[:kk], pos)
    assert np.array_equal(rank_zones(kk, z), zone)


register(Theorem(
    id="NEU-1", mechanism="NEU", provenance="[reconstructed]",
    statement="Rank zones partition the core set in activation order with sizes ⌈(z+1)K/Z⌉ − ⌈zK/Z⌉, invariant under "
              "strictly increasing maps; value zones are contiguous and scale-invariant",
    scope="instance: the zone-size formula for every K ≤ 40, Z ≤ K", symbolic=_t1_symbolic,
    numeric=NumericCheck(_t1_numeric, neuron_cases()),
))

# =========================================================================== NEU-T2


def _t2_symbolic() -> bool:
    # lemma: the two ARI expansions behind |ARI| ≤ 1, and the χ² identity behind V = 1 ⇔ one non-zero cell per column.
    tp, tn, fn, fp = sp.symbols("tp tn fn fp", nonnegative=True)
    d = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    num = 2 * (tp * tn - fn * fp)
    e1 = sp.expand(d - num - ((fn + fp) ** 2 + fn * tn + fn * tp + fp * tn + fp * tp)) == 0
    e2 = sp.expand(d + num - ((fn - fp) ** 2 + fn * tn + fn * tp + fp * tn + fp * tp + 4 * tn * tp)) == 0
    cells = sp.Matrix(2, 3, sp.symbols("n0:6", positive=True))
    a = [sum(cells[i, :]) for i in range(2)]
    b = [sum(cells[:, j]) for j in range(3)]
    lhs = 2 - sum(cells[i, j] ** 2 / (a[i] * b[j]) for i in range(2) for j in range(3))
    rhs = sum(cells[i, j] * (b[j] - cells[i, j]) / (a[i] * b[j]) for i in range(2) for j in range(3))
    e3 = sp.simplify(lhs - rhs) == 0
    # the example: 2 zones, 4 equal categories, two inside each zone: V = 1, hom = ln 2/ln 4 = 1/2
    t = np.array([[2, 2, 0, 0], [0, 0, 2, 2]])
    hom = ag.homogeneity_completeness(t)[0]
    e4 = abs(ag.cramers_v(t) - 1) < TOL and sp.nsimplify(sp.log(2) / sp.log(4)) == sp.Rational(1, 2) and abs(hom - 0.5) < TOL
    return bool(e1 and e2 and e3 and e4)


def _t2_numeric(pair: LabelPair) -> None:
    z, c = pair.zones, pair.cats
    t = ag.contingency(z, c)
    v, vbc, n = ag.cramers_v(t), ag.cramers_v(t, True), ag.nmi(t)
    hom, com, _ = ag.homogeneity_completeness(t)
    a = ag.ari(t)
    for name, x in (("V", v), ("V_bc", vbc), ("NMI", n), ("hom", hom), ("com", com)):
        assert -TOL <= x <= 1 + TOL, f"T2(a): {name} = {x} outside [0, 1]"
    assert -1 - TOL <= a <= 1 + TOL, f"T2(a): ARI = {a}"
    zone_in_one = (t > 0).sum(1).max() == 1
    cat_in_one = (t > 0).sum(0).max() == 1
    equal = zone_in_one and cat_in_one
    if abs(a - 1) <= TOL or abs(n - 1) <= TOL:
        assert equal, "T2(b): ARI or NMI = 1 without equal partitions"
    if equal:
        assert abs(a - 1) <= TOL and abs(n - 1) <= TOL, f"T2(b): equal partitions give ARI {a}, NMI {n}"
    hc = ag.entropy_counts(t.sum(0))
    if abs(hom - 1) <= TOL and hc > 0:
        assert zone_in_one, "T2(b): hom = 1 but a zone spans two categories"
    if zone_in_one:
        assert abs(hom - 1) <= TOL, "T2(b): zones inside categories but hom < 1"
    if cat_in_one:
        assert abs(com - 1) <= TOL, "T2(b): categories inside zones but com < 1"
    r, k = ag.n_nonempty(t)
    if min(r, k) >= 2 and abs(v - 1) <= 1e-9:
        assert (cat_in_one if r <= k else zone_in_one), "T2(c): V = 1 without the structural condition"
    if min(r, k) >= 2 and ((r <= k and cat_in_one) or (r >= k and zone_in_one)):
        assert abs(v - 1) <= 1e-9, f"T2(c): structural condition holds but V = {v}"
    perm = np.random.default_rng(z.size).permutation(int(c.max()) + 1)
    t2 = ag.contingency(perm[c], c)
    assert abs(ag.nmi(t2) - 1) <= TOL and abs(ag.ari(t2) - 1) <= TOL, "T2: a relabelled copy is not maximal"


register(Theorem(
    id="NEU-2", mechanism="NEU", provenance="[classical]",
    statement="V, V_bc, NMI, hom, com lie in [0, 1] and ARI in [−1, 1]; ARI = 1 ⇔ NMI = 1 ⇔ equal partitions; hom = 1 ⇔ "
              "zones inside categories; V = 1 ⇔ one non-zero cell per column (r ≤ k) or row (r ≥ k)",
    scope="lemma: the ARI expansions D ∓ 2(tp·tn − fn·fp) and the χ² identity on a 2×3 table, plus the V = 1, hom = 1/2 "
          "example", symbolic=_t2_symbolic, numeric=NumericCheck(_t2_numeric, label_pairs()),
))

# =========================================================================== NEU-T3


def _t3_symbolic() -> bool:
    # lemma: φ² of a 2×2 table is invariant under row swap, column swap and transpose; ARI is symmetric in fn ↔ fp.
    a, b, c, d = sp.symbols("a b c d", positive=True)

    def phi2(a, b, c, d):
        return (a * d - b * c) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))

    base = phi2(a, b, c, d)
    ok = all(sp.simplify(base - other) == 0 for other in (phi2(c, d, a, b), phi2(b, a, d, c), phi2(a, c, b, d)))
    tp, tn, fn, fp = sp.symbols("tp tn fn fp", positive=True)
    ari = 2 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))
    return bool(ok and sp.simplify(ari - ari.subs({fn: fp, fp: fn}, simultaneous=True)) == 0)


@st.composite
def _t3_cases(draw: st.DrawFn) -> tuple[LabelPair, NeuronCase]:
    return draw(label_pairs()), draw(neuron_cases(max_n=120))


def _stats(t: np.ndarray) -> np.ndarray:
    hom, com, v = ag.homogeneity_completeness(t)
    # V and V_bc enter squared: their square roots amplify a rounding residue near 0 (≈10⁻¹⁷ → ≈10⁻⁹)
    return np.array([ag.chi2(t), ag.cramers_v(t) ** 2, ag.cramers_v(t, True) ** 2, ag.mutual_info(t), ag.nmi(t), ag.ari(t),
                     hom, com])


def _t3_numeric(case: tuple[LabelPair, NeuronCase]) -> None:
    pair, neuron = case
    z, c = pair.zones, pair.cats
    rs = np.random.default_rng(z.size + 7)
    base = _stats(ag.contingency(z, c))
    order = rs.permutation(z.size)
    pz, pc = rs.permutation(z.max() + 1), rs.permutation(c.max() + 1)
    moved = _stats(ag.contingency(pz[z][order], pc[c][order]))
    scale = np.maximum(1.0, np.abs(base))
    assert np.all(np.abs(moved - base) <= TOL * scale * 100), "T3(a): relabelling or reordering changed a statistic"
    swapped = _stats(ag.contingency(c, z))
    assert np.all(np.abs(swapped[:6] - base[:6]) <= TOL * scale[:6] * 100), "T3(b): not symmetric"
    assert abs(swapped[6] - base[7]) <= TOL and abs(swapped[7] - base[6]) <= TOL, "T3(b): swap does not exchange hom, com"
    hz_same = ag.zone_association(ag.contingency(z, c))[0]
    hz_moved = ag.zone_association(ag.contingency(z[order], pc[c][order]))[0]
    assert np.allclose(hz_same, hz_moved, atol=TOL, equal_nan=True), "T3(a): H_cat changed"
    # (c) over the replicates of one neuron: hom_b·H_C = MI_b and NMI_b·(H_Z + H_C)/2 = MI_b
    core = core_zones(neuron.abar, np.arange(neuron.abar.size), neuron.cats, neuron.core, neuron.zones, site="pre")
    if isinstance(core, str):
        return
    _, cc = np.unique(neuron.cats[core.pos], return_inverse=True)
    perm = permutations(core.pos.size, neuron.perms, neuron.seed % 1000, 0, 0)
    _, nb = replicate_tables(core.zone, cc, perm, neuron.zones, int(cc.max()) + 1)
    mi = ag.mutual_info(nb)
    hom, _, _ = ag.homogeneity_completeness(nb)
    hc = ag.entropy_counts(nb[0].sum(0))
    hz = ag.entropy_counts(nb[0].sum(1))
    assert np.all(np.abs(hom * hc - mi) <= TOL), "T3(c): hom_b·H_C ≠ MI_b"
    assert np.all(np.abs(ag.nmi(nb) * (hz + hc) / 2 - mi) <= TOL), "T3(c): NMI_b·(H_Z + H_C)/2 ≠ MI_b"
    assert np.all(nb.sum(-1) == nb[0].sum(-1)) and np.all(nb.sum(-2) == nb[0].sum(-2)), "T3(c): margins not fixed"


register(Theorem(
    id="NEU-3", mechanism="NEU", provenance="[reconstructed]",
    statement="Every statistic is invariant under relabelling and reordering; χ², V, V_bc, MI, NMI, ARI are symmetric; "
              "with fixed margins hom, com, NMI are linear in MI, so each group shares one permutation p-value",
    scope="lemma: φ² of a 2×2 table under row swap, column swap, transpose; ARI symmetric in fn ↔ fp",
    symbolic=_t3_symbolic, numeric=NumericCheck(_t3_numeric, _t3_cases()),
))
