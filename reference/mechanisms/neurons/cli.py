"""``clearform neurons analyze``: the NEU command, built from :class:`NeuronsConfig` (spec §6.3).

Every default is the config section's, stated once there; flags that are left out keep it.
"""

from __future__ import annotations

import argparse
import dataclasses

from reference.config import ConfigError
from reference.io import check_out_dir, check_path_arg
from reference.mechanisms.neurons.config import NeuronsConfig
from reference.mechanisms.neurons.experiment import run_analysis
from reference.parallel import add_parallel_args, jobs_from_args

_D = {f.name: f.default for f in dataclasses.fields(NeuronsConfig)}
DEFAULT_STEPS = 600


def _int_list(flag: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip() != "")
    except ValueError:
        raise ConfigError(f"{flag}: {text[:60]!r} is not a comma-separated list of ints") from None
    if not values:
        raise ConfigError(f"{flag}: empty list")
    return values


def config_from_args(args: argparse.Namespace) -> NeuronsConfig:
    """The NeuronsConfig the flags ask for (validated: one-line ConfigError naming the field)."""
    changes = {}
    if args.layers is not None:
        changes["layers"] = "all" if args.layers == "all" else _int_list("--layers", args.layers)
    if args.neurons is not None:
        changes["neurons"] = _int_list("--neurons", args.neurons)
    for flag in ("site", "max_neurons", "zones", "zone_mode", "core_size", "core_fraction", "min_count", "categories",
                 "category_file", "n_clusters", "corpus_tokens", "permutations", "seed", "alpha", "aggregate",
                 "uncategorised", "bootstrap", "sign_flips", "virtual_weight", "precursor_rank"):
        value = getattr(args, flag)
        if value is not None:
            changes[flag] = value
    if args.no_next_layer:
        changes["next_layer"] = False
    if args.no_plots:
        changes["plots"] = False
    return NeuronsConfig(**changes)


def cmd_analyze(args: argparse.Namespace) -> int:
    """Analyse the neurons of a model; exit 0 (soft checks are flagged in the output, never an exit status)."""
    for flag in ("ckpt", "category_file", "text"):
        value = getattr(args, flag)
        if value is not None:
            check_path_arg(f"--{flag.replace('_', '-')}", value, error=ConfigError)
    cfg = config_from_args(args)
    if args.steps is not None and not 1 <= args.steps <= 10**6:
        raise ConfigError(f"--steps: {args.steps} is not an int in [1, 1000000]")
    jobs = jobs_from_args(args)
    check_out_dir("--out", args.out, error=ConfigError)
    run_analysis(cfg, args.out, ckpt=args.ckpt, pretrained=args.pretrained, text=args.text,
                 steps=args.steps or DEFAULT_STEPS, jobs=jobs, progress=not args.quiet)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``clearform neurons analyze`` to the ``clearform`` parser."""
    d = _D
    p = subparsers.add_parser("neurons", help="intra-neuronal attention (NEU): activation zones vs categories",
                              description="Intra-neuronal attention (NEU).")
    sub = p.add_subparsers(dest="neurons_command", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser(
        "analyze", help="segment each MLP neuron's top tokens into activation zones and test them against categories",
        description="Write DIR/neurons.json (one row per layer, neuron and zone), the figures neurons_hist_L*.png, "
        "neurons_zones.png, neurons_next.png, neurons.md and config.json; print the table, verdicts and soft checks. "
        "With neither --ckpt nor --pretrained, first train the 'neurons' toy-world preset into DIR/model/.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--ckpt", default=None, metavar="DIR", help="a clearform run folder (config.json + model.safetensors)")
    p.add_argument("--pretrained", default=None, metavar="NAME", help="a pretrained fixture: minilm (all-MiniLM-L6-v2)")
    p.add_argument("--text", default=None, metavar="FILE", help="MiniLM: one sentence per line instead of the frames")
    p.add_argument("--steps", type=int, default=None, help=f"training steps of the preset model (default {DEFAULT_STEPS})")
    p.add_argument("--layers", default=None, help=f"blocks, e.g. 0,1 or all (default {','.join(map(str, d['layers']))})")
    p.add_argument("--site", default=None, help=f"post (after GELU) or pre (default {d['site']})")
    p.add_argument("--neurons", default=None, metavar="LIST", help="neuron ids, e.g. 0,5,9 (default all)")
    p.add_argument("--max-neurons", type=int, default=None, help="a seeded sample of this many neurons per block")
    p.add_argument("--aggregate", default=None, help=f"mean or max over a type's positions (default {d['aggregate']})")
    p.add_argument("--zones", type=int, default=None, help=f"Z (default {d['zones']})")
    p.add_argument("--zone-mode", default=None, help=f"rank or value (default {d['zone_mode']})")
    p.add_argument("--core-size", type=int, default=None, help=f"K at most (default {d['core_size']})")
    p.add_argument("--core-fraction", type=float, default=None, help=f"K ≤ fraction·N (default {d['core_fraction']})")
    p.add_argument("--min-count", type=int, default=None, help=f"occurrences for eligibility (default {d['min_count']})")
    p.add_argument("--categories", default=None, help="auto, truth, file or cluster (default auto)")
    p.add_argument("--category-file", default=None, metavar="FILE", help="word<TAB>category lines")
    p.add_argument("--uncategorised", default=None, help=f"exclude or own (default {d['uncategorised']})")
    p.add_argument("--n-clusters", type=int, default=None, help=f"clusters for --categories cluster (default {d['n_clusters']})")
    p.add_argument("--corpus-tokens", type=int, default=None, help=f"toy-world positions (default {d['corpus_tokens']})")
    p.add_argument("--permutations", type=int, default=None, help=f"B (default {d['permutations']})")
    p.add_argument("--bootstrap", type=int, default=None, help=f"bootstrap resamples (default {d['bootstrap']})")
    p.add_argument("--sign-flips", type=int, default=None, help=f"sign-flip vectors (default {d['sign_flips']})")
    p.add_argument("--virtual-weight", default=None, help=f"ln or raw (default {d['virtual_weight']})")
    p.add_argument("--precursor-rank", default=None, help=f"weight or contribution (default {d['precursor_rank']})")
    p.add_argument("--seed", type=int, default=None, help=f"seed of permutations, bootstrap, corpus (default {d['seed']})")
    p.add_argument("--alpha", type=float, default=None, help=f"significance level (default {d['alpha']})")
    p.add_argument("--no-next-layer", action="store_true", help="skip the next-layer analysis")
    p.add_argument("--no-plots", action="store_true", help="write no figures")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_parallel_args(p)
    p.set_defaults(func=cmd_analyze)
