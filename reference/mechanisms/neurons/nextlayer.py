"""A7–A8: block ℓ+1 recombining the segments of block ℓ (specs/01-intraneuronal.md §2.9). [reconstructed]

Reconstructed from the companions [companion, companion†]: FACT's 10 precursors per layer-1 neuron,
CLIP's "the more a token activates a precursor, the more it can join the target's category",
RESTR's sub-category extraction and phasing.

* :func:`virtual_weights` — W_virt = W_out^ℓ M W_in^{ℓ+1} over the direct residual path, M the
  LayerNorm centring P_c = I − 𝟙𝟙ᵀ/d and gains crossed in path order (pre-LN: P_c diag(γ^{ln2}_{ℓ+1});
  post-LN: P_c diag(γ^{ln2}_ℓ) P_c diag(γ^{ln1}_{ℓ+1})); 1/σ, LN biases and attention ignored.
  Row centring and column scaling, never a d×d matrix.
* :func:`next_layer_arrays` — per target k of block ℓ+1: precursors, controls, enrichment of the
  target's core set T_k in each zone of each precursor / control, hypergeometric tails, BH over
  a target's precursors, sources, recombination, phasing, and the pair summary.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.mechanisms.neurons.statistics import majority
from reference.mechanisms.neurons.zones import Core
from reference.metrics import agreement as ag


def virtual_weights(w_out: Any, w_in: Any, norm: str = "pre", gains: tuple[Any, ...] = (), mode: str = "ln") -> np.ndarray:
    """W_virt (m_ℓ, m_{ℓ+1}) = W_out (m_ℓ, d) · M · W_in (d, m_{ℓ+1}).

    ``gains``: pre-LN (γ^{ln2}_{ℓ+1},); post-LN (γ^{ln2}_ℓ, γ^{ln1}_{ℓ+1}) — one P_c·diag(γ) per
    LayerNorm crossed, in path order. ``mode="raw"``: M = I.
    """
    w = np.asarray(w_out, dtype=np.float64)
    if mode == "ln":
        expected = 1 if norm == "pre" else 2
        if len(gains) != expected:
            raise ValueError(f"virtual_weights: {norm}-LN needs {expected} gain vectors, got {len(gains)}")
        for g in gains:
            w = (w - w.mean(1, keepdims=True)) * np.asarray(g, dtype=np.float64)[None, :]  # row · P_c diag(γ)
    return w @ np.asarray(w_in, dtype=np.float64)


def zone_matrix(cores: dict[int, Core], neurons: list[int], n_types: int) -> np.ndarray:
    """Block-ℓ zones as an (len(neurons), N) int8 matrix, −1 outside T_j (A8)."""
    out = np.full((len(neurons), n_types), -1, np.int8)
    for i, j in enumerate(neurons):
        out[i, cores[j].pos] = cores[j].zone
    return out


def _precursors(column: np.ndarray, sources: np.ndarray, n: int) -> np.ndarray:
    """Indices into ``sources`` of the n largest W_virt[j, k] > 0, ties → smaller j."""
    pos = np.flatnonzero(column > 0)
    order = np.lexsort((sources[pos], -column[pos]))
    return pos[order[:n]]


def next_layer_arrays(w_virt: Any, cores_from: dict[int, Core], cores_to: dict[int, Core], cats: Any, n_zones: int, *,
                      layer_from: int, seed: int = 0, alpha: float = 0.05, n_precursors: int = 10, n_controls: int = 10,
                      sign_flips: int = 9999, tie_rtol: float = 1e-12, abar_from: Any = None,
                      precursor_rank: str = "weight", neuron_ids_to: Any = None) -> dict:
    """A8: ``{"pairs", "targets", "summary"}`` of block ℓ → ℓ+1 (spec §2.9, §6.3).

    w_virt (m_ℓ, m_{ℓ+1}) over *all* neurons of both blocks; cores_from / cores_to: the analysed
    neurons' core sets (positions into V_elig, zones); cats (N,) categories of V_elig;
    abar_from (N, m_ℓ) the block-ℓ type activations (for ``precursor_rank="contribution"``).
    """
    w = np.asarray(w_virt, dtype=np.float64)
    cats = np.asarray(cats, dtype=np.int64)
    n_types = cats.size
    sources = np.array(sorted(cores_from), dtype=np.int64)
    zmat = zone_matrix(cores_from, list(sources), n_types)
    sizes = np.stack([np.bincount(cores_from[j].zone, minlength=n_zones) for j in sources]) if sources.size else \
        np.zeros((0, n_zones), np.int64)
    pairs, targets = [], []
    layer_to = layer_from + 1
    for t in sorted(cores_to) if neuron_ids_to is None else neuron_ids_to:
        t = int(t)
        tcore = cores_to[t]
        kk = tcore.pos.size
        column = w[sources, t]
        if precursor_rank == "contribution":
            column = column * np.asarray(abar_from, dtype=np.float64)[np.ix_(tcore.pos, sources)].mean(0)
        prec = _precursors(column, sources, n_precursors)
        rest = np.setdiff1d(np.arange(sources.size), prec)
        rng = np.random.default_rng([seed, 1, layer_to, t])
        ctrl = np.sort(rng.choice(rest, size=min(n_controls, rest.size), replace=False)) if rest.size else rest
        in_t = zmat[:, tcore.pos]  # (sources, K): zone of each target core token in each source neuron
        rows = {}
        for role, members in (("precursor", prec), ("control", ctrl)):
            for rank, i in enumerate(members):
                x = np.array([(in_t[i] == z).sum() for z in range(n_zones)], dtype=np.int64)
                nz = sizes[i]
                enrich = np.where(nz > 0, x * n_types / (kk * np.where(nz > 0, nz, 1)), np.nan)
                pz = [ag.hypergeom_sf(int(x[z]), n_types, int(nz[z]), kk) for z in range(n_zones)]
                rec = {"layer_from": layer_from, "layer_to": layer_to, "target": t, "neuron": int(sources[i]), "role": role,
                       "rank": rank, "weight": float(w[sources[i], t]), "zone_counts": [int(v) for v in x] + [int(kk - x.sum())],
                       "enrichment": [float(v) for v in enrich], "p_enrich": pz, "enrich_top": float(enrich[0]),
                       "p_top": pz[0], "q_top": None, "pref": float(enrich[0] - np.nanmean(enrich[1:]))}
                rows[(role, rank)] = rec
                pairs.append(rec)
        prec_rows = [rows[("precursor", r)] for r in range(prec.size)]
        ctrl_rows = [rows[("control", r)] for r in range(ctrl.size)]
        q = ag.bh(np.array([r["p_top"] for r in prec_rows], dtype=np.float64))
        for r, qv in zip(prec_rows, q):
            r["q_top"] = float(qv)
        src = [r for r in prec_rows if r["q_top"] <= alpha]
        src_cats = sorted({_majority(cores_from[r["neuron"]], cats, n_zones) for r in src})
        top_tokens = tcore.pos[tcore.zone == 0]
        top_cats = cats[top_tokens]
        share = float(np.isin(top_cats, src_cats).mean()) if src else None
        multi = np.zeros(n_types, np.int64)
        for i in prec:
            multi[zmat[i] == 0] += 1
        mk = multi >= 2
        phasing, p_phasing = None, None
        if mk.any() and top_tokens.size:
            x = int(mk[top_tokens].sum())
            phasing = x * n_types / (top_tokens.size * mk.sum())
            p_phasing = ag.hypergeom_sf(x, n_types, int(mk.sum()), int(top_tokens.size))
        targets.append({
            "layer_from": layer_from, "layer_to": layer_to, "target": t,
            "precursors": [int(sources[i]) for i in prec], "controls": [int(sources[i]) for i in ctrl],
            "enrich_top_prec": _mean([r["enrich_top"] for r in prec_rows]),
            "enrich_top_ctrl": _mean([r["enrich_top"] for r in ctrl_rows]),
            "pref_prec": _mean([r["pref"] for r in prec_rows]), "pref_ctrl": _mean([r["pref"] for r in ctrl_rows]),
            "sources": [r["neuron"] for r in src], "n_sources": len(src), "source_categories": src_cats,
            "recombined_share": share, "recombines": bool(len(src) >= 2 and len(src_cats) >= 2),
            "target_categories": sorted({int(c) for c in top_cats}),
            "phasing_enrichment": phasing, "p_phasing": p_phasing,
        })
    summary = pair_summary(pairs, targets, n_zones, seed, layer_from, sign_flips, tie_rtol)
    return {"pairs": pairs, "targets": targets, "summary": summary}


def _majority(core: Core, cats: np.ndarray, n_zones: int) -> int:
    """c*(S_{j,0}): the majority category of a neuron's zone 0, ties → smaller K_c in T_j, then smaller id (§2.6)."""
    present, c = np.unique(cats[core.pos], return_inverse=True)
    table = ag.contingency(core.zone, c, n_zones, present.size)
    return int(present[majority(table, table.sum(0))[0]])


def _mean(values: list) -> float | None:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else None


def pair_summary(pairs: list[dict], targets: list[dict], n_zones: int, seed: int, layer_from: int, sign_flips: int,
                 tie_rtol: float) -> dict:
    """Mean E_jz per zone for precursors and controls; sign-flip tests over targets (stream [seed, 4, 100 + ℓ])."""
    out: dict[str, Any] = {"layer_from": layer_from, "layer_to": layer_from + 1, "n_targets": len(targets)}
    for role in ("precursor", "control"):
        e = np.array([r["enrichment"] for r in pairs if r["role"] == role], dtype=np.float64).reshape(-1, n_zones)
        out[f"mean_enrichment_{role}"] = [None if np.isnan(e[:, z]).all() else float(np.nanmean(e[:, z]))
                                          for z in range(n_zones)] if e.size else [None] * n_zones
    diff = np.array([t["enrich_top_prec"] - t["enrich_top_ctrl"] for t in targets
                     if t["enrich_top_prec"] is not None and t["enrich_top_ctrl"] is not None], dtype=np.float64)
    pref = np.array([t["pref_prec"] for t in targets if t["pref_prec"] is not None], dtype=np.float64)
    rng = np.random.default_rng([seed, 4, 100 + layer_from])
    signs = rng.integers(0, 2, (sign_flips, len(targets))) * 2 - 1 if targets else None
    out["mean_enrich_top_prec"] = _mean([t["enrich_top_prec"] for t in targets])
    out["mean_enrich_top_ctrl"] = _mean([t["enrich_top_ctrl"] for t in targets])
    out["mean_prec_minus_ctrl"] = float(diff.mean()) if diff.size else None
    out["p_prec_gt_ctrl"] = ag.sign_flip_pvalue(diff, signs[:, : diff.size], tie_rtol) if diff.size else None
    out["mean_pref_prec"] = float(pref.mean()) if pref.size else None
    out["p_pref_prec"] = ag.sign_flip_pvalue(pref, signs[:, : pref.size], tie_rtol) if pref.size else None
    out["share_recombines"] = float(np.mean([t["recombines"] for t in targets])) if targets else None
    out["mean_recombined_share"] = _mean([t["recombined_share"] for t in targets])
    return out
