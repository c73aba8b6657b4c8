"""NEU theorems: intra-neuronal attention's zones and statistics (specs/01-intraneuronal.md §4).

NEU-1 (rank zones), NEU-3, NEU-5, NEU-6, NEU-9, NEU-10 are the project's own [reconstructed]
statements; NEU-2, NEU-4, NEU-7, NEU-8 are [classical] results (Cramér 1946, Hubert & Arabie 1985,
Rosenberg & Hirschberg 2007, Vinh, Epps & Bailey 2010, Phipson & Smyth 2010, Holm 1979,
Benjamini & Hochberg 1995), checked on the project's own code. Each record's ``scope`` says what its
SymPy part proves; the numeric parts run the functions of :mod:`reference.metrics.agreement` and
:mod:`reference.mechanisms.neurons` on drawn examples.

* :mod:`~proofs.neurons.strategies` — ``label_pairs``, ``small_tables``, ``neuron_cases``;
* :mod:`~proofs.neurons.partitions` — T1 (zones), T2 (ranges, maxima), T3 (invariance);
* :mod:`~proofs.neurons.chance` — T4 (chance level), T5 (per-zone homogeneity), T6 (additivity),
  T7 (valid permutation p-values);
* :mod:`~proofs.neurons.tests` — T8 (Holm, BH), T9 (top-down statistics), T10 (next layer).

The calibration of NEU-T7 (300 independent neurons) is a seeded test in tests/test_neurons_analysis.py.
"""

from proofs.neurons import chance, partitions, tests  # noqa: F401  (importing registers NEU-1 … NEU-10)

NEU_IDS = tuple(f"NEU-{k}" for k in range(1, 11))
"""The registered NEU theorem ids, in order."""
