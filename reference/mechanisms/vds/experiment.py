"""``clearform vds eval`` (specs/02 §5, A7): LM-head, similarity, calibrated and kNN on the toy world's tasks.

(1) Load ``--model DIR`` or train one toy decoder (preset ``vds``, LM seed 0). (2) Per task:
label words → single toy tokens, W = the head (V, d) (refused if V ≤ d). (3) Representations
of every prompt once (A3). (4) Jobs, one per (task, seed), through
:func:`reference.parallel.run_jobs` (``--workers``): splits, λ (A5), the four methods (A6),
diagnostics, ablations. (5) Checks H1–H5 (hard) and S1–S6 (soft), the table, the files.
This is the only file of the package that imports the trainer and the report helpers.
"""

from __future__ import annotations

import dataclasses
import html
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from reference.checkpoint import load_weights
from reference.config import MAX_SEED, ConfigError, RunConfig, check_choice, check_int
from reference.data.toyworld import PRESETS, ToyWorld
from reference.mechanisms.vds.adapt import METHODS, head_of, label_token_ids, representations
from reference.mechanisms.vds.bases import check_head, head_diagnostics
from reference.mechanisms.vds.config import VDSConfig
from reference.mechanisms.vds.evaluate import (
    BALANCED_SPLIT,
    NATURAL_SPLIT,
    ROW_KEYS,
    TASKS,
    EvalJob,
    eval_checks,
    eval_job,
    head_checks,
    split_indices,
    summarise,
)
from reference.mechanisms.vds.imported import english_topics, imported_head, imported_representations, label_ids_for
from reference.parallel import Jobs, run_jobs
from reference.report import Section, mean_sd_cell, page, render_checks, render_table
from reference.train import Trainer

MAX_SEEDS = 100
TIME_LIMIT_S = 300.0
"""H4: the default run (no ``--ablations``) finishes within this many seconds on 2 cores."""

# [paper-v6] Table 3, dataset means over 10 models (ICL / KP / VDS), beside the nearest toy analogue:
# lm_head ↔ ICL, knn ↔ KP, calibrated ↔ VDS. Context only, never a target: other data, other models.
PAPER_ANALOGUE = {"topic": "AGNews", "topic_unseen": "all 8 datasets", "topic_vs_rest": "MRPC (F1)", "english_topic": "AGNews"}
PAPER_TABLE3 = {"AGNews": (0.596, 0.753, 0.923), "all 8 datasets": (0.437, 0.614, 0.767), "MRPC (F1)": (0.399, 0.553, 0.650)}
PAPER_METHOD = {"lm_head": ("ICL", 0), "knn": ("KP", 1), "calibrated": ("VDS", 2)}


@dataclass(frozen=True)
class EvalSettings:
    """Options of ``clearform vds eval`` (spec §5.1–§5.2). [reconstructed] where the spec is silent.

    seeds vary splits, λ init and batch order; one LM per run (``lm_seed``, ``lm_steps`` None:
    the preset's 600). model: a run folder to load instead of training. tasks: a subset of
    ``topic``, ``topic_unseen``, ``topic_vs_rest``. split: train / val / test per class of the
    balanced tasks; natural_split: of ``topic_vs_rest``. labels: label words of ``topic``
    (default the world's ``topic0`` …). vds: overrides of the ``vds`` config section (recorded in
    config.json). ablations: also the §5.2 variants (vds_ablation.json). lm_per_seed: train one LM
    per seed (its training seed = the seed) instead of one per run. hf: a local Hugging Face GPT-2 or
    BERT directory: A8 on the seeded English topic set (task ``english_topic``, K = 4), soft checks only.
    """

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    tasks: tuple[str, ...] = TASKS
    preset: str = "vds"
    lm_steps: int | None = None
    lm_seed: int = 0
    model: str | None = None
    split: tuple[int, int, int] = BALANCED_SPLIT
    natural_split: tuple[int, int, int] = NATURAL_SPLIT
    labels: tuple[str, ...] | None = None
    vds: tuple[tuple[str, Any], ...] = ()
    ablations: bool = False
    lm_per_seed: bool = False
    hf: str | None = None

    def __post_init__(self) -> None:
        if not self.seeds or len(self.seeds) > MAX_SEEDS or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"vds eval.seeds: give 1 to {MAX_SEEDS} distinct seeds")
        for seed in self.seeds:
            check_int("vds eval", "seeds", seed, 0, MAX_SEED)
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ConfigError("vds eval.tasks: give one or more distinct tasks")
        for task in self.tasks:
            check_choice("vds eval", "tasks", task, TASKS)
        check_choice("vds eval", "preset", self.preset, ("vds",))
        if self.lm_steps is not None:
            check_int("vds eval", "lm_steps", self.lm_steps, 1, 10**6)
        check_int("vds eval", "lm_seed", self.lm_seed, 0, MAX_SEED)
        for name, split in (("split", self.split), ("natural_split", self.natural_split)):
            if not isinstance(split, tuple) or len(split) != 3:
                raise ConfigError(f"vds eval.{name}: give three counts (train val test)")
            for i, value in enumerate(split):
                check_int("vds eval", name, value, 0 if i == 1 else 1, 100_000)
        self.vds_config()  # validates the overrides
        if self.hf is not None and (self.model is not None or self.lm_per_seed or self.labels is not None):
            raise ConfigError("vds eval: --hf runs A8 on the English topic set; it takes no --model, --lm-per-seed or --labels")
        if self.lm_per_seed and self.model is not None:
            raise ConfigError("vds eval: --lm-per-seed trains one LM per seed; it cannot be combined with --model")

    def vds_config(self) -> VDSConfig:
        """The ``vds`` section with this run's overrides."""
        return VDSConfig.from_dict(dict(self.vds), "vds")


@dataclass
class EvalResult:
    """What :func:`run_eval` returns."""

    rows: list[dict]
    diagnostics: list[dict]
    ablation: list[dict]
    head: dict
    checks: list[dict]
    seconds: float
    out: Path


def lm_run_config(settings: EvalSettings) -> RunConfig:
    """The toy decoder of A7: the ``vds`` preset (2 blocks, d = 64, label tails 0.3, noise 0.3), float32 training."""
    preset = PRESETS[settings.preset]
    steps = settings.lm_steps or preset["train"]["steps"]
    return RunConfig().overridden({
        "model": {**preset["model"], "dtype": "float32"},
        "toyworld": dict(preset["toyworld"]),
        "train": {"steps": steps, "seed": settings.lm_seed, "eval_every": 0, "checkpoint_every": 0, "warmup": min(30, steps)},
    })


def _train_lm(settings: EvalSettings, folder: Path, bar: Any, chunk: int = 25) -> tuple[dict, RunConfig]:
    trainer = Trainer(lm_run_config(settings), folder, progress=False, plugins=[])
    while trainer.step < trainer.run.train.steps:
        before = trainer.step
        trainer.train(until=before + chunk)
        bar.update(trainer.step - before)
    return trainer.params, trainer.run


def _task_pool(world: ToyWorld, name: str, settings: EvalSettings, context: int) -> Any:
    if name == "topic_vs_rest":
        return world.task(name, n=sum(settings.natural_split), context=context)
    return world.task(name, per_class=sum(settings.split), context=context)


def _verbaliser(world: ToyWorld, task: Any, settings: EvalSettings, cfg: VDSConfig) -> np.ndarray:
    """The label token ids of a task: the world's verbaliser, or ``--labels`` words for ``topic`` (one token each)."""
    if task.name != "topic" or settings.labels is None:
        return np.asarray(task.verbaliser, np.int64)
    if len(settings.labels) != task.K:
        raise ConfigError(f"vds eval.labels: topic has K = {task.K} classes, got {len(settings.labels)} label words")

    def encode(word: str) -> list[int]:
        return [world.token_id[p] for p in word.split()]

    return label_token_ids(settings.labels, encode, cfg.multi_token_label, decode=lambda i: str(world.vocab[i]))


def run_eval(settings: EvalSettings, out: str | Path, *, jobs: Jobs | None = None, progress: bool = True,
             log: Callable[[str], None] | None = print) -> EvalResult:
    """``clearform vds eval``: the LM, representations, one job per (task, seed), checks, table and files."""
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = settings.vds_config()
    if settings.hf is not None:
        job_list, heads, run = _imported_jobs(settings, cfg, progress)
        return _finish(settings, out, job_list, heads, run, jobs, progress, log, start, imported=True)
    # One LM per run (lm_seed), or with lm_per_seed one per seed (LM seed = the seed) [reconstructed].
    lm_groups = [(s, (s,)) for s in settings.seeds] if settings.lm_per_seed else [(settings.lm_seed, settings.seeds)]
    if settings.model is not None:
        params, run = load_weights(settings.model)
        steps = 0
    else:
        run = lm_run_config(settings)
        steps = run.train.steps * len(lm_groups)
    world = ToyWorld(run.toyworld.replace(context=run.model.context))
    context = run.model.context - 1  # the positions the LM was trained on (inputs are context − 1 long)
    pools = {name: _task_pool(world, name, settings, context) for name in settings.tasks}
    # Bad label words and empty classes fail here, before any training.
    label_ids = {name: _verbaliser(world, task, settings, cfg) for name, task in pools.items()}
    for index, (name, task) in enumerate(pools.items()):
        balanced = name != "topic_vs_rest"
        for seed in settings.seeds:
            split_indices(task.labels, task.K, seed, index, settings.split if balanced else settings.natural_split, balanced)
    n_batches = sum(-(-len(p.labels) // 256) for p in pools.values()) * len(lm_groups)
    bar = tqdm(total=steps + n_batches, desc="vds: LM and representations", unit="step", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    job_list, heads = [], []
    try:
        for lm_seed, seeds in lm_groups:
            if settings.model is None:
                folder = out / ("lm" if not settings.lm_per_seed else f"lm-seed{lm_seed}")
                params, run = _train_lm(dataclasses.replace(settings, lm_seed=lm_seed), folder, bar)
            W = head_of(params, run.model)
            warning = check_head(W, run.model.d_model)
            cached: dict[bytes, Any] = {}
            for index, name in enumerate(settings.tasks):
                task = pools[name]
                key = task.prompts.tobytes() + task.prompt_len.tobytes()
                if key not in cached:  # topic and topic_unseen share their prompts
                    cached[key] = representations(params, run.model, task.prompts, task.prompt_len,
                                                  on_batch=lambda: bar.update(1))
                else:
                    bar.update(-(-len(task.labels) // 256))
                balanced = name != "topic_vs_rest"
                split = settings.split if balanced else settings.natural_split
                job_list += [EvalJob(name, index, seed, task.K, cached[key], task.labels, label_ids[name], W, cfg, split,
                                     balanced, settings.ablations) for seed in seeds]
            first = next(iter(cached.values()))
            heads.append({"lm_seed": lm_seed, **head_diagnostics(W, cfg.rcond), **head_checks(W, first.last, cfg.rcond),
                          "warning": warning})
    finally:
        bar.close()
    return _finish(settings, out, job_list, heads, run, jobs, progress, log, start)


def _imported_jobs(settings: EvalSettings, cfg: VDSConfig, progress: bool) -> tuple[list, list, RunConfig]:
    """A8: load the Hugging Face model, its head and label tokens, representations of the English topic set."""
    from reference.pretrained import load_pretrained

    model = load_pretrained(settings.hf, "float32")
    W = imported_head(model)
    warning = check_head(W, model.config.d_model)
    task = english_topics(sum(settings.split))
    ids = label_ids_for(model, task.words, cfg.multi_token_label, cfg.label_prefix)
    for seed in settings.seeds:
        split_indices(task.labels, task.K, seed, 0, settings.split, True)
    with tqdm(total=1, desc="vds: representations", disable=not progress, file=sys.stderr) as bar:
        reps = imported_representations(model, task.texts)
        bar.update(1)
    jobs = [EvalJob(task.name, 0, seed, task.K, reps, task.labels, ids, W, cfg, settings.split, True, settings.ablations)
            for seed in settings.seeds]
    head = {"lm_seed": None, "model": str(settings.hf), **head_diagnostics(W, cfg.rcond),
            **head_checks(W, reps.last, cfg.rcond), "warning": warning}
    return jobs, [head], RunConfig(model=model.config)


def _finish(settings: EvalSettings, out: Path, job_list: list, heads: list, run: RunConfig, jobs: Jobs | None,
            progress: bool, log: Callable[[str], None] | None, start: float, imported: bool = False) -> EvalResult:
    """Run the jobs, check, write and print."""
    results = run_jobs(eval_job, job_list, jobs, progress=progress, desc="vds: jobs (task, seed)")
    rows = [r for res in results for r in res["rows"]]
    diagnostics = [res["diagnostics"] for res in results]
    ablation = [r for res in results for r in res["ablation"]]
    # H5 on every LM: the worst one is reported; the others are in vds_diagnostics.json.
    head = max(heads, key=lambda h: (not (h["p3_ok"] and h["p4_ok"]), h["p4_worst_ratio"]))
    head = {**head, "p3_ok": all(h["p3_ok"] for h in heads), "p4_ok": all(h["p4_ok"] for h in heads),
            **({"per_lm": heads} if len(heads) > 1 else {})}
    checks = eval_checks(rows, diagnostics, ablation, head)
    seconds = time.perf_counter() - start
    if imported:  # §5.4: on an imported model the accuracies are reported and every check is soft
        checks = [{**c, "hard": False} for c in checks]
    elif not settings.ablations:
        checks.insert(sum(c["hard"] for c in checks), {
            "id": "H4", "task": None, "hard": True, "passed": seconds < TIME_LIMIT_S,
            "text": f"defaults finish in {seconds:.0f} s < {TIME_LIMIT_S:.0f} s (this machine, its current load)"})
    result = EvalResult(rows, diagnostics, ablation, head, checks, seconds, out)
    write_eval(result, settings, run)
    if log is not None:
        log(eval_table(result, "text"))
        log(f"wrote {out / 'vds.json'}, vds_diagnostics.json{', vds_ablation.json' if settings.ablations else ''}, "
            f"vds.md, vds.html, vds.png, config.json ({seconds:.0f} s)")
    return result


def _violations(checks: list[dict], task: str) -> str:
    if not any(c["hard"] for c in checks):
        return "soft only"
    bad = [c["id"] for c in checks if c["hard"] and c["task"] == task and c["passed"] is False]
    return "VIOLATED: " + ", ".join(bad) if bad else "ok"


def _context(task: str, method: str) -> str:
    analogue = PAPER_ANALOGUE[task]
    if method not in PAPER_METHOD:
        return "no v6 figure (v6 reports similarity without λ as ARI only)"
    name, col = PAPER_METHOD[method]
    return f"{name} {PAPER_TABLE3[analogue][col]:.3f} ({analogue})"


def _soft_lines(soft: list[dict], fmt: str) -> str:
    """The soft checks: a violated one is flagged (``[FLAG]``, "flagged"), never reported as a failure."""
    lines = render_checks(soft, fmt).split("\n" if fmt != "html" else "</li>")
    marks = {"text": ("[FAIL]", "[FLAG]"), "markdown": (": FAIL —", ": flagged —")}
    if fmt == "html":
        return "</li>".join(line.replace(": fail —", ": flagged —").replace(": FAIL —", ": flagged —") for line in lines)
    old, new = marks[fmt]
    return "\n".join(line.replace(old, new, 1) for line in lines)


def eval_table(result: EvalResult, fmt: str = "text") -> str:
    """The table (accuracy and macro-F1, mean ± sd over seeds; margin; hard-check marks; v6 context) and the checks."""
    summary = summarise(result.rows)
    headers = ["task", "method", "accuracy", "macro-F1", "calibrated − lm_head", "hard checks",
               "context: v6 Table 3 (not a target)"]
    rows = []
    for task in dict.fromkeys(r["task"] for r in result.rows):
        margin = summary[(task, "calibrated")]["acc_mean"] - summary[(task, "lm_head")]["acc_mean"]
        for method in METHODS:
            e = summary[(task, method)]
            rows.append([task, method, mean_sd_cell(e["acc_mean"], e["acc_sd"]), mean_sd_cell(e["f1_mean"], e["f1_sd"]),
                         f"{margin:+.3f}" if method == "calibrated" else "",
                         _violations(result.checks, task) if method == "calibrated" else "", _context(task, method)])
    seeds = sorted({r["seed"] for r in result.rows})
    caption = (f"mean ± sd over {len(seeds)} seed(s) {seeds}; v6's figures are means over 10 LLMs on real datasets "
               "(lm_head ↔ ICL, knn ↔ KP, calibrated ↔ VDS): context, not targets")
    hard = [c for c in result.checks if c["hard"]]
    soft_lines = _soft_lines([c for c in result.checks if not c["hard"]], fmt)
    table = render_table(headers, rows, fmt, align="<<>>><<")
    if fmt == "html":
        return (table + f"<p>{html.escape(caption)}</p><h3>hard checks</h3>" + render_checks(hard, fmt)
                + "<h3>soft checks (flagged, never asserted)</h3>" + soft_lines)
    hard_lines = render_checks(hard, fmt) if hard else "(none: on an imported model every check is soft, §5.4)"
    return "\n".join([table, "", f"({caption})" if fmt == "text" else caption, "", "hard checks:", hard_lines,
                      "", "soft checks (flagged, never asserted):", soft_lines])


def plot_eval(rows: list[dict], path: Path) -> None:
    """``vds.png``: accuracy of the four methods per task (mean ± sd over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(rows)
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    width = 0.2
    for j, method in enumerate(METHODS):
        means = [summary[(t, method)]["acc_mean"] for t in tasks]
        sds = [summary[(t, method)]["acc_sd"] for t in tasks]
        ax.bar(np.arange(len(tasks)) + (j - 1.5) * width, means, width, yerr=sds, capsize=3, label=method)
    ax.set_xticks(np.arange(len(tasks)), tasks)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, ncols=4, loc="upper center")
    ax.set_title("VDS on the toy world (clearform vds eval)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_eval(result: EvalResult, settings: EvalSettings, run: RunConfig) -> None:
    """vds.json (rows with exactly ROW_KEYS), vds_diagnostics.json, [vds_ablation.json], config.json, vds.md/html/png."""
    out = result.out
    rows = [{k: r[k] for k in ROW_KEYS} for r in result.rows]
    (out / "vds.json").write_text(json.dumps(_jsonable(rows), indent=1) + "\n")
    diag = {"head": result.head, "per_job": result.diagnostics}
    (out / "vds_diagnostics.json").write_text(json.dumps(_jsonable(diag), indent=1, allow_nan=False) + "\n")
    if settings.ablations:
        (out / "vds_ablation.json").write_text(json.dumps(_jsonable(result.ablation), indent=1) + "\n")
    summary = {f"{t}/{m}": v for (t, m), v in summarise(result.rows).items()}
    config = {"settings": dataclasses.asdict(settings), "vds": settings.vds_config().to_dict(),
              "vds_overrides": dict(settings.vds), "run": run.to_dict(), "seconds": round(result.seconds, 1),
              "summary": summary, "checks": result.checks,
              "context": {"source": "[paper-v6] Table 3, dataset means over 10 models (ICL / KP / VDS)",
                          "use": "context, not a target", "figures": PAPER_TABLE3}}
    (out / "config.json").write_text(json.dumps(_jsonable(config), indent=1) + "\n")
    plot_eval(result.rows, out / "vds.png")
    (out / "vds.md").write_text(eval_table(result, "markdown") + "\n")
    (out / "vds.html").write_text(page("VDS eval", eval_table(result, "html") + '<img src="vds.png" alt="VDS accuracies">'))


def demo_section(run_dir: str | Path, *, progress: bool = False, steps: int = 150) -> Section:
    """The VDS part of ``clearform demo``: a small ``vds eval`` (max(``steps``, 300) LM steps, one seed, two tasks).

    [reconstructed] The demo's own model reads the base world, whose documents have no label
    tails, so the section trains its own small decoder on the ``vds`` preset, for at least 300
    steps: below that the topic has not reached the last-token states (kNN near chance at 150).
    Smaller splits (64 / 0 / 64 per class) and 30 epochs at lr 10⁻³ keep it to some 20 seconds on
    two cores. Files go to ``run_dir/vds/``.
    """
    steps = max(steps, 300)
    settings = EvalSettings(seeds=(0,), tasks=("topic", "topic_unseen"), lm_steps=steps, split=(64, 0, 64),
                            vds=(("epochs", 30), ("lr", 1e-3)))
    result = run_eval(settings, Path(run_dir) / "vds", progress=progress, log=None)
    intro = ("<p>Vocabulary-defined semantics on a small toy decoder (preset <code>vds</code>, "
             f"{steps} steps, seed 0; 64 train / 64 test prompts per class; λ: 30 epochs at lr 10⁻³). "
             "Full run (5 seeds, 3 tasks, the spec's sizes): <code>clearform vds eval --out DIR</code>.</p>")
    return Section("Vocabulary-defined semantics (VDS)", intro + eval_table(result, "html")
                   + '<img src="vds/vds.png" alt="VDS accuracies">', ["vds/vds.png"])
