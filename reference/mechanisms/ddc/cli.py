"""``clearform ddc eval``: the DDC experiments (spec §5), built from :class:`EvalSettings`."""

from __future__ import annotations

import argparse
import dataclasses

from reference.config import ConfigError, check_int
from reference.io import check_out_dir
from reference.mechanisms.ddc.experiment import EXPERIMENTS, EvalSettings, rows_table, run_eval
from reference.parallel import add_parallel_args, jobs_from_args

EXIT_OK, EXIT_FAILED = 0, 1
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(EvalSettings)}


def _experiments(text: str) -> tuple[str, ...]:
    names = tuple(x.strip().lower() for x in text.split(",") if x.strip())
    bad = [n for n in names if n not in EXPERIMENTS]
    if not names or bad or len(set(names)) != len(names):
        raise ConfigError(f"--experiments: {text[:80]!r} is not a comma list of distinct {', '.join(EXPERIMENTS)}")
    return names


def cmd_eval(args: argparse.Namespace) -> int:
    """Run the experiments; exit 1 if a hard check that ran failed."""
    experiments = _experiments(args.experiments) if args.experiments else _DEFAULTS["experiments"]
    seeds = tuple(args.seeds) if args.seeds else _DEFAULTS["seeds"]
    if len(set(seeds)) != len(seeds) or len(seeds) > 100:
        raise ConfigError(f"--seeds: {list(seeds)[:10]} must be at most 100 distinct seeds")
    for s in seeds:
        check_int("--seeds", "seed", s, 0, 2**31 - 1)
    check_int("--e3-draws", "draws", args.e3_draws, 1, 100_000)
    settings = EvalSettings(experiments=experiments, seeds=seeds, slow=args.slow, e3_draws=args.e3_draws)
    jobs = jobs_from_args(args)
    out = check_out_dir("--out", args.out, error=ConfigError)
    result = run_eval(settings, out, progress=not args.quiet, jobs=jobs)
    print(rows_table(result["rows"]))
    return EXIT_FAILED if any(r["hard"] and r["pass"] is False for r in result["rows"]) else EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``clearform ddc eval`` to the ``clearform`` parser."""
    p = subparsers.add_parser("ddc", help="DDCL-INCRT (DDC): prototype blocks and head growth",
                              description="DDCL-INCRT (DDC): prototype feed-forward blocks, incremental heads.")
    sub = p.add_subparsers(dest="ddc_command", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser("eval", help="the spec's experiments on synthetic data: ddc.json, ddc_trace.json, figures",
                       description="Run E1–E4, E6a, E7 (E5 is not implemented; its checks are rows marked not run), write "
                       "DIR/ddc.json, DIR/ddc_trace.json, ddc_split.png, ddc_growth.png, ddc_tau.png and print the rows. "
                       "Exit 1 if a hard check fails.")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                   help=f"seeds (default {' '.join(map(str, _DEFAULTS['seeds']))})")
    p.add_argument("--experiments", metavar="LIST",
                   help=f"comma list of {','.join(EXPERIMENTS)} (default {','.join(_DEFAULTS['experiments'])})")
    p.add_argument("--slow", action="store_true", help="H3: the Oja gate on E2 for every seed (default: the first seed)")
    p.add_argument("--e3-draws", type=int, default=_DEFAULTS["e3_draws"], help="random operators per seed in E3")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_parallel_args(p)
    p.set_defaults(func=cmd_eval)
