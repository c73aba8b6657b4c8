"""The mechanism registry: one record per mechanism, the only place the core learns of one.

A mechanism lives in its own package ``reference/mechanisms/<slug>/`` (one file per part
of its spec) and is known to the rest of clearform through one :class:`Mechanism` line in
:data:`MECHANISMS`. ``RunConfig`` (its config section), the ``Trainer`` (its plug-in),
``clearform`` (its subcommand, its demo section, ``proofs --mechanism``) and ``proofs``
(its theorems) loop over the registry; none of them names a mechanism.

A record holds names, not objects: ``"config:LocalityConfig"`` is the attribute
``LocalityConfig`` of the module ``reference.mechanisms.<slug>.config``, imported on first
use. So importing this module is cheap and never imports a mechanism's code, and the
core's modules may import it without cycles.

Adding a mechanism: write its package (see README, "How to add a mechanism"), then add
its line below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Mechanism:
    """One mechanism, as the core sees it.

    code: the short id of theorems and reports (``"LOC"``, theorem ids ``LOC-1`` …).
    slug: the one name used for the package, the config section, the proofs module,
        the toy-world presets (``<slug>_*``) and the CLI subcommand (``clearform <slug>``).
    title: a few words for tables and reports.
    spec: the spec file under ``shared/specs/``.
    config: ``"module:Class"`` of its config section (section name = slug).
    plugin: ``"module:function"`` of ``plugin(run) -> TrainingPlugin | None``, the plug-in
        a run's config switches on (None: the mechanism never shapes training).
    cli: ``"module:function"`` of ``register(subparsers)``, which adds ``clearform <slug> …``.
    demo: ``"module:function"`` of ``section(run_dir, *, progress, steps) -> report.Section``
        for ``clearform demo`` (None: no demo section).
    proofs: the module of its theorems (``proofs.<slug>``).
    golden: ``"module:function"`` of ``cases(seed, dtype) -> (tensors, about)``: its own reference
        cases for ``clearform golden`` (tensor names start with the code), and what the manifest
        says of them (settings, spec references). Every mechanism has some.
    ffn: ``"module:attr"`` of a dict ``{kind: FFNKind}`` of layers that may take a block's FFN slot
        (``model.ffn = kind``); None: it adds none. The core dispatches on it without naming the mechanism.
    """

    code: str
    slug: str
    title: str
    spec: str
    config: str
    plugin: str | None
    cli: str | None
    demo: str | None
    proofs: str
    golden: str | None
    ffn: str | None = None

    def load(self, what: str) -> Any:
        """The object a ``"module:attr"`` field names, imported from this mechanism's package."""
        ref = getattr(self, what)
        if ref is None:
            return None
        module, attr = ref.split(":")
        return getattr(importlib.import_module(f"reference.mechanisms.{self.slug}.{module}"), attr)


class FFNKind(NamedTuple):
    """A layer kind for a block's FFN slot (``model.ffn``), as :mod:`reference.model` calls it.

    prefix: parameter and hook prefix inside a block (``blocks.{i}.<prefix>.*``).
    param_shapes(config) -> {local name: shape}; init(name, shape, config, generator) -> float64 array
    (drawn in ``param_shapes`` order from the model's one generator).
    forward(params, x, config, hook) -> (y, cache): x is the residual (pre-norm, when ``own_norm``) or the
    block's normalised mid stream (post-norm); backward(cache, dy, extra) -> (dx, local grads).
    hooks: local hook names of forward, in order. validate(config) raises ConfigError; param_count(config)
    is the parameters of one block's slot. own_norm: the kind normalises its own input, so a pre-norm block
    has no ``ln2``.
    """

    prefix: str
    param_shapes: Callable[[Any], dict]
    init: Callable[..., Any]
    forward: Callable[..., tuple]
    backward: Callable[..., tuple]
    hooks: tuple[str, ...]
    validate: Callable[[Any], None]
    param_count: Callable[[Any], int]
    own_norm: bool = True


# fmt: off
MECHANISMS: tuple[Mechanism, ...] = (
    Mechanism("LOC", "locality", "locality dial", "00-localist.md", config="config:LocalityConfig",
              plugin="plugin:plugin_for", cli="cli:register", demo="experiment:demo_section", proofs="proofs.locality",
              golden="golden:cases"),
    Mechanism("NEU", "neurons", "intra-neuronal attention", "01-intraneuronal.md", config="config:NeuronsConfig",
              plugin=None, cli="cli:register", demo="experiment:demo_section", proofs="proofs.neurons", golden="golden:cases"),
    Mechanism("VDS", "vds", "vocabulary-defined semantics", "02-vocab-semantics.md", config="config:VDSConfig",
              plugin=None, cli="cli:register", demo="experiment:demo_section", proofs="proofs.vds", golden="golden:cases"),
    Mechanism("MSA", "msma", "multi-scale manifold alignment", "04-msma.md", config="config:MSMAConfig",
              plugin=None, cli="cli:register", demo="experiment:demo_section", proofs="proofs.msma", golden="golden:cases"),
    Mechanism("DDC", "ddc", "DDCL-INCRT prototype blocks and head growth", "03-ddcl-incrt.md", config="config:DDCConfig",
              plugin="plugin:plugin_for", cli="cli:register", demo="experiment:demo_section", proofs="proofs.ddc",
              golden="golden:cases", ffn="block:FFN_KINDS"),
)
# fmt: on


def ffn_kinds() -> dict[str, FFNKind]:
    """``{kind: FFNKind}`` of every mechanism that adds FFN-slot kinds (``model.ffn`` besides ``"mlp"``)."""
    kinds: dict[str, FFNKind] = {}
    for m in MECHANISMS:
        if m.ffn is not None:
            kinds.update(m.load("ffn"))
    return kinds


def codes() -> tuple[str, ...]:
    """Every mechanism's code, in registry order."""
    return tuple(m.code for m in MECHANISMS)


def get(name: str) -> Mechanism:
    """The mechanism with this code or slug; KeyError naming the known ones otherwise."""
    for m in MECHANISMS:
        if name in (m.code, m.slug):
            return m
    known = ", ".join(f"{m.code} ({m.slug})" for m in MECHANISMS)
    raise KeyError(f"no mechanism {name!r} (registered: {known})")


def config_sections() -> dict[str, type]:
    """``{slug: config class}`` of every mechanism, for :class:`reference.config.RunConfig`."""
    return {m.slug: m.load("config") for m in MECHANISMS}


def plugins_for(run: Any) -> list[Any]:
    """The training plug-ins that ``run``'s config switches on, in registry order."""
    found = (m.load("plugin")(run) for m in MECHANISMS if m.plugin is not None)
    return [p for p in found if p is not None]


def with_cli() -> Iterator[Mechanism]:
    """The mechanisms that add a ``clearform <slug>`` subcommand."""
    return (m for m in MECHANISMS if m.cli is not None)


def with_demo() -> Iterator[Mechanism]:
    """The mechanisms that add a section to ``clearform demo``'s report."""
    return (m for m in MECHANISMS if m.demo is not None)
