"""Agreement of two partitions, and the permutation / multiplicity machinery around it. [classical]

Shared by NEU (specs/01-intraneuronal.md §2.5–§2.8, §5) and any mechanism that compares a
segmentation with ground-truth classes. NumPy, float64, natural logs, 0·ln 0 = 0.

A *table* is a contingency table ``(..., r, k)`` of non-negative integer counts: rows are the
"clusters" (e.g. activation zones), columns the "classes" (e.g. categories). Every table
function is batched over the leading axes (a stack of B permutation replicates is one call)
and ignores empty rows and columns, as scikit-learn does with unused labels: r and k below are
the numbers of *non-empty* rows and columns.

* :func:`contingency` — labels -> table; :func:`chi2`, :func:`cramers_v` (Cramér 1946; the
  bias-corrected form of Bergsma 2013), :func:`mutual_info`, :func:`nmi` (arithmetic
  normalisation, Strehl & Ghosh 2002), :func:`homogeneity_completeness` (Rosenberg &
  Hirschberg 2007), :func:`pair_counts` and :func:`ari` (Hubert & Arabie 1985);
* :func:`zone_association` — per-row pair homogeneity H_cat and its chance-corrected A_z
  [reconstructed, NEU §2.6]; :func:`two_by_two` — the 2×2 statistics of a row vs one column;
* :func:`cosine_homogeneity`, :func:`eta_squared`, :func:`prob_superiority`,
  :func:`interleaving_index`, :func:`spearman`, :func:`rankdata`;
* :func:`perm_pvalue` (Phipson & Smyth 2010), :func:`holm` (Holm 1979), :func:`bh`
  (Benjamini & Hochberg 1995), :func:`hypergeom_sf`, :func:`bootstrap_ci`,
  :func:`sign_flip_pvalue`.

Oracles (tests only): ``scipy.stats.chi2_contingency(t, correction=False)``,
``scipy.stats.contingency.association``, scikit-learn's ``mutual_info_score``,
``normalized_mutual_info_score``, ``homogeneity_completeness_v_measure``,
``adjusted_rand_score``, ``scipy.stats.mannwhitneyu``, ``false_discovery_control``,
``hypergeom.sf``, ``spearmanr`` (tests/test_neurons_metrics.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- tables


def contingency(rows: Any, cols: Any, r: int | None = None, k: int | None = None) -> np.ndarray:
    """Labels (..., n) int ≥ 0, (..., n) -> table (..., r, k) int64 of co-occurrence counts.

    ``r``/``k`` default to max label + 1. Leading axes are batched (one table per row of labels).
    """
    a, b = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if a.shape != b.shape or a.ndim < 1:
        raise ValueError(f"contingency: label shapes {a.shape} and {b.shape} differ or are scalar")
    if a.size and (a.min() < 0 or b.min() < 0):
        raise ValueError("contingency: labels must be >= 0")
    r = int(a.max()) + 1 if r is None else r
    k = int(b.max()) + 1 if k is None else k
    lead = a.shape[:-1]
    m = int(np.prod(lead)) if lead else 1
    offset = (np.arange(m, dtype=np.int64) * (r * k)).reshape(lead + (1,)) if lead else 0
    flat = (offset + a * k + b).ravel()
    return np.bincount(flat, minlength=m * r * k).reshape(lead + (r, k))


def _margins(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row sums (..., r), column sums (..., k), totals (...) as float64."""
    t = np.asarray(t, dtype=np.float64)
    return t.sum(-1), t.sum(-2), t.sum((-2, -1))


def _xlogx(x: np.ndarray) -> np.ndarray:
    """x ln x elementwise with 0 ln 0 = 0."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


def entropy_counts(counts: Any) -> np.ndarray:
    """H = −Σ (c/n) ln(c/n) of a count vector (..., m) -> (...); 0 for an empty or single block."""
    c = np.asarray(counts, dtype=np.float64)
    n = c.sum(-1)
    safe = np.where(n > 0, n, 1.0)
    return np.where(n > 0, np.maximum(0.0, -_xlogx(c / safe[..., None]).sum(-1)), 0.0)


def n_nonempty(t: Any) -> tuple[np.ndarray, np.ndarray]:
    """(r, k): the numbers of non-empty rows and columns of each table (...)."""
    t = np.asarray(t)
    return (t.sum(-1) > 0).sum(-1), (t.sum(-2) > 0).sum(-1)


def chi2(t: Any) -> np.ndarray:
    """Pearson χ² = Σ (n_ij − a_i b_j/n)²/(a_i b_j/n) over non-empty rows and columns: (..., r, k) -> (...).

    Summed cell by cell over the cells with a positive expected count: every term is ≥ 0 and a table
    at exact independence gives exactly 0 (the shortcut n(Σ n_ij²/(a_i b_j) − 1) leaves a rounding
    residue there, which V's square root would amplify to ~10⁻⁸).
    """
    t = np.asarray(t, dtype=np.float64)
    a, b, n = _margins(t)
    safe_n = np.where(n > 0, n, 1.0)
    expected = a[..., :, None] * b[..., None, :] / safe_n[..., None, None]
    ok = expected > 0
    terms = np.where(ok, (t - expected) ** 2 / np.where(ok, expected, 1.0), 0.0)
    return terms.sum((-2, -1))


def cramers_v(t: Any, bias_correction: bool = False) -> np.ndarray:
    """Cramér's V = √(χ²/(n(m − 1))), m = min(r, k); 0 if m < 2 [classical, Cramér 1946].

    ``bias_correction``: Bergsma (2013): φ̃² = max(0, χ²/n − (r−1)(k−1)/(n−1)),
    r̃ = r − (r−1)²/(n−1), k̃ = k − (k−1)²/(n−1), V = √(φ̃²/min(r̃ − 1, k̃ − 1)); 0 if m < 2,
    n < 2 or that minimum is ≤ 0.
    """
    t = np.asarray(t, dtype=np.float64)
    x2 = chi2(t)
    n = t.sum((-2, -1))
    r, k = n_nonempty(t)
    r, k = r.astype(np.float64), k.astype(np.float64)
    m = np.minimum(r, k)
    if not bias_correction:
        ok = (m >= 2) & (n > 0)
        v2 = x2 / np.where(ok, n * (m - 1), 1.0)
        return np.where(ok, np.sqrt(np.clip(v2, 0.0, 1.0)), 0.0)
    n1 = np.where(n > 1, n - 1.0, 1.0)
    phi2 = np.maximum(0.0, x2 / np.where(n > 0, n, 1.0) - (r - 1) * (k - 1) / n1)
    rt, kt = r - (r - 1) ** 2 / n1, k - (k - 1) ** 2 / n1
    lo = np.minimum(rt - 1, kt - 1)
    ok = (m >= 2) & (n > 1) & (lo > 0)
    return np.where(ok, np.sqrt(np.clip(phi2 / np.where(ok, lo, 1.0), 0.0, 1.0)), 0.0)


def mutual_info(t: Any) -> np.ndarray:
    """MI = max(0, Σ_{n_ij>0} (n_ij/n) ln(n·n_ij/(a_i b_j))) in nats: (..., r, k) -> (...). [classical]"""
    t = np.asarray(t, dtype=np.float64)
    a, b, n = _margins(t)
    safe = np.where(n > 0, n, 1.0)
    # Σ n_ij ln n_ij − Σ a_i ln a_i − Σ b_j ln b_j + n ln n, over n: the entropy identity MI = H_Z + H_C − H_ZC.
    mi = (_xlogx(t).sum((-2, -1)) - _xlogx(a).sum(-1) - _xlogx(b).sum(-1) + _xlogx(n)) / safe
    return np.where(n > 0, np.maximum(mi, 0.0), 0.0)


def nmi(t: Any) -> np.ndarray:
    """NMI with arithmetic normalisation MI/((H_Z + H_C)/2) [classical, Strehl & Ghosh 2002].

    1 if r = k = 1 (both labelings trivial, scikit-learn's convention); 0 if MI = 0 otherwise.
    """
    t = np.asarray(t, dtype=np.float64)
    a, b, _ = _margins(t)
    mi = mutual_info(t)
    hz, hc = entropy_counts(a), entropy_counts(b)
    r, k = n_nonempty(t)
    norm = (hz + hc) / 2.0
    out = np.where((mi > 0) & (norm > 0), mi / np.where(norm > 0, norm, 1.0), 0.0)
    return np.where((r <= 1) & (k <= 1), 1.0, np.clip(out, 0.0, 1.0))


def homogeneity_completeness(t: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hom, com, V-measure) of rows (clusters) against columns (classes) [classical, Rosenberg & Hirschberg 2007].

    hom = MI/H_C (1 if H_C = 0), com = MI/H_Z (1 if H_Z = 0), V = 2·hom·com/(hom + com) (0 if both 0).
    """
    t = np.asarray(t, dtype=np.float64)
    a, b, _ = _margins(t)
    mi = mutual_info(t)
    hz, hc = entropy_counts(a), entropy_counts(b)
    hom = np.where(hc > 0, mi / np.where(hc > 0, hc, 1.0), 1.0)
    com = np.where(hz > 0, mi / np.where(hz > 0, hz, 1.0), 1.0)
    hom, com = np.clip(hom, 0.0, 1.0), np.clip(com, 0.0, 1.0)
    s = hom + com
    v = np.where(s > 0, 2.0 * hom * com / np.where(s > 0, s, 1.0), 0.0)
    return hom, com, v


def _comb2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    return x * (x - 1) // 2


def pair_counts(t: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(S, S_a, S_b, C(n, 2)) in exact int64: S = Σ C(n_ij, 2), S_a = Σ C(a_i, 2), S_b = Σ C(b_j, 2)."""
    t = np.asarray(t, dtype=np.int64)
    return _comb2(t).sum((-2, -1)), _comb2(t.sum(-1)).sum(-1), _comb2(t.sum(-2)).sum(-1), _comb2(t.sum((-2, -1)))


def ari_from_pairs(s: Any, sa: Any, sb: Any, pairs: Any) -> np.ndarray:
    """ARI = (S − Ê)/(M − Ê), Ê = S_a S_b/C(n,2), M = (S_a + S_b)/2; 1 if M = Ê [classical, Hubert & Arabie 1985].

    Written as 2(S·P − S_a S_b)/(P(S_a + S_b) − 2 S_a S_b) with P = C(n, 2): integer numerator and
    denominator (int64 while P² fits, i.e. n ≤ 40,000; float64 beyond), one division.
    """
    s, sa, sb, p = (np.asarray(x, dtype=np.int64) for x in (s, sa, sb, pairs))
    if p.size and int(p.max()) > 2**29:
        s, sa, sb, p = (x.astype(np.float64) for x in (s, sa, sb, p))
    num = 2 * (s * p - sa * sb)
    den = p * (sa + sb) - 2 * sa * sb
    return np.where(den != 0, num / np.where(den != 0, den, 1), 1.0).astype(np.float64)


def ari(t: Any) -> np.ndarray:
    """Adjusted Rand index of a table (..., r, k) -> (...), from exact pair counts (:func:`ari_from_pairs`)."""
    return ari_from_pairs(*pair_counts(t))


# --------------------------------------------------------------------------- per-row (zone) statistics


def zone_association(t: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H_cat (..., r), A (..., r), π₂ (...)) of each row of a table (..., r, k). [reconstructed, NEU §2.6]

    H_cat(z) = Σ_c n_zc(n_zc − 1)/(n_z(n_z − 1)), the chance that two distinct items of the row share a
    column; π₂ = Σ_c K_c(K_c − 1)/(K(K − 1)); A_z = (H_cat − π₂)/(1 − π₂). NaN for rows with n_z < 2,
    and A is NaN when π₂ = 1 (a single column).
    """
    t = np.asarray(t, dtype=np.int64)
    nz = t.sum(-1)
    kc = t.sum(-2)
    n = t.sum((-2, -1))
    same = (t * (t - 1)).sum(-1)  # the integer Σ_c n_zc(n_zc − 1), compared exactly by perm tests
    denom = nz * (nz - 1)
    hcat = np.where(denom > 0, same / np.where(denom > 0, denom, 1), np.nan)
    pdenom = n * (n - 1)
    pi2 = np.where(pdenom > 0, (kc * (kc - 1)).sum(-1) / np.where(pdenom > 0, pdenom, 1), np.nan)
    a = np.where(pi2[..., None] < 1, (hcat - pi2[..., None]) / np.where(pi2[..., None] < 1, 1 - pi2[..., None], 1.0),
                 np.nan)
    return hcat, a, pi2


def two_by_two(a: Any, row: Any, col: Any, n: Any) -> dict[str, np.ndarray]:
    """The 2×2 statistics of labelings 1[row] and 1[col]: a = |row ∩ col|, row = |row|, col = |col|, n items.

    Cells a, b = row − a, c = col − a, d = n − row − col + a. Returns ``phi`` = (ad − bc)/√(product
    of margins) (0 when a margin is 0), ``cramers_v`` = |phi| (the uncorrected V of a 2×2 table),
    ``cramers_v_bc``, ``nmi``, ``ari`` — each equal to :func:`cramers_v` / :func:`nmi` / :func:`ari`
    of the 2×2 table, batched over any shape. [classical]
    """
    a, row, col, n = (np.asarray(x, dtype=np.int64) for x in (a, row, col, n))
    a, row, col, n = np.broadcast_arrays(a, row, col, n)
    b, c = row - a, col - a
    d = n - row - col + a
    t = np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)  # (..., 2, 2)
    af = t.astype(np.float64)
    margins = (af[..., 0, 0] + af[..., 0, 1]) * (af[..., 1, 0] + af[..., 1, 1]) * (af[..., 0, 0] + af[..., 1, 0]) * (
        af[..., 0, 1] + af[..., 1, 1])
    num = af[..., 0, 0] * af[..., 1, 1] - af[..., 0, 1] * af[..., 1, 0]
    phi = np.where(margins > 0, num / np.sqrt(np.where(margins > 0, margins, 1.0)), 0.0)
    phi = np.clip(phi, -1.0, 1.0)
    return {"phi": phi, "cramers_v": np.abs(phi), "cramers_v_bc": cramers_v(t, bias_correction=True), "nmi": nmi(t),
            "ari": ari(t)}


def cosine_homogeneity(gram: Any, onehot: Any) -> np.ndarray:
    """Mean pairwise cosine of each group: (‖Σ_{v∈S} ê_v‖² − n_S)/(n_S(n_S − 1)). [paper†, NEU §2.6]

    gram (n, n) = Ê Êᵀ of unit (or zero) rows; onehot (..., g, n) 0/1 group membership ->
    (..., g), NaN for groups of fewer than 2. ‖Σ ê‖² = oᵀ G o (the Gram route, no d-wide sums);
    n_S counts the diagonal as Σ_{v∈S} G_vv, so a zero embedding adds nothing.
    """
    g = np.asarray(gram, dtype=np.float64)
    o = np.asarray(onehot, dtype=np.float64)
    quad = np.einsum("...gn,...gn->...g", o @ g, o)
    diag = o @ np.diagonal(g)
    size = o.sum(-1)
    denom = size * (size - 1)
    return np.where(denom > 0, (quad - diag) / np.where(denom > 0, denom, 1.0), np.nan)


def eta_squared(values: Any, labels: Any, k: int | None = None) -> np.ndarray:
    """η² = Σ_c K_c(ā_c − ā)²/Σ(ā − ā)² (0 if the denominator is 0): values (..., n), labels (n,) -> (...). [classical]"""
    x = np.asarray(values, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.int64)
    k = int(lab.max()) + 1 if k is None else k
    onehot = np.eye(k)[lab]  # (n, k)
    counts = onehot.sum(0)
    y = x - x[..., :1]  # shift by a data value first: a constant sample gives exact zeros, not rounding noise
    dev = y - y.mean(-1, keepdims=True)
    sums = dev @ onehot  # (..., k): Σ_c (x − x̄), so SS_between = Σ_c sums²/K_c
    between = np.where(counts > 0, sums**2 / np.where(counts > 0, counts, 1.0), 0.0).sum(-1)
    total = (dev**2).sum(-1)
    return np.where(total > 0, np.clip(between / np.where(total > 0, total, 1.0), 0.0, 1.0), 0.0)


def prob_superiority(x: Any, y: Any) -> float:
    """PS = (#{x > y} + ½#{x = y})/(n_x n_y): the Mann–Whitney U of x over n_x n_y. [classical]"""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if not x.size or not y.size:
        raise ValueError("prob_superiority: empty sample")
    ys = np.sort(y)
    below = np.searchsorted(ys, x, side="left")
    upto = np.searchsorted(ys, x, side="right")
    return float((below.sum() + 0.5 * (upto - below).sum()) / (x.size * y.size))


def interleaving_index(values: Any, labels: Any) -> dict[str, float | None]:
    """II, sep_low, sep_high of the groups with ≥ 2 members. [reconstructed from paper†, NEU §2.7]

    II = 1 − mean_{g<h}|2·PS_gh − 1| (None with < 2 groups). sep_low / sep_high: groups sorted by mean
    (ties → smaller label), mean |2·PS − 1| over pairs inside the lower / upper ⌊q/2⌋ (None below 2).
    """
    x = np.asarray(values, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.int64)
    groups = [g for g in np.unique(lab) if (lab == g).sum() >= 2]
    q = len(groups)
    if q < 2:
        return {"interleave": None, "sep_low": None, "sep_high": None}
    sep = {}
    for i, g in enumerate(groups):
        for h in groups[i + 1:]:
            s = abs(2.0 * prob_superiority(x[lab == g], x[lab == h]) - 1.0)
            sep[(g, h)] = sep[(h, g)] = s
    ii = 1.0 - float(np.mean([sep[(g, h)] for i, g in enumerate(groups) for h in groups[i + 1:]]))
    order = sorted(groups, key=lambda g: (float(x[lab == g].mean()), int(g)))
    half = q // 2

    def inside(part: list) -> float | None:
        pairs = [sep[(g, h)] for i, g in enumerate(part) for h in part[i + 1:]]
        return float(np.mean(pairs)) if len(part) >= 2 else None

    return {"interleave": ii, "sep_low": inside(order[:half]), "sep_high": inside(order[q - half:])}


def rankdata(x: Any) -> np.ndarray:
    """Average ranks (1-based) of a 1-D array, ties sharing their mean rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sx = x[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sx)) + 1]
    ends = np.r_[starts[1:], x.size]
    avg = (starts + ends + 1) / 2.0
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(x: Any, y: Any) -> float | None:
    """Spearman ρ with average ranks; None when either side is constant (or fewer than 2 items). [classical]"""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float(np.clip((rx @ ry) / math.sqrt((rx @ rx) * (ry @ ry)), -1.0, 1.0))


# --------------------------------------------------------------------------- tests and multiplicity


def perm_pvalue(stats: Any, tie_rtol: float = 1e-12, exact: bool = False) -> np.ndarray:
    """(1 + #{b ≥ 1 : T_b ≥ T_0})/(B + 1), one-sided "greater" [classical, Phipson & Smyth 2010].

    stats (B + 1, ...): row 0 the observation, rows 1 … B the permutation replicates -> (...).
    ``exact``: integer statistics compared exactly; otherwise T_b ≥ T_0 − tie_rtol·max(1, |T_0|).
    Ties count against the observation. NaN where the observation is NaN.
    """
    s = np.asarray(stats)
    t0, rest = s[0], s[1:]
    if exact:
        hits = (rest >= t0).sum(0)
    else:
        t0f = t0.astype(np.float64)
        hits = (rest >= t0f - tie_rtol * np.maximum(1.0, np.abs(t0f))).sum(0)
    p = (1.0 + hits) / s.shape[0]
    if not exact:
        p = np.where(np.isnan(t0.astype(np.float64)), np.nan, p)
    return p


def holm(p: Any) -> np.ndarray:
    """Holm's step-down adjustment p̃_(i) = max_{i′≤i} min(1, (M − i′ + 1)p_(i′)) [classical, Holm 1979].

    NaN entries are left out of the family and stay NaN.
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    v = p[ok]
    m = v.size
    if m:
        order = np.argsort(v, kind="stable")
        adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * v[order]))
        res = np.empty(m)
        res[order] = adj
        out[ok] = res
    return out


def bh(p: Any) -> np.ndarray:
    """Benjamini–Hochberg q_(i) = min_{i′≥i} min(1, M·p_(i′)/i′) [classical, Benjamini & Hochberg 1995].

    Stable ascending sort; NaN entries are left out of the family and stay NaN.
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    v = p[ok]
    m = v.size
    if m:
        order = np.argsort(v, kind="stable")
        raw = np.minimum(1.0, m * v[order] / np.arange(1, m + 1))
        adj = np.minimum.accumulate(raw[::-1])[::-1]
        res = np.empty(m)
        res[order] = adj
        out[ok] = res
    return out


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def hypergeom_sf(x: int, population: int, successes: int, draws: int) -> float:
    """P[X ≥ x] for X ~ Hypergeometric(population N, successes n, draws K), by ``math.lgamma``. [classical]

    Summed over the shorter tail: the upper tail directly, or 1 − the lower tail when x is below
    the mode (then clipped to [0, 1]). scipy's ``hypergeom.sf(x − 1, N, n, K)`` is the oracle.
    """
    big_n, n, k, x = int(population), int(successes), int(draws), int(x)
    lo, hi = max(0, k - (big_n - n)), min(n, k)
    if x <= lo:
        return 1.0
    if x > hi:
        return 0.0
    log_total = _log_comb(big_n, k)

    def pmf(i: int) -> float:
        return math.exp(_log_comb(n, i) + _log_comb(big_n - n, k - i) - log_total)

    mode = (k + 1) * (n + 1) // (big_n + 2)
    if x > mode:
        return float(min(1.0, math.fsum(pmf(i) for i in range(x, hi + 1))))
    return float(min(1.0, max(0.0, 1.0 - math.fsum(pmf(i) for i in range(lo, x)))))


def bootstrap_ci(values: Any, idx: np.ndarray) -> tuple[float, float]:
    """Percentile 95% CI of the mean from resample indices idx (R, n): ``np.quantile(means, [0.025, 0.975])``."""
    v = np.asarray(values, dtype=np.float64)
    means = v[idx].mean(-1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def sign_flip_pvalue(deltas: Any, signs: np.ndarray, tie_rtol: float = 1e-12) -> float:
    """One-sided sign-flip test of mean(Δ) > 0: (1 + #{f : mean(s_f ⊙ Δ) ≥ mean(Δ) − tol})/(F + 1). [classical]

    signs (F, n) ∈ {±1}; tol = tie_rtol·max(1, |mean(Δ)|).
    """
    d = np.asarray(deltas, dtype=np.float64)
    obs = float(d.mean())
    flipped = (signs * d).mean(-1)
    hits = int((flipped >= obs - tie_rtol * max(1.0, abs(obs))).sum())
    return (1.0 + hits) / (signs.shape[0] + 1)
