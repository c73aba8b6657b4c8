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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


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

    def load(self, what: str) -> Any:
        """The object a ``"module:attr"`` field names, imported from this mechanism's package."""
        ref = getattr(self, what)
        if ref is None:
            return None
        module, attr = ref.split(":")
        return getattr(importlib.import_module(f"reference.mechanisms.{self.slug}.{module}"), attr)


# fmt: off
MECHANISMS: tuple[Mechanism, ...] = (
    Mechanism("LOC", "locality", "locality dial", "00-localist.md", config="config:LocalityConfig",
              plugin="plugin:plugin_for", cli="cli:register", demo="experiment:demo_section", proofs="proofs.locality",
              golden="golden:cases"),
)
# fmt: on


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
