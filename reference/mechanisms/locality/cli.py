"""``clearform locality …``: the LOC subcommands, built from the experiment's settings.

Every default and every choice is read from :class:`SweepSettings` and the module's
constants, so each is stated once.
"""

from __future__ import annotations

import argparse
import dataclasses

from reference.config import ConfigError
from reference.io import check_out_dir, check_path_arg
from reference.mechanisms.locality.experiment import DEFAULT_SWEEP_STEPS, SWEEP_MODES, SWEEP_PRESETS, SweepSettings, run_sweep
from reference.parallel import add_parallel_args, jobs_from_args

EXIT_OK, EXIT_FAILED = 0, 1

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SweepSettings)}


def cmd_sweep(args: argparse.Namespace) -> int:
    """The λ sweep of the locality dial (spec §6); exit 1 if a row breaks a proved bound (E3, E4)."""
    if args.text is not None:
        check_path_arg("--text", args.text, error=ConfigError)
    settings = SweepSettings(
        mode=args.mode, lambdas=tuple(args.lambdas) if args.lambdas else _DEFAULTS["lambdas"],
        seeds=tuple(args.seeds) if args.seeds else _DEFAULTS["seeds"], steps=args.steps, preset=args.preset,
        text=args.text, schedule=args.schedule, schedule_power=args.schedule_power, eval_docs=args.eval_docs,
        probe=not args.no_probe,
    )
    jobs = jobs_from_args(args)
    check_out_dir("--out", args.out, error=ConfigError)
    result = run_sweep(settings, args.out, progress=not args.quiet, jobs=jobs)
    proved = ("E3", "E4")
    return EXIT_FAILED if any(c["id"] in proved and c["passed"] is False for c in result.checks) else EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``clearform locality sweep`` to the ``clearform`` parser."""
    d = _DEFAULTS
    p = subparsers.add_parser("locality", help="the locality dial (LOC): λ sweeps", description="The locality dial (LOC).")
    sub = p.add_subparsers(dest="locality_command", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser(
        "sweep",
        help="train on the toy world and evaluate at every λ: entropy, pointer fidelity, perplexity, accuracy",
        description="Train dial-dropout models (one per seed) and re-dial them at every λ (or retrain one per λ), "
        "then write DIR/sweep.json, sweep.png, sweep.md, sweep.html and config.json, and print the table. "
        "Exit 1 if a row breaks a proved bound (E3, E4).",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--mode", choices=SWEEP_MODES, default=d["mode"],
                   help="redial: one model per seed, re-dialled at inference; retrain: one model per (λ, seed); "
                   f"both (default {d['mode']})")
    p.add_argument("--lambdas", nargs="+", type=float, metavar="λ",
                   help=f"dial values in [0, 1] (default {' '.join(f'{v:g}' for v in d['lambdas'])})")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help=f"seeds (default {' '.join(map(str, d['seeds']))})")
    p.add_argument("--steps", type=int, default=d["steps"],
                   help=f"training steps per model (default {DEFAULT_SWEEP_STEPS}; the preset's own for locality_tiny)")
    p.add_argument("--text", default=d["text"], metavar="FILE", help="a UTF-8 text file instead of the toy world (bytes)")
    p.add_argument("--preset", choices=SWEEP_PRESETS, default=d["preset"], help=f"toy-world preset (default {d['preset']})")
    p.add_argument("--schedule", choices=("uniform", "progressive"), default=d["schedule"],
                   help="per-layer dial (PROG); progressive also trains a uniform baseline per seed for S5")
    p.add_argument("--schedule-power", type=float, default=d["schedule_power"], help="p of the progressive schedule (1, 3, 5)")
    p.add_argument("--eval-docs", type=int, default=d["eval_docs"],
                   help=f"held-out documents per evaluation (default {d['eval_docs']})")
    p.add_argument("--no-probe", action="store_true", help="skip the hot-reload probe")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_parallel_args(p)
    p.set_defaults(func=cmd_sweep)
