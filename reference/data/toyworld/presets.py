"""The toy world's presets (specs/toyworld.md §6). [reconstructed]"""

from __future__ import annotations

from reference.config import ToyWorldConfig, check_choice
from reference.data.toyworld.vocabulary import vocab_size
from reference.data.toyworld.world import ToyWorld

# --------------------------------------------------------------------------- presets (§6)


def _preset(layers: int, d_model: int, heads: int, d_mlp: int | None, context: int, steps: int, **world) -> dict:
    """One §6 preset as section overrides; the model's vocab_size is the world's V."""
    toyworld = {"context": context, **world}
    model = {
        "vocab_size": vocab_size(ToyWorldConfig.from_dict(toyworld)),
        "context": context,
        "n_layers": layers,
        "d_model": d_model,
        "n_heads": heads,
        "d_mlp": d_mlp,
    }
    return {"model": model, "train": {"steps": steps}, "toyworld": toyworld}


_LOC_WORLD = {
    "rules_per_doc": 4, "queries_per_doc": 4, "n_keys": 32, "n_values": 32,
    "anchor_copies": 1, "rule_templates": 1, "rule_default_prob": 0.5,
}

# §6: section overrides. [reconstructed] Each preset is named after its mechanism's slug
# (`locality_*`, `neurons`, `vds`, `ddc`, `msma_*`; one name per mechanism everywhere), where
# specs/toyworld.md §6 wrote `loc_sweep`, `loc_tiny`, `loc_deep`, `neu` and `toy`.
# §6: section overrides {"model": …, "train": {"steps": …}, "toyworld": …}; d_mlp None = 4d.
# `ddc` (DDC) starts with 1 head of width 8 and grows to 4; its DDCL prototypes (K = 8) and
# growth belong to DDC's own config (specs/03 §5.1), not to these three sections.
PRESETS: dict[str, dict] = {
    "locality_sweep": _preset(2, 64, 4, None, 128, 800, **_LOC_WORLD),
    "locality_tiny": _preset(2, 32, 4, None, 64, 150, **_LOC_WORLD, sentences_per_doc=(2, 4)),
    "locality_deep": _preset(4, 64, 4, None, 128, 800, **_LOC_WORLD),
    "neurons": _preset(2, 64, 4, 256, 64, 600),
    "vds": _preset(2, 64, 4, 256, 64, 600, label_tail_prob=0.3, label_noise=0.3),
    "ddc": _preset(2, 32, 1, None, 64, 3000),
    "msma_toy": _preset(6, 32, 4, 128, 64, 600, n_synonyms=3),
    "msma_tiny": _preset(3, 16, 2, None, 32, 150, n_synonyms=3),
}
PRESETS["ddc"]["model"]["d_head"] = 8  # d_k 8: the head width kept while heads grow 1 → 4


def preset_config(name: str) -> ToyWorldConfig:
    """The ToyWorldConfig of a §6 preset."""
    check_choice("preset", "name", name, tuple(PRESETS))
    return ToyWorldConfig.from_dict(PRESETS[name]["toyworld"])


def world_from_preset(name: str) -> ToyWorld:
    """The (cached) world of a §6 preset, e.g. ``world_from_preset("locality_sweep").V == 439``."""
    return ToyWorld(preset_config(name))
