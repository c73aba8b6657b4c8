"""The ``neurons`` config section (specs/01-intraneuronal.md §2.10). [reconstructed]"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reference.config import ConfigError, ConfigSection, check_bool, check_choice, check_float, check_int, is_int
from reference.io import short

MAX_INDEX = 2**24
"""Upper bound of a layer or neuron index in the config (the model bounds them further)."""
MAX_PERMUTATIONS = 10**6
MAX_CORE = 2**20


def _check_indices(name: str, value: Any, allow_all: bool) -> None:
    if value is None or (allow_all and value == "all"):
        return
    if not isinstance(value, tuple) or not value or any(not is_int(v) or not 0 <= v < MAX_INDEX for v in value):
        accepted = "'all' or " if allow_all else "None or "
        raise ConfigError(f"neurons.{name}: {short(value)} is not {accepted}a non-empty tuple of ints in [0, {MAX_INDEX})")


@dataclass(frozen=True)
class NeuronsConfig(ConfigSection):
    """Intra-neuronal attention: activation zones vs categories of single MLP neurons (spec §2.10).

    The section is read by ``clearform neurons analyze`` only; it trains nothing, so its defaults
    change no run. Fields (spec §2.2–§2.9):

    * ``layers`` — blocks ℓ, de-duplicated and sorted, or ``"all"``; ``site`` "post" (after GELU)
      | "pre"; ``neurons`` None (all) or indices; ``max_neurons`` None or a sample size
      (``default_rng([seed, 6, ℓ])``); ``aggregate`` "mean" | "max" over a type's positions;
    * ``min_count`` (occurrences for eligibility), ``core_size``, ``core_fraction`` (K = min of
      both), ``zones`` Z, ``zone_mode`` "rank" | "value";
    * ``categories`` "auto" | "truth" | "file" | "cluster", ``category_file``, ``uncategorised``
      "exclude" | "own"; clustering ``n_clusters``, ``cluster_linkage``, ``cluster_scope``;
      ``embedding_center``;
    * tests: ``permutations`` B ≥ 19, ``bootstrap`` ≥ 100, ``sign_flips`` ≥ 99, ``alpha``,
      ``tie_rtol``; next layer: ``next_layer``, ``n_precursors``, ``n_controls``,
      ``virtual_weight`` "ln" | "raw", ``precursor_rank`` "weight" | "contribution";
    * ``corpus_tokens`` (toy world / ``--text``), ``seed``, ``plots``.

    Bounds (issue 9 style): indices < 2²⁴, ``permutations`` ≤ 10⁶, ``core_size`` ≤ 2²⁰,
    ``bootstrap`` and ``sign_flips`` ≤ 10⁶, ``corpus_tokens`` ≤ 10⁹.
    """

    SECTION = "neurons"

    layers: tuple[int, ...] | str = (0, 1)
    site: str = "post"
    neurons: tuple[int, ...] | None = None
    max_neurons: int | None = None
    aggregate: str = "mean"
    min_count: int = 5
    core_size: int = 100
    core_fraction: float = 0.5
    zones: int = 4
    zone_mode: str = "rank"
    categories: str = "auto"
    category_file: str | None = None
    uncategorised: str = "exclude"
    n_clusters: int = 8
    cluster_linkage: str = "ward"
    cluster_scope: str = "vocab"
    embedding_center: bool = False
    permutations: int = 999
    bootstrap: int = 2000
    sign_flips: int = 9999
    alpha: float = 0.05
    tie_rtol: float = 1e-12
    next_layer: bool = True
    n_precursors: int = 10
    n_controls: int = 10
    virtual_weight: str = "ln"
    precursor_rank: str = "weight"
    corpus_tokens: int = 100_000
    seed: int = 0
    plots: bool = True

    def validate(self) -> None:
        s = self.SECTION
        _check_indices("layers", self.layers, allow_all=True)
        check_choice(s, "site", self.site, ("post", "pre"))
        _check_indices("neurons", self.neurons, allow_all=False)
        if self.max_neurons is not None:
            check_int(s, "max_neurons", self.max_neurons, 1, MAX_INDEX)
        check_choice(s, "aggregate", self.aggregate, ("mean", "max"))
        check_int(s, "min_count", self.min_count, 1, 10**9)
        check_int(s, "core_size", self.core_size, 4, MAX_CORE)
        check_float(s, "core_fraction", self.core_fraction, 0.0, 1.0, lo_open=True)
        check_int(s, "zones", self.zones, 2, 1024)
        check_choice(s, "zone_mode", self.zone_mode, ("rank", "value"))
        check_choice(s, "categories", self.categories, ("auto", "truth", "file", "cluster"))
        if self.category_file is not None and (not isinstance(self.category_file, str) or not self.category_file
                                               or len(self.category_file) > 4096 or "\0" in self.category_file):
            raise ConfigError(f"neurons.category_file: {short(self.category_file)} is not None or a path")
        check_choice(s, "uncategorised", self.uncategorised, ("exclude", "own"))
        check_int(s, "n_clusters", self.n_clusters, 2, 4096)
        check_choice(s, "cluster_linkage", self.cluster_linkage, ("ward", "average"))
        check_choice(s, "cluster_scope", self.cluster_scope, ("vocab", "core"))
        check_bool(s, "embedding_center", self.embedding_center)
        check_int(s, "permutations", self.permutations, 19, MAX_PERMUTATIONS)
        check_int(s, "bootstrap", self.bootstrap, 100, 10**6)
        check_int(s, "sign_flips", self.sign_flips, 99, 10**6)
        check_float(s, "alpha", self.alpha, 0.0, 1.0, lo_open=True, hi_open=True)
        check_float(s, "tie_rtol", self.tie_rtol, 0.0, 1e-6)
        check_bool(s, "next_layer", self.next_layer)
        check_int(s, "n_precursors", self.n_precursors, 1, MAX_INDEX)
        check_int(s, "n_controls", self.n_controls, 0, MAX_INDEX)
        check_choice(s, "virtual_weight", self.virtual_weight, ("ln", "raw"))
        check_choice(s, "precursor_rank", self.precursor_rank, ("weight", "contribution"))
        check_int(s, "corpus_tokens", self.corpus_tokens, 1000, 10**9)
        check_int(s, "seed", self.seed, 0, 2**63 - 1)
        check_bool(s, "plots", self.plots)

    def layer_list(self, n_layers: int) -> tuple[int, ...]:
        """The resolved blocks: ``"all"`` → 0 … L−1; others de-duplicated, sorted and checked against L."""
        if self.layers == "all":
            return tuple(range(n_layers))
        out = tuple(sorted(set(self.layers)))
        bad = [v for v in out if v >= n_layers]
        if bad:
            raise ConfigError(f"neurons.layers: {bad[0]} is outside the model (valid: 0 … {n_layers - 1})")
        return out

    def neuron_list(self, width: int) -> tuple[int, ...]:
        """The selected neurons (before ``max_neurons`` sampling), checked against the MLP width m."""
        if self.neurons is None:
            return tuple(range(width))
        out = tuple(sorted(set(self.neurons)))
        bad = [v for v in out if v >= width]
        if bad:
            raise ConfigError(f"neurons.neurons: {bad[0]} is outside the MLP (valid: 0 … {width - 1})")
        return out
