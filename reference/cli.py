"""The ``clearform`` command.

Exit status: 0 success; 1 a check failed (``proofs``); 2 bad input (config,
checkpoint, tokens, files, arguments) with a one-line message on stderr; 3
training diverged; 70 an internal error (an exception no check anticipated:
a bug, reported on one line so that it is never mistaken for bad input).

Every argument is checked before any work starts: numbers for range and
finiteness (the bounds are ``reference.config``'s ``MAX_*``), output folders
for being creatable and writable, the ``--config`` file through
:func:`reference.io.read_json` (regular file, size, UTF-8, depth, numbers).
argparse's own errors are one line too (:class:`_Parser`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np

from reference import mechanisms
from reference.checkpoint import CheckpointError, load_weights
from reference.config import (
    MAX_EVAL_BATCHES,
    MAX_EVAL_SEQUENCES,
    MAX_SEED,
    MAX_STEPS,
    MAX_VOCAB,
    ConfigError,
    InputError,
    RunConfig,
    check_memory,
)
from reference.io import check_out_dir, check_path_arg, read_json, short
from reference.parallel import add_parallel_args, check_threads

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERNAL = 1, 2, 3, 70

MAX_CONFIG_BYTES = 2**20
"""Largest ``--config`` file read (1 MiB; a real one is a few hundred bytes)."""
MAX_GENERATE_TOKENS = 100_000
"""Most tokens ``clearform generate --tokens`` samples."""
MAX_EXAMPLES = 100_000
"""Most Hypothesis examples per check of ``clearform proofs --examples``."""
MIN_TEMPERATURE = 1e-6
"""Smallest positive ``--temperature`` (below it logits / T overflow; 0 means greedy)."""
MAX_MESSAGE = 400
"""Longest error line printed (a message quoting user input is cut here, whatever produced it)."""

RUN_FILES = (
    "checkpoint", "checkpoint.tmp", "checkpoint.old", "model.safetensors", "config.json", "metrics.jsonl",
    "model.safetensors.tmp", "config.json.tmp",
)
"""What a run folder holds that a new run must not inherit: removed by ``train --force`` (and ``demo``)."""

# The demo: a two-block, width-64 model on the default toy world. It takes
# about two minutes on two cores (the numbers in README come from this preset).
DEMO_OVERRIDES = {
    "model": {"d_model": 64, "n_layers": 2, "n_heads": 4, "context": 64},
    "train": {"steps": 600, "batch_size": 32, "lr": 3e-3, "warmup": 30, "eval_every": 100, "eval_batches": 8},
}


# --------------------------------------------------------------------------- helpers


def load_config_file(path: str | None, preset: str | None = None) -> RunConfig:
    """Defaults, then the toy-world ``preset`` (if named), then the JSON file at ``path`` (if given).

    The file is read by :func:`reference.io.read_json` (regular file of at most
    :data:`MAX_CONFIG_BYTES`, UTF-8, bounded depth and numbers); every failure is a
    one-line :class:`ConfigError` naming ``--config``.
    """
    base = RunConfig()
    if preset is not None:
        from reference.data.toyworld import PRESETS

        if preset not in PRESETS:
            raise ConfigError(f"--preset: {short(preset)} is not one of {', '.join(PRESETS)}")
        base = base.overridden(PRESETS[preset])
    if path is None:
        return base
    data = read_json(path, error=ConfigError, what="--config", max_bytes=MAX_CONFIG_BYTES)
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {short(path)} must hold a JSON object of sections, not {type(data).__name__}")
    return base.overridden(data)


def _one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one printable line of at most ``limit`` characters (control characters escaped)."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text[: 4 * limit])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_int_arg(flag: str, value: int, lo: int, hi: int, note: str = "") -> None:
    """Raise ConfigError unless the int argument ``flag`` lies in [lo, hi]."""
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ConfigError(f"{flag}: {short(value)} is not an int in [{lo}, {hi}]{note}")


def holds_run(out: str | Path) -> bool:
    """True when the folder ``out`` holds any file of a run (:data:`RUN_FILES`)."""
    return any(os.path.lexists(Path(out) / name) for name in RUN_FILES)


def clear_run(out: str | Path, flag: str = "--out") -> None:
    """Remove the run files (:data:`RUN_FILES`) of an old run in ``out``; other files stay.

    Called before a fresh run starts in a used folder, so a later divergence or
    ``--resume`` can never pick up the old run's checkpoint or metrics.
    """
    for name in RUN_FILES:
        target = Path(out) / name
        try:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif os.path.lexists(target):
                target.unlink()
        except OSError as exc:
            raise ConfigError(f"{flag}: cannot remove the old run's {name} ({exc.strerror or type(exc).__name__})") from None


def _config_difference(given: dict, saved: dict, prefix: str = "") -> str | None:
    """The first ``section.key`` whose value differs between two config dicts, with both values; None if equal."""
    for key in sorted(set(given) | set(saved)):
        a, b = given.get(key), saved.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _config_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key} (given {short(a, 40)}, the run has {short(b, 40)})"
    return None


def tokenizer_for(run: RunConfig):
    """The tokenizer that matches the run's data: toy-world words or UTF-8 bytes."""
    from reference.tokenizer import ByteTokenizer, WordTokenizer

    if run.data.source == "text":
        return ByteTokenizer()
    from reference.data.toyworld import ToyWorld

    return WordTokenizer(ToyWorld(run.toyworld))


def _print(text: str) -> None:
    """Print ``text`` to stdout even when stdout cannot encode every character (replaced, never a crash)."""
    try:
        print(text)
    except UnicodeEncodeError:
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        print(text.encode(encoding, "replace").decode(encoding, "replace"))


def _print_eval(result: dict) -> None:
    for key in ("val_loss", "unigram_loss", "val_perplexity", "val_accuracy"):
        if key in result:
            print(f"{key:>15}: {result[key]:.4f}")
    if "val_loss" in result and "unigram_loss" in result and result["unigram_loss"]:
        print(f"{'below unigram':>15}: {100 * (1 - result['val_loss'] / result['unigram_loss']):.1f} %")


def _train(run: RunConfig | None, out: str, *, until: int | None, quiet: bool, threads: int | None = None) -> dict:
    """Train ``run`` afresh in ``out``, or resume the run there when ``run`` is None."""
    from reference.train import Trainer

    # The plug-ins come from the run's config through the mechanism registry (a resumed run: its saved config).
    if run is None:
        trainer = Trainer.resume(out, progress=not quiet, threads=threads)
    else:
        trainer = Trainer(run, out, progress=not quiet, threads=threads)
    for plugin in trainer.plugins:
        print(plugin)
    result = trainer.train(until=until)
    print(f"step {result.step} of {trainer.run.train.steps}; run folder {out}")
    if result.step == trainer.run.train.steps:
        _print_eval(result.final_eval)
    return result.final_eval


# --------------------------------------------------------------------------- commands


def cmd_train(args: argparse.Namespace) -> int:
    """Train afresh (``--config`` / ``--preset``), start over (``--force``) or continue (``--resume``).

    Order: arguments, then the config (read, validated, its memory estimate checked), then the
    output folder (created, tried for writing); only then does ``--force`` remove the old
    run's files, so bad input never destroys a run. ``--resume`` with ``--config`` or
    ``--preset`` continues only when that config, prepared as the trainer prepares it, equals
    the run's saved one.
    """
    from reference.train import prepare_run

    if args.until is not None:
        check_int_arg("--until", args.until, 1, MAX_STEPS, " (the step to stop after)")
    check_threads(args.threads)
    if args.resume and args.force:
        raise ConfigError("--resume and --force: pick one (continue the run, or start over)")
    check_path_arg("--out", args.out, error=ConfigError)
    if args.config is not None:
        check_path_arg("--config", args.config, error=ConfigError)
    if args.resume:
        check_out_dir("--out", args.out, error=ConfigError, create=False)
        if args.config is not None or args.preset is not None:
            from reference.checkpoint import load_checkpoint

            given = prepare_run(load_config_file(args.config, args.preset))
            _, saved, _, _ = load_checkpoint(args.out)
            difference = _config_difference(given.to_dict(), saved.to_dict())
            if difference:
                flag = "--config" if args.config is not None else "--preset"
                raise ConfigError(
                    f"{flag}: differs from the config of the run in {short(args.out)} at {difference}; "
                    "resume without it, or start over with --force"
                )
        _train(None, args.out, until=args.until, quiet=args.quiet, threads=args.threads)
        return 0
    run = load_config_file(args.config, args.preset)
    check_memory(run.model, run.train.batch_size)
    check_out_dir("--out", args.out, error=ConfigError)
    if holds_run(args.out):
        if not args.force:
            raise ConfigError(
                f"--out: {short(args.out)} already holds a run (use --resume to continue it, or --force to start over)"
            )
        clear_run(args.out)
    _train(run, args.out, until=args.until, quiet=args.quiet, threads=args.threads)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a run's weights on ``--batches`` held-out batches; ``--json`` prints strict JSON (non-finite → null)."""
    from reference.evaluation import evaluate, json_safe, unigram_loss
    from reference.train import make_data

    check_int_arg("--batches", args.batches, 1, MAX_EVAL_BATCHES)
    check_path_arg("--run", args.run, error=ConfigError)
    params, run = load_weights(args.run)
    check_memory(run.model, run.train.batch_size, "eval (the run's train.batch_size)")
    if args.batches * run.train.batch_size > MAX_EVAL_SEQUENCES:
        raise ConfigError(
            f"--batches: {args.batches} batches of the run's batch_size {run.train.batch_size} is over "
            f"{MAX_EVAL_SEQUENCES} held-out sequences"
        )
    batches = make_data(run).val_batches(args.batches, run.train.batch_size)
    result = evaluate(params, run, batches)
    result["unigram_loss"] = unigram_loss(batches)
    if args.json:
        print(json.dumps(json_safe(result), allow_nan=False))
    else:
        _print_eval(result)
    return 0


def prompt_bytes(prompt: str) -> bytes:
    """The bytes of a command-line prompt: the original argv bytes (even invalid UTF-8, e.g. 0xff).

    Python decodes argv with ``surrogateescape``; :func:`os.fsencode` undoes it. A lone surrogate
    that did not come from argv is kept through ``surrogatepass`` rather than refused.
    """
    try:
        return os.fsencode(prompt)
    except UnicodeEncodeError:
        return prompt.encode("utf-8", "surrogatepass")


def cmd_generate(args: argparse.Namespace) -> int:
    """Sample ``--tokens`` tokens from a run's model after ``--prompt`` and print the text.

    Arguments: ``--tokens`` in [0, :data:`MAX_GENERATE_TOKENS`]; ``--temperature`` 0 (greedy) or a
    finite number ≥ :data:`MIN_TEMPERATURE`; ``--top-k`` 0 (off) or ≥ 1; ``--seed`` in [0, 2⁶³ − 1].
    A byte-level model takes the prompt's bytes as given (any bytes), and its output is decoded with
    ``errors="replace"``.
    """
    from reference.model import generate

    check_int_arg("--tokens", args.tokens, 0, MAX_GENERATE_TOKENS)
    temperature = args.temperature
    if not (isinstance(temperature, float) and math.isfinite(temperature) and (temperature == 0 or temperature >= MIN_TEMPERATURE)):
        raise ConfigError(f"--temperature: {short(temperature)} is not 0 (greedy) or a finite number >= {MIN_TEMPERATURE:g}")
    check_int_arg("--top-k", args.top_k, 0, MAX_VOCAB, " (0 = off)")
    check_int_arg("--seed", args.seed, 0, MAX_SEED)
    check_path_arg("--run", args.run, error=ConfigError)
    params, run = load_weights(args.run)
    check_memory(run.model, 1, "generate")
    tokenizer = tokenizer_for(run)
    if run.data.source == "toyworld":
        from reference.data.toyworld import ToyWorld

        world = ToyWorld(run.toyworld)
        prompt = [world.bos_id] + list(tokenizer.encode(args.prompt)) if args.prompt else [world.bos_id]
        stop = world.eos_id
    else:
        prompt = list(prompt_bytes(args.prompt or "\n"))
        stop = None
    ids = generate(
        params, run.model, [int(i) for i in prompt], args.tokens,
        temperature=temperature, top_k=args.top_k or None, seed=args.seed, stop_id=stop,
    )
    _print(tokenizer.decode(np.asarray(ids, dtype=np.int64)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from reference.report import write_report

    check_threads(args.threads)
    if args.out is None:
        check_path_arg("--name", args.name, error=ConfigError)
        if args.name in (".", "..") or "/" in args.name or os.sep in args.name:
            raise ConfigError(f"--name: {short(args.name)} is not a plain folder name (no '/', not '.' or '..')")
    out = args.out or str(Path("runs") / args.name)
    overrides = json.loads(json.dumps(DEMO_OVERRIDES))
    if args.steps is not None:
        overrides["train"]["steps"] = args.steps
    run = RunConfig().overridden(overrides)
    check_out_dir("--out" if args.out else "--name", out, error=ConfigError)
    clear_run(out)  # the demo always starts over
    print(f"clearform demo: training a {run.model.n_layers}-block, width-{run.model.d_model} model "
          f"on the toy world for {run.train.steps} steps -> {out}")
    result = _train(run, out, until=None, quiet=args.quiet, threads=args.threads)
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
        raise ConfigError(f"--mechanism: {short(args.mechanism)} is not one of {', '.join(MECHANISMS)}")
    check_int_arg("--examples", args.examples, 1, MAX_EXAMPLES)
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


def cmd_golden(args: argparse.Namespace) -> int:
    """Golden files of one batch (and every mechanism's cases) for checking another implementation."""
    from reference.golden import write_golden
    from reference.train import prepare_run

    if (args.preset is None) == (args.config is None):
        raise ConfigError("golden: give exactly one of --preset NAME or --config FILE")
    check_int_arg("--seed", args.seed, 0, 2**32 - 1)
    codes = mechanisms.codes()
    for code in args.mechanism or []:
        if code not in codes:
            raise ConfigError(f"--mechanism: {short(code)} is not one of {', '.join(codes)}")
    run = prepare_run(load_config_file(args.config, args.preset))
    check_memory(run.model, 2, "golden (2 sequences)")
    out = check_out_dir("--out", args.out, error=ConfigError)
    write_golden(run, args.seed, out, args.dtype, list(args.mechanism) if args.mechanism else None)
    print(f"wrote {out / 'golden.safetensors'} and {out / 'manifest.json'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Your implementation's tensors against golden files: exit 0 within tolerance, 1 beyond it, 2 bad input."""
    from reference.compare import compare_golden

    check_path_arg("--golden", args.golden, error=ConfigError)
    check_path_arg("--theirs", args.theirs, error=ConfigError)
    rename = None
    if args.map is not None:
        rename = read_json(args.map, error=ConfigError, what="--map", max_bytes=MAX_CONFIG_BYTES)
        if not isinstance(rename, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in rename.items()):
            raise ConfigError("--map: must be a JSON object {their name: golden name} of strings")
    result = compare_golden(args.golden, args.theirs, rename=rename, precision=args.precision)
    print(json.dumps(json_safe_rows(result.to_dict()), allow_nan=False) if args.json else result.format())
    return 0 if result.passed else EXIT_FAILED


def json_safe_rows(record: dict) -> dict:
    """A comparison as strict JSON: an infinite difference (a NaN in theirs) is written as null."""
    from reference.evaluation import json_safe

    return {**record, "tensors": [json_safe(row) for row in record["tensors"]]}


def cmd_crosscheck(args: argparse.Namespace) -> int:
    """Compare a Hugging Face checkpoint layer by layer in clearform and in transformers."""
    from reference.crosscheck import MissingDependency, crosscheck, format_hook_table
    from reference.hf import import_hf

    for name in ("atol", "rtol"):
        value = getattr(args, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise ConfigError(f"--{name}: {short(value)} is not a finite non-negative number")
    check_int_arg("--seed", args.seed, 0, MAX_SEED)
    check_path_arg("--hf", args.hf, error=ConfigError)
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


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``clearform train: error: … (see clearform train --help)``, exit 2.

    Subcommand parsers (the mechanisms' too) are made by ``add_parser`` with this class.
    """

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        # argparse drops a "--" given as an option's value (``--until=--``) and then skips the type
        # conversion, handing the command an empty list; refuse it here, on one line.
        if action.option_strings and arg_strings and all(arg == "--" for arg in arg_strings):
            self.error(f"argument {'/'.join(action.option_strings)}: expected a value, got '--'")
        return super()._get_values(action, arg_strings)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{_one_line(f'{self.prog}: error: {message} (see {self.prog} --help)')}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``clearform`` parser with every command (each mechanism adds its own)."""
    parser = _Parser(
        prog="clearform",
        description="A readable NumPy reference transformer with interpretability mechanisms and checked theorems.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model from a JSON config of overrides", description="Train a model.")
    p.add_argument("--config", metavar="FILE.json", help="JSON object {section: {key: value}} of overrides; none = defaults")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder (weights, checkpoint, metrics.jsonl)")
    p.add_argument("--preset", metavar="NAME", help="start from a toy-world preset (an unknown name lists them)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in DIR from its checkpoint (with --config/--preset: only if they equal its config)")
    p.add_argument("--force", action="store_true",
                   help="start over in a DIR that already holds a run (its checkpoint, weights and metrics are removed first)")
    p.add_argument("--until", type=int, metavar="STEP", help="stop after this step >= 1 (checkpointed; resume later)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_parallel_args(p, jobs=False)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained model on held-out data", description="Evaluate a run.")
    p.add_argument("--run", required=True, metavar="DIR", help="run folder with config.json and model.safetensors")
    p.add_argument("--batches", type=int, default=8, help=f"held-out batches, 1 to {MAX_EVAL_BATCHES} (default 8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("generate", help="sample text from a trained model", description="Sample from a run's model.")
    p.add_argument("--run", required=True, metavar="DIR")
    p.add_argument("--prompt", default="", help="prompt text (toy-world words, or any bytes for byte models)")
    p.add_argument("--tokens", type=int, default=40, help=f"new tokens to sample, 0 to {MAX_GENERATE_TOKENS} (default 40)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help=f"0 = greedy, else a finite number >= {MIN_TEMPERATURE:g} (default 1.0)")
    p.add_argument("--top-k", type=int, default=0, help="sample from the k most likely tokens only; 0 = off (default)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed, 0 to 2**63 - 1 (default 0)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("demo", help="train a small model on the toy world and write a report", description="The demo.")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/NAME)")
    p.add_argument("--name", default="demo", help="run name under runs/ (default demo)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 600)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_parallel_args(p, jobs=False)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("proofs", help="check every registered theorem", description="Check the theorems.")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    p.add_argument("--examples", type=int, default=100,
                   help=f"Hypothesis examples per numeric check, 1 to {MAX_EXAMPLES} (default 100)")
    p.add_argument("--mechanism", default=None, help=f"only this mechanism ({', '.join(('CORE',) + mechanisms.codes())})")
    p.set_defaults(func=cmd_proofs)

    p = sub.add_parser(
        "golden",
        help="write every tensor of one forward/backward pass (and each mechanism's cases) for checking your own code",
        description="Write DIR/golden.safetensors (inputs, parameters, every hook activation, logits, loss, the gradient "
        "of the loss for every parameter and hook, and each registered mechanism's own cases) and DIR/manifest.json "
        "(shapes, SHA-256, meaning and recommended tolerance per tensor). Same arguments, same bytes.",
    )
    p.add_argument("--preset", metavar="NAME", help="a toy-world preset (locality_tiny, ...)")
    p.add_argument("--config", metavar="FILE.json", help="a JSON config of overrides (as for train)")
    p.add_argument("--seed", type=int, default=0, help="seed of the parameters, batch and cases (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="precision of the files (default float64)")
    p.add_argument("--mechanism", nargs="+", metavar="CODE", help="only these mechanisms' cases (default: all)")
    p.set_defaults(func=cmd_golden)

    p = sub.add_parser(
        "compare",
        help="compare your implementation's tensors with golden files; names the first diverging tensor",
        description="Read DIR (from clearform golden) and your tensors (safetensors, or .npz without pickle), compare "
        "every tensor you give with the golden one against the manifest's tolerance, and name the first diverging "
        "tensor in forward order. Exit 0 within tolerance, 1 beyond it, 2 bad input.",
    )
    p.add_argument("--golden", required=True, metavar="DIR", help="folder written by clearform golden")
    p.add_argument("--theirs", required=True, metavar="FILE", help="your tensors: .safetensors or .npz")
    p.add_argument("--map", metavar="MAP.json", help="JSON object renaming your tensors: {your name: golden name}")
    p.add_argument("--precision", choices=("float64", "float32"), default=None,
                   help="which tolerance (default: float32 when all your float tensors are float32)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_compare)

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
    """Entry point; returns the exit status (also used by ``python -m reference.cli``).

    Bad input (ConfigError, InputError, CheckpointError, and an OSError from the file system: a
    full disk, a folder made read-only mid-run) exits 2 with one line; a divergence 3. Any other
    exception is a bug that no check anticipated: one line naming it, exit 70 (EX_SOFTWARE), so
    it is never mistaken for bad input. A MemoryError is reported the same way, as 70.
    """
    from reference.train import TrainingDiverged

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, InputError, CheckpointError) as exc:
        print(_one_line(f"clearform: error: {exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingDiverged as exc:
        print(_one_line(f"clearform: training diverged: {exc}"), file=sys.stderr)
        return EXIT_DIVERGED
    except OSError as exc:
        where = f"{short(exc.filename)}: " if exc.filename is not None else ""
        print(_one_line(f"clearform: error: {where}{exc.strerror or type(exc).__name__}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # the last resort: a bug, not bad input; one line, its own status
        detail = _describe(exc)
        print(_one_line(f"clearform: internal error (a bug, please report it): {detail}"), file=sys.stderr)
        return EXIT_INTERNAL


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an exception whose ``str`` may itself fail (huge ints) or span lines."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
