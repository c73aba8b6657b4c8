"""The λ sweep (spec §6): train dial-dropout models, re-dial them at every λ, check §6.4, write the outputs. [reconstructed]

``clearform locality sweep`` (see :mod:`reference.mechanisms.locality.cli`) and the LOC
section of ``clearform demo`` run :func:`run_sweep`. This is the only file of the package
that imports the trainer and the report helpers.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from reference.config import MAX_BATCH, MAX_SEED, ConfigError, RunConfig, check_choice, check_int
from reference.data.batch import Batch
from reference.data.toyworld import PRESETS
from reference.mechanisms.locality.config import LOC_GRID, LocalityConfig, check_lambda
from reference.mechanisms.locality.evaluate import evaluate_dial, reload_probe
from reference.mechanisms.locality.plugin import LocalityPlugin
from reference.parallel import Jobs, run_jobs
from reference.report import Section, mean_sd, mean_sd_cell, page, render_checks, render_table
from reference.train import Trainer, make_data

SWEEP_MODES = ("redial", "retrain", "both")
ROW_MODES = ("redial", "retrain", "uniform")
"""Modes of the rows: ``uniform`` rows are the S5 baseline of a progressive sweep (uniform schedule, λ = 1)."""
SWEEP_PRESETS = ("locality_sweep", "locality_tiny", "locality_deep")
DEFAULT_SWEEP_STEPS = 800
"""Training steps per model of the default sweep; the knob that keeps it under 10 minutes (§6.2)."""

# Bounds no real sweep approaches (a default sweep is 6 λ × 3 seeds × 800 steps × 256 documents):
# they turn a typo into a one-line error instead of a run of days.
MAX_GRID, MAX_SEEDS, MAX_SWEEP_STEPS, MAX_EVAL_DOCS = 101, 100, 10**6, 10**5

SWEEP_KEYS = ("lambda", "entropy_bits", "pointer_fidelity", "val_perplexity", "val_accuracy", "seed")
ROW_KEYS = SWEEP_KEYS + (
    "mode", "entropy_norm", "entropy_rule_rows", "pf_hit", "pf_block", "pf_anchor", "pf_best_head",
    "off_block_mass", "rule_accuracy", "compliance", "reload_compliance", "bound_violations", "rows_entropy_rising",
    "e3_rows", "e3_violations",
)
TABLE_METRICS = (
    ("entropy_bits", "entropy (bits)", "{:.3f}"),
    ("pointer_fidelity", "pointer fidelity", "{:.3f}"),
    ("val_perplexity", "val perplexity", "{:.3f}"),
    ("val_accuracy", "accuracy", "{:.3f}"),
)

# [paper-abstract 2511.03559] AILA's figures: a two-layer transformer on WikiText. Context
# for our toy-world numbers, never targets: tokeniser, width, context and entropy
# aggregation are not in the abstract (spec §6.5).
AILA_SOURCE = "AILA [paper-abstract 2511.03559], two-layer transformer on WikiText"
AILA = {
    "entropy_bits": {0.0: 7.18, 1.0: 5.36},
    "val_perplexity": {0.6: 4.65},
    "val_accuracy": {0.6: 0.847},
}


def aila_context(lam: float) -> str:
    """AILA's figures at λ, as the table's context column ('' where the abstract gives none)."""
    lam = round(lam, 6)
    parts = []
    if lam in AILA["entropy_bits"]:
        parts.append(f"entropy {AILA['entropy_bits'][lam]} bits")
    if lam in AILA["val_perplexity"]:
        parts.append(f"perplexity {AILA['val_perplexity'][lam]}")
    if lam in AILA["val_accuracy"]:
        parts.append(f"accuracy {100 * AILA['val_accuracy'][lam]:.1f} %")
    return ", ".join(parts)


@dataclass(frozen=True)
class SweepSettings:
    """Options of ``clearform locality sweep`` (spec §6.2). [reconstructed]

    mode: ``"redial"`` (per seed one dial-dropout model, evaluated at every λ: the
    no-retraining claim), ``"retrain"`` (one ``"fixed"`` model per (λ, seed)) or
    ``"both"``. preset: a LOC preset of the toy world (``locality_deep`` for progressive
    schedules). steps: training steps per model (None: :data:`DEFAULT_SWEEP_STEPS`,
    or the preset's own for ``locality_tiny``). A progressive ``schedule`` also trains
    one uniform-schedule model per seed, evaluated at λ = 1: the S5 baseline. text: a UTF-8 file to use instead of the
    toy world (byte tokenizer, sentence blocks, no rule rows). eval_docs: held-out
    documents (or text windows) per evaluation. probe: run the hot-reload probe on the
    first ``probe_docs`` of them ([reconstructed]: 128 by default, the probe costs a
    second forward pass per batch).
    """

    mode: str = "redial"
    lambdas: tuple[float, ...] = LOC_GRID
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int | None = None
    preset: str = "locality_sweep"
    text: str | None = None
    schedule: str = "uniform"
    schedule_power: float = 1.0
    eval_docs: int = 256
    batch_size: int = 16
    probe: bool = True
    probe_docs: int = 128

    def __post_init__(self) -> None:
        check_choice("sweep", "mode", self.mode, SWEEP_MODES)
        check_choice("sweep", "preset", self.preset, SWEEP_PRESETS)
        check_choice("sweep", "schedule", self.schedule, ("uniform", "progressive"))
        if not self.lambdas or len(self.lambdas) > MAX_GRID:
            raise ConfigError(f"sweep.lambdas: give 1 to {MAX_GRID} values of λ in [0, 1]")
        for lam in self.lambdas:
            check_lambda("lam", lam)
        if not self.seeds or len(self.seeds) > MAX_SEEDS:
            raise ConfigError(f"sweep.seeds: give 1 to {MAX_SEEDS} seeds")
        for seed in self.seeds:
            check_int("sweep", "seeds", seed, 0, MAX_SEED)
        if self.steps is not None:
            check_int("sweep", "steps", self.steps, 1, MAX_SWEEP_STEPS)
        check_int("sweep", "eval_docs", self.eval_docs, 1, MAX_EVAL_DOCS)
        check_int("sweep", "probe_docs", self.probe_docs, 1, MAX_EVAL_DOCS)
        check_int("sweep", "batch_size", self.batch_size, 1, MAX_BATCH)
        LocalityConfig(layer_schedule=self.schedule, schedule_power=self.schedule_power)  # validates the power
        if self.text is not None and not Path(self.text).is_file():
            raise ConfigError(f"sweep.text: {self.text!r} is not a readable file")

    @property
    def used_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        return PRESETS[self.preset]["train"]["steps"] if self.preset == "locality_tiny" else DEFAULT_SWEEP_STEPS

    @property
    def used_preset(self) -> str:
        """``locality_deep`` (4 layers) for progressive schedules on the default preset (§6.2)."""
        return "locality_deep" if self.schedule == "progressive" and self.preset == "locality_sweep" else self.preset


def sweep_run_config(settings: SweepSettings, seed: int, lam: float | None = None, schedule: str | None = None) -> RunConfig:
    """The RunConfig of one sweep model (spec §6.2 protocol). [reconstructed]

    The preset's model (pre-LN, causal, tied head, no dropout), AdamW lr 3·10⁻³, weight
    decay 0.01, 50 warm-up steps then cosine (to 0.1·lr, the trainer's default floor),
    batch 16, clip 1.0, float32 training; κ_max = 1, β_max = 8, τ = 1, own-block free
    rows, μ = 0. lam None: dial dropout over the grid; a number: ``"fixed"`` at it.
    schedule: the layer schedule (None: the settings').
    """
    preset = PRESETS[settings.used_preset]
    steps = settings.used_steps
    overrides: dict[str, dict] = {
        "model": {**preset["model"], "norm": "pre", "causal": True, "tied_head": True, "dtype": "float32"},
        "train": {
            "steps": steps, "batch_size": settings.batch_size, "lr": 3e-3, "weight_decay": 0.01,
            "warmup": min(50, steps), "grad_clip": 1.0, "seed": seed,
            "eval_every": 0, "eval_batches": 1, "checkpoint_every": 0, "log_every": 10,
        },
        "toyworld": dict(preset["toyworld"]),
        "locality": {
            "penalty_max": 1.0, "bias_max": 8.0, "temperature": 1.0, "free_rows": "own_block", "pointer_weight": 0.0,
            "train_dial": "dropout" if lam is None else "fixed", "lam": 0.0 if lam is None else float(lam),
            "layer_schedule": schedule or settings.schedule, "schedule_power": settings.schedule_power,
        },
    }
    if settings.text is not None:
        overrides["data"] = {"source": "text", "path": str(settings.text)}
    return RunConfig().overridden(overrides)


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns: every row, the per-λ summary, the checks, the wall time."""

    rows: list[dict]
    summary: list[dict]
    checks: list[dict]
    seconds: float
    out: Path
    note: str = ""


def summarise_rows(rows: list[dict]) -> list[dict]:
    """Mean and sd over seeds per (mode, λ): one dict per λ with ``{key}_mean``, ``{key}_sd``."""
    out = []
    for mode in ROW_MODES:
        for lam in sorted({r["lambda"] for r in rows if r["mode"] == mode}):
            group = [r for r in rows if r["mode"] == mode and r["lambda"] == lam]
            entry: dict[str, Any] = {"mode": mode, "lambda": lam, "seeds": len(group)}
            for key in ROW_KEYS:
                if key in ("lambda", "seed", "mode"):
                    continue
                entry[f"{key}_mean"], entry[f"{key}_sd"] = mean_sd([r.get(key) for r in group])
            out.append(entry)
    return out


def _monotone(values: list, increasing: bool) -> bool | None:
    if any(v is None for v in values) or len(values) < 2:
        return None
    pairs = zip(values, values[1:])
    return all(b >= a for a, b in pairs) if increasing else all(b <= a for a, b in pairs)


def sweep_checks(summary: list[dict]) -> list[dict]:
    """The expected outcomes E1, E2, E4 and the soft checks S1–S4 (§6.4) on the means: ``{id, passed, text}``.

    passed is None where a check does not apply (no rule rows, one λ, no retrain rows).
    """
    checks = []
    for mode in ("redial", "retrain"):
        group = [e for e in summary if e["mode"] == mode]
        if not group:
            continue
        lams = [e["lambda"] for e in group]
        ent = [e["entropy_bits_mean"] for e in group]
        pf = [e["pointer_fidelity_mean"] for e in group]
        tag = "" if mode == "redial" else " (S4, retrain)"
        e1 = _monotone(ent, increasing=False)
        e2 = _monotone(pf, increasing=True)
        if e1 is not None:
            e1 = e1 and ent[0] > ent[-1]
        if e2 is not None:
            e2 = e2 and pf[-1] > pf[0]
        checks.append({"id": "E1" + tag, "passed": e1, "text": "mean entropy non-increasing in λ, entropy(first) > entropy(last)"})
        checks.append({"id": "E2" + tag, "passed": e2, "text": "mean pointer fidelity non-decreasing in λ, PF(last) > PF(first)"})
        if mode == "redial":
            e3_rows = sum(e["e3_rows_mean"] or 0 for e in group)
            e3_bad = sum(e["e3_violations_mean"] or 0 for e in group)
            e3_text = "layer 0 at every λ matches T4(a), T5(d), T6(a) from its unbiased scores on every row (rtol 1e-9)"
            checks.append({"id": "E3", "passed": e3_bad == 0 if e3_rows else None, "text": e3_text})
            violations = sum(e["bound_violations_mean"] or 0 for e in group)
            checks.append({"id": "E4", "passed": violations == 0, "text": "no row violates T4(b), T5(a)–(c), T6(b)"})
            ppl = [e["val_perplexity_mean"] for e in group]
            best = lams[int(np.argmin(ppl))]
            s1 = (0.0 < best < 1.0) if len(lams) > 2 else None
            text = f"perplexity minimal strictly inside (0, 1) (at λ = {best:g}; AILA: 0.6)"
            checks.append({"id": "S1", "passed": s1, "text": text})
            s2 = None
            if len(lams) > 1 and pf[0] is not None:
                s2 = (ent[0] - ent[-1] >= 0.5) and (pf[-1] - pf[0] >= 0.2)
            checks.append({"id": "S2", "passed": s2, "text": "entropy drop ≥ 0.5 bits and PF gain ≥ 0.2 from first to last λ"})
            s3a = _monotone([e["compliance_mean"] for e in group], increasing=True)
            s3b = _monotone([e["rule_accuracy_mean"] for e in group], increasing=True)
            s3 = None if s3a is None or s3b is None else (s3a and s3b)
            checks.append({"id": "S3", "passed": s3, "text": "compliance and rule accuracy non-decreasing in λ"})
    baseline = [e for e in summary if e["mode"] == "uniform"]
    progressive = [e for e in summary if e["mode"] == "redial" and e["lambda"] == 1.0]
    if baseline and progressive:
        ours, theirs = progressive[0]["val_perplexity_mean"], baseline[0]["val_perplexity_mean"]
        checks.append({"id": "S5", "passed": ours < theirs,
                       "text": f"progressive schedule beats uniform at λ = 1 on perplexity ({ours:.3f} vs {theirs:.3f})"})
    return checks


def summary_table(summary: list[dict], checks: list[dict], fmt: str = "text", note: str = "") -> str:
    """The sweep's table (mean ± sd over seeds per λ, AILA's figures as a context column) and its checks.

    fmt: ``"text"`` (printed), ``"markdown"`` (sweep.md) or ``"html"`` (sweep.html, reports).
    """
    headers = ["mode", "λ", *(label for _, label, _ in TABLE_METRICS), "context: AILA, WikiText (not a target)"]
    rows = [
        [e["mode"], f"{e['lambda']:g}", *(mean_sd_cell(e[f"{k}_mean"], e[f"{k}_sd"], spec) for k, _, spec in TABLE_METRICS),
         aila_context(e["lambda"])]
        for e in summary
    ]
    seeds = ", ".join(map(str, sorted({e["seeds"] for e in summary})))
    caption = (f"mean ± sd over {seeds} seed(s); AILA's numbers come from its abstract: WikiText, two layers, "
               "unknown context and tokeniser — the shape is comparable, the values are not")
    lines = [render_table(headers, rows, fmt, align="<>" + ">" * len(TABLE_METRICS) + "<"), ""]
    if fmt == "html":
        notes = "".join(f"<p>{html.escape(text)}</p>" for text in (caption, note) if text)
        return lines[0] + notes + render_checks(checks, fmt)
    lines += [f"({caption})" if fmt == "text" else caption, *([note] if note else []), render_checks(checks, fmt)]
    return "\n".join(line for line in lines if line or fmt == "markdown")


def plot_sweep(summary: list[dict], path: Path) -> None:
    """``sweep.png``: entropy, pointer fidelity, perplexity, accuracy against λ (mean ± sd over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=110)
    for ax, (key, label, _) in zip(axes.ravel(), TABLE_METRICS):
        for mode, style in (("redial", "o-"), ("retrain", "s--")):
            group = [e for e in summary if e["mode"] == mode and e[f"{key}_mean"] is not None]
            if group:
                ax.errorbar(
                    [e["lambda"] for e in group], [e[f"{key}_mean"] for e in group],
                    yerr=[e[f"{key}_sd"] for e in group], fmt=style, capsize=3, label=f"clearform toy world ({mode})",
                )
        context = AILA.get(key, {})
        if context:  # as text, not points: other data, other scale; context, never a target
            figures = "; ".join(f"λ = {lam:g}: {value:g}" for lam, value in context.items())
            ax.set_title(f"context, not a target — AILA abstract (WikiText): {figures}", fontsize=8, color="gray")
        if not any(e[f"{key}_mean"] is not None for e in summary):
            ax.text(0.5, 0.5, "null: no rule rows", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.set_xlabel("λ (0 distributed … 1 localist)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sweep_eval_batches(run: RunConfig, settings: SweepSettings) -> tuple[list, Any]:
    """The held-out batches of a sweep: the first ``eval_docs`` documents of (heldout, seed), and the world."""
    data = make_data(run)
    n_batches = max(1, math.ceil(settings.eval_docs / settings.batch_size))
    batches = data.val_batches(n_batches, settings.batch_size)
    if settings.text is None:  # exactly eval_docs documents
        keep, out = settings.eval_docs, []
        for batch in batches:
            if keep <= 0:
                break
            if batch.inputs.shape[0] > keep:
                batch = _head(batch, keep)
            out.append(batch)
            keep -= batch.inputs.shape[0]
        batches = out
    return batches, getattr(data, "world", None)


def _head(batch: Any, n: int) -> Any:
    """The first n rows of a toy-world batch (inputs, targets and documents)."""
    docs = batch.docs
    fields = {f.name: getattr(docs, f.name) for f in dataclasses.fields(docs)}
    cut = {k: (v[:n] if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
    return Batch(batch.inputs[:n], batch.targets[:n], type(docs)(**cut))


def _train_model(run: RunConfig, folder: Path, bar: Any, chunk: int = 25) -> tuple[dict, RunConfig]:
    """Train one sweep model into ``folder``; the bar advances by training steps."""
    trainer = Trainer(run, folder, progress=False, plugins=[LocalityPlugin(run.locality, run.model)])
    while trainer.step < trainer.run.train.steps:
        before = trainer.step
        trainer.train(until=before + chunk)
        bar.update(trainer.step - before)
    return trainer.params, trainer.run


@dataclass(frozen=True)
class SweepJob:
    """One independent job of a sweep: train one model, evaluate it at its λ's.

    mode: ``redial`` (dial dropout, evaluated at every λ), ``retrain`` (fixed at ``fixed``)
    or ``uniform`` (the S5 baseline, at λ = 1). folder: its run folder. progress: show
    this job's own bar (serial runs only; worker processes report per finished job).
    """

    settings: SweepSettings
    mode: str
    seed: int
    fixed: float | None
    folder: str
    progress: bool = False

    @property
    def lambdas(self) -> list[float]:
        if self.mode == "uniform":
            return [1.0]
        return list(self.settings.lambdas) if self.fixed is None else [self.fixed]


def sweep_plan(settings: SweepSettings, out: Path) -> list[SweepJob]:
    """The sweep's jobs in report order: per mode, per seed (and per λ in ``retrain``); S5 baselines last."""
    modes = ["redial", "retrain"] if settings.mode == "both" else [settings.mode]
    plans: list[tuple[str, int, float | None]] = []  # (mode, seed, λ of a fixed model or None)
    for mode in modes:
        for seed in settings.seeds:
            if mode == "redial":
                plans.append((mode, seed, None))
            else:
                plans += [(mode, seed, float(lam)) for lam in settings.lambdas]
    if settings.schedule == "progressive":  # S5's baseline: the uniform schedule, at λ = 1
        plans += [("uniform", seed, None) for seed in settings.seeds]
    jobs = []
    for mode, seed, fixed in plans:
        name = f"seed{seed}" + ("" if fixed is None else f"-lam{fixed:g}") + ("-uniform" if mode == "uniform" else "")
        jobs.append(SweepJob(settings, mode, seed, fixed, str(out / "models" / name)))
    return jobs


def run_sweep_job(job: SweepJob) -> list[dict]:
    """Train ``job``'s model and return its rows (one per λ). A pure function of ``job``:
    the same rows in this process, a worker process or a Dask worker."""
    settings = job.settings
    run = sweep_run_config(settings, job.seed, job.fixed, "uniform" if job.mode == "uniform" else None)
    n_eval = max(1, math.ceil(settings.eval_docs / settings.batch_size))
    n_probe = math.ceil(min(settings.probe_docs, settings.eval_docs) / settings.batch_size)
    n_eval += n_probe if settings.probe and settings.text is None else 0
    bar = tqdm(total=settings.used_steps + len(job.lambdas) * n_eval, desc=Path(job.folder).name, unit="step",
               disable=not job.progress, file=sys.stderr, dynamic_ncols=True, leave=False)
    rows = []
    try:
        params, trained = _train_model(run, Path(job.folder), bar)
        batches, world = sweep_eval_batches(trained, settings)
        probe = None
        if settings.probe and world is not None:
            probe = [reload_probe(b, world, trained.locality) for b in batches[:n_probe]]
        for lam in job.lambdas:
            metrics = evaluate_dial(params, trained, batches, lam, trained.locality, world=world, probe=probe,
                                    on_batch=lambda: bar.update(1))
            row = {"lambda": float(lam), "seed": int(job.seed), "mode": job.mode, **metrics}
            extra = {k: row[k] for k in ("val_loss", "effective_support", "delta_q", "delta_in_q")}
            rows.append({k: row.get(k) for k in ROW_KEYS} | extra)
    finally:
        bar.close()
    return rows


def run_sweep(
    settings: SweepSettings, out: str | Path, *, progress: bool = True, log: Callable[[str], None] | None = print,
    jobs: Jobs | None = None,
) -> SweepResult:
    """``clearform locality sweep``: train, evaluate at every λ, write the outputs (spec §6). [reconstructed]

    Writes into ``out``: ``sweep.json`` (a list of rows with keys ``lambda``,
    ``entropy_bits``, ``pointer_fidelity``, ``val_perplexity``, ``accuracy``, ``seed``,
    ``mode`` and the other §6.3 metrics), ``config.json`` (every value used),
    ``sweep.png``, ``sweep.md``, ``sweep.html`` and one run folder per trained model
    under ``models/``. Prints the table (mean ± sd per λ, AILA's figures as context)
    and the checks through ``log``. ``jobs``: where the independent models train
    (:class:`reference.parallel.Jobs`: serial by default, ``--workers N``, a Dask
    scheduler); the rows are the same wherever they ran.
    """
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs or Jobs()
    serial = jobs.workers == 1 and jobs.scheduler is None
    plan = [dataclasses.replace(job, progress=progress and serial) for job in sweep_plan(settings, out)]
    results = run_jobs(run_sweep_job, plan, jobs, progress=progress, desc="locality sweep")
    rows = [row for job_rows in results for row in job_rows]
    seconds = time.perf_counter() - start
    summary = summarise_rows(rows)
    checks = sweep_checks(summary)
    note = ""
    if settings.text is not None:
        note = f"--text {settings.text}: a plain text file has no rule rows, so pointer metrics and compliance are null."
    result = SweepResult(rows, summary, checks, seconds, out, note)
    write_sweep(result, settings)
    if log is not None:
        log(summary_table(summary, checks, "text", note))
        log(f"wrote {out / 'sweep.json'}, sweep.png, sweep.md, sweep.html, config.json ({seconds:.0f} s)")
    return result


def write_sweep(result: SweepResult, settings: SweepSettings) -> None:
    """Write sweep.json, config.json, sweep.png, sweep.md and sweep.html into ``result.out``."""
    out = result.out
    (out / "sweep.json").write_text(json.dumps(result.rows, indent=1) + "\n")
    config = {
        "settings": dataclasses.asdict(settings) | {"steps": settings.used_steps, "preset": settings.used_preset},
        "run": sweep_run_config(settings, settings.seeds[0]).to_dict(),
        "seconds": round(result.seconds, 1),
        "summary": result.summary,
        "checks": result.checks,
        "context": {"source": AILA_SOURCE, "use": "context, not a target",
                    **{key: {str(lam): value for lam, value in figures.items()} for key, figures in AILA.items()}},
    }
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    plot_sweep(result.summary, out / "sweep.png")
    (out / "sweep.md").write_text(summary_table(result.summary, result.checks, "markdown", result.note) + "\n")
    body = summary_table(result.summary, result.checks, "html", result.note) + '<img src="sweep.png" alt="locality sweep">'
    (out / "sweep.html").write_text(page("locality sweep", body))


def demo_section(run_dir: str | Path, *, progress: bool = False, steps: int = 150) -> Any:
    """The LOC part of ``clearform demo``'s report: a small redial sweep on ``locality_tiny``. [reconstructed]

    The demo's own model reads the base world, whose vocabulary has no rule tokens, so
    the section trains one small dial-dropout model (``locality_tiny``: d = 32, context 64,
    ``steps`` steps, one seed) and re-dials it at every λ on 64 held-out documents:
    some 15 seconds on two cores. Files go to ``run_dir/locality/``.
    """
    settings = SweepSettings(preset="locality_tiny", seeds=(0,), steps=steps, eval_docs=64, probe_docs=64)
    result = run_sweep(settings, Path(run_dir) / "locality", progress=progress, log=None)
    intro = (
        "<p>The locality dial λ (0 distributed … 1 localist) re-dialled at inference on one model trained "
        f"with dial dropout (toy world <code>locality_tiny</code>, {steps} steps, seed 0, 64 held-out documents). "
        "Full sweep: <code>clearform locality sweep --out DIR</code>.</p>"
    )
    table = summary_table(result.summary, result.checks, "html")
    return Section("Locality dial (LOC)", intro + table + '<img src="locality/sweep.png" alt="locality sweep">',
                   ["locality/sweep.png"])
