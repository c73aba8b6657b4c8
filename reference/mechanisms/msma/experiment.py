"""``clearform msma run``: MSMA vs the shuffled-pair control vs no alignment on the toy world (specs/04-msma.md §6). [reconstructed]

Protocol (§6.2): train the toy LM (shared by all seeds); A1 features of the analysis pool; per
seed (a job of :func:`reference.parallel.run_jobs`) split, standardise, fit every arm, run the
estimator panel and the bootstraps; interventions on seed 0; summary over seeds with paired tests
and bootstrap intervals; hard checks H1–H7 and soft checks S1–S8 (printed and flagged); writes
``DIR/msma.json``, ``config.json``, ``msma.md`` and the plots. The only file of the package that
imports the trainer and the report helpers.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from reference.config import ConfigError, RunConfig, check_choice, check_int
from reference.data.toyworld import PRESETS, ToyWorld, preset_config
from reference.mechanisms.msma.code_mode import ARMS_CODE, code_labels, code_step, head_accuracy, init_state, pooled_features
from reference.mechanisms.msma.config import MSMAConfig
from reference.mechanisms.msma.intervene import run_interventions
from reference.mechanisms.msma.panel import ARMS, ESTIMATORS, seed_job
from reference.mechanisms.msma.scales import SCALES, partition, scale_features
from reference.mechanisms.msma.stats import bootstrap_mean_ci, mean_sd_min_max, paired_t, wilcoxon
from reference.metrics.information import relative_reduction
from reference.parallel import Jobs, run_jobs
from reference.report import Section, page, render_checks, render_table
from reference.train import Trainer

SCHEMA = "clearform.msma/1"
TOP_KEYS = ("schema", "mode", "config", "timing_s", "model", "partition", "data", "seeds", "estimators", "rows", "summary",
            "training", "interventions", "checks", "reference")
"""The keys of ``msma.json`` (§6.3)."""
PRESET_NAMES = {"default": "msma_toy", "tiny": "msma_tiny"}
# §6.1: (train, val, test) sequences per seed, pool size, bootstrap, prompts, prompt length, new tokens.
PRESET_DATA = {
    "default": {"sizes": (2048, 512, 1024), "pool": 4096, "bootstrap": 200, "n_prompts": 64, "prompt_len": 16, "new_tokens": 48},
    "tiny": {"sizes": (512, 128, 512), "pool": 1152, "bootstrap": 50, "n_prompts": 16, "prompt_len": 8, "new_tokens": 24},
}
README = {  # [author-readme] §6.5: context, not targets (global → intermediate, last assessed epoch)
    "note": "context, not targets",
    "gpt2": {"kl_baseline": 6955, "kl_full": 33, "mi_baseline": 0.23, "mi_full": 1.25, "kl_reduction": 0.9953, "mi_gain": 5.43},
    "bert": {"kl_baseline": 403, "kl_full": 0.51, "mi_baseline": 0.06, "mi_full": 2.89, "kl_reduction": 0.9987, "mi_gain": 48.2},
}


@dataclass(frozen=True)
class RunSettings:
    """Options of ``clearform msma run`` (§6.2). ``lm_steps`` None: the preset's (600 default, 150 tiny).

    ``epochs`` (map training) and ``est_steps`` (critic steps of InfoNCE / MINE) are the msma section's;
    the tests lower them to keep the default test run short.
    """

    preset: str = "default"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    lm_steps: int | None = None
    bootstrap: int | None = None
    interventions: str = "basic"
    arms: tuple[str, ...] = ARMS
    partition: Any = "thirds"
    epochs: int = 200
    est_steps: int = 200

    def __post_init__(self) -> None:
        check_choice("msma run", "preset", self.preset, tuple(PRESET_NAMES))
        check_choice("msma run", "interventions", self.interventions, ("basic", "none"))
        if self.lm_steps is not None:
            check_int("msma run", "lm_steps", self.lm_steps, 1, 10**6)
        if self.bootstrap is not None:
            check_int("msma run", "bootstrap", self.bootstrap, 0, 10**5)
        for arm in self.arms:
            check_choice("msma run", "arms", arm, ARMS)
        if "none" not in self.arms:
            raise ConfigError("msma run.arms: 'none' is needed (every reduction and gain is relative to it)")
        self.config()  # validates seeds (≥ 2), epochs, the partition's form
        partition(self.partition, PRESETS[PRESET_NAMES[self.preset]]["model"]["n_layers"])  # before any training

    def config(self) -> MSMAConfig:
        return MSMAConfig(seeds=tuple(self.seeds), partition=self.partition, epochs=self.epochs, est_steps=self.est_steps,
                          bootstrap=self.used_bootstrap, n_prompts=self.data["n_prompts"],
                          prompt_len=self.data["prompt_len"], new_tokens=self.data["new_tokens"])

    @property
    def data(self) -> dict:
        return PRESET_DATA[self.preset]

    @property
    def used_lm_steps(self) -> int:
        return self.lm_steps if self.lm_steps is not None else PRESETS[PRESET_NAMES[self.preset]]["train"]["steps"]

    @property
    def used_bootstrap(self) -> int:
        return self.bootstrap if self.bootstrap is not None else self.data["bootstrap"]


def lm_run_config(settings: RunSettings) -> RunConfig:
    """§6.1: the preset's model (pre-LN, causal, tied head, tanh-GELU, dropout 0), AdamW 3·10⁻³, wd 0.01,
    50 warm-up steps then cosine, batch 16, clip 1.0, LM seed 0, float32 training."""
    preset = PRESETS[PRESET_NAMES[settings.preset]]
    steps = settings.used_lm_steps
    return RunConfig().overridden({
        "model": {**preset["model"], "norm": "pre", "causal": True, "tied_head": True, "gelu": "tanh", "dtype": "float32"},
        "train": {"steps": steps, "batch_size": 16, "lr": 3e-3, "weight_decay": 0.01, "warmup": min(50, steps),
                  "grad_clip": 1.0, "seed": 0, "eval_every": 0, "eval_batches": 4, "checkpoint_every": 0, "log_every": 50},
        "toyworld": dict(preset["toyworld"]),
    })


def train_lm(settings: RunSettings, folder: Path, progress: bool) -> tuple[dict, Any, dict]:
    """Train the toy LM; returns float64 analysis parameters, the model config, and {val_loss, unigram_loss}."""
    run = lm_run_config(settings)
    trainer = Trainer(run, folder, progress=False, plugins=[])
    bar = tqdm(total=run.train.steps, desc="msma LM", unit="step", disable=not progress, file=sys.stderr, leave=False)
    while trainer.step < trainer.run.train.steps:
        before = trainer.step
        trainer.train(until=min(before + 25, trainer.run.train.steps))
        bar.update(trainer.step - before)
    bar.close()
    ev = trainer.evaluate()
    model = trainer.run.model.replace(dtype="float64")
    params = {k: np.asarray(v, dtype=np.float64) for k, v in trainer.params.items()}
    return params, model, {"val_loss": float(ev["val_loss"]), "unigram_loss": float(ev.get("unigram_loss", float("nan")))}


# --------------------------------------------------------------------------- summary over seeds


def _row_values(results: list[dict], arm: str, pair: str, est: str) -> list[float]:
    return [r["values"][est] for res in results for r in res["rows"] if r["arm"] == arm and r["pair"] == pair]


def summarise(results: list[dict], cfg: MSMAConfig, arms: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """Per-seed rows and the summary over seeds: before/after, reduction or gain, delta, paired tests, CIs (§5.7, §6.3)."""
    rows, summary = [], []
    boot = {(res["seed"], b["arm"], b["pair"]): b["draws"] for res in results for b in res["boot"]}
    seeds = [res["seed"] for res in results]
    for arm in arms:
        for pair in ("GI", "IL", "GL"):
            for est, kind in ESTIMATORS.items():
                before = _row_values(results, "none", pair, est)
                after = _row_values(results, arm, pair, est)
                red = [relative_reduction(b, a) for b, a in zip(before, after)] if kind == "kl" else None
                gain = [a / b if b > 1e-6 else None for b, a in zip(before, after)] if kind == "mi" else None
                delta = [a - b for b, a in zip(before, after)]
                for i, seed in enumerate(seeds):
                    ci = None
                    if (seed, arm, pair) in boot and est in boot[(seed, arm, pair)]:
                        nb, ab = np.array(boot[(seed, "none", pair)][est]), np.array(boot[(seed, arm, pair)][est])
                        stat = (nb - ab) / nb if kind == "kl" else ab - nb
                        ci = [float(np.percentile(stat, 2.5)), float(np.percentile(stat, 97.5))]
                    rows.append({"seed": seed, "arm": arm, "pair": pair, "estimator": est, "kind": kind,
                                 "before": before[i], "after": after[i], "rel_reduction": red[i] if red else None,
                                 "gain": gain[i] if gain else None, "delta": delta[i], "ci95_seed": ci})
                tests = {}
                for other in ("none", "control", "procrustes"):
                    if other != arm and other in arms:
                        o = _row_values(results, other, pair, est)
                        t = paired_t(after, o)
                        tests[f"vs_{other}"] = {**t, "p_wilcoxon": wilcoxon(np.subtract(after, o))}
                summary.append({
                    "arm": arm, "pair": pair, "estimator": est, "kind": kind, "n_seeds": len(seeds),
                    "before": mean_sd_min_max(before), "after": mean_sd_min_max(after),
                    "rel_reduction": _agg([r for r in red if r is not None], cfg) if red else None,
                    "gain": _agg([g for g in gain if g is not None], cfg) if gain and all(g is not None for g in gain)
                    else None,
                    "delta": _agg(delta, cfg), "tests": tests,
                })
    return rows, summary


def _agg(values: list[float], cfg: MSMAConfig) -> dict | None:
    """mean, sd, min, max over seeds and the percentile bootstrap interval of the mean (stream 5)."""
    if not values:
        return None
    return {**mean_sd_min_max(values), "ci95": bootstrap_mean_ci(values, cfg.bootstrap_seeds, [0, 5, 1])}


def _find(summary: list[dict], arm: str, pair: str, est: str) -> dict | None:
    return next((s for s in summary if s["arm"] == arm and s["pair"] == pair and s["estimator"] == est), None)


# --------------------------------------------------------------------------- checks (§6.4)


def alignment_checks(results: list[dict], summary: list[dict], cfg: MSMAConfig, arms: tuple[str, ...]) -> list[dict]:
    """H1–H4 (hard) and S1–S4, S8 (soft) from the per-seed results and the summary."""
    checks = []

    def add(cid: str, hard: bool, ok: bool | None, detail: str) -> None:
        checks.append({"id": cid, "hard": hard, "pass": ok, "detail": detail})

    if {"msma", "control"} <= set(arms):
        parts, ok = [], True
        for pair in ("GI", "IL"):
            s = _find(summary, "msma", pair, "kl_diag")
            msma, ctrl = _row_values(results, "msma", pair, "kl_diag"), _row_values(results, "control", pair, "kl_diag")
            red = s["rel_reduction"]["mean"]
            p_none, p_ctrl = s["tests"]["vs_none"]["p_t"], s["tests"]["vs_control"]["p_t"]
            every = all(m < c for m, c in zip(msma, ctrl))
            ok &= red >= 0.5 and every and p_none < 0.05 and p_ctrl < 0.05
            parts.append(f"{pair}: reduction {red:.3f}, msma < control on every seed {every}, p_t vs none {p_none:.2g}, "
                         f"vs control {p_ctrl:.2g}")
        add("H1", True, bool(ok), "; ".join(parts))
    if "procrustes" in arms:
        worst = 0.0
        for est in ("gauss", "ksg", "infonce", "mine"):
            for pair in ("GI", "IL", "GL"):
                for a, b in zip(_row_values(results, "procrustes", pair, est), _row_values(results, "none", pair, est)):
                    err = abs(a - b) if est == "ksg" else abs(a - b) / max(abs(b), 1e-300)
                    worst = max(worst, err / 1e-6)
        msma_ok, msma_detail = True, ""
        d = results[0]["d"]
        if "msma" in arms and d <= cfg.gauss_dim:
            conds = [c for res in results for c in res["sanity"]["cond_A"].values()]
            if max(conds) < 1e8:
                errs = [abs(a - b) / max(abs(b), 1e-300) for pair in ("GI", "IL", "GL")
                        for a, b in zip(_row_values(results, "msma", pair, "gauss"), _row_values(results, "none", pair, "gauss"))]
                msma_ok = max(errs) <= 1e-6
                msma_detail = f"; msma gauss max rel err {max(errs):.2e} (κ(A) ≤ {max(conds):.3g})"
        add("H2", True, worst <= 1.0 and msma_ok, f"procrustes vs none: worst error / tolerance {worst:.3g}{msma_detail}")
    if "moment" in arms:
        d = results[0]["d"]
        worst = max(v for res in results for v in res["sanity"]["moment_train_kl"].values())
        add("H3", True, worst <= 1e-9 * d, f"moment arm train kl_diag max {worst:.3e} (bound {1e-9 * d:.1e})")
    worst = max(res["sanity"]["mine_unshuffled"] for res in results)
    add("H4", True, worst <= 1e-12, f"code critic's unshuffled MINE max {worst:.3e} (≤ 1e-12)")
    if "msma" in arms:
        s1 = _find(summary, "msma", "GI", "hist")
        g = s1["gain"]["mean"] if s1 and s1["gain"] else None
        add("S1", False, g is not None and g > 1, f"msma hist gain GI {g if g is None else round(g, 3)} (README 0.23 → 1.25)")
        gains = {e: (_find(summary, "msma", "GI", e) or {}).get("gain") for e in ("ksg", "infonce", "mine")}
        ok = all(v is not None and 0.9 <= v["mean"] <= 1.1 for v in gains.values())
        add("S2", False, ok, "msma GI gains " + ", ".join(f"{k} {v['mean']:.3f}" if v else f"{k} n/a" for k, v in gains.items())
            + " (expected within [0.9, 1.1]: no genuine MI gain, MSA-T8b)")
        red = _find(summary, "msma", "GI", "kl_diag")["rel_reduction"]["mean"]
        add("S8", False, red >= 0.9, f"msma kl_diag reduction GI {red:.3f} (README 99.5 %)")
    if {"msma", "control"} <= set(arms):
        rc = _find(summary, "control", "GI", "kl_diag")["rel_reduction"]["mean"]
        rm = _find(summary, "msma", "GI", "kl_diag")["rel_reduction"]["mean"]
        add("S3", False, rc < rm, f"control reduction {rc:.3f} vs msma {rm:.3f}")
    if {"msma", "msma_mlp"} <= set(arms):
        km = _find(summary, "msma", "GI", "kl_diag")["after"]["mean"]
        kp = _find(summary, "msma_mlp", "GI", "kl_diag")["after"]["mean"]
        curv = [t["curv"] for res in results for t in res["training"] if t["arm"] == "msma_mlp" and t["curv"]]
        finite = all(np.isfinite(c["end"]) for c in curv)
        add("S4", False, abs(kp - km) <= 0.2 * km and finite,
            f"msma_mlp kl_diag {kp:.4g} vs msma {km:.4g} (±20 %); L_curv finite {finite} "
            f"(start 0 by W₂ = 0; end mean {np.mean([c['end'] for c in curv]) if curv else float('nan'):.3g})")
    return checks


# --------------------------------------------------------------------------- the run


def run_msma(settings: RunSettings, out: str | Path, *, jobs: Jobs | None = None, progress: bool = True) -> dict:
    """The whole experiment; writes DIR/msma.json, config.json, msma.md and the plots; returns the JSON object."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = settings.config()
    t0 = time.perf_counter()
    params, model, lm = train_lm(settings, out / "lm", progress)
    t_lm = time.perf_counter() - t0
    parts = partition(cfg.partition, model.n_layers)
    world = ToyWorld(preset_config(PRESET_NAMES[settings.preset]))
    data = settings.data
    pool = world.documents(data["pool"], data_seed=1)
    tokens = pool.tokens[:, :model.context]
    valid = pool.valid[:, :model.context]
    features = scale_features(params, model, tokens, valid, parts, pad_in_pool=cfg.pad_in_pool)
    t_feat = time.perf_counter() - t0 - t_lm
    payloads = [{"cfg": cfg, "seed": s, "features": features, "sizes": data["sizes"], "arms": settings.arms,
                 "bootstrap": cfg.bootstrap} for s in settings.seeds]
    t_seeds = time.perf_counter()
    results = run_jobs(seed_job, payloads, jobs, progress=progress, desc="msma seeds")
    per_seed = (time.perf_counter() - t_seeds) / len(payloads)
    rows, summary = summarise(results, cfg, settings.arms)
    checks = alignment_checks(results, summary, cfg, settings.arms)
    t_iv = time.perf_counter()
    interventions = None
    if settings.interventions != "none":
        interventions = run_interventions(params, model, world, parts, features["local"].shape[1], cfg, pool, progress)
        checks += interventions.pop("checks")
    t_iv = time.perf_counter() - t_iv
    total = time.perf_counter() - t0
    result = {
        "schema": SCHEMA, "mode": cfg.mode, "config": cfg.to_dict(),
        "timing_s": {"lm": t_lm, "features": t_feat, "per_seed": [per_seed] * len(payloads), "interventions": t_iv,
                     "total": total},
        "model": {"source": f"toy LM {PRESET_NAMES[settings.preset]}", "n_layers": model.n_layers, "d_model": model.d_model,
                  "lm_steps": settings.used_lm_steps, **lm},
        "partition": {"preset": cfg.partition if isinstance(cfg.partition, str) else "explicit",
                      **{s: list(p) for s, p in zip(SCALES, parts)}},
        "data": {"n_train": data["sizes"][0], "n_val": data["sizes"][1], "n_test": data["sizes"][2], "pool": data["pool"],
                 "standardize": cfg.standardize},
        "seeds": list(settings.seeds),
        "estimators": {name: {"kind": kind, "dims": _dims(name, cfg), "rows": data["sizes"][2],
                              "cap": _cap(name, cfg)} for name, kind in ESTIMATORS.items()},
        "rows": rows, "summary": summary, "training": [t for res in results for t in res["training"]],
        "interventions": interventions, "checks": checks, "reference": README,
    }
    missing = sorted(set(TOP_KEYS) - set(result))
    result["checks"].append({"id": "H7", "hard": True, "pass": not missing and len(settings.seeds) >= 5,
                             "detail": f"§6.3 keys {'complete' if not missing else 'missing ' + ', '.join(missing)}; "
                                       f"{len(settings.seeds)} seeds (≥ 5); the < 600 s bound is asserted by the slow test"})
    write_outputs(result, out, settings)
    return result


def _dims(name: str, cfg: MSMAConfig) -> int | None:
    return {"kl_gauss": cfg.kl_dim, "gauss": cfg.gauss_dim, "ksg": cfg.ksg_dim, "infonce": cfg.est_dim,
            "mine": cfg.est_dim, "cca1": cfg.gauss_dim}.get(name)


def _cap(name: str, cfg: MSMAConfig) -> float | None:
    return {"hist": float(np.log(cfg.hist_bins)), "infonce": float(np.log(cfg.nce_batch))}.get(name)


# --------------------------------------------------------------------------- outputs


def _cell(stat: dict | None, key: str = "mean", fmt: str = "{:.3f}") -> str:
    if not stat or stat.get(key) is None:
        return "–"
    sd = stat.get("sd")
    return fmt.format(stat[key]) + ("" if sd is None else " ± " + fmt.format(sd))


def alignment_table(summary: list[dict], fmt: str = "text") -> str:
    """Per pair and estimator: none / control / msma after (mean ± sd), msma's reduction or gain, p vs none and control."""
    headers = ("pair", "estimator", "none", "control", "msma", "msma_mlp", "reduction | gain", "p vs none", "p vs control",
               "README (context)")
    body = []
    for pair in ("GI", "IL", "GL"):
        for est, kind in ESTIMATORS.items():
            m = _find(summary, "msma", pair, est)
            if m is None:
                continue
            cells = [_cell((_find(summary, a, pair, est) or {}).get("after"), fmt="{:.4g}") for a in ("none", "control", "msma",
                                                                                                   "msma_mlp")]
            change = _cell(m["rel_reduction"] if kind == "kl" else m["gain"])
            ref = ""
            if pair == "GI" and est == "kl_diag":
                ref = "reduction 0.9953 (GPT-2), 0.9987 (BERT)"
            elif pair == "GI" and est == "hist":
                ref = "gain 5.43× (GPT-2), 48.2× (BERT)"
            tests = m["tests"]
            body.append([pair, est, *cells, change, f"{tests['vs_none']['p_t']:.2g}" if "vs_none" in tests else "–",
                         f"{tests['vs_control']['p_t']:.2g}" if "vs_control" in tests else "–", ref])
    return render_table(headers, body, fmt)


def intervention_table(iv: dict | None, fmt: str = "text") -> str:
    if not iv:
        return "(no interventions)"
    headers = ("scale", "type", "strength", "metric", "base", "intervened", "% change", "d_z", "cliff δ", "p (Holm)", "predicted")
    body = [[r["scale"], r["type"], r["strength"], r["metric"], f"{r['base_mean']:.3f}", f"{r['int_mean']:.3f}",
             "–" if r["pct_change"] is None else f"{r['pct_change']:+.1f}", "–" if r["d_z"] is None else f"{r['d_z']:+.2f}",
             f"{r['cliff_delta']:+.2f}", f"{r['p_holm']:.2g}", r["predicted"] or ""] for r in iv["rows"] if r["metric"] in
            ("ttr", "grammatical_rate", "topic_coherence", "mean_sentence_length")]
    return render_table(headers, body, fmt)


def checks_for_report(checks: list[dict]) -> list[dict]:
    """The §6.3 check records as :func:`reference.report.render_checks` reads them; soft checks are flagged, never dropped."""
    return [{"id": c["id"], "passed": c["pass"], "text": f"({'hard' if c['hard'] else 'soft'}) {c['detail']}"} for c in checks]


def write_outputs(result: dict, out: Path, settings: RunSettings) -> None:
    """msma.json, config.json, msma.md, the plots; the table to stdout."""
    (out / "msma.json").write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    (out / "config.json").write_text(json.dumps({"settings": dataclasses.asdict(settings), "msma": result["config"],
                                                 "lm_steps": settings.used_lm_steps}, indent=1, default=_json_default) + "\n")
    text = "\n\n".join([alignment_table(result["summary"]), intervention_table(result["interventions"]),
                        render_checks(checks_for_report(result["checks"]))])
    (out / "msma.md").write_text("# clearform msma run\n\n```\n" + text + "\n```\n")
    (out / "msma.html").write_text(page("clearform msma run", "<pre>" + text.replace("<", "&lt;") + "</pre>"))
    try:
        plot_alignment(result, out / "msma_alignment.png")
        plot_interventions(result, out / "msma_interventions.png")
    except ImportError:  # matplotlib is optional
        pass


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def plot_alignment(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [a for a in ("procrustes", "moment", "control", "msma", "msma_mlp") if any(s["arm"] == a for s in result["summary"])]
    fig, axes = plt.subplots(3, 2, figsize=(11, 9))
    for i, pair in enumerate(("GI", "IL", "GL")):
        for j, (kind, ests) in enumerate((("kl", ("kl_diag", "kl_gauss")), ("mi", ("hist", "gauss", "ksg", "infonce", "mine")))):
            ax = axes[i, j]
            width = 0.8 / max(len(arms), 1)
            for k, arm in enumerate(arms):
                for e, est in enumerate(ests):
                    key = "rel_reduction" if kind == "kl" else "delta"
                    vals = [r[key] for r in result["rows"] if r["arm"] == arm and r["pair"] == pair and r["estimator"] == est
                            and r[key] is not None]
                    if vals:
                        ax.bar(e + k * width, np.mean(vals), width, color=f"C{k}", label=arm if e == 0 else None)
                        ax.plot([e + k * width] * len(vals), vals, "k.", ms=3)
            ax.set_xticks(np.arange(len(ests)) + 0.4 - width / 2, ests)
            ax.set_title(f"{pair}: {'relative KL reduction' if kind == 'kl' else 'MI change vs none (nats)'}")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_interventions(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    iv = result["interventions"]
    if not iv:
        return
    metrics = ("ttr", "grammatical_rate", "topic_coherence", "mean_sentence_length")
    types = sorted({r["type"] for r in iv["rows"]})
    fig, axes = plt.subplots(1, len(types), figsize=(5 * len(types), 3.5), squeeze=False)
    for ax, typ in zip(axes[0], types):
        grid = np.array([[next((r["d_z"] or 0.0 for r in iv["rows"] if r["type"] == typ and r["scale"] == s and r["metric"] == m),
                               0.0) for m in metrics] for s in SCALES])
        im = ax.imshow(grid, cmap="coolwarm", vmin=-1.5, vmax=1.5)
        ax.set_xticks(range(len(metrics)), metrics, rotation=30, fontsize=7)
        ax.set_yticks(range(3), SCALES)
        ax.set_title(f"{typ}: d_z")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def demo_section(run_dir: str | Path, *, progress: bool = False, steps: int = 150) -> Any:
    """The MSA part of ``clearform demo``: the tiny preset (2 seeds, 30 epochs, no MLP arm, no bootstrap) into ``run_dir/msma/``.

    [reconstructed] About a minute on two cores; the full run is ``clearform msma run``.
    """
    settings = RunSettings(preset="tiny", seeds=(0, 1), lm_steps=steps, bootstrap=0, epochs=30,
                           arms=("none", "procrustes", "moment", "msma", "control"))
    result = run_msma(settings, Path(run_dir) / "msma", progress=progress)
    intro = ("<p>Multi-scale manifold alignment on a 3-block toy LM (<code>msma_tiny</code>, "
             f"{steps} steps, seeds 0 and 1): cross-scale maps G → I → L on frozen pooled features, against the "
             "shuffled-pair control and no alignment. Full run: <code>clearform msma run --out DIR</code>.</p>")
    body = (intro + alignment_table(result["summary"], "html") + intervention_table(result["interventions"], "html")
            + render_checks(checks_for_report(result["checks"]), "html")
            + '<img src="msma/msma_alignment.png" alt="msma alignment">')
    return Section("Multi-scale manifold alignment (MSA)", body, ["msma/msma_alignment.png"])


# --------------------------------------------------------------------------- code-faithful mode (A7, `slow`)


def run_code_faithful(settings: RunSettings, out: str | Path, *, docs: int = 1280, epochs: int = 6, batch: int = 64,
                      arms: tuple[str, ...] = tuple(ARMS_CODE), progress: bool = True) -> dict:
    """A7 on the toy LM: fine-tune it per arm with the code's objective, evaluate every ``eval_every`` epochs. [author-code]

    Writes ``DIR/msma_code.json``: one row per arm and assessed epoch with the code recorder's keys, the four
    loss terms, ``mine_gi``, ``mine_il``, ``critics_unchanged``; checks CF1–CF4.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params0, model, lm = train_lm(settings, out / "lm", progress)
    cfg = MSMAConfig.code_faithful("toy", seeds=tuple(settings.seeds))
    parts = partition(cfg.partition, model.n_layers)
    world = ToyWorld(preset_config(PRESET_NAMES[settings.preset]))
    pool = world.documents(docs, data_seed=1)
    tokens = pool.tokens[:, :model.context]
    perm = np.random.default_rng([settings.seeds[0], 0]).permutation(docs)  # seeded 80/20 (the code's is unseeded)
    n_train = int(0.8 * docs)
    tr, va = perm[:n_train], perm[n_train:]
    labels = code_labels(tokens, pool.doc_topic, world, tr)
    n_classes = tuple(int(labels[s].max()) + 1 for s in SCALES)
    eval_rows = np.sort(np.random.default_rng([settings.seeds[0], 9]).permutation(va)[: max(2, int(cfg.eval_fraction * len(va)))])
    rows = []
    bar = tqdm(total=len(arms) * epochs, desc="msma code mode", unit="epoch", disable=not progress, file=sys.stderr, leave=False)
    for arm in arms:
        lg, li, lc = ARMS_CODE[arm]
        arm_cfg = cfg.replace(lambda_geo=lg, lambda_info=li, lambda_curv=lc)
        state = init_state(params0, model.d_model, n_classes, np.random.default_rng([settings.seeds[0], 1]), arm_cfg)
        critics0 = {k: v.copy() for k, v in state.critics.items()}
        order = np.random.default_rng([settings.seeds[0], 2])
        for epoch in range(1, epochs + 1):
            terms_epoch = []
            shuffled = tr[order.permutation(n_train)]
            for start in range(0, n_train, batch):
                idx = shuffled[start:start + batch]
                lab = {s: labels[s][idx] for s in SCALES}
                terms_epoch.append(code_step(state, model, tokens[idx], lab, parts, arm_cfg, cfg.ft_lr))
            bar.update(1)
            if epoch % cfg.eval_every == 0:
                feats = pooled_features(state.params, model, tokens[eval_rows], parts, arm_cfg)
                lab = {s: labels[s][eval_rows] for s in SCALES}
                row = {"arm": arm, "epoch": epoch, **_code_metrics(feats, arm_cfg),
                       **head_accuracy(state.heads, feats, lab, arm_cfg.procrustes_in_forward)}
                last = terms_epoch[-1]
                row |= {"cls_loss": last["cls"], "geo_loss": last["geo"], "info_loss": last["info"], "curv_loss": last["curv"],
                        "geo_loss_first": terms_epoch[0]["geo"], "mine_gi": last["mine_gi"], "mine_il": last["mine_il"],
                        "critics_unchanged": all(np.array_equal(critics0[k], state.critics[k]) for k in critics0)}
                rows.append(row)
    bar.close()
    checks = _code_checks(rows)
    result = {"schema": "clearform.msma_code/1", "config": cfg.to_dict(), "model": lm, "docs": docs, "epochs": epochs,
              "batch": batch, "rows": rows, "checks": checks}
    (out / "msma_code.json").write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    return result


def _code_metrics(feats: dict, cfg: MSMAConfig) -> dict:
    from reference.metrics.information import cca_similarity, distance_correlation, kl_diag, mi_hist

    out = {}
    for name, (a, b) in {"global-mid": ("global", "intermediate"), "mid-local": ("intermediate", "local")}.items():
        out[f"KL_{name}"] = kl_diag(feats[a], feats[b], cfg.kl_eps)
        out[f"MI_{name}"] = mi_hist(feats[a], feats[b], cfg.hist_bins)
        out[f"distance_correlation_{name}"] = distance_correlation(feats[a], feats[b], cfg.dcor_rows)
        out[f"cca_similarity_{name}"] = cca_similarity(feats[a], feats[b])
    return out


def _code_checks(rows: list[dict]) -> list[dict]:
    """CF1 (hard) the code's MINE values ≤ 0; CF2 (hard) critics bit-identical; CF3 (soft); CF4 (soft) geo falls."""
    checks = [
        {"id": "CF1", "hard": True, "pass": all(r["mine_gi"] <= 1e-12 and r["mine_il"] <= 1e-12 for r in rows),
         "detail": f"max mine_gi {max(r['mine_gi'] for r in rows):.3g}, max mine_il {max(r['mine_il'] for r in rows):.3g}"},
        {"id": "CF2", "hard": True, "pass": all(r["critics_unchanged"] for r in rows), "detail": "critics bit-identical to init"},
    ]
    last = {r["arm"]: r for r in rows}
    if {"baseline", "full_msma"} <= set(last):
        b, f = last["baseline"], last["full_msma"]
        checks.append({"id": "CF3", "hard": False,
                       "pass": f["KL_global-mid"] < b["KL_global-mid"] and f["MI_global-mid"] > b["MI_global-mid"],
                       "detail": f"KL_global-mid {b['KL_global-mid']:.4g} → {f['KL_global-mid']:.4g}; "
                                 f"MI_global-mid {b['MI_global-mid']:.3f} → {f['MI_global-mid']:.3f}"})
        first = next(r for r in rows if r["arm"] == "full_msma")
        checks.append({"id": "CF4", "hard": False, "pass": f["geo_loss"] < first["geo_loss_first"],
                       "detail": f"full_msma geo_loss {first['geo_loss_first']:.4g} (first step) → {f['geo_loss']:.4g}"})
    return checks
