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

from reference.checkpoint import CheckpointError, load_weights
from reference.config import ConfigError, InputError, RunConfig

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED = 1, 2, 3

# The demo: a two-block, width-64 model on the default toy world. It takes
# about a minute on two cores (the numbers in README come from this preset).
DEMO_OVERRIDES = {
    "model": {"d_model": 64, "n_layers": 2, "n_heads": 4, "context": 64},
    "train": {"steps": 600, "batch_size": 16, "lr": 3e-3, "warmup": 30, "eval_every": 100, "eval_batches": 8},
}


# --------------------------------------------------------------------------- helpers


def load_config_file(path: str | None) -> RunConfig:
    """Defaults, overridden by the JSON file at ``path`` if given."""
    if path is None:
        return RunConfig()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path!r} ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config: {path!r} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return RunConfig.from_dict(data)


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

    trainer = Trainer.resume(out, progress=not quiet) if resume else Trainer(run, out, progress=not quiet)
    result = trainer.train(until=until)
    print(f"step {result.step} of {trainer.run.train.steps}; run folder {out}")
    if result.step == trainer.run.train.steps:
        _print_eval(result.final_eval)
    return result.final_eval


# --------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    run = load_config_file(args.config) if not args.resume else RunConfig()
    _train(run, args.out, resume=args.resume, until=args.until, quiet=args.quiet)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from reference.train import evaluate, make_data, unigram_loss

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
    report = write_report(out, title="clearform demo")
    print(f"report: {report}")
    return 0 if result["val_loss"] < result["unigram_loss"] else EXIT_FAILED


def cmd_proofs(args: argparse.Namespace) -> int:
    from proofs.registry import run_all

    results = run_all(examples=args.examples, mechanism=args.mechanism)
    rows = [r.as_dict() for r in results]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        headers = ("id", "mechanism", "provenance", "symbolic", "numeric", "examples")
        widths = [max(len(h), *(len(str(r[h])) for r in rows)) for h in headers] if rows else [len(h) for h in headers]
        line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
        print(line)
        print("-" * len(line))
        for r in rows:
            print("  ".join(str(r[h]).ljust(w) for h, w in zip(headers, widths)))
        failed = [r for r in results if "fail" in (r.symbolic, r.numeric)]
        for r in failed:
            print(f"FAILED {r.id}: {r.message}")
        print(f"{len(rows) - len(failed)} of {len(rows)} theorems pass")
    ok = all("fail" not in (r.symbolic, r.numeric) for r in results)
    return 0 if ok else EXIT_FAILED


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
    p.add_argument("--resume", action="store_true", help="continue the run in DIR from its checkpoint")
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
    p.add_argument("--mechanism", default=None, help="only this mechanism (CORE, LOC, ...)")
    p.set_defaults(func=cmd_proofs)
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
