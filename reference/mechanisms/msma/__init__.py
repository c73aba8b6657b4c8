"""MSA: multi-scale manifold alignment (specs/04-msma.md; seed 004, arXiv:2505.20333). [reconstructed unless marked]

Claim [paper]: hidden states form three linked manifolds — global (themes, discourse),
intermediate (context, sentence relations), local (words, syntax) — and cross-scale maps that
preserve geometry and information align them. The paper body was not available: every formula
of the paper-level method here is [reconstructed]; ``MSMAConfig.code_faithful`` reproduces the
authors' public code [author-code], defects included, flag by flag.

Files, one per part of the spec:

* ``config.py``        the ``msma`` config section (§2.6) and the code-faithful bundle (§2.5);
* ``scales.py``        partitions, hidden index ↔ hook, pooling, standardisation (§2.1, §2.2; A1, A2);
* ``maps.py``          Procrustes (A3), affine/MLP maps, geometric / information / curvature terms (§2.3, §2.4);
* ``fit.py``           training the maps on frozen features (A4), the moment arm (T10);
* ``code_mode.py``     one step of the authors' code (A7's step): heads, unsquared L2, unshuffled MINE with
                       frozen critics whose gradients accumulate into the clip, weight-norm "curvature";
* ``panel.py``         one seed: split, arms (A6), the estimator panel (A5), bootstraps;
* ``interventions.py`` scale interventions through the model's hooks, generation with common random numbers (A8, A9);
* ``text.py``          text metrics on generated toy-world text (§5.8);
* ``intervene.py``     the intervention experiment (H5, H6, S5, S6);
* ``stats.py``         paired t, Wilcoxon, Holm, bootstrap, effect sizes (§5.7);
* ``experiment.py``    ``clearform msma run``, checks H1–H7 / S1–S8, outputs, the demo section;
* ``cli.py``           ``clearform msma run`` / ``clearform msma partition``;
* ``golden.py``        golden cases of the maps and estimators.

The estimators (diagonal/full Gaussian KL, histogram, Gaussian/CCA, KSG, InfoNCE, MINE) live in
the shared :mod:`reference.metrics.information` and :mod:`reference.metrics.estimators`.
"""

from reference.mechanisms.msma.config import MSMAConfig
from reference.mechanisms.msma.fit import fit_pair, moment_map
from reference.mechanisms.msma.maps import geo_loss, info_term, map_backward, map_forward, procrustes
from reference.mechanisms.msma.scales import PAIRS, SCALES, partition, pool_sequence, scale_features

__all__ = [
    "PAIRS",
    "SCALES",
    "MSMAConfig",
    "fit_pair",
    "geo_loss",
    "info_term",
    "map_backward",
    "map_forward",
    "moment_map",
    "partition",
    "pool_sequence",
    "procrustes",
    "scale_features",
]
