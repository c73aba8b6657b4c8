"""A5: one neuron's statistics and permutation tests (specs/01-intraneuronal.md §2.5–§2.8). [reconstructed]

:func:`neuron_tests` takes a neuron's core set T (K tokens in rank order, their zones and categories)
and computes every §2.5–§2.7 statistic on the observation and on B permutation replicates at once:

* replicate b gives token i the zone z[P_bi] and the activation ā_T[P_bi] (b = 0: the observation),
  P = ``default_rng([seed, 0, ℓ, j]).permuted(tile(arange(K), (B, 1)), axis=1)`` (§2.8) — one P for
  all of a neuron's p-values;
* the replicate tables N_b (B + 1, Z, k) come from one ``bincount``; every table statistic of
  :mod:`reference.metrics.agreement` is batched over them, the majority category c* included;
* H_cos by the Gram route: s = Σ((O @ G) ⊙ O) with O the (B + 1, Z, K) zone one-hot;
* p = (1 + #{b ≥ 1 : T_b ≥ T_0})/(B + 1): integer statistics (A_z through Σ_c n_zc(n_zc − 1), ARI
  through S) compared exactly, the others with ``tie_rtol`` (§2.8).

Missing values (zones with n_z < 2, undefined contrasts) are NaN here and ``null`` in JSON.

Decisions the spec leaves open [reconstructed]: ``null_sd`` is the sample sd (ddof 1) over b ≥ 1;
the zone-match statistics recompute c* on every replicate, so their margins move and they are
compared as floats with ``tie_rtol`` (not as integers); the neuron-level ``p_cramers_v`` compares χ².
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.metrics import agreement as ag


def permutations(k: int, b: int, seed: int, layer: int, neuron: int) -> np.ndarray:
    """P (B, K): one uniform permutation of 0 … K−1 per row, from ``default_rng([seed, 0, ℓ, j])`` (§2.8)."""
    rng = np.random.default_rng([seed, 0, layer, neuron])
    return rng.permuted(np.tile(np.arange(k), (b, 1)), axis=1)


def replicate_tables(zone: np.ndarray, cat: np.ndarray, perm: np.ndarray, z: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Zb (B + 1, K), Nb (B + 1, Z, k)): replicate zones z[P_bi] (row 0 observed) and their tables."""
    zb = np.vstack([zone[None, :], zone[perm]])
    reps = zb.shape[0]
    flat = ((np.arange(reps)[:, None] * z + zb) * k + cat[None, :]).ravel()
    return zb, np.bincount(flat, minlength=reps * z * k).reshape(reps, z, k)


def majority(nb: np.ndarray, kc: np.ndarray) -> np.ndarray:
    """c*(z) = argmax_c n_zc, ties → smaller K_c, then smaller id: nb (..., Z, k), kc (k,) -> (..., Z)."""
    k = kc.size
    order = np.lexsort((np.arange(k), kc))  # categories by (K_c, id)
    preference = np.empty(k, np.int64)
    preference[order] = np.arange(k)[::-1]  # larger = preferred among ties
    return np.argmax(nb.astype(np.int64) * (k + 1) + preference, axis=-1)


def _nan_where(mask: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where(mask, np.nan, x)


def neuron_tests(abar_t: Any, cat_t: Any, zone: Any, n_zones: int, *, b: int, seed: int, layer: int, neuron: int,
                 gram: Any = None, parent_t: Any = None, counts_t: Any = None, norms_t: Any = None,
                 tie_rtol: float = 1e-12) -> dict[str, Any]:
    """A5 for one neuron: ``{"neuron": {...}, "zones": [{...} per zone]}`` (NaN = null).

    abar_t (K,) ā over T in rank order; cat_t (K,) category ids; zone (K,) zones 0 … Z−1;
    gram (K, K) Ê_T Ê_Tᵀ or None; parent_t (K,) parent categories or None; counts_t (K,) n(v) and
    norms_t (K,) ‖e_v‖ for the selection diagnostics (None: null). Categories are compacted to the
    k present in T (ascending id), so "smaller id" tie-breaks keep their meaning.
    """
    a = np.asarray(abar_t, dtype=np.float64)
    kk = a.size
    cats_present, c = np.unique(np.asarray(cat_t, dtype=np.int64), return_inverse=True)
    k = cats_present.size
    zone = np.asarray(zone, dtype=np.int64)
    perm = permutations(kk, b, seed, layer, neuron)
    zb, nb = replicate_tables(zone, c, perm, n_zones, k)
    kc = np.bincount(c, minlength=k)
    nz = nb[0].sum(-1)  # zone sizes are the same in every replicate
    small = nz < 2

    # neuron level (§2.5)
    x2 = ag.chi2(nb)
    mi = ag.mutual_info(nb)
    s, sa, sb, pairs = ag.pair_counts(nb)
    hom, com, _ = ag.homogeneity_completeness(nb[0])
    neuron = {
        "K": kk, "k": k, "act_top": float(a.max()), "act_core_min": float(a.min()),
        "chi2": float(x2[0]), "cramers_v": float(ag.cramers_v(nb[0])),
        "cramers_v_bc": float(ag.cramers_v(nb[0], bias_correction=True)), "mi": float(mi[0]),
        "nmi": float(ag.nmi(nb[0])), "hom": float(hom), "com": float(com),
        "ari": float(ag.ari_from_pairs(s[0], sa[0], sb[0], pairs[0])),
    }
    p_mi = float(ag.perm_pvalue(mi, tie_rtol))
    neuron |= {"p_value": p_mi, "p_nmi": p_mi, "p_cramers_v": float(ag.perm_pvalue(x2, tie_rtol)),
               "p_ari": float(ag.perm_pvalue(s, exact=True))}

    # per zone (§2.6)
    same = (nb * (nb - 1)).sum(-1)  # (B + 1, Z) integers behind H_cat and A_z
    hcat, assoc, _ = ag.zone_association(nb)
    hcat, assoc = _nan_where(small, hcat), _nan_where(small, assoc)
    p_assoc = np.where(small, np.nan, ag.perm_pvalue(same, exact=True))
    if np.isnan(assoc[0]).all() and not small.all():  # one category overall: A undefined (π₂ = 1)
        p_assoc = np.full(n_zones, np.nan)
    null = assoc[1:]
    null_mean = null.mean(0)
    null_sd = null.std(0, ddof=1)
    effect = np.where(null_sd > 0, (assoc[0] - null_mean) / np.where(null_sd > 0, null_sd, 1.0), np.nan)
    cstar = majority(nb, kc)  # (B + 1, Z)
    hit = np.take_along_axis(nb, cstar[..., None], -1)[..., 0]
    match = ag.two_by_two(hit, nz[None, :], kc[cstar], kk)
    match = {key: _nan_where(small, v) for key, v in match.items()}
    h_c = ag.entropy_counts(kc)
    h_cz = ag.entropy_counts(nb[0])  # H(C | z) per zone
    hom_z = 1.0 - h_cz / h_c if h_c > 0 else np.ones(n_zones)
    if gram is not None:
        onehot = (zb[:, None, :] == np.arange(n_zones)[None, :, None]).astype(np.float64)
        hcos = _nan_where(small, ag.cosine_homogeneity(gram, onehot))
        p_cos = ag.perm_pvalue(hcos, tie_rtol)
    else:
        hcos = np.full((b + 1, n_zones), np.nan)
        p_cos = np.full(n_zones, np.nan)
    parent_assoc = np.full(n_zones, np.nan)
    if parent_t is not None:
        _, pc = np.unique(np.asarray(parent_t, dtype=np.int64), return_inverse=True)
        parent_assoc = _nan_where(small, ag.zone_association(ag.contingency(zone, pc, n_zones, int(pc.max()) + 1))[1])
    zones = []
    for zi in range(n_zones):
        members = zone == zi
        zones.append({
            "zone": zi, "n_tokens": int(nz[zi]),
            "act_min": float(a[members].min()) if members.any() else np.nan,
            "act_max": float(a[members].max()) if members.any() else np.nan,
            "association": assoc[0, zi], "null_mean": null_mean[zi], "null_sd": null_sd[zi], "effect_d": effect[zi],
            "p_value": p_assoc[zi], "homog_cat": hcat[0, zi],
            "homog_ent": np.nan if small[zi] else float(hom_z[zi]),
            "purity": np.nan if small[zi] else float(hit[0, zi] / nz[zi]),
            "majority_category": None if small[zi] else int(cats_present[cstar[0, zi]]),
            "cramers_v": match["cramers_v"][0, zi], "cramers_v_bc": match["cramers_v_bc"][0, zi],
            "phi": match["phi"][0, zi], "nmi": match["nmi"][0, zi], "ari": match["ari"][0, zi],
            "p_cramers_v": np.nan if small[zi] else float(ag.perm_pvalue(match["cramers_v"][:, zi], tie_rtol)),
            "p_nmi": np.nan if small[zi] else float(ag.perm_pvalue(match["nmi"][:, zi], tie_rtol)),
            "p_ari": np.nan if small[zi] else float(ag.perm_pvalue(match["ari"][:, zi], tie_rtol)),
            "homog_cos": hcos[0, zi], "p_cos": p_cos[zi], "association_parent": parent_assoc[zi],
        })

    # contrasts (§2.6) and top-down statistics (§2.7)
    d_tb = assoc[:, 0] - assoc[:, n_zones - 1]
    d_tr = assoc[:, 0] - assoc[:, 1:].mean(-1)
    neuron |= {"delta_top_bottom": d_tb[0], "p_delta_top_bottom": float(ag.perm_pvalue(d_tb, tie_rtol)),
               "delta_top_rest": d_tr[0], "p_delta_top_rest": float(ag.perm_pvalue(d_tr, tie_rtol))}
    ab = np.vstack([a[None, :], a[perm]])
    eta = ag.eta_squared(ab, c, k)
    neuron |= {"eta2": float(eta[0]), "p_eta2": float(ag.perm_pvalue(eta, tie_rtol))}
    neuron |= ag.interleaving_index(a, c)
    neuron["category_means"] = {str(int(cats_present[i])): float(a[c == i].mean()) for i in range(k)}
    neuron["spearman_freq"] = None if counts_t is None else ag.spearman(a, np.log(np.asarray(counts_t, dtype=np.float64)))
    neuron["spearman_norm"] = None if norms_t is None else ag.spearman(a, norms_t)
    return {"neuron": neuron, "zones": zones}
