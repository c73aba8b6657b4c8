"""Configuration dataclasses and their validation.

Every config is a frozen dataclass whose fields have defaults. ``from_dict``
builds one from a JSON-like mapping and rejects unknown keys, wrong types and
out-of-range values with a one-line :class:`ConfigError` that names the field,
the value and what is accepted, e.g.::

    model.n_heads: 3 does not divide d_model 64 (set d_head, or pick a divisor)

Values echoed in a message are cut by :func:`_short` (at most about 80
characters, never a newline), so a config key holding a newline still gives one
line and a 50 MB string is not echoed whole.

Limits (issue 9): every int field has an upper bound that no real run
approaches (the ``MAX_*`` constants below, stated in each section's
docstring), checked before anything is allocated. A model's parameter count
(:func:`parameter_count`, exact, computed without building the shapes) is
checked against :data:`MAX_PARAMETERS` when the :class:`ModelConfig` is built;
a training step's activation memory (:func:`activation_bytes`, an estimate) is
checked against :data:`MAX_ACTIVATION_BYTES` by :func:`check_memory`, which
the CLI calls before training, evaluating or sampling. Both caps can be raised
through environment variables (``CLEARFORM_MAX_PARAMETERS``,
``CLEARFORM_MAX_ACTIVATION_BYTES``) rather than config fields, so a saved
run's config does not depend on the machine it was trained on.

A mechanism keeps its own section class in its package
(``reference/mechanisms/<slug>/config.py``), built on :class:`ConfigSection`
and the same ``check_*`` helpers, so every error reads the same way; the
mechanism registry (``reference.mechanisms``) tells :class:`RunConfig` which
sections exist. This module names no mechanism.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reference.io import short as _short  # one line, cut: every message that echoes a value


class ConfigError(ValueError):
    """A configuration value is invalid. The message is one line naming the field."""


class InputError(ValueError):
    """A runtime input (tokens, a block layout, targets ...) is invalid; one line naming it."""


# --------------------------------------------------------------------------- limits

MAX_WIDTH = 2**16
"""Upper bound of ``model.d_model``, ``d_head``, ``d_mlp``, ``context`` and ``toyworld.context`` (65,536)."""
MAX_LAYERS = 1024
"""Upper bound of ``model.n_layers`` and ``model.n_heads``."""
MAX_VOCAB = 2**24
"""Upper bound of ``model.vocab_size`` (16,777,216) and of ``model.n_token_types``."""
MAX_STEPS = 10**9
"""Upper bound of ``train.steps``, ``warmup``, ``eval_every``, ``checkpoint_every`` and ``log_every``."""
MAX_BATCH = 2**16
"""Upper bound of ``train.batch_size`` (65,536)."""
MAX_EVAL_BATCHES = 10**4
"""Upper bound of ``train.eval_batches`` and of ``clearform eval --batches``."""
MAX_EVAL_SEQUENCES = 2**18
"""Most held-out sequences per evaluation: ``train.eval_batches`` × ``train.batch_size`` (and ``eval --batches`` × it)."""
MAX_SEED = 2**63 - 1
"""Upper bound of every seed (``train.seed``, ``toyworld.world_seed``, ``generate --seed``): an int64."""
MAX_SHARDS = 64
"""Upper bound of ``train.shards``."""
MAX_PATH = 4096
"""Longest accepted ``data.path`` (Linux's PATH_MAX)."""

MAX_PARAMETERS = 2 * 10**9
"""Default cap on a model's parameter count; raise it with the environment variable ``CLEARFORM_MAX_PARAMETERS``."""
MAX_ACTIVATION_BYTES = 2**35
"""Default cap (32 GiB) on the activation estimate of one training step (:func:`activation_bytes`);
raise it with the environment variable ``CLEARFORM_MAX_ACTIVATION_BYTES``."""
PARAMETERS_ENV = "CLEARFORM_MAX_PARAMETERS"
ACTIVATION_ENV = "CLEARFORM_MAX_ACTIVATION_BYTES"


# --------------------------------------------------------------------------- helpers


def _key(key: Any) -> str:
    """A config key for a message: as it is when it is a plain identifier, else its cut repr."""
    return key if isinstance(key, str) and key.isidentifier() and len(key) <= 80 else _short(key)


def _count(n: int) -> str:
    """A big count readably: ``1.23e+21``, or ``~2^N`` past float range."""
    try:
        return f"{float(n):.3g}" if n >= 10**6 else str(n)
    except OverflowError:
        return f"~2^{n.bit_length() - 1}"


def _env_cap(name: str, default: int) -> int:
    """The positive int in environment variable ``name``, or ``default`` when unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name}: {_short(raw)} is not a positive int (unset it for the default {default})")
    return value


def is_int(value: Any) -> bool:
    """True for an int that is not a bool (a config never means True as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for an int (not a bool) or a float."""
    return (is_int(value) or isinstance(value, float)) and not isinstance(value, bool)


def check_int(section: str, name: str, value: Any, lo: int | None = None, hi: int | None = None) -> None:
    """Raise ConfigError unless ``value`` is an int in [lo, hi] (open ends when None)."""
    lo_txt = "-inf" if lo is None else str(lo)
    hi_txt = "inf" if hi is None else str(hi)
    if not is_int(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{section}.{name}: {_short(value)} is not an int in [{lo_txt}, {hi_txt}]")


def check_float(
    section: str,
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    """Raise ConfigError unless ``value`` is a finite real number in the given interval."""
    lb = "(" if lo_open else "["
    rb = ")" if hi_open else "]"
    lo_txt = "-inf" if lo is None else repr(lo)
    hi_txt = "inf" if hi is None else repr(hi)
    ok = is_number(value) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        raise ConfigError(f"{section}.{name}: {_short(value)} is not a number in {lb}{lo_txt}, {hi_txt}{rb}")


def check_choice(section: str, name: str, value: Any, choices: tuple) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if isinstance(value, bool) or value not in choices:
        accepted = " | ".join(repr(c) for c in choices)
        raise ConfigError(f"{section}.{name}: {_short(value)} is not one of {accepted}")


def check_bool(section: str, name: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ConfigError(f"{section}.{name}: {_short(value)} is not a bool (true or false)")


def config_from_dict(cls: type, data: Mapping[str, Any] | None, section: str):
    """Build dataclass ``cls`` from a mapping; unknown keys are a ConfigError.

    Lists are turned into tuples (JSON has no tuples). Value checks are the
    class's own ``validate``, run by ``__post_init__``.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        raise ConfigError(f"{section}.{_key(unknown[0])}: unknown key (accepted: {', '.join(sorted(names))})")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def config_to_dict(config) -> dict:
    """The dataclass as plain JSON-ready values (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            value = config_to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


class ConfigSection:
    """Base of every config section: ``validate`` runs after construction; ``replace`` re-validates.

    A section is a frozen dataclass with defaults for every field, a ``SECTION``
    name (its key in a run's JSON) and a ``validate`` that raises
    :class:`ConfigError` through the ``check_*`` helpers.
    """

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:  # pragma: no cover - every subclass overrides
        pass

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, section: str | None = None):
        return config_from_dict(cls, data, section or cls.SECTION)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ModelConfig(ConfigSection):
    """Architecture of the transformer.

    Size bounds (:attr:`SIZE_BOUNDS`): ``vocab_size`` ≤ 2²⁴, ``context``,
    ``d_model``, ``d_head``, ``d_mlp`` ≤ 2¹⁶, ``n_layers``, ``n_heads`` ≤ 1024,
    ``n_token_types`` ≤ 2²⁴; and the whole model at most :data:`MAX_PARAMETERS`
    parameters (2·10⁹; environment variable ``CLEARFORM_MAX_PARAMETERS``
    raises it), checked before the per-field bounds, so the message of an
    absurd size carries the estimate.

    Defaults describe a small GPT-2-style decoder (pre-LN, learned positions,
    tanh GELU, tied head, causal attention). The BERT family is
    ``norm="post", causal=False, gelu="erf", embed_norm=True,
    final_norm=False, n_token_types=2``.

    Fields:
        vocab_size: V, number of token ids.
        context: maximum sequence length T (learned position table size).
        d_model: residual width D.
        n_layers: number of blocks.
        n_heads: attention heads H.
        d_head: per-head width; None means D // H (then H must divide D).
        d_mlp: MLP hidden width F; None means 4 D.
        norm: "pre" (x + f(LN(x))) or "post" (LN(x + f(x))).
        bias: whether linear layers carry biases.
        tied_head: logits = h @ embed.tok.T when True, else h @ head.w.
        causal: causal mask on attention (False: bidirectional).
        gelu: "tanh" (GPT-2's approximation) or "erf" (exact).
        ln_eps: LayerNorm epsilon.
        embed_norm: LayerNorm after the embedding sum (BERT).
        final_norm: LayerNorm before the head (GPT-2's ln_f).
        n_token_types: size of a token-type embedding table (BERT), 0 = none.
        init_std: standard deviation of the normal initialisation of weights.
        dtype: "float32" for training speed, "float64" for the spec and tests.
        ffn: the FFN slot's layer kind: "mlp" (default), or a kind a mechanism registers through the
            registry's ``ffn`` field (``"ddcl"``: DDC's prototype block, K = ``d_mlp``). The core
            dispatches on it without naming the mechanism (:func:`ffn_kind`).
    """

    SECTION = "model"

    vocab_size: int = 371
    context: int = 64
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_head: int | None = None
    d_mlp: int | None = None
    norm: str = "pre"
    bias: bool = True
    tied_head: bool = True
    causal: bool = True
    gelu: str = "tanh"
    ln_eps: float = 1e-5
    embed_norm: bool = False
    final_norm: bool = True
    n_token_types: int = 0
    init_std: float = 0.02
    dtype: str = "float32"
    ffn: str = "mlp"

    SIZE_BOUNDS = {
        "vocab_size": (1, MAX_VOCAB), "context": (1, MAX_WIDTH), "d_model": (1, MAX_WIDTH), "n_layers": (0, MAX_LAYERS),
        "n_heads": (1, MAX_LAYERS), "d_head": (1, MAX_WIDTH), "d_mlp": (1, MAX_WIDTH), "n_token_types": (0, MAX_VOCAB),
    }

    def validate(self) -> None:
        s = self.SECTION
        sizes = {name: getattr(self, name) for name in self.SIZE_BOUNDS}
        # Types and lower bounds first, then the parameter count (exact, in Python ints: milliseconds even
        # for n_layers = 2**63), then the per-field upper bounds.
        for name, (lo, hi) in self.SIZE_BOUNDS.items():
            value = sizes[name]
            if (value is not None or name not in ("d_head", "d_mlp")) and not (is_int(value) and value >= lo):
                check_int(s, name, value, lo, hi)  # raises, naming the whole range
        if self.d_head is None and self.d_model % self.n_heads != 0:
            raise ConfigError(
                f"{s}.n_heads: {self.n_heads} does not divide d_model {_short(self.d_model)} (pick a divisor, or set d_head)"
            )
        check_bool(s, "bias", self.bias)
        check_bool(s, "tied_head", self.tied_head)
        check_bool(s, "embed_norm", self.embed_norm)
        check_bool(s, "final_norm", self.final_norm)
        if self.ffn != "mlp":  # a mechanism's kind: checked before the count, which asks the kind for its size
            check_choice(s, "ffn", self.ffn, ("mlp", *_ffn_kinds()))
            ffn_kind(self).validate(self)
        cap = _env_cap(PARAMETERS_ENV, MAX_PARAMETERS)
        count = parameter_count(self)
        if count > cap:
            raise ConfigError(
                f"{s}: {_count(count)} parameters (n_layers {_short(self.n_layers)}, d_model {_short(self.d_model)}, "
                f"d_mlp {_short(self.mlp_dim)}, vocab_size {_short(self.vocab_size)}, context {_short(self.context)}) "
                f"is over the cap of {_count(cap)} (raise it with the environment variable {PARAMETERS_ENV})"
            )
        for name, (lo, hi) in self.SIZE_BOUNDS.items():
            if sizes[name] is not None:
                check_int(s, name, sizes[name], lo, hi)
        check_choice(s, "norm", self.norm, ("pre", "post"))
        check_bool(s, "causal", self.causal)
        check_choice(s, "gelu", self.gelu, ("tanh", "erf"))
        check_float(s, "ln_eps", self.ln_eps, 0.0, lo_open=True)
        check_float(s, "init_std", self.init_std, 0.0, lo_open=True)
        check_choice(s, "dtype", self.dtype, ("float32", "float64"))

    @property
    def head_dim(self) -> int:
        """Per-head width d_h."""
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads

    @property
    def mlp_dim(self) -> int:
        """MLP hidden width F."""
        return self.d_mlp if self.d_mlp is not None else 4 * self.d_model


def _ffn_kinds() -> dict:
    """The FFN-slot kinds the registered mechanisms add (imported on first use; "mlp" is the core's own)."""
    from reference.mechanisms import ffn_kinds

    return ffn_kinds()


def ffn_kind(model: ModelConfig) -> Any:
    """The registry's FFNKind of ``model.ffn``, or None for the core's "mlp"."""
    return None if model.ffn == "mlp" else _ffn_kinds()[model.ffn]


def parameter_count(model: ModelConfig) -> int:
    """The exact number of parameters of ``model`` (the sizes of ``reference.model.param_shapes``).

    Computed with Python ints from the sizes alone, never building the shape list, so an absurd
    ``n_layers`` costs nothing. Used by :class:`ModelConfig` against :data:`MAX_PARAMETERS`.
    """
    d, v, t, f = model.d_model, model.vocab_size, model.context, model.mlp_dim
    hd = model.n_heads * model.head_dim
    embed = v * d + t * d + model.n_token_types * d + (2 * d if model.embed_norm else 0)
    block = 4 * d + 4 * d * hd + 2 * d * f + ((3 * hd + d + f + d) if model.bias else 0)
    kind = ffn_kind(model)
    if kind is not None:  # the slot's own size replaces the MLP (and ln2 when the kind normalises itself, pre-norm)
        mlp = 2 * d * f + ((f + d) if model.bias else 0) + (2 * d if kind.own_norm and model.norm == "pre" else 0)
        block += kind.param_count(model) - mlp
    final = (2 * d if model.final_norm else 0) + (0 if model.tied_head else d * v)
    return embed + model.n_layers * block + final


def activation_bytes(model: ModelConfig, batch_size: int) -> int:
    """An estimate of the activation memory (bytes) one training step keeps for the backward pass. [reconstructed]

    Per block, B·T·(6·D + 4·H·d_h + 2·F) values (LayerNorm in/out, q, k, v, the head mix, the MLP
    before and after GELU, the residuals) plus 2·B·H·T² (attention scores and probabilities); the
    embedding 2·B·T·D; the head 2·B·T·V (logits and softmax). Times the dtype's item size. A rough
    upper estimate meant only to refuse absurd sizes before NumPy tries to allocate them.
    """
    b, t, d, v, f = batch_size, model.context, model.d_model, model.vocab_size, model.mlp_dim
    h, hd = model.n_heads, model.n_heads * model.head_dim
    per_block = b * t * (6 * d + 4 * hd + 2 * f) + 2 * b * h * t * t
    values = model.n_layers * per_block + 2 * b * t * d + 2 * b * t * v
    return values * (8 if model.dtype == "float64" else 4)


def check_memory(model: ModelConfig, batch_size: int, what: str = "train.batch_size") -> None:
    """Raise ConfigError when :func:`activation_bytes` is over the cap.

    The cap is :data:`MAX_ACTIVATION_BYTES` (32 GiB) unless the environment variable
    ``CLEARFORM_MAX_ACTIVATION_BYTES`` sets another. ``what`` names the batch-size setting in the
    message. Called before a model is trained, evaluated or sampled (the parameter count is
    already checked when the :class:`ModelConfig` is built).
    """
    cap = _env_cap(ACTIVATION_ENV, MAX_ACTIVATION_BYTES)
    estimate = activation_bytes(model, batch_size)
    if estimate > cap:
        raise ConfigError(
            f"{what}: {batch_size} sequences of context {model.context} need about {_count(estimate)} bytes of activations "
            f"(n_layers {model.n_layers}, d_model {model.d_model}), over the cap of {_count(cap)} "
            f"(lower the batch size or context, or raise the cap with the environment variable {ACTIVATION_ENV})"
        )


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig(ConfigSection):
    """Optimisation and bookkeeping of a training run.

    The learning rate warms up linearly for ``warmup`` steps, then follows a
    cosine from ``lr`` down to ``lr * min_lr_ratio`` at ``steps``.
    ``eval_every`` / ``checkpoint_every`` of 0 mean "only at the end".

    Bounds: ``steps``, ``warmup``, ``eval_every``, ``checkpoint_every``,
    ``log_every`` ≤ 10⁹ (:data:`MAX_STEPS`); ``batch_size`` ≤ 2¹⁶
    (:data:`MAX_BATCH`); ``eval_batches`` ≤ 10⁴ (:data:`MAX_EVAL_BATCHES`) and
    ``eval_batches`` × ``batch_size`` ≤ 2¹⁸ held-out sequences (:data:`MAX_EVAL_SEQUENCES`);
    ``seed`` ≤ 2⁶³ − 1 (:data:`MAX_SEED`); ``shards`` ≤ 64 (:data:`MAX_SHARDS`).

    ``shards``: each training batch is split into this many row shards whose
    gradients are computed separately (concurrently when threads allow) and
    summed, weighted by their counted tokens. It is part of the config, not of
    the machine, so a run's numbers never depend on the thread count; a
    batch smaller than ``shards`` uses one shard per sequence. [reconstructed]
    """

    SECTION = "train"

    steps: int = 600
    batch_size: int = 16
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup: int = 30
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_batches: int = 4
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    shards: int = 2

    def validate(self) -> None:
        s = self.SECTION
        check_int(s, "steps", self.steps, 1, MAX_STEPS)
        check_int(s, "batch_size", self.batch_size, 1, MAX_BATCH)
        check_float(s, "lr", self.lr, 0.0, lo_open=True)
        check_float(s, "min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        check_int(s, "warmup", self.warmup, 0, MAX_STEPS)
        check_float(s, "weight_decay", self.weight_decay, 0.0)
        check_float(s, "beta1", self.beta1, 0.0, 1.0, hi_open=True)
        check_float(s, "beta2", self.beta2, 0.0, 1.0, hi_open=True)
        check_float(s, "adam_eps", self.adam_eps, 0.0, lo_open=True)
        check_float(s, "grad_clip", self.grad_clip, 0.0)  # 0 = no clipping
        check_int(s, "eval_every", self.eval_every, 0, MAX_STEPS)
        check_int(s, "eval_batches", self.eval_batches, 1, MAX_EVAL_BATCHES)
        check_int(s, "checkpoint_every", self.checkpoint_every, 0, MAX_STEPS)
        check_int(s, "log_every", self.log_every, 1, MAX_STEPS)
        check_int(s, "seed", self.seed, 0, MAX_SEED)
        check_int(s, "shards", self.shards, 1, MAX_SHARDS)
        if self.eval_batches * self.batch_size > MAX_EVAL_SEQUENCES:
            raise ConfigError(
                f"{s}.eval_batches: {self.eval_batches} batches of batch_size {self.batch_size} is "
                f"{self.eval_batches * self.batch_size} held-out sequences, over {MAX_EVAL_SEQUENCES}"
            )


@dataclass(frozen=True)
class DataConfig(ConfigSection):
    """Where training text comes from.

    ``source="toyworld"`` uses the generator configured by the run's
    ``toyworld`` section; ``source="text"`` reads the UTF-8 file ``path`` with
    the byte tokenizer (vocabulary 256) and holds out its last
    ``heldout_fraction`` of bytes for validation. ``path`` holds no NUL byte
    and at most :data:`MAX_PATH` characters.
    """

    SECTION = "data"

    source: str = "toyworld"
    path: str | None = None
    heldout_fraction: float = 0.1

    def validate(self) -> None:
        s = self.SECTION
        check_choice(s, "source", self.source, ("toyworld", "text"))
        if self.source == "text" and not isinstance(self.path, str):
            raise ConfigError(f"{s}.path: {_short(self.path)} must name a UTF-8 text file when source is 'text'")
        if self.path is not None and not isinstance(self.path, str):
            raise ConfigError(f"{s}.path: {_short(self.path)} is not a string")
        if isinstance(self.path, str) and ("\0" in self.path or not 0 < len(self.path) <= MAX_PATH):
            raise ConfigError(f"{s}.path: {_short(self.path)} is not a file path (1 to {MAX_PATH} characters, no NUL byte)")
        check_float(s, "heldout_fraction", self.heldout_fraction, 0.0, 1.0, lo_open=True, hi_open=True)


# --------------------------------------------------------------------------- toy world


@dataclass(frozen=True)
class ToyWorldConfig(ConfigSection):
    """Options of the toy-world generator (specs/toyworld.md §5). [reconstructed]

    The defaults are the base world; LOC, VDS and MSA switch their options on
    (see the presets in ``reference.data.toyworld``). ``world_seed`` ≤ 2⁶³ − 1,
    ``context`` ≤ 2¹⁶; the other ints have their own small ranges.
    """

    SECTION = "toyworld"

    world_seed: int = 0
    context: int = 64
    n_topics: int = 8
    lemmas_per_topic: int = 3
    n_synonyms: int = 1
    sentences_per_doc: tuple[int, int] = (4, 8)
    topic_word_prob: float = 0.85
    selection_prob: float = 0.8
    plural_prob: float = 0.4
    adj_prob: float = 0.3
    coord_prob: float = 0.1
    object_prob: float = 0.7
    pp_prob: float = 0.25
    adv_prob: float = 0.2
    label_tail_prob: float = 0.0
    label_noise: float = 0.3
    rules_per_doc: int = 0
    queries_per_doc: int = 0
    n_keys: int = 32
    n_values: int = 32
    anchor_copies: int = 1
    rule_templates: int = 1
    rule_default_prob: float = 0.5

    PROBABILITIES = (
        "topic_word_prob", "selection_prob", "plural_prob", "adj_prob", "coord_prob",
        "object_prob", "pp_prob", "adv_prob", "label_tail_prob", "label_noise", "rule_default_prob",
    )

    def validate(self) -> None:
        s = self.SECTION
        check_int(s, "world_seed", self.world_seed, 0, MAX_SEED)
        check_int(s, "n_topics", self.n_topics, 4, 20)
        check_int(s, "lemmas_per_topic", self.lemmas_per_topic, 1, 16)
        check_int(s, "n_synonyms", self.n_synonyms, 1, 26)
        spd = self.sentences_per_doc
        if (
            not isinstance(spd, tuple) or len(spd) != 2 or not all(is_int(v) for v in spd)
            or not 1 <= spd[0] <= spd[1] <= 64
        ):
            raise ConfigError(f"{s}.sentences_per_doc: {_short(spd)} is not two ints lo, hi with 1 <= lo <= hi <= 64")
        for name in self.PROBABILITIES:
            check_float(s, name, getattr(self, name), 0.0, 1.0)
        check_int(s, "n_keys", self.n_keys, 1, 999)
        check_int(s, "n_values", self.n_values, 2, 999)
        check_int(s, "rules_per_doc", self.rules_per_doc, 0, min(16, self.n_keys))
        check_int(s, "queries_per_doc", self.queries_per_doc, 0, 64)
        if self.queries_per_doc > 0 and self.rules_per_doc == 0:
            raise ConfigError(f"{s}.queries_per_doc: {self.queries_per_doc} needs rules_per_doc > 0")
        check_int(s, "anchor_copies", self.anchor_copies, 1, 16)
        check_int(s, "rule_templates", self.rule_templates, 1, 8)
        check_int(s, "context", self.context, 1, MAX_WIDTH)
        rule_region = self.rules_per_doc * (self.anchor_copies + 3 + (self.rule_templates > 1))
        tail = 2 * (self.label_tail_prob > 0)
        minimum = 2 + rule_region + tail + 17
        if self.context < minimum:
            parts = f"2 + rule region {rule_region}" + (f" + tail {tail}" if tail else "") + " + longest sentence 17"
            raise ConfigError(f"{s}.context: {self.context} is below {minimum} ({parts})")


# --------------------------------------------------------------------------- a whole run


CORE_SECTIONS: dict[str, type] = {
    "model": ModelConfig, "train": TrainConfig, "data": DataConfig, "toyworld": ToyWorldConfig,
}
"""The sections every run has; each mechanism adds one through its registry record."""


def section_classes() -> dict[str, type]:
    """Every config section by name: the core's, then one per registered mechanism (registry order)."""
    from reference.mechanisms import config_sections  # the registry; it imports no mechanism's code

    return {**CORE_SECTIONS, **config_sections()}


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs: the core sections, and one section per mechanism.

    ``RunConfig.from_dict`` takes the JSON file that ``clearform train
    --config`` reads: an object whose keys are section names, each holding
    overrides of that section's defaults. A mechanism's section is read as an
    attribute (``run.locality``) or with :meth:`section`; ``mechanisms`` holds
    them by name, every registered one filled with its defaults when absent.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    toyworld: ToyWorldConfig = field(default_factory=ToyWorldConfig)
    mechanisms: Mapping[str, ConfigSection] = field(default_factory=dict)

    def __post_init__(self) -> None:
        classes = {k: v for k, v in section_classes().items() if k not in CORE_SECTIONS}
        unknown = sorted(set(self.mechanisms) - set(classes), key=str)
        if unknown:
            raise ConfigError(f"{_key(unknown[0])}: unknown section (accepted: {', '.join(section_classes())})")
        filled = {}
        for name, klass in classes.items():
            value = self.mechanisms.get(name, None)
            if value is None:
                value = klass()
            elif not isinstance(value, klass):
                raise ConfigError(f"{name}: expected a {klass.__name__}, got {type(value).__name__}")
            filled[name] = value
        object.__setattr__(self, "mechanisms", filled)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: a mechanism's section by name (run.locality).
        sections = self.__dict__.get("mechanisms", {})
        if name in sections:
            return sections[name]
        raise AttributeError(f"RunConfig has no section {name!r}")

    @staticmethod
    def section_classes() -> dict[str, type]:
        return section_classes()

    def section(self, name: str) -> ConfigSection:
        """The section called ``name`` (core or mechanism); ConfigError naming the known ones otherwise."""
        if name in CORE_SECTIONS:
            return getattr(self, name)
        if name in self.mechanisms:
            return self.mechanisms[name]
        raise ConfigError(f"{_key(name)}: unknown section (accepted: {', '.join(section_classes())})")

    def with_section(self, name: str, value: ConfigSection) -> RunConfig:
        """A copy with section ``name`` replaced by ``value``."""
        if name in CORE_SECTIONS:
            return dataclasses.replace(self, **{name: value})
        self.section(name)  # unknown names fail here
        return dataclasses.replace(self, mechanisms={**self.mechanisms, name: value})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RunConfig:
        data = data or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config: expected a JSON object of sections, got {type(data).__name__}")
        classes = section_classes()
        unknown = sorted(set(data) - set(classes), key=str)
        if unknown:
            raise ConfigError(f"{_key(unknown[0])}: unknown section (accepted: {', '.join(classes)})")
        sections = {}
        for name, klass in classes.items():
            value = data.get(name, {})
            if not isinstance(value, dict):
                raise ConfigError(f"{name}: expected a JSON object, got {type(value).__name__}")
            sections[name] = klass.from_dict(value, name)
        core = {name: sections.pop(name) for name in CORE_SECTIONS}
        return cls(**core, mechanisms=sections)

    def to_dict(self) -> dict:
        return {name: self.section(name).to_dict() for name in section_classes()}

    def overridden(self, overrides: Mapping[str, Mapping[str, Any]]) -> RunConfig:
        """A copy with ``{section: {key: value}}`` applied on top, re-validated."""
        merged = self.to_dict()
        for name, values in overrides.items():
            if name not in merged:
                raise ConfigError(f"{_key(name)}: unknown section (accepted: {', '.join(merged)})")
            if not isinstance(values, dict):
                raise ConfigError(f"{name}: expected a JSON object, got {type(values).__name__}")
            merged[name].update(values)
        return RunConfig.from_dict(merged)
