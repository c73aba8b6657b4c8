"""The causal blocked path of attention (reference/layers/attention.py): same outputs and
gradients as the full T×T path, taken only when nothing can see the T×T arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from reference.layers import attention
from reference.layers.attention import attention_backward, attention_forward


def _params(rs, d, width, bias):
    p = {f"w_{n}": rs.standard_normal((d, width)) / np.sqrt(d) for n in "qkv"}
    p["w_o"] = rs.standard_normal((width, d)) / np.sqrt(width)
    if bias:
        p.update({f"b_{n}": rs.standard_normal(width) * 0.1 for n in "qkv"}, b_o=rs.standard_normal(d) * 0.1)
    return p


@given(b=st.integers(1, 3), t=st.integers(2, 13), heads=st.integers(1, 3), block=st.integers(1, 6),
       temperature=st.sampled_from([1.0, 0.7]), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_blocked_path_equals_the_full_path_in_float64(b, t, heads, block, temperature, bias, seed):
    rs = np.random.default_rng(seed)
    d, width = 6, 4 * heads
    params = _params(rs, d, width, bias)
    x = rs.standard_normal((b, t, d))
    d_out = rs.standard_normal((b, t, d))
    full, full_cache = attention_forward(params, x, heads, True, None, temperature, hook=lambda name, v: v)
    saved, attention.QUERY_BLOCK = attention.QUERY_BLOCK, block
    try:
        blocked, cache = attention_forward(params, x, heads, True, None, temperature)
    finally:
        attention.QUERY_BLOCK = saved
    assert (cache["pattern_blocks"] is not None) == (t > block)
    np.testing.assert_allclose(blocked, full, rtol=1e-12, atol=1e-13)
    dx_full, g_full = attention_backward(full_cache, d_out.copy())
    dx, g = attention_backward(cache, d_out.copy())
    np.testing.assert_allclose(dx, dx_full, rtol=1e-11, atol=1e-12)
    for name in g_full:
        np.testing.assert_allclose(g[name], g_full[name], rtol=1e-11, atol=1e-12, err_msg=name)


def test_blocked_path_is_not_taken_when_anything_can_see_the_square(monkeypatch):
    monkeypatch.setattr(attention, "QUERY_BLOCK", 2)
    rs = np.random.default_rng(0)
    params, x = _params(rs, 6, 8, True), rs.standard_normal((2, 7, 6))
    seen = []
    _, cache = attention_forward(params, x, 2, True, hook=lambda name, v: seen.append(name) or v)
    assert cache["pattern_blocks"] is None and cache["pattern"].shape == (2, 2, 7, 7) and "pattern" in seen
    for kwargs in ({"causal": False}, {"bias": np.zeros((7, 7))}):
        _, cache = attention_forward(params, x, 2, **kwargs)
        assert cache["pattern_blocks"] is None, kwargs
    _, cache = attention_forward(params, x, 2, True)
    assert cache["pattern_blocks"] is not None


def test_model_training_path_takes_the_blocked_path(monkeypatch):
    """The model's forward without hooks reaches attention with no_hook (so training skips the masked half)."""
    from reference.config import ModelConfig
    from reference.model import forward, init_params

    monkeypatch.setattr(attention, "QUERY_BLOCK", 4)
    config = ModelConfig(vocab_size=20, context=12, d_model=8, n_layers=1, n_heads=2, dtype="float64")
    params = init_params(config, seed=0)
    tokens = np.random.default_rng(1).integers(0, 20, (2, 12))
    _, cache = forward(params, config, tokens)
    assert cache["blocks"][0]["attn"]["pattern_blocks"] is not None
    logits_full, _ = forward(params, config, tokens, hook=lambda name, v: v)
    logits, _ = forward(params, config, tokens)
    np.testing.assert_allclose(logits, logits_full, rtol=1e-12, atol=1e-13)
