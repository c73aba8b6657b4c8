"""Configuration dataclasses and their validation.

Every config is a frozen dataclass whose fields have defaults. ``from_dict``
builds one from a JSON-like mapping and rejects unknown keys, wrong types and
out-of-range values with a one-line :class:`ConfigError` that names the field,
the value and what is accepted, e.g.::

    model.n_heads: 3 does not divide d_model 64 (set d_head, or pick a divisor)

A mechanism keeps its own section class in its package
(``reference/mechanisms/<slug>/config.py``), built on :class:`ConfigSection`
and the same ``check_*`` helpers, so every error reads the same way; the
mechanism registry (``reference.mechanisms``) tells :class:`RunConfig` which
sections exist. This module names no mechanism.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid. The message is one line naming the field."""


class InputError(ValueError):
    """A runtime input (tokens, a block layout, targets ...) is invalid; one line naming it."""


# --------------------------------------------------------------------------- helpers


def is_int(value: Any) -> bool:
    # bool is a subclass of int in Python; a config never means True as 1.
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and not isinstance(value, bool)


def check_int(section: str, name: str, value: Any, lo: int | None = None, hi: int | None = None) -> None:
    """Raise ConfigError unless ``value`` is an int in [lo, hi] (open ends when None)."""
    lo_txt = "-inf" if lo is None else str(lo)
    hi_txt = "inf" if hi is None else str(hi)
    if not is_int(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{section}.{name}: {value!r} is not an int in [{lo_txt}, {hi_txt}]")


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
        raise ConfigError(f"{section}.{name}: {value!r} is not a number in {lb}{lo_txt}, {hi_txt}{rb}")


def check_choice(section: str, name: str, value: Any, choices: tuple) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if isinstance(value, bool) or value not in choices:
        accepted = " | ".join(repr(c) for c in choices)
        raise ConfigError(f"{section}.{name}: {value!r} is not one of {accepted}")


def check_bool(section: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{section}.{name}: {value!r} is not a bool (true or false)")


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
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}: unknown key (accepted: {', '.join(sorted(names))})")
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

    def validate(self) -> None:
        s = self.SECTION
        check_int(s, "vocab_size", self.vocab_size, 1)
        check_int(s, "context", self.context, 1)
        check_int(s, "d_model", self.d_model, 1)
        check_int(s, "n_layers", self.n_layers, 0)
        check_int(s, "n_heads", self.n_heads, 1)
        if self.d_head is None:
            if self.d_model % self.n_heads != 0:
                raise ConfigError(
                    f"{s}.n_heads: {self.n_heads} does not divide d_model {self.d_model} "
                    "(pick a divisor, or set d_head)"
                )
        else:
            check_int(s, "d_head", self.d_head, 1)
        if self.d_mlp is not None:
            check_int(s, "d_mlp", self.d_mlp, 1)
        check_choice(s, "norm", self.norm, ("pre", "post"))
        check_bool(s, "bias", self.bias)
        check_bool(s, "tied_head", self.tied_head)
        check_bool(s, "causal", self.causal)
        check_choice(s, "gelu", self.gelu, ("tanh", "erf"))
        check_float(s, "ln_eps", self.ln_eps, 0.0, lo_open=True)
        check_bool(s, "embed_norm", self.embed_norm)
        check_bool(s, "final_norm", self.final_norm)
        check_int(s, "n_token_types", self.n_token_types, 0)
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


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig(ConfigSection):
    """Optimisation and bookkeeping of a training run.

    The learning rate warms up linearly for ``warmup`` steps, then follows a
    cosine from ``lr`` down to ``lr * min_lr_ratio`` at ``steps``.
    ``eval_every`` / ``checkpoint_every`` of 0 mean "only at the end".
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

    def validate(self) -> None:
        s = self.SECTION
        check_int(s, "steps", self.steps, 1)
        check_int(s, "batch_size", self.batch_size, 1)
        check_float(s, "lr", self.lr, 0.0, lo_open=True)
        check_float(s, "min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        check_int(s, "warmup", self.warmup, 0)
        check_float(s, "weight_decay", self.weight_decay, 0.0)
        check_float(s, "beta1", self.beta1, 0.0, 1.0, hi_open=True)
        check_float(s, "beta2", self.beta2, 0.0, 1.0, hi_open=True)
        check_float(s, "adam_eps", self.adam_eps, 0.0, lo_open=True)
        check_float(s, "grad_clip", self.grad_clip, 0.0)  # 0 = no clipping
        check_int(s, "eval_every", self.eval_every, 0)
        check_int(s, "eval_batches", self.eval_batches, 1)
        check_int(s, "checkpoint_every", self.checkpoint_every, 0)
        check_int(s, "log_every", self.log_every, 1)
        check_int(s, "seed", self.seed, 0)


@dataclass(frozen=True)
class DataConfig(ConfigSection):
    """Where training text comes from.

    ``source="toyworld"`` uses the generator configured by the run's
    ``toyworld`` section; ``source="text"`` reads the UTF-8 file ``path`` with
    the byte tokenizer (vocabulary 256) and holds out its last
    ``heldout_fraction`` of bytes for validation.
    """

    SECTION = "data"

    source: str = "toyworld"
    path: str | None = None
    heldout_fraction: float = 0.1

    def validate(self) -> None:
        s = self.SECTION
        check_choice(s, "source", self.source, ("toyworld", "text"))
        if self.source == "text" and not isinstance(self.path, str):
            raise ConfigError(f"{s}.path: {self.path!r} must name a UTF-8 text file when source is 'text'")
        if self.path is not None and not isinstance(self.path, str):
            raise ConfigError(f"{s}.path: {self.path!r} is not a string")
        check_float(s, "heldout_fraction", self.heldout_fraction, 0.0, 1.0, lo_open=True, hi_open=True)


# --------------------------------------------------------------------------- toy world


@dataclass(frozen=True)
class ToyWorldConfig(ConfigSection):
    """Options of the toy-world generator (specs/toyworld.md §5). [reconstructed]

    The defaults are the base world; LOC, VDS and MSA switch their options on
    (see the presets in ``reference.data.toyworld``).
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
        check_int(s, "world_seed", self.world_seed, 0)
        check_int(s, "n_topics", self.n_topics, 4, 20)
        check_int(s, "lemmas_per_topic", self.lemmas_per_topic, 1, 16)
        check_int(s, "n_synonyms", self.n_synonyms, 1, 26)
        spd = self.sentences_per_doc
        if (
            not isinstance(spd, tuple) or len(spd) != 2 or not all(is_int(v) for v in spd)
            or not 1 <= spd[0] <= spd[1] <= 64
        ):
            raise ConfigError(f"{s}.sentences_per_doc: {spd!r} is not two ints lo, hi with 1 <= lo <= hi <= 64")
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
        check_int(s, "context", self.context, 1)
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
        unknown = sorted(set(self.mechanisms) - set(classes))
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown section (accepted: {', '.join(section_classes())})")
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
        raise ConfigError(f"{name}: unknown section (accepted: {', '.join(section_classes())})")

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
        unknown = sorted(set(data) - set(classes))
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown section (accepted: {', '.join(classes)})")
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
                raise ConfigError(f"{name}: unknown section (accepted: {', '.join(merged)})")
            if not isinstance(values, dict):
                raise ConfigError(f"{name}: expected a JSON object, got {type(values).__name__}")
            merged[name].update(values)
        return RunConfig.from_dict(merged)
