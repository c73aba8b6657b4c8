"""``clearform vds …``: the VDS subcommands, built from the experiment's settings.

Every default is read from :class:`EvalSettings`, so each is stated once.
"""

from __future__ import annotations

import argparse
import dataclasses

from reference.config import ConfigError
from reference.io import check_out_dir, check_path_arg
from reference.mechanisms.vds.adapt import ClusteringDiverged
from reference.mechanisms.vds.evaluate import TASKS
from reference.mechanisms.vds.experiment import EvalSettings, run_eval
from reference.parallel import add_parallel_args, jobs_from_args

EXIT_OK, EXIT_FAILED = 0, 1

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(EvalSettings)}


def cmd_eval(args: argparse.Namespace) -> int:
    """Run the evaluation; exit 1 if a hard check (H1–H5) fails or λ training diverges."""
    for flag, value in (("--model", args.model), ("--hf", args.hf)):
        if value is not None:
            check_path_arg(flag, value, error=ConfigError)
    overrides = tuple((k, v) for k, v in (("epochs", args.epochs), ("lr", args.lr)) if v is not None)
    settings = EvalSettings(
        seeds=tuple(args.seeds) if args.seeds else _DEFAULTS["seeds"],
        tasks=tuple(args.tasks) if args.tasks else _DEFAULTS["tasks"],
        lm_steps=args.lm_steps, model=args.model,
        split=tuple(args.split) if args.split else _DEFAULTS["split"],
        natural_split=tuple(args.natural_split) if args.natural_split else _DEFAULTS["natural_split"],
        labels=tuple(args.labels) if args.labels else None, vds=overrides, ablations=args.ablations,
        lm_per_seed=args.lm_per_seed, hf=args.hf,
    )
    check_out_dir("--out", args.out, error=ConfigError)
    jobs = jobs_from_args(args)
    try:
        result = run_eval(settings, args.out, jobs=jobs, progress=not args.quiet)
    except ClusteringDiverged as exc:
        print(f"error: {exc}")
        return EXIT_FAILED
    return EXIT_FAILED if any(c["hard"] and c["passed"] is False for c in result.checks) else EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``clearform vds eval`` to the ``clearform`` parser."""
    d = _DEFAULTS
    p = subparsers.add_parser("vds", help="vocabulary-defined semantics (VDS): semantic bases, similarity logits, clustering",
                              description="Vocabulary-defined semantics (VDS).")
    sub = p.add_subparsers(dest="vds_command", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser(
        "eval",
        help="LM-head vs similarity vs clustering-calibrated vs kNN accuracy on the toy world's tasks",
        description="Train (or load) a toy decoder, compute the semantic bases of the label words, train the clustering "
        "module λ per (task, seed), and write DIR/vds.json (rows task, seed, method, accuracy, macro_f1, n_test), "
        "vds_diagnostics.json, vds.md, vds.html, vds.png and config.json; print the table and the checks. "
        "Exit 1 if a hard check (H1–H5) fails.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--model", default=None, metavar="DIR", help="a run folder to load instead of training the toy LM")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help=f"seeds (default {' '.join(map(str, d['seeds']))})")
    p.add_argument("--tasks", nargs="+", choices=TASKS, metavar="TASK", help=f"tasks (default {' '.join(d['tasks'])})")
    p.add_argument("--lm-steps", type=int, default=None, metavar="N",
                   help="training steps of the toy LM (default: the preset's 600)")
    p.add_argument("--split", nargs=3, type=int, metavar=("TRAIN", "VAL", "TEST"),
                   help=f"examples per class of topic / topic_unseen (default {' '.join(map(str, d['split']))})")
    p.add_argument("--natural-split", nargs=3, type=int, metavar=("TRAIN", "VAL", "TEST"),
                   help=f"examples of topic_vs_rest (default {' '.join(map(str, d['natural_split']))})")
    p.add_argument("--labels", nargs="+", metavar="WORD",
                   help="label words of the topic task, one toy token each (default topic0 …)")
    p.add_argument("--epochs", type=int, default=None, help="λ epochs (default 100, the paper's)")
    p.add_argument("--lr", type=float, default=None, help="λ learning rate (default 1e-4, [author-code])")
    p.add_argument("--ablations", action="store_true", help="also the §5.2 variants: DIR/vds_ablation.json, soft checks S1–S3, S6")
    p.add_argument("--hf", default=None, metavar="DIR",
                   help="a local Hugging Face GPT-2 or BERT directory: A8 on a seeded English topic set (soft checks only)")
    p.add_argument("--lm-per-seed", action="store_true", help="train one toy LM per seed (its seed) instead of one per run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_parallel_args(p)
    p.set_defaults(func=cmd_eval)
