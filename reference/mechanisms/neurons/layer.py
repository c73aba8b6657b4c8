"""A6: a layer of neurons — core sets, tests, multiplicity, summaries, verdicts (spec §2.8). [reconstructed]

:func:`analyze_neurons` runs A4–A5 on a block of neurons (a job of ``--workers``);
:func:`adjust_layer` adds Holm per neuron and Benjamini–Hochberg per (layer, zone), for the
neuron-level ``p_value`` and for ``p_delta_top_bottom``; :func:`summarise` gives the §2.8 layer
summary with the bootstrap CI and the one-sided sign-flip test of "zone 0 beats zone Z−1";
:func:`verdict` is the rule of H8. :func:`analyze_arrays` runs all of it on user arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference.mechanisms.neurons.config import NeuronsConfig
from reference.mechanisms.neurons.statistics import neuron_tests
from reference.mechanisms.neurons.zones import Core, core_size, core_zones
from reference.metrics import agreement as ag

ZONE_ROW_KEYS = (
    "n_tokens", "act_min", "act_max", "association", "null_mean", "null_sd", "effect_d", "p_value", "p_holm", "q_bh",
    "significant", "homog_cat", "homog_ent", "purity", "majority_category", "cramers_v", "cramers_v_bc", "phi", "nmi",
    "ari", "p_cramers_v", "p_nmi", "p_ari", "homog_cos", "p_cos",
)
ROW_KEYS = ("layer", "neuron", "zone") + ZONE_ROW_KEYS + (
    "neuron_cramers_v", "neuron_nmi", "neuron_ari", "neuron_hom", "neuron_p_value", "association_parent")
"""The keys of a ``rows`` entry of neurons.json (spec §6.3), in order."""
NEURON_KEYS = (
    "layer", "neuron", "K", "k", "act_top", "act_core_min", "chi2", "cramers_v", "cramers_v_bc", "mi", "nmi", "hom", "com",
    "ari", "p_value", "p_nmi", "p_cramers_v", "p_ari", "q_bh", "delta_top_bottom", "p_delta_top_bottom", "q_bh_delta",
    "delta_top_rest", "p_delta_top_rest", "eta2", "p_eta2", "interleave", "sep_low", "sep_high", "category_means",
    "spearman_freq", "spearman_norm",
)
"""The keys of a ``neurons`` entry of neurons.json (spec §6.3), in order."""
TOP_KEYS = ("n", "mean_delta", "ci_low", "ci_high", "p_signflip", "frac_positive", "frac_neuron_significant", "verdict")


@dataclass
class NeuronJob:
    """One job of a layer: the neurons ``neurons`` of block ``layer`` with their type activations.

    abar (N, len(neurons)); cats (N,) categories of V_elig; gram (N, N) Ê Êᵀ over V_elig or None;
    parents (N,) or None; counts (N,) and norms (N,) for the selection diagnostics, or None.
    """

    layer: int
    neurons: np.ndarray
    abar: np.ndarray
    ids: np.ndarray
    cats: np.ndarray
    cfg: NeuronsConfig
    k: int
    gram: np.ndarray | None = None
    parents: np.ndarray | None = None
    counts: np.ndarray | None = None
    norms: np.ndarray | None = None


@dataclass
class LayerResult:
    """rows / neurons / skipped as in neurons.json; cores {neuron: Core} for the next layer and the plots."""

    rows: list[dict] = field(default_factory=list)
    neurons: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    cores: dict[int, Core] = field(default_factory=dict)

    def extend(self, other: LayerResult) -> None:
        self.rows += other.rows
        self.neurons += other.neurons
        self.skipped += other.skipped
        self.cores |= other.cores


def _sub(x: np.ndarray | None, pos: np.ndarray) -> np.ndarray | None:
    return None if x is None else x[pos]


def analyze_neurons(job: NeuronJob) -> LayerResult:
    """A4–A5 for every neuron of ``job`` (module-level: a ``run_jobs`` job). Rows get Holm, BH comes later."""
    cfg = job.cfg
    out = LayerResult()
    for col, j in enumerate(job.neurons):
        j = int(j)
        core = core_zones(job.abar[:, col], job.ids, job.cats, job.k, cfg.zones, cfg.zone_mode, cfg.site)
        if isinstance(core, str):
            out.skipped.append({"layer": job.layer, "neuron": j, "reason": core})
            continue
        pos = core.pos
        gram = None if job.gram is None else job.gram[np.ix_(pos, pos)]
        res = neuron_tests(job.abar[pos, col], job.cats[pos], core.zone, cfg.zones, b=cfg.permutations, seed=cfg.seed,
                           layer=job.layer, neuron=j, gram=gram, parent_t=_sub(job.parents, pos),
                           counts_t=_sub(job.counts, pos), norms_t=_sub(job.norms, pos), tie_rtol=cfg.tie_rtol)
        nrec = {"layer": job.layer, "neuron": j} | res["neuron"] | {"q_bh": None, "q_bh_delta": None}
        out.neurons.append({key: nrec[key] for key in NEURON_KEYS})
        holm = ag.holm(np.array([z["p_value"] for z in res["zones"]], dtype=np.float64))
        for zrec, p_holm in zip(res["zones"], holm):
            row = {"layer": job.layer, "neuron": j} | zrec | {"p_holm": p_holm, "q_bh": None, "significant": None}
            row |= {"neuron_cramers_v": nrec["cramers_v"], "neuron_nmi": nrec["nmi"], "neuron_ari": nrec["ari"],
                    "neuron_hom": nrec["hom"], "neuron_p_value": nrec["p_value"]}
            out.rows.append({key: row[key] for key in ROW_KEYS})
        out.cores[j] = core
    return out


def _num(x: Any) -> float:
    return np.nan if x is None else float(x)


def adjust_layer(result: LayerResult, alpha: float, zones: int) -> None:
    """BH per (layer, zone) over analysed neurons (non-null p), neuron-level and Δ_tb (spec §2.8), in place."""
    for z in range(zones):
        rows = [r for r in result.rows if r["zone"] == z]
        q = ag.bh(np.array([_num(r["p_value"]) for r in rows]))
        for r, qv in zip(rows, q):
            r["q_bh"] = qv
            r["significant"] = None if np.isnan(qv) else bool(qv <= alpha)
    for key, qkey in (("p_value", "q_bh"), ("p_delta_top_bottom", "q_bh_delta")):
        pv = np.array([_num(n[key]) for n in result.neurons], dtype=np.float64)  # NaN (null Δ) leaves the family
        for n, qv in zip(result.neurons, ag.bh(pv)):
            n[qkey] = qv


def verdict(n: int, mean_delta: float | None, p: float | None, alpha: float) -> str:
    """H8: "holds" iff n ≥ 5, mean Δ > 0 and p ≤ α; "undetermined" if n < 5; else "does not hold"."""
    if n < 5:
        return "undetermined"
    return "holds" if mean_delta is not None and mean_delta > 0 and p is not None and p <= alpha else "does not hold"


def _mean(values: list) -> float | None:
    v = np.array([_num(x) for x in values], dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else None


def _median(values: list) -> float | None:
    v = np.array([_num(x) for x in values], dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else None


def summarise(rows: list[dict], neurons: list[dict], skipped: list[dict], cfg: NeuronsConfig, code: int,
              name: int | str) -> dict:
    """The §2.8 summary of one layer (``name`` = ℓ) or of all pooled (``name`` = "all", ``code`` = L).

    [reconstructed] One resample matrix ``default_rng([seed, 2, code]).integers(0, n, (bootstrap, n))``
    serves every zone (a zone's null values are skipped by a NaN-mean); the Δ_tb CI draws its own from
    ``[seed, 2, code, 1]`` over the neurons with a non-null Δ; the sign flips are
    ``default_rng([seed, 4, code]).integers(0, 2, (sign_flips, n))·2 − 1``.
    """
    zones = sorted({r["zone"] for r in rows}) or list(range(cfg.zones))
    n = len(neurons)
    boot = np.random.default_rng([cfg.seed, 2, code]).integers(0, max(n, 1), (cfg.bootstrap, max(n, 1)))
    by_neuron = {(r["layer"], r["neuron"], r["zone"]): r for r in rows}
    out_zones = []
    for z in zones:
        zr = [by_neuron.get((nr["layer"], nr["neuron"], z)) for nr in neurons]
        assoc = np.array([_num(r["association"]) if r else np.nan for r in zr], dtype=np.float64)
        ok = ~np.isnan(assoc)
        ci = (None, None)
        if ok.any() and n:
            means = np.array([np.nanmean(assoc[i]) if ok[i].any() else np.nan for i in boot])
            means = means[~np.isnan(means)]
            if means.size:
                ci = tuple(float(x) for x in np.quantile(means, [0.025, 0.975]))
        sig = [r["significant"] for r in zr if r and r["significant"] is not None]
        out_zones.append({
            "zone": z, "n": int(ok.sum()), "mean_association": _mean(list(assoc)), "median_association": _median(list(assoc)),
            "ci_low": ci[0], "ci_high": ci[1], "share_significant": float(np.mean(sig)) if sig else None,
            **{f"mean_{key}": _mean([r[key] for r in zr if r]) for key in ("homog_cat", "cramers_v", "nmi", "ari",
                                                                          "homog_cos")},
            "share_p_cos": _share([r["p_cos"] for r in zr if r], cfg.alpha),
            "mean_association_parent": _mean([r["association_parent"] for r in zr if r]),
        })
    deltas = np.array([_num(nr["delta_top_bottom"]) for nr in neurons], dtype=np.float64)
    deltas = deltas[~np.isnan(deltas)]
    nd = int(deltas.size)
    top = {"n": nd, "mean_delta": None, "ci_low": None, "ci_high": None, "p_signflip": None, "frac_positive": None,
           "frac_neuron_significant": None}
    if nd:
        idx = np.random.default_rng([cfg.seed, 2, code, 1]).integers(0, nd, (cfg.bootstrap, nd))
        signs = np.random.default_rng([cfg.seed, 4, code]).integers(0, 2, (cfg.sign_flips, nd)) * 2 - 1
        lo, hi = ag.bootstrap_ci(deltas, idx)
        qd = [nr["q_bh_delta"] for nr in neurons if not np.isnan(_num(nr["q_bh_delta"]))]
        top |= {"mean_delta": float(deltas.mean()), "ci_low": lo, "ci_high": hi,
                "p_signflip": ag.sign_flip_pvalue(deltas, signs, cfg.tie_rtol), "frac_positive": float((deltas > 0).mean()),
                "frac_neuron_significant": _share(qd, cfg.alpha)}
    top["verdict"] = verdict(nd, top["mean_delta"], top["p_signflip"], cfg.alpha)
    zone0 = [by_neuron.get((nr["layer"], nr["neuron"], zones[0])) for nr in neurons]
    parent_gap = [(_num(r["association_parent"]) - _num(r["association"])) for r in zone0 if r]
    reasons: dict[str, int] = {}
    for s in skipped:
        reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
    return {
        "layer": name, "n_analysed": n, "n_skipped": len(skipped), "skipped_by_reason": reasons, "zones": out_zones,
        "top_vs_bottom": top,
        **{f"median_{key}": _median([nr[key] for nr in neurons]) for key in ("cramers_v", "nmi", "ari", "hom", "eta2",
                                                                             "interleave", "spearman_freq")},
        "share_neuron_significant": _share([nr["q_bh"] for nr in neurons], cfg.alpha),
        "mean_sep_low": _mean([nr["sep_low"] for nr in neurons]), "mean_sep_high": _mean([nr["sep_high"] for nr in neurons]),
        "mean_parent_gap_top": _mean(parent_gap), "flags": [],
    }


def _share(values: list, alpha: float) -> float | None:
    v = np.array([_num(x) for x in values], dtype=np.float64)
    v = v[~np.isnan(v)]
    return float((v <= alpha).mean()) if v.size else None


def sentence(summary: dict) -> str:
    """The printed verdict sentence of a layer summary, numbers whatever the verdict (spec §6.3)."""
    zs = summary["zones"]
    if not zs:
        return f"layer {summary['layer']}: no analysed neuron → undetermined"
    first, last = zs[0], zs[-1]
    top = summary["top_vs_bottom"]

    def f(x: Any, spec: str = "{:.3f}") -> str:
        return "n/a" if x is None else spec.format(x)

    what = {"holds": "the top-zone finding holds", "does not hold": "the top-zone finding does not hold",
            "undetermined": "undetermined (n < 5)"}[top["verdict"]]
    return (f"layer {summary['layer']}: zone {first['zone']} association {f(first['mean_association'])} "
            f"[{f(first['ci_low'], '{:.3f}')}, {f(first['ci_high'], '{:.3f}')}] vs zone {last['zone']} "
            f"{f(last['mean_association'])} [{f(last['ci_low'])}, {f(last['ci_high'])}]; Δ = {f(top['mean_delta'])}, "
            f"sign-flip p = {f(top['p_signflip'], '{:.4f}')}, n = {top['n']} → {what}")


def layer_k(n_eligible: int, cfg: NeuronsConfig) -> int:
    """K of the config for N eligible tokens (ConfigError on ``core_size`` when K < 2Z)."""
    return core_size(n_eligible, cfg.core_size, cfg.core_fraction, cfg.zones)


def analyze_arrays(abar: Any, categories: Any, embeddings: Any = None, counts: Any = None, cfg: NeuronsConfig | None = None,
                   *, layer: int = 0, n_layers: int | None = None, parents: Any = None, neurons: Any = None) -> dict:
    """A4–A6 on user arrays: ``{"rows", "neurons", "skipped", "layers", "cores"}`` for one block.

    abar (N, M) type activations of N eligible types (ids 0 … N−1 in this order, for tie-breaks);
    categories (N,) ints ≥ 0; embeddings (N, d) or None (then homog_cos / p_cos are null);
    counts (N,) occurrences or None; parents (N,) parent categories or None; neurons: ids of the M
    columns (default 0 … M−1). E.g. GPT-2 XL activations computed elsewhere, or planted fixtures.
    """
    cfg = cfg or NeuronsConfig()
    a = np.asarray(abar, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"abar: expected (N, M), got shape {a.shape}")
    cats = np.asarray(categories, dtype=np.int64)
    ids = np.arange(a.shape[0])
    gram = None
    norms = None
    if embeddings is not None:
        gram, norms = unit_gram(np.asarray(embeddings, dtype=np.float64), cfg.embedding_center)
    job = NeuronJob(layer, np.arange(a.shape[1]) if neurons is None else np.asarray(neurons), a, ids, cats, cfg,
                    layer_k(a.shape[0], cfg), gram, None if parents is None else np.asarray(parents, dtype=np.int64),
                    None if counts is None else np.asarray(counts, dtype=np.float64), norms)
    res = analyze_neurons(job)
    adjust_layer(res, cfg.alpha, cfg.zones)
    code = layer + 1 if n_layers is None else n_layers
    summaries = [summarise(res.rows, res.neurons, res.skipped, cfg, layer, layer),
                 summarise(res.rows, res.neurons, res.skipped, cfg, code, "all")]
    return {"rows": res.rows, "neurons": res.neurons, "skipped": res.skipped, "layers": summaries, "cores": res.cores}


def unit_gram(emb: np.ndarray, center: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(Ê Êᵀ (N, N), ‖e_v‖ (N,)): rows normalised to unit length, 0 where ‖e‖ < 10⁻¹² (§2.1).

    ``center``: subtract the V_elig mean first (``embedding_center``). The norms are of the
    uncentred rows (the ``spearman_norm`` diagnostic reads the raw embedding).
    """
    norms = np.linalg.norm(emb, axis=1)
    e = emb - emb.mean(0) if center else emb
    nn = np.linalg.norm(e, axis=1)
    unit = np.where(nn[:, None] >= 1e-12, e / np.where(nn >= 1e-12, nn, 1.0)[:, None], 0.0)
    return unit @ unit.T, norms
