"""NEU's golden cases: fixed inputs and outputs of its own functions, for other implementations.

:func:`cases` draws small planted neurons from a seeded generator and records, per case
(``NEU.case{k}.*``): type activations ``abar`` (N,), categories ``cats`` (N,), embeddings ``emb``
(N, 3); the core set ``core`` (K,) (positions in rank order) and ``zones`` (K,); the replicate
zone-by-category tables of the first 4 replicates ``tables`` (4, Z, k) of the stream
``default_rng([seed, 0, 0, k])``; per zone ``association``, ``homog_cat``, ``cramers_v``, ``nmi``,
``ari``, ``homog_cos``, ``p_value``; neuron-level ``neuron_stats`` = (χ², V, V_bc, MI, NMI, hom,
com, ARI, η²) and ``neuron_p`` = (p_value, p_cramers_v, p_ari, p_delta_top_bottom, p_eta2); and
the virtual weights of a random pre-LN and post-LN pair ``w_virt_pre`` / ``w_virt_post``. The
analysis has no trainable part, so there are no gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.mechanisms.neurons.layer import unit_gram
from reference.mechanisms.neurons.nextlayer import virtual_weights
from reference.mechanisms.neurons.statistics import neuron_tests, permutations, replicate_tables
from reference.mechanisms.neurons.zones import core_zones

SETTINGS = {"zones": 3, "core_size": 12, "permutations": 99, "tie_rtol": 1e-12, "zone_mode": "rank"}
SHAPES = ((24, 3), (40, 4))  # (N, k) of the cases
FORMULAS = {
    "association": "specs/01-intraneuronal.md §2.6: (H_cat(z) − π₂)/(1 − π₂)",
    "p_value": "§2.8: (1 + #{b ≥ 1 : T_b ≥ T_0})/(B + 1), P = default_rng([seed, 0, ℓ, j]).permuted(...)",
    "w_virt": "§2.9: W_out · Π P_c diag(γ) · W_in",
}


def cases(seed: int, dtype: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The tensors of every case (named ``NEU.case{k}.<what>``) and what the manifest says about them."""
    rs = np.random.default_rng([seed, 1001])
    out: dict[str, np.ndarray] = {}
    s = SETTINGS
    for k, (n, ncat) in enumerate(SHAPES):
        cats = rs.integers(0, ncat, n)
        cats[:ncat] = np.arange(ncat)
        abar = rs.standard_normal(n) + 0.8 * (cats == 0)
        emb = rs.standard_normal((n, 3)) + cats[:, None]
        core = core_zones(abar, np.arange(n), cats, s["core_size"], s["zones"], s["zone_mode"])
        gram, _ = unit_gram(emb)
        pos = core.pos
        res = neuron_tests(abar[pos], cats[pos], core.zone, s["zones"], b=s["permutations"], seed=seed, layer=0, neuron=k,
                           gram=gram[np.ix_(pos, pos)], tie_rtol=s["tie_rtol"])
        _, compact = np.unique(cats[pos], return_inverse=True)
        perm = permutations(pos.size, s["permutations"], seed, 0, k)
        _, tables = replicate_tables(core.zone, compact, perm, s["zones"], int(compact.max()) + 1)
        nz, zs = res["neuron"], res["zones"]
        p = f"NEU.case{k}."
        out |= {
            p + "abar": abar.astype(dtype), p + "cats": cats, p + "emb": emb.astype(dtype), p + "core": pos,
            p + "zones": core.zone, p + "tables": tables[:4],
            **{p + key: np.array([z[key] for z in zs], dtype=dtype) for key in
               ("association", "homog_cat", "cramers_v", "nmi", "ari", "homog_cos", "p_value")},
            p + "neuron_stats": np.array([nz[x] for x in ("chi2", "cramers_v", "cramers_v_bc", "mi", "nmi", "hom", "com",
                                                          "ari", "eta2")], dtype=dtype),
            p + "neuron_p": np.array([nz[x] for x in ("p_value", "p_cramers_v", "p_ari", "p_delta_top_bottom", "p_eta2")],
                                     dtype=dtype),
        }
    w_out, w_in = rs.standard_normal((5, 4)), rs.standard_normal((4, 6))
    g1, g2 = rs.uniform(0.5, 1.5, 4), rs.uniform(0.5, 1.5, 4)
    out["NEU.w_out"], out["NEU.w_in"] = w_out.astype(dtype), w_in.astype(dtype)
    out["NEU.gain_a"], out["NEU.gain_b"] = g1.astype(dtype), g2.astype(dtype)
    out["NEU.w_virt_pre"] = virtual_weights(w_out, w_in, "pre", (g1,)).astype(dtype)
    out["NEU.w_virt_post"] = virtual_weights(w_out, w_in, "post", (g1, g2)).astype(dtype)
    about = {"settings": SETTINGS, "shapes (N, k)": [list(x) for x in SHAPES], "formulas": FORMULAS,
             "virtual weights": "pre: gains (gain_a = γ^{ln2}_{ℓ+1}); post: (gain_a = γ^{ln2}_ℓ, gain_b = γ^{ln1}_{ℓ+1})"}
    return out, about
