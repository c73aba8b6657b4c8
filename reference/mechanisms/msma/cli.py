"""``clearform msma …``: the MSA subcommands, built from the experiment's settings (§6.2).

``clearform msma run --out DIR`` runs the alignment experiment; ``clearform msma partition``
prints the layer partitions of a model depth. Bad values: one line, exit 2 (ConfigError).
"""

from __future__ import annotations

import argparse
import dataclasses

from reference.config import ConfigError
from reference.io import check_out_dir
from reference.mechanisms.msma.config import PARTITION_PRESETS
from reference.mechanisms.msma.experiment import (
    PRESET_NAMES,
    RunSettings,
    alignment_table,
    checks_for_report,
    intervention_table,
    run_code_faithful,
    run_msma,
)
from reference.mechanisms.msma.panel import ARMS
from reference.mechanisms.msma.scales import SCALES, partition
from reference.parallel import add_parallel_args, jobs_from_args
from reference.report import render_checks

EXIT_OK, EXIT_FAILED = 0, 1
TINY_HARD = ("H1", "H2", "H3", "H4", "H6", "H7")
"""Hard checks asserted on the tiny preset (§6.4: H5 needs the default preset's LM)."""

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunSettings)}


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip() != "")
    except ValueError:
        raise ConfigError(f"--seeds: {text[:40]!r} is not a comma-separated list of integers") from None
    return seeds


def _partition(text: str | None):
    if text is None:
        return _DEFAULTS["partition"]
    if text in PARTITION_PRESETS:
        return text
    try:  # explicit "1,2/3,4/5,6": local / intermediate / global
        return tuple(tuple(int(k) for k in part.split(",")) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--partition: {text[:40]!r} is not a preset ({', '.join(PARTITION_PRESETS)}) "
                          "or 'L/I/G' comma lists like 1,2/3,4/5,6") from None


def cmd_run(args: argparse.Namespace) -> int:
    """The alignment experiment; exit 1 if a hard check that the preset asserts fails."""
    check_out_dir("--out", args.out, error=ConfigError)
    settings = RunSettings(
        preset=args.preset, seeds=_seeds(args.seeds) if args.seeds else _DEFAULTS["seeds"], lm_steps=args.lm_steps,
        bootstrap=args.bootstrap, interventions=args.interventions,
        arms=tuple(args.arms) if args.arms else _DEFAULTS["arms"], partition=_partition(args.partition), epochs=args.epochs,
    )
    jobs = jobs_from_args(args)
    if args.mode == "code_faithful":
        size = {"default": (1280, 6, 64), "tiny": (256, 3, 32)}[settings.preset]
        code = run_code_faithful(settings, args.out, docs=size[0], epochs=size[1], batch=size[2], progress=not args.quiet)
        print(render_checks(checks_for_report(code["checks"])))
        print(f"wrote {args.out}/msma_code.json")
        return EXIT_FAILED if any(c["hard"] and not c["pass"] for c in code["checks"]) else EXIT_OK
    result = run_msma(settings, args.out, jobs=jobs, progress=not args.quiet)
    print(alignment_table(result["summary"]))
    print()
    print(intervention_table(result["interventions"]))
    print()
    print(render_checks(checks_for_report(result["checks"])))
    print(f"wrote {args.out}/msma.json, msma.md, msma_alignment.png, msma_interventions.png ({result['timing_s']['total']:.0f} s)")
    asserted = TINY_HARD if settings.preset == "tiny" else None
    failed = [c for c in result["checks"] if c["hard"] and c["pass"] is False and (asserted is None or c["id"] in asserted)]
    return EXIT_FAILED if failed else EXIT_OK


def cmd_partition(args: argparse.Namespace) -> int:
    """Print the (local, intermediate, global) hidden indices of every preset that fits ``--layers``."""
    shown = False
    for name in PARTITION_PRESETS if args.partition is None else (args.partition,):
        try:
            parts = partition(_partition(name), args.layers)
        except ConfigError as error:
            if args.partition is not None:
                raise
            print(f"{name:12s} n/a ({str(error).split(': ', 1)[1]})")
            continue
        shown = True
        print(f"{name:12s} " + "  ".join(f"{s} {list(p)}" for s, p in zip(SCALES, parts)))
    return EXIT_OK if shown else EXIT_FAILED


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``clearform msma run`` and ``clearform msma partition``."""
    d = _DEFAULTS
    p = subparsers.add_parser("msma", help="multi-scale manifold alignment (MSA): cross-scale maps and interventions",
                              description="Multi-scale manifold alignment (MSA).")
    sub = p.add_subparsers(dest="msma_command", required=True, metavar="SUBCOMMAND")
    r = sub.add_parser("run", help="MSMA vs shuffled-pair control vs no alignment over seeds, with interventions",
                       description="Train the toy LM, learn cross-scale maps per seed, run every estimator, paired tests, "
                       "bootstraps and scale interventions; write DIR/msma.json, msma.md, config.json and plots. "
                       "Exit 1 if an asserted hard check fails.")
    r.add_argument("--out", required=True, metavar="DIR", help="output folder")
    r.add_argument("--preset", choices=tuple(PRESET_NAMES), default=d["preset"],
                   help="default: msma_toy (6 blocks, d 32); tiny: msma_tiny (3 blocks, d 16)")
    r.add_argument("--seeds", default=None, metavar="LIST", help="comma-separated seeds (default 0,1,2,3,4)")
    r.add_argument("--lm-steps", type=int, default=None, metavar="S", help="LM training steps (default: the preset's, 600 / 150)")
    r.add_argument("--bootstrap", type=int, default=None, metavar="B", help="bootstrap resamples per seed (default 200 / 50)")
    r.add_argument("--interventions", choices=("basic", "none"), default=d["interventions"], help="intervention grid")
    r.add_argument("--arms", nargs="+", choices=ARMS, default=None, help=f"arms (default: all of {', '.join(ARMS)})")
    r.add_argument("--partition", default=None, metavar="P", help="preset or explicit L/I/G, e.g. 1,2/3,4/5,6 (default thirds)")
    r.add_argument("--epochs", type=int, default=d["epochs"], help=f"map training epochs (default {d['epochs']}, early stopping)")
    r.add_argument("--mode", choices=("paper", "code_faithful"), default="paper",
                   help="paper: maps on frozen features (default); code_faithful: the authors' fine-tuning (A7) -> msma_code.json")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    add_parallel_args(r)
    r.set_defaults(func=cmd_run)
    q = sub.add_parser("partition", help="print the layer partitions of a model depth",
                       description="Print the (local, intermediate, global) hidden indices of each partition preset.")
    q.add_argument("--layers", type=int, required=True, help="number of blocks n_L")
    q.add_argument("--partition", default=None, help="one preset or explicit L/I/G (default: every preset)")
    q.set_defaults(func=cmd_partition)
