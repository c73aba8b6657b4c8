"""Hand-written backward == autograd's gradient, in float64, for every layer and the whole model.

Error measure for one tensor: max |ours − autograd| / max(max |autograd|, 1e-6 · S),
where S is the largest autograd gradient entry over all tensors of the check.
The floor keeps gradients that are exactly zero in theory (e.g. a key bias,
which softmax cancels) from turning rounding noise into a "relative" error.
"""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
from gradcheck import TOL, assert_grads_match  # noqa: E402  (tests/ is on sys.path)
from hypothesis import given
from hypothesis import strategies as st

from reference.config import ModelConfig
from reference.layers.attention import attention_backward, attention_forward
from reference.layers.embedding import embedding_backward, embedding_forward, position_backward, position_forward
from reference.layers.layernorm import layernorm_backward, layernorm_forward
from reference.layers.linear import linear_backward, linear_forward
from reference.layers.loss import cross_entropy_backward, cross_entropy_forward
from reference.layers.mlp import gelu, gelu_grad, mlp_backward, mlp_forward
from reference.model import init_params, loss_and_grads, loss_fn


def arrays(rs: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return rs.standard_normal(shape) * scale


seeds = st.integers(0, 2**32 - 1)
small = st.integers(1, 4)


def check_layer(forward, backward, inputs: dict, out_weight: np.ndarray, extra_names=()) -> None:
    """Compare backward(cache, R) with autograd of sum(forward(inputs) · R) w.r.t. every input."""
    names = list(inputs)

    def scalar(values):
        y, _ = forward(dict(zip(names, values)))
        return anp.sum(y * out_weight)

    oracle = autograd.grad(scalar)([inputs[n] for n in names])
    _, cache = forward(inputs)
    ours = backward(cache, out_weight)
    assert_grads_match({n: ours[n] for n in names}, dict(zip(names, oracle)))


# --------------------------------------------------------------------------- layers


@given(seeds, small, small, small, small, st.booleans())
def test_linear(seed, b, t, i, o, with_bias):
    rs = np.random.default_rng(seed)
    inputs = {"x": arrays(rs, b, t, i), "w": arrays(rs, i, o)}
    if with_bias:
        inputs["b"] = arrays(rs, o)

    def fwd(v):
        return linear_forward({"w": v["w"], "b": v.get("b")}, v["x"])

    def bwd(cache, dy):
        dx, g = linear_backward(cache, dy)
        return {"x": dx, **g}

    check_layer(fwd, bwd, inputs, arrays(rs, b, t, o))


@given(seeds, small, st.integers(1, 6), st.integers(1, 5), small)
def test_embedding_and_position(seed, b, t, v, d):
    rs = np.random.default_rng(seed)
    ids = rs.integers(0, v, (b, t))  # repeats are likely: scatter-add must sum them
    table, pos = arrays(rs, v, d), arrays(rs, t + 2, d)
    dy = arrays(rs, b, t, d)
    oracle = autograd.grad(lambda w: anp.sum(embedding_forward({"w": w}, ids)[0] * dy))(table)
    assert_grads_match({"w": embedding_backward(embedding_forward({"w": table}, ids)[1], dy)[1]["w"]}, {"w": oracle})
    oracle = autograd.grad(lambda w: anp.sum(position_forward({"w": w}, t)[0] * dy))(pos)
    assert_grads_match({"w": position_backward(position_forward({"w": pos}, t)[1], dy)[1]["w"]}, {"w": oracle})


@given(seeds, small, small, st.integers(1, 8), st.sampled_from([1e-5, 1e-12, 0.1]))
def test_layernorm(seed, b, t, d, eps):
    rs = np.random.default_rng(seed)
    inputs = {"x": arrays(rs, b, t, d, scale=3.0), "g": arrays(rs, d), "b": arrays(rs, d)}

    def fwd(v):
        return layernorm_forward({"g": v["g"], "b": v["b"]}, v["x"], eps)

    def bwd(cache, dy):
        dx, g = layernorm_backward(cache, dy)
        return {"x": dx, **g}

    check_layer(fwd, bwd, inputs, arrays(rs, b, t, d))


@given(seeds, st.sampled_from(["tanh", "erf"]))
def test_gelu_grad(seed, form):
    x = arrays(np.random.default_rng(seed), 50, scale=3.0)
    oracle = autograd.elementwise_grad(lambda z: gelu(z, form))(x)
    assert np.max(np.abs(gelu_grad(x, form) - oracle)) <= TOL * max(1.0, np.max(np.abs(oracle)))


@given(seeds, small, small, small, st.integers(1, 9), st.sampled_from(["tanh", "erf"]), st.booleans())
def test_mlp(seed, b, t, d, f, form, with_bias):
    rs = np.random.default_rng(seed)
    inputs = {"x": arrays(rs, b, t, d), "w_in": arrays(rs, d, f), "w_out": arrays(rs, f, d)}
    if with_bias:
        inputs.update(b_in=arrays(rs, f), b_out=arrays(rs, d))

    def fwd(v):
        return mlp_forward({k: v[k] for k in v if k != "x"}, v["x"], form)

    def bwd(cache, dy):
        dx, g = mlp_backward(cache, dy)
        return {"x": dx, **g}

    check_layer(fwd, bwd, inputs, arrays(rs, b, t, d))


@given(
    seeds, small, st.integers(1, 6), st.integers(1, 3), st.integers(1, 4), st.integers(1, 6),
    st.booleans(), st.booleans(), st.booleans(), st.sampled_from([1.0, 0.7]),
)
def test_attention(seed, b, t, heads, head_dim, d, causal, with_bias, with_attn_bias, temperature):
    rs = np.random.default_rng(seed)
    hd = heads * head_dim
    inputs = {"x": arrays(rs, b, t, d)}
    for name in ("w_q", "w_k", "w_v"):
        inputs[name] = arrays(rs, d, hd)
    inputs["w_o"] = arrays(rs, hd, d)
    if with_bias:
        inputs.update(b_q=arrays(rs, hd), b_k=arrays(rs, hd), b_v=arrays(rs, hd), b_o=arrays(rs, d))
    attn_bias = arrays(rs, b, heads, t, t) if with_attn_bias else None

    def fwd(v):
        return attention_forward({k: v[k] for k in v if k != "x"}, v["x"], heads, causal, attn_bias, temperature)

    def bwd(cache, dy):
        dx, g = attention_backward(cache, dy)
        return {"x": dx, **g}

    check_layer(fwd, bwd, inputs, arrays(rs, b, t, d))


@given(seeds, small, small, st.integers(2, 9))
def test_cross_entropy(seed, b, t, v):
    rs = np.random.default_rng(seed)
    logits = arrays(rs, b, t, v, scale=2.0)
    targets = rs.integers(-1, v, (b, t))  # −1 = ignored
    oracle = autograd.grad(lambda z: cross_entropy_forward(z, targets)[0])(logits)
    _, cache = cross_entropy_forward(logits, targets)
    assert_grads_match({"logits": cross_entropy_backward(cache)}, {"logits": oracle})


# --------------------------------------------------------------------------- the whole model


@st.composite
def model_configs(draw):
    heads = draw(st.integers(1, 3))
    head_dim = draw(st.integers(1, 4))
    set_d_head = draw(st.booleans())
    d_model = draw(st.integers(1, 8)) if set_d_head else heads * head_dim
    return ModelConfig(
        vocab_size=draw(st.integers(2, 12)),
        context=draw(st.integers(1, 7)),
        d_model=d_model,
        n_layers=draw(st.integers(0, 2)),
        n_heads=heads,
        d_head=head_dim if set_d_head else None,
        d_mlp=draw(st.integers(1, 10)),
        norm=draw(st.sampled_from(["pre", "post"])),
        bias=draw(st.booleans()),
        tied_head=draw(st.booleans()),
        causal=draw(st.booleans()),
        gelu=draw(st.sampled_from(["tanh", "erf"])),
        embed_norm=draw(st.booleans()),
        final_norm=draw(st.booleans()),
        n_token_types=draw(st.sampled_from([0, 2])),
        init_std=draw(st.sampled_from([0.02, 0.5])),
        dtype="float64",
    )


@given(model_configs(), seeds, small)
def test_model_loss_gradient(config, seed, batch):
    rs = np.random.default_rng(seed)
    params = init_params(config, seed=seed % 1000)
    # perturb gains and biases too, so none of their gradients is trivially structured
    params = {k: v + 0.1 * rs.standard_normal(v.shape) for k, v in params.items()}
    t = rs.integers(1, config.context + 1)
    tokens = rs.integers(0, config.vocab_size, (batch, t))
    targets = rs.integers(-1, config.vocab_size, (batch, t))
    kwargs = {"token_types": rs.integers(0, 2, (batch, t))} if config.n_token_types else {}
    oracle = autograd.grad(lambda p: loss_fn(p, config, tokens, targets, **kwargs))(params)
    loss, ours, _ = loss_and_grads(params, config, tokens, targets, **kwargs)
    assert np.isclose(loss, loss_fn(params, config, tokens, targets, **kwargs), rtol=1e-12)
    assert_grads_match(ours, oracle)


@given(model_configs(), seeds)
def test_model_extra_gradients_at_hooks(config, seed):
    """A penalty on recorded activations enters backward as extra upstream gradients."""
    config = config.replace(n_layers=max(config.n_layers, 1))
    rs = np.random.default_rng(seed)
    params = init_params(config, seed=1)
    t = rs.integers(1, config.context + 1)
    tokens = rs.integers(0, config.vocab_size, (2, t))
    targets = rs.integers(0, config.vocab_size, (2, t))
    hooked = ["blocks.0.attn.pattern", "blocks.0.mlp.post", "blocks.0.resid_mid", "blocks.0.attn.v"]
    weights = {}

    def penalty(acts):
        total = 0.0
        for name in hooked:
            w = weights.setdefault(name, rs.standard_normal(np.shape(acts[name])))
            total = total + anp.sum(acts[name] * acts[name] * w)
        return total

    def extra_loss(acts):
        return penalty(acts), {name: 2.0 * acts[name] * weights[name] for name in hooked}

    loss, ours, _ = loss_and_grads(params, config, tokens, targets, extra_loss=extra_loss)

    def total(p):
        from reference.model import run_with_cache

        logits, acts = run_with_cache(p, config, tokens, names=hooked)
        return cross_entropy_forward(logits, targets)[0] + penalty(acts)

    oracle = autograd.grad(total)(params)
    assert_grads_match(ours, oracle)
