"""The ``clearform`` command.

Exit status: 0 success; 1 a check failed (``proofs``); 2 bad input (config,
checkpoint, tokens, files) with a one-line message; 3 training diverged.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reference import mechanisms
from reference.checkpoint import CheckpointError, load_weights
from reference.config import ConfigError, InputError, RunConfig

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED = 1, 2, 3

# The demo: a two-block, width-64 model on the default toy world. It takes
# about two minutes on two cores (the numbers in README come from this preset).
DEMO_OVERRIDES = {
    "model": {"d_model": 64, "n_layers": 2, "n_heads": 4, "context": 64},
    "train": {"steps": 600, "batch_size": 32, "lr": 3e-3, "warmup": 30, "eval_every": 100, "eval_batches": 8},
}


# --------------------------------------------------------------------------- helpers


def load_config_file(path: str | None, preset: str | None = None) -> RunConfig:
    """Defaults, then the toy-world ``preset`` (if named), then the JSON file at ``path`` (if given)."""
    base = RunConfig()
    if preset is not None:
        from reference.data.toyworld import PRESETS

        if preset not in PRESETS:
            raise ConfigError(f"--preset: {preset!r} is not one of {', '.join(PRESETS)}")
        base = base.overridden(PRESETS[preset])
    if path is None:
        return base
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path!r} ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config: {path!r} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path!r} must hold a JSON object of sections")
    return base.overridden(data)


def tokenizer_for(run: RunConfig):
    """The tokenizer that matches the run's data: toy-world words or UTF-8 bytes."""
    from reference.tokenizer import ByteTokenizer, WordTokenizer

    if run.data.source == "text":
        return ByteTokenizer()
    from reference.data.toyworld import ToyWorld

    return WordTokenizer(ToyWorld(run.toyworld))


def _print_eval(result: dict) -> None:
    for key in ("val_loss", "unigram_loss", "val_perplexity", "val_accuracy"):
        if key in result:
            print(f"{key:>15}: {result[key]:.4f}")
    if "val_loss" in result and "unigram_loss" in result:
        print(f"{'below unigram':>15}: {100 * (1 - result['val_loss'] / result['unigram_loss']):.1f} %")


def _train(run: RunConfig, out: str, *, resume: bool, until: int | None, quiet: bool) -> dict:
    from reference.train import Trainer

    # The plug-ins come from the run's config through the mechanism registry (a resumed run: its saved config).
    trainer = Trainer.resume(out, progress=not quiet) if resume else Trainer(run, out, progress=not quiet)
    for plugin in trainer.plugins:
        print(plugin)
    result = trainer.train(until=until)
    print(f"step {result.step} of {trainer.run.train.steps}; run folder {out}")
    if result.step == trainer.run.train.steps:
        _print_eval(result.final_eval)
    return result.final_eval


# --------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    run = RunConfig() if args.resume else load_config_file(args.config, args.preset)
    if not args.resume and not args.force and (Path(args.out) / "metrics.jsonl").exists():
        raise ConfigError(f"--out: {args.out!r} already holds a run (use --resume to continue it, or --force to start over)")
    _train(run, args.out, resume=args.resume, until=args.until, quiet=args.quiet)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from reference.evaluation import evaluate, unigram_loss
    from reference.train import make_data

    if args.batches < 1:
        raise ConfigError(f"--batches: {args.batches} is not a positive int")
    params, run = load_weights(args.run)
    batches = make_data(run).val_batches(args.batches, run.train.batch_size)
    result = evaluate(params, run, batches)
    result["unigram_loss"] = unigram_loss(batches)
    if args.json:
        print(json.dumps(result))
    else:
        _print_eval(result)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from reference.model import generate

    if args.tokens < 0:
        raise ConfigError(f"--tokens: {args.tokens} is negative")
    params, run = load_weights(args.run)
    tokenizer = tokenizer_for(run)
    if run.data.source == "toyworld":
        from reference.data.toyworld import ToyWorld

        world = ToyWorld(run.toyworld)
        prompt = [world.bos_id] + list(tokenizer.encode(args.prompt)) if args.prompt else [world.bos_id]
        stop = world.eos_id
    else:
        prompt = list(tokenizer.encode(args.prompt or "\n"))
        stop = None
    ids = generate(
        params, run.model, [int(i) for i in prompt], args.tokens,
        temperature=args.temperature, top_k=args.top_k, seed=args.seed, stop_id=stop,
    )
    print(tokenizer.decode(np.asarray(ids)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from reference.report import write_report

    out = args.out or str(Path("runs") / args.name)
    overrides = json.loads(json.dumps(DEMO_OVERRIDES))
    if args.steps is not None:
        overrides["train"]["steps"] = args.steps
    run = RunConfig().overridden(overrides)
    print(f"clearform demo: training a {run.model.n_layers}-block, width-{run.model.d_model} model "
          f"on the toy world for {run.train.steps} steps -> {out}")
    result = _train(run, out, resume=False, until=None, quiet=args.quiet)
    # One section per registered mechanism that has a demo (each trains its own small model).
    sections = [m.load("demo")(out, progress=not args.quiet, steps=min(150, run.train.steps)) for m in mechanisms.with_demo()]
    report = write_report(out, title="clearform demo", sections=sections)
    print(f"report: {report}")
    return 0 if result["val_loss"] < result["unigram_loss"] else EXIT_FAILED


def cmd_proofs(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from proofs.registry import MECHANISMS, all_theorems, run_theorem
    from reference.report import render_table

    if args.mechanism is not None and args.mechanism not in MECHANISMS:
        raise ConfigError(f"--mechanism: {args.mechanism!r} is not one of {', '.join(MECHANISMS)}")
    if args.examples < 1:
        raise ConfigError(f"--examples: {args.examples} is not a positive int")
    theorems = [t for t in all_theorems() if args.mechanism in (None, t.mechanism)]
    # the bar goes to stderr and only to a terminal, so --json output stays clean
    bar = tqdm(theorems, desc="proofs", unit="theorem", disable=not sys.stderr.isatty(), leave=False)
    results = [run_theorem(t, args.examples) for t in bar]
    rows = [r.as_dict() for r in results]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        headers = ("id", "mechanism", "provenance", "symbolic", "scope", "numeric", "examples")
        print(render_table(headers, [[r[h] for h in headers] for r in rows]))
        failed = [r for r in results if "fail" in (r.symbolic, r.numeric)]
        for r in failed:
            print(f"FAILED {r.id}: {r.message}")
        print(f"{len(rows) - len(failed)} of {len(rows)} theorems pass")
    ok = all("fail" not in (r.symbolic, r.numeric) for r in results)
    return 0 if ok else EXIT_FAILED


def cmd_crosscheck(args: argparse.Namespace) -> int:
    """Compare a Hugging Face checkpoint layer by layer in clearform and in transformers."""
    from reference.checkpoint import import_hf
    from reference.crosscheck import MissingDependency, crosscheck, format_hook_table

    for name in ("atol", "rtol"):
        value = getattr(args, name)
        if value is not None and not value >= 0:
            raise ConfigError(f"--{name}: {value} is not a non-negative number")
    if args.table:
        _, config, info = import_hf(args.hf, args.dtype)
        print(format_hook_table(info["family"], config.n_layers))
        return 0
    try:
        report = crosscheck(args.hf, args.text, dtype=args.dtype, atol=args.atol, rtol=args.rtol, seed=args.seed)
    except MissingDependency as exc:
        # The checkpoint imported fine (crosscheck imports it before it needs torch).
        print(f"clearform: {args.hf} imports into clearform, but {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.passed else EXIT_FAILED


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clearform",
        description="A readable NumPy reference transformer with interpretability mechanisms and checked theorems.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model from a JSON config of overrides", description="Train a model.")
    p.add_argument("--config", metavar="FILE.json", help="JSON object {section: {key: value}} of overrides; none = defaults")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder (weights, checkpoint, metrics.jsonl)")
    p.add_argument("--preset", metavar="NAME", help="start from a toy-world preset (an unknown name lists them)")
    p.add_argument("--resume", action="store_true", help="continue the run in DIR from its checkpoint")
    p.add_argument("--force", action="store_true", help="start over in a DIR that already holds a run")
    p.add_argument("--until", type=int, metavar="STEP", help="stop after this step (checkpointed; resume later)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained model on held-out data", description="Evaluate a run.")
    p.add_argument("--run", required=True, metavar="DIR", help="run folder with config.json and model.safetensors")
    p.add_argument("--batches", type=int, default=8, help="held-out batches (default 8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("generate", help="sample text from a trained model", description="Sample from a run's model.")
    p.add_argument("--run", required=True, metavar="DIR")
    p.add_argument("--prompt", default="", help="prompt text (toy-world words, or any text for byte models)")
    p.add_argument("--tokens", type=int, default=40, help="new tokens to sample (default 40)")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1.0)")
    p.add_argument("--top-k", type=int, default=None, help="sample from the k most likely tokens only")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("demo", help="train a small model on the toy world and write a report", description="The demo.")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/NAME)")
    p.add_argument("--name", default="demo", help="run name under runs/ (default demo)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 600)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("proofs", help="check every registered theorem", description="Check the theorems.")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    p.add_argument("--examples", type=int, default=100, help="Hypothesis examples per numeric check (default 100)")
    p.add_argument("--mechanism", default=None, help=f"only this mechanism ({', '.join(('CORE',) + mechanisms.codes())})")
    p.set_defaults(func=cmd_proofs)

    p = sub.add_parser(
        "crosscheck",
        help="compare a Hugging Face GPT-2 / BERT checkpoint layer by layer with transformers",
        description="Load a local Hugging Face checkpoint (config.json + model.safetensors) in clearform and in "
        "transformers, and print per-layer max absolute and relative differences. Exit 1 past the tolerance. "
        "Needs torch and transformers: pip install 'clearform[test]'.",
    )
    p.add_argument("--hf", required=True, metavar="DIR", help="Hugging Face model directory (GPT-2 or BERT family)")
    p.add_argument("--text", nargs="+", action="extend", metavar="TEXT",
                   help="input sentences (need DIR/tokenizer.json); default: sample sentences, or drawn ids")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="both sides run in this dtype")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (default 1e-4 float32, 1e-9 float64)")
    p.add_argument("--rtol", type=float, default=None, help="tolerance relative to max|hf| (default 1e-5, 1e-12)")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn ids when there is no tokenizer")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--table", action="store_true", help="only print the hook <-> Hugging Face table (no torch needed)")
    p.set_defaults(func=cmd_crosscheck)

    for mechanism in mechanisms.with_cli():  # `clearform <slug> …`, from each mechanism's own cli module
        mechanism.load("cli")(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (also used by ``python -m reference.cli``)."""
    from reference.train import TrainingDiverged

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, InputError, CheckpointError) as exc:
        print(f"clearform: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingDiverged as exc:
        print(f"clearform: training diverged: {exc}", file=sys.stderr)
        return EXIT_DIVERGED


if __name__ == "__main__":
    sys.exit(main())
