"""The ``msma`` config section: multi-scale manifold alignment (specs/04-msma.md §2.6). [reconstructed]"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from reference.config import ConfigError, ConfigSection, check_bool, check_choice, check_float, check_int, is_int

MODES = ("paper", "code_faithful")
PARTITION_PRESETS = ("thirds", "code", "code_bert", "figure", "readme_gpt2", "readme_bert", "readme_t5")
POOLS = ("sequence", "token")
MAPS = ("linear", "identity", "orthogonal", "mlp")
GEOS = ("sq_norm", "sq", "dist", "l2")
INFOS = ("infonce", "mine", "none")
MARGINALS = ("all_pairs", "permutation", "unshuffled")
CURVS = ("fd_hessian", "param_norm", "none")
INTERVENTION_SETS = ("basic", "full", "none")
MAX_ROWS = 10**6
MAX_EPOCHS = 10**5
MAX_SEEDS = 100


def _tuple_of(section: str, name: str, value: Any, lo: float, hi: float | None = None, lo_open: bool = False) -> None:
    if not isinstance(value, tuple) or not value:
        raise ConfigError(f"{section}.{name}: {value!r} is not a non-empty tuple of numbers")
    for v in value:
        check_float(section, name, v, lo, hi, lo_open=lo_open)


@dataclass(frozen=True)
class MSMAConfig(ConfigSection):
    """Multi-scale manifold alignment: partition, pooling, maps, objective, estimators, interventions. [reconstructed]

    ``mode="paper"`` (default) learns cross-scale maps f_GI, f_IL on frozen features (§2.3, §2.4);
    :meth:`code_faithful` sets the authors' code's bundle (§2.5), every item its own flag. The
    fields and their defaults are the spec's §2.6 table; the section never changes a training run
    (MSA has no plug-in: its maps train on features of a finished model).
    """

    SECTION = "msma"

    mode: str = "paper"
    partition: Any = "thirds"
    last_hidden: str = "resid"
    pool: str = "sequence"
    pad_in_pool: bool = False
    max_rows: int = 8192
    standardize: str = "joint"
    map: str = "linear"
    mlp_hidden: int | None = None
    procrustes_scale: bool = False
    proper_rotation: bool = False
    lambda_geo: float = 0.1
    lambda_info: float = 0.1
    lambda_curv: float = 0.01
    lambda_cls: float = 0.0
    geo: str = "sq_norm"
    info: str = "infonce"
    mine_marginals: str = "all_pairs"
    mine_ema: float = 0.01
    train_critic: str = "bilinear"
    critic_trainable: bool = True
    curv: str = "fd_hessian"
    curv_probes: int = 2
    curv_eps: float = 0.05
    epochs: int = 200
    batch_size: int = 256
    map_lr: float = 1e-3
    critic_lr: float = 1e-3
    patience: int = 20
    shuffle_pairs: bool = False
    kl_eps: float = 1e-6
    kl_dim: int = 16
    hist_bins: int = 64
    gauss_dim: int = 32
    gauss_bias_correct: bool = True
    ksg_k: int = 3
    ksg_dim: int = 4
    ksg_max_rows: int = 2048
    ksg_jitter: float = 1e-10
    est_dim: int = 8
    est_critic: str = "quadratic"
    est_init: str = "gaussian"
    est_steps: int = 200
    est_lr: float = 0.01
    est_batch: int = 256
    est_l2: float = 1e-4
    nce_batch: int = 256
    dcor_rows: int = 1024
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    bootstrap: int = 200
    bootstrap_seeds: int = 10000
    finetune_backbone: bool = False
    procrustes_in_forward: bool = False
    fp16_features: bool = False
    eval_fraction: float = 1.0
    eval_every: int = 3
    critic_grad_accumulates: bool = False
    replicate_config_bugs: bool = False
    ft_lr: float | None = None
    ft_weight_decay: float = 0.01
    ft_batch: int = 128
    ft_epochs: int = 15
    ft_clip: float = 0.5
    interventions: str = "basic"
    noise_sigma: tuple[float, ...] = (1.0,)
    scale_alpha: tuple[float, ...] = (1.5,)
    translate_kappa: tuple[float, ...] = (0.5,)
    attn_tau: tuple[float, ...] = (0.5, 2.0)
    translate_dir: str = "pc1"
    n_prompts: int = 64
    prompt_len: int = 16
    new_tokens: int = 48
    samples_per_prompt: int = 2
    top_p: float = 0.9
    temperature: float = 1.0

    @classmethod
    def code_faithful(cls, backbone: str = "gpt2", **overrides: Any) -> MSMAConfig:
        """The authors' code's bundle (§2.5) for ``backbone`` "gpt2" | "bert" | "toy". [author-code]

        Each item stays its own flag: ``MSMAConfig.code_faithful("toy").replace(info="infonce")``
        flips one. ``ft_lr``: 1e-5 (GPT-2), 2e-5 (BERT), 1e-4 (toy, [reconstructed]).
        """
        check_choice("msma", "backbone", backbone, ("gpt2", "bert", "toy"))
        bundle = dict(
            mode="code_faithful", partition="code_bert" if backbone == "bert" else "code", pad_in_pool=True,
            standardize="none", map="identity", finetune_backbone=True, lambda_cls=1.0, geo="l2", info="mine",
            mine_marginals="unshuffled", train_critic="code_mlp", critic_trainable=False, curv="param_norm",
            procrustes_in_forward=True, fp16_features=True, eval_fraction=0.5, critic_grad_accumulates=True,
            ft_lr={"gpt2": 1e-5, "bert": 2e-5, "toy": 1e-4}[backbone],
        )
        return cls(**(bundle | overrides))

    def __post_init__(self) -> None:
        # JSON has no tuples: an explicit partition arrives as lists of lists.
        if isinstance(self.partition, list | tuple) and not isinstance(self.partition, str):
            parts = tuple(tuple(p) if isinstance(p, list | tuple) else p for p in self.partition)
            object.__setattr__(self, "partition", parts)
        super().__post_init__()

    def validate(self) -> None:  # noqa: C901  (one flat list of field checks, in §2.6 order)
        s = self.SECTION
        check_choice(s, "mode", self.mode, MODES)
        if isinstance(self.partition, str):
            check_choice(s, "partition", self.partition, PARTITION_PRESETS)
        elif not (isinstance(self.partition, tuple) and len(self.partition) == 3
                  and all(isinstance(p, tuple) and p and all(is_int(k) and k >= 0 for k in p) for p in self.partition)):
            raise ConfigError(f"{s}.partition: {self.partition!r} is not a preset ({' | '.join(PARTITION_PRESETS)}) "
                              "or three non-empty tuples of hidden indices (local, intermediate, global)")
        check_choice(s, "last_hidden", self.last_hidden, ("resid", "final_norm"))
        check_choice(s, "pool", self.pool, POOLS)
        for name in ("pad_in_pool", "procrustes_scale", "proper_rotation", "critic_trainable", "shuffle_pairs",
                     "gauss_bias_correct", "finetune_backbone", "procrustes_in_forward", "fp16_features",
                     "critic_grad_accumulates", "replicate_config_bugs"):
            check_bool(s, name, getattr(self, name))
        check_int(s, "max_rows", self.max_rows, 2, MAX_ROWS)
        check_choice(s, "standardize", self.standardize, ("joint", "none"))
        check_choice(s, "map", self.map, MAPS)
        if self.mlp_hidden is not None:
            check_int(s, "mlp_hidden", self.mlp_hidden, 1, 2**16)
        for name in ("lambda_geo", "lambda_info", "lambda_curv", "lambda_cls"):
            check_float(s, name, getattr(self, name), 0.0)
        check_choice(s, "geo", self.geo, GEOS)
        check_choice(s, "info", self.info, INFOS)
        check_choice(s, "mine_marginals", self.mine_marginals, MARGINALS)
        check_float(s, "mine_ema", self.mine_ema, 0.0, 1.0, lo_open=True)
        check_choice(s, "train_critic", self.train_critic, ("bilinear", "code_mlp"))
        check_choice(s, "curv", self.curv, CURVS)
        check_int(s, "curv_probes", self.curv_probes, 1, 1024)
        check_float(s, "curv_eps", self.curv_eps, 0.0, lo_open=True)
        check_int(s, "epochs", self.epochs, 1, MAX_EPOCHS)
        check_int(s, "batch_size", self.batch_size, 2, MAX_ROWS)
        check_float(s, "map_lr", self.map_lr, 0.0, lo_open=True)
        check_float(s, "critic_lr", self.critic_lr, 0.0, lo_open=True)
        check_int(s, "patience", self.patience, 1, MAX_EPOCHS)
        check_float(s, "kl_eps", self.kl_eps, 0.0)
        for name in ("kl_dim", "gauss_dim", "est_dim", "ksg_dim"):
            check_int(s, name, getattr(self, name), 1, 4096)
        check_int(s, "hist_bins", self.hist_bins, 2, 4096)
        check_int(s, "ksg_k", self.ksg_k, 1, 1024)
        check_int(s, "ksg_max_rows", self.ksg_max_rows, 2, MAX_ROWS)
        check_float(s, "ksg_jitter", self.ksg_jitter, 0.0)
        check_choice(s, "est_critic", self.est_critic, ("quadratic", "mlp"))
        check_choice(s, "est_init", self.est_init, ("gaussian", "zero"))
        check_int(s, "est_steps", self.est_steps, 0, 10**6)
        check_float(s, "est_lr", self.est_lr, 0.0, lo_open=True)
        check_int(s, "est_batch", self.est_batch, 2, MAX_ROWS)
        check_float(s, "est_l2", self.est_l2, 0.0)
        check_int(s, "nce_batch", self.nce_batch, 2, MAX_ROWS)
        check_int(s, "dcor_rows", self.dcor_rows, 2, MAX_ROWS)
        if not isinstance(self.seeds, tuple) or not 2 <= len(self.seeds) <= MAX_SEEDS or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{s}.seeds: {self.seeds!r} is not a tuple of 2 to {MAX_SEEDS} distinct seeds")
        for seed in self.seeds:
            check_int(s, "seeds", seed, 0, 2**63 - 1)
        check_int(s, "bootstrap", self.bootstrap, 0, 10**6)
        check_int(s, "bootstrap_seeds", self.bootstrap_seeds, 0, 10**7)
        check_float(s, "eval_fraction", self.eval_fraction, 0.0, 1.0, lo_open=True)
        check_int(s, "eval_every", self.eval_every, 1, MAX_EPOCHS)
        if self.ft_lr is not None:
            check_float(s, "ft_lr", self.ft_lr, 0.0, lo_open=True)
        check_float(s, "ft_weight_decay", self.ft_weight_decay, 0.0)
        check_int(s, "ft_batch", self.ft_batch, 1, MAX_ROWS)
        check_int(s, "ft_epochs", self.ft_epochs, 1, MAX_EPOCHS)
        check_float(s, "ft_clip", self.ft_clip, 0.0, lo_open=True)
        check_choice(s, "interventions", self.interventions, INTERVENTION_SETS)
        _tuple_of(s, "noise_sigma", self.noise_sigma, 0.0)
        _tuple_of(s, "scale_alpha", self.scale_alpha, 0.0, lo_open=True)
        _tuple_of(s, "translate_kappa", self.translate_kappa, -1e6, 1e6)
        _tuple_of(s, "attn_tau", self.attn_tau, 0.0, lo_open=True)
        check_choice(s, "translate_dir", self.translate_dir, ("pc1", "random"))
        for name, hi in (("n_prompts", 10**5), ("prompt_len", 2**16), ("new_tokens", 2**16), ("samples_per_prompt", 1000)):
            check_int(s, name, getattr(self, name), 1, hi)
        check_float(s, "top_p", self.top_p, 0.0, 1.0, lo_open=True)
        check_float(s, "temperature", self.temperature, 0.0, lo_open=True)
        if self.finetune_backbone and self.map != "identity":
            raise ConfigError(f"{s}.finetune_backbone: needs map 'identity' (the code's identity map), got {self.map!r}")
        if self.finetune_backbone and self.pool == "token":
            raise ConfigError(f"{s}.finetune_backbone: needs pool 'sequence', got 'token'")
        if not math.isfinite(self.lambda_geo + self.lambda_info + self.lambda_curv):
            raise ConfigError(f"{s}.lambda_geo: the λ's must be finite")
