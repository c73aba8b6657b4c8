"""NEU — intra-neuronal attention: activation zones vs categories of single MLP neurons (specs/01-intraneuronal.md).

Paper: Pichat et al., *Intra-neuronal attention within language models — Relationships between
activation and semantics*, arXiv:2503.12992 [paper]. Among a neuron's most responsive tokens, is the
segmentation by activation zone homomorphic to the categorical segmentation? The paper finds a
weak relation, only among the very-high-activation tokens. The paper's body was not available:
every algorithm here is [reconstructed] (see the spec), statistics are [classical].

One file per part of the spec::

    config.py       NeuronsConfig, the ``neurons`` section (§2.10)
    zones.py        eligible tokens, core set, rank / value zones, skip reasons (§2.2–§2.3, A2, A4)
    categories.py   lexicon, frames, category files, clustering (§2.4, §6.1)
    activations.py  corpus, token counts, per-type activations through the hooks (A1, A3)
    statistics.py   one neuron's statistics and permutation tests (§2.5–§2.8, A5)
    layer.py        a layer: jobs, Holm / BH, summaries, verdicts, ``analyze_arrays`` (A6)
    nextlayer.py    virtual weights, precursors, enrichment, recombination (§2.9, A7–A8)
    figures.py      histograms by category, zone plot, next-layer plot (§6.3)
    experiment.py   ``run_analysis`` (neurons.json, figures, table), ``demo_section``
    cli.py          ``clearform neurons analyze``
    golden.py       golden cases for ``clearform golden --mechanism NEU``

The shared statistics (χ², Cramér's V, MI, NMI, ARI, permutation p-values, Holm, BH, hypergeometric
tails …) are in :mod:`reference.metrics.agreement`; theorems NEU-1 … NEU-10 in ``proofs/neurons/``.
"""

from reference.mechanisms.neurons.config import NeuronsConfig
from reference.mechanisms.neurons.layer import analyze_arrays, summarise, verdict
from reference.mechanisms.neurons.nextlayer import next_layer_arrays, virtual_weights
from reference.mechanisms.neurons.statistics import neuron_tests, permutations
from reference.mechanisms.neurons.zones import core_zones, eligible, rank_zones, value_zones

__all__ = [
    "NeuronsConfig",
    "analyze_arrays",
    "core_zones",
    "eligible",
    "neuron_tests",
    "next_layer_arrays",
    "permutations",
    "rank_zones",
    "summarise",
    "value_zones",
    "verdict",
    "virtual_weights",
]
