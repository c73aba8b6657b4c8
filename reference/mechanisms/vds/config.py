"""The ``vds`` config section: bases, similarity logits, the clustering module λ and its training (specs/02 §2.6)."""

from __future__ import annotations

from dataclasses import dataclass

from reference.config import ConfigError, ConfigSection, check_bool, check_choice, check_float, check_int

BASIS_METHODS = ("gram", "pinv")
ANCHORS = ("vocab", "class_mean", "random")
SIMILARITY_METRICS = ("euclidean", "head")
READOUTS = ("auto", "last", "mask", "cls", "mean")
MULTI_TOKEN = ("error", "first", "last")
MODULES = ("ca_mlp_ln",)
"""λ architectures implemented. [reconstructed] The optional ``"refiner"`` of [author-code] is not built."""
CA_POOLS = ("sequence", "last")
CLUSTER_LOGITS = ("sm", "mm", "sm_gt")
INFER_LOGITS = ("sm", "mm")
LOSS_MODES = ("ce", "code_faithful")
KNN_METRICS = ("cosine", "kl")
MAX_EPOCHS = 100_000
MAX_K = 1 << 20


@dataclass(frozen=True)
class VDSConfig(ConfigSection):
    """Vocabulary-defined semantics (specs/02-vocab-semantics.md §2.6). Defaults are the spec's.

    Bases and logits: ``basis_method`` "gram" (S = W[𝓛] G⁺, never a V×V object) | "pinv"
    (S = (W⁺)ᵀ[𝓛]); ``rcond`` cut-off of singular values of W (G: rcond²·λ_max);
    ``basis_dtype`` always "float64"; ``all_vocab`` bases for every token, not only the labels;
    ``anchors`` "vocab" | "class_mean" | "random"; ``head_bias_in_bases`` s_i = W⁺(e_i − b);
    ``similarity_metric`` "euclidean" (cosine) | "head" (cosine in the metric G);
    ``temperature`` τ > 0; ``cos_eps`` the clamp of ‖x‖ (PyTorch ``F.normalize``).
    Readout: ``readout``, ``label_prefix`` ("auto": " " for byte-level BPE, "" otherwise),
    ``multi_token_label`` "error" | "first" | "last".
    Module λ: ``module`` "ca_mlp_ln" (v6 CA→MLP→LN); ``ca_pool`` "sequence" (masked mean and max)
    | "last" (a = m = r); ``ca_reduction`` (d_h = max(1, d // ca_reduction)); ``ca_sigmoid``;
    ``mlp_ratio`` (hidden width mlp_ratio·d); ``ln_eps``.
    Training: ``cluster_logits`` "sm" | "mm" | "sm_gt"; ``cluster_exp`` (v6 "x-exp");
    ``infer_logits`` "sm" | "mm"; ``loss_mode`` "ce" | "code_faithful"; ``epochs``,
    ``batch_size``, ``lr``, ``weight_decay``, ``betas``, ``adam_eps``, ``seed``.
    kNN: ``knn_k``, ``knn_ks`` (diagnostics), ``knn_metric`` "cosine" | "kl".
    """

    SECTION = "vds"

    basis_method: str = "gram"
    rcond: float = 1e-6
    basis_dtype: str = "float64"
    all_vocab: bool = False
    anchors: str = "vocab"
    head_bias_in_bases: bool = False
    similarity_metric: str = "euclidean"
    temperature: float = 1.0
    cos_eps: float = 1e-8
    readout: str = "auto"
    label_prefix: str = "auto"
    multi_token_label: str = "error"
    module: str = "ca_mlp_ln"
    ca_pool: str = "sequence"
    ca_reduction: int = 16
    ca_sigmoid: bool = True
    mlp_ratio: int = 2
    ln_eps: float = 1e-5
    cluster_logits: str = "sm"
    cluster_exp: bool = False
    infer_logits: str = "sm"
    loss_mode: str = "ce"
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    seed: int = 42
    knn_k: int = 16
    knn_ks: tuple[int, ...] = (1, 16, 256)
    knn_metric: str = "cosine"

    def validate(self) -> None:
        s = self.SECTION
        check_choice(s, "basis_method", self.basis_method, BASIS_METHODS)
        check_float(s, "rcond", self.rcond, 0.0, 1.0, lo_open=True, hi_open=True)
        check_choice(s, "basis_dtype", self.basis_dtype, ("float64",))
        check_bool(s, "all_vocab", self.all_vocab)
        check_choice(s, "anchors", self.anchors, ANCHORS)
        check_bool(s, "head_bias_in_bases", self.head_bias_in_bases)
        check_choice(s, "similarity_metric", self.similarity_metric, SIMILARITY_METRICS)
        check_float(s, "temperature", self.temperature, 0.0, 1e6, lo_open=True)
        check_float(s, "cos_eps", self.cos_eps, 0.0, 1.0, lo_open=True)
        check_choice(s, "readout", self.readout, READOUTS)
        check_choice(s, "label_prefix", self.label_prefix, ("auto", "", " "))
        check_choice(s, "multi_token_label", self.multi_token_label, MULTI_TOKEN)
        check_choice(s, "module", self.module, MODULES)
        check_choice(s, "ca_pool", self.ca_pool, CA_POOLS)
        check_int(s, "ca_reduction", self.ca_reduction, 1, 1 << 16)
        check_bool(s, "ca_sigmoid", self.ca_sigmoid)
        check_int(s, "mlp_ratio", self.mlp_ratio, 1, 64)
        check_float(s, "ln_eps", self.ln_eps, 0.0, 1.0, lo_open=True)
        check_choice(s, "cluster_logits", self.cluster_logits, CLUSTER_LOGITS)
        check_bool(s, "cluster_exp", self.cluster_exp)
        if self.cluster_exp and self.cluster_logits == "sm_gt":
            # [reconstructed] sm-gt has no logits over 𝓛 to exponentiate.
            raise ConfigError(f"{s}.cluster_exp: true needs cluster_logits 'sm' or 'mm', not 'sm_gt'")
        check_choice(s, "infer_logits", self.infer_logits, INFER_LOGITS)
        check_choice(s, "loss_mode", self.loss_mode, LOSS_MODES)
        check_int(s, "epochs", self.epochs, 1, MAX_EPOCHS)
        check_int(s, "batch_size", self.batch_size, 1, 1 << 16)
        check_float(s, "lr", self.lr, 0.0, 10.0, lo_open=True)
        check_float(s, "weight_decay", self.weight_decay, 0.0, 10.0)
        if not isinstance(self.betas, tuple) or len(self.betas) != 2:
            raise ConfigError(f"{s}.betas: {self.betas!r} is not a pair of numbers in [0, 1)")
        for b in self.betas:
            check_float(s, "betas", b, 0.0, 1.0, hi_open=True)
        check_float(s, "adam_eps", self.adam_eps, 0.0, 1.0, lo_open=True)
        check_int(s, "seed", self.seed, 0, 2**63 - 1)
        check_int(s, "knn_k", self.knn_k, 1, MAX_K)
        if not isinstance(self.knn_ks, tuple) or not self.knn_ks:
            raise ConfigError(f"{s}.knn_ks: {self.knn_ks!r} is not a non-empty tuple of ints >= 1")
        for k in self.knn_ks:
            check_int(s, "knn_ks", k, 1, MAX_K)
        check_choice(s, "knn_metric", self.knn_metric, KNN_METRICS)

    def d_hidden(self, d: int) -> int:
        """Width d_h = max(1, d // ca_reduction) of the channel-attention bottleneck Bn (§2.5)."""
        return max(1, d // self.ca_reduction)
