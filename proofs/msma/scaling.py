"""MSA-9: scaling a pre-LN stream rescales the later layers (specs/04-msma.md §4 T9). [reconstructed]

The numeric check builds the comparison model from the core's own block: the unmodified
stream after block ℓ, every later attention and MLP output multiplied by 1/α (hooks
``attn_out``, ``mlp_out``) and every later LayerNorm (the final norm included) using ε/α²; its
logits must equal those of A8's ``scale`` intervention (hook ``blocks.{ℓ}.resid_post`` × α).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from proofs.registry import NumericCheck, Theorem, register
from reference.config import ModelConfig
from reference.layers.layernorm import layernorm_forward
from reference.mechanisms.msma.interventions import Intervention, forward_kwargs
from reference.model import block_forward, forward, init_params, run_with_cache


def t9_symbolic() -> bool:
    """LN_ε(αv) = LN_{ε/α²}(v) on a symbolic 3-vector (α > 0), gain and bias included."""
    v = sp.symbols("v0:3", real=True)
    alpha, eps = sp.symbols("alpha epsilon", positive=True)
    g, b = sp.symbols("g b", real=True)

    def ln(x, e):
        m = sum(x) / 3
        var = sum((xi - m) ** 2 for xi in x) / 3
        return [g * (xi - m) / sp.sqrt(var + e) + b for xi in x]

    return all(sp.simplify(p - q) == 0 for p, q in zip(ln([alpha * vi for vi in v], eps), ln(list(v), eps / alpha**2)))


@st.composite
def lm_tiny(draw):
    n_layers = draw(st.integers(2, 6))
    d = draw(st.sampled_from([8, 16]))
    config = ModelConfig(vocab_size=11, context=8, d_model=d, n_layers=n_layers, n_heads=2, norm="pre", causal=True,
                         tied_head=True, dtype="float64")
    return config, draw(st.integers(0, n_layers - 1)), draw(st.floats(0.1, 10.0)), draw(st.integers(0, 2**31 - 1))


def t9_numeric(example) -> None:
    config, layer, alpha, seed = example
    params = init_params(config, seed=seed % 1000)
    tokens = np.random.default_rng(seed).integers(0, config.vocab_size, (2, config.context))
    iv = Intervention((layer + 1,), "scale", alpha)
    logits, _ = forward(params, config, tokens, **forward_kwargs(iv, config.n_layers))
    _, cache = run_with_cache(params, config, tokens, names=[f"blocks.{layer}.resid_post"])
    x = cache[f"blocks.{layer}.resid_post"]
    later = config.replace(ln_eps=config.ln_eps / alpha**2)

    def shrink(name, value):
        return value / alpha if name in ("attn_out", "mlp_out") else value

    for i in range(layer + 1, config.n_layers):
        local = {k[len(f"blocks.{i}."):]: v for k, v in params.items() if k.startswith(f"blocks.{i}.")}
        x, _ = block_forward(local, later, x, hook=shrink)
    x, _ = layernorm_forward({"g": params["ln_final.g"], "b": params["ln_final.b"]}, x, later.ln_eps)
    other = x @ params["embed.tok"].T
    scale = np.max(np.abs(logits))
    # At the last block the loop above is empty: (c) "only the final norm's ε changes" is this same check.
    # The spec's numeric instance of (c), change ≤ 10⁻³·max|logit|, assumes a stream variance σ² ≫ ε; at random
    # init (std 0.02, σ² ~ 10⁻³) ε|1 − α⁻²|/σ² reaches 10⁻², so that instance is not asserted (see the report).
    assert np.max(np.abs(logits - other)) <= 1e-10 * scale, f"(b) {np.max(np.abs(logits - other)):.3e}"


register(Theorem(
    "MSA-9", "MSA", "[reconstructed]",
    "Pre-LN: multiplying blocks.ℓ.resid_post by α equals scaling every later sublayer output by 1/α with LN ε/α².",
    scope="lemma: LN_ε(αx) = LN_{ε/α²}(x) on a 3-vector", symbolic=t9_symbolic,
    numeric=NumericCheck(t9_numeric, lm_tiny()),
))
