"""The transformer: parameters, forward, hand-written backward, hooks, cache.

Parameters are one flat dict of dotted names (``ModelConfig`` decides which
exist)::

    embed.tok (V, D)   embed.pos (context, D)   [embed.type (n_types, D)]   [embed.ln.g, embed.ln.b]
    blocks.{i}.ln1.g, .ln1.b                                                (D,)
    blocks.{i}.attn.w_q, .w_k, .w_v (D, H·d_h)   .w_o (H·d_h, D)   [.b_q .b_k .b_v (H·d_h,)  .b_o (D,)]
    blocks.{i}.ln2.g, .ln2.b                                                (D,)
    blocks.{i}.mlp.w_in (D, F)   .w_out (F, D)   [.b_in (F,)  .b_out (D,)]
    [ln_final.g, ln_final.b]   [head.w (D, V) when the head is untied]

A block is, with LN the layer norm, for ``norm="pre"`` (GPT-2)::

    resid_mid  = resid_pre + attn(LN1(resid_pre))
    resid_post = resid_mid + mlp(LN2(resid_mid))

and for ``norm="post"`` (BERT)::

    resid_mid  = LN1(resid_pre + attn(resid_pre))
    resid_post = LN2(resid_mid + mlp(resid_mid))

Hook points (names of :func:`run_with_cache` and of ``extra`` gradients):
``embed``, ``pos_embed``, ``type_embed``, ``blocks.{i}.resid_pre``,
``blocks.{i}.attn.{q,k,v,scores,pattern,z}``, ``blocks.{i}.attn_out``,
``blocks.{i}.resid_mid``, ``blocks.{i}.mlp.{pre,post}``, ``blocks.{i}.mlp_out``,
``blocks.{i}.resid_post``, ``final_norm`` (when the model has one), ``logits``.

FFN slot: ``model.ffn`` other than ``"mlp"`` names a kind a mechanism registers (the registry's
``ffn`` field, :class:`reference.mechanisms.FFNKind`); the block then holds
``blocks.{i}.<prefix>.*`` instead of ``mlp.*`` (and no ``ln2`` in a pre-norm block when the kind
normalises its own input), computes ``mlp_out = kind.forward(...)`` and its hooks are
``blocks.{i}.<prefix>.<hook>`` instead of ``mlp.{pre,post}``. :func:`ffn_kind` is the one
dispatch; forward and backward mirror each other line for line. ``"mlp"`` runs the code below
unchanged, with the same numbers.

A hook ``hook(name, value) -> value`` sees every activation and may return a
replacement. :func:`backward` differentiates the computation that ran; a
replacing hook counts as a constant offset added to the activation (its
gradient passes straight through), so training code uses no replacing hooks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from reference.backend import namespace, resolve_dtype, rng, to_host
from reference.config import InputError, ModelConfig, ffn_kind
from reference.layers import Hook, no_hook
from reference.layers.attention import attention_backward, attention_forward, softmax
from reference.layers.embedding import (
    embedding_backward,
    embedding_forward,
    position_backward,
    position_forward,
)
from reference.layers.layernorm import layernorm_backward, layernorm_forward
from reference.layers.linear import linear_backward, linear_forward
from reference.layers.loss import cross_entropy_backward, cross_entropy_forward
from reference.layers.mlp import mlp_backward, mlp_forward

Params = dict[str, Any]


# --------------------------------------------------------------------------- parameters


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in the canonical (initialisation) order."""
    d, v, f = config.d_model, config.vocab_size, config.mlp_dim
    hd = config.n_heads * config.head_dim
    kind = ffn_kind(config)
    shapes: dict[str, tuple[int, ...]] = {"embed.tok": (v, d), "embed.pos": (config.context, d)}
    if config.n_token_types:
        shapes["embed.type"] = (config.n_token_types, d)
    if config.embed_norm:
        shapes.update({"embed.ln.g": (d,), "embed.ln.b": (d,)})
    for i in range(config.n_layers):
        p = f"blocks.{i}."
        shapes.update({p + "ln1.g": (d,), p + "ln1.b": (d,)})
        shapes.update({p + "attn.w_q": (d, hd), p + "attn.w_k": (d, hd), p + "attn.w_v": (d, hd), p + "attn.w_o": (hd, d)})
        if config.bias:
            shapes.update({p + "attn.b_q": (hd,), p + "attn.b_k": (hd,), p + "attn.b_v": (hd,), p + "attn.b_o": (d,)})
        if kind is None or not (kind.own_norm and config.norm == "pre"):
            shapes.update({p + "ln2.g": (d,), p + "ln2.b": (d,)})
        if kind is not None:
            shapes.update({f"{p}{kind.prefix}.{name}": shape for name, shape in kind.param_shapes(config).items()})
            continue
        shapes.update({p + "mlp.w_in": (d, f), p + "mlp.w_out": (f, d)})
        if config.bias:
            shapes.update({p + "mlp.b_in": (f,), p + "mlp.b_out": (d,)})
    if config.final_norm:
        shapes.update({"ln_final.g": (d,), "ln_final.b": (d,)})
    if not config.tied_head:
        shapes["head.w"] = (d, v)
    return shapes


def init_params(config: ModelConfig, seed: int = 0) -> Params:
    """Fresh parameters: N(0, init_std²) weights, zero biases, unit LayerNorm gains.

    [reconstructed] GPT-2's convention: the projections that write into the
    residual stream (``attn.w_o``, ``mlp.w_out``) are scaled by 1/√(2·n_layers).
    Draws are float64 from one seeded host RNG in :func:`param_shapes` order
    and then cast, so float32 and float64 models start from the same numbers.
    """
    generator = rng(seed)
    dtype = resolve_dtype(config.dtype)
    residual_scale = 1.0 / math.sqrt(2 * max(config.n_layers, 1))
    params: Params = {}
    kind = ffn_kind(config)
    for name, shape in param_shapes(config).items():
        leaf = name.rsplit(".", 1)[-1]
        if kind is not None and name.split(".")[2:3] == [kind.prefix]:  # the FFN slot's kind initialises its own
            value = np.asarray(kind.init(name.split(".", 3)[3], shape, config, generator), dtype=np.float64)
        elif leaf == "g":
            value = np.ones(shape)
        elif len(shape) == 1:
            value = np.zeros(shape)
        else:
            value = generator.standard_normal(shape) * config.init_std
            if leaf in ("w_o", "w_out"):
                value *= residual_scale
        params[name] = value.astype(dtype)
    return params


def _local(params: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The entries under ``prefix`` with the prefix stripped: ``blocks.0.attn.w_q`` -> ``w_q``."""
    return {name[len(prefix):]: value for name, value in params.items() if name.startswith(prefix)}


def _prefixed(grads: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {prefix + name: value for name, value in grads.items()}


def _scoped(hook: Hook, prefix: str) -> Hook:
    """``hook`` seeing names with ``prefix``; ``no_hook`` stays ``no_hook`` (layers may skip work nobody watches)."""
    if hook is no_hook:
        return no_hook
    return lambda name, value: hook(prefix + name, value)


def check_tokens(config: ModelConfig, tokens: Any) -> None:
    """Raise InputError unless ``tokens`` is a (B, T) int array with T ≤ context and ids < V."""
    if tokens.ndim != 2:
        raise InputError(f"tokens: expected shape (batch, length), got {tuple(tokens.shape)}")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise InputError(f"tokens: expected integer ids, got dtype {tokens.dtype}")
    if tokens.shape[1] > config.context:
        raise InputError(f"tokens: length {tokens.shape[1]} exceeds the model's context {config.context}")
    if tokens.size and (int(tokens.min()) < 0 or int(tokens.max()) >= config.vocab_size):
        raise InputError(f"tokens: ids must lie in [0, {config.vocab_size}), got [{int(tokens.min())}, {int(tokens.max())}]")


# --------------------------------------------------------------------------- forward


def _layer_bias(attn_bias: Any, layer: int) -> Any:
    """The additive attention bias (or temperature) of one layer: a single value serves every layer."""
    if attn_bias is None or not isinstance(attn_bias, (list, tuple)):
        return attn_bias
    return attn_bias[layer]


def forward(
    params: Params,
    config: ModelConfig,
    tokens: Any,
    *,
    token_types: Any = None,
    attn_bias: Any = None,
    temperature: float = 1.0,
    hook: Hook = no_hook,
) -> tuple[Any, dict]:
    """tokens (B, T) int -> logits (B, T, V) and the cache :func:`backward` needs.

    attn_bias: None, an array broadcastable to (B, H, T, T) added to every
    layer's scores, or a sequence with one such entry (or None) per layer.
    temperature: divides every layer's biased scores before the softmax; a
    sequence gives one temperature per layer.
    token_types: (B, T) int, only for models with ``n_token_types`` > 0.
    """
    check_tokens(config, tokens)
    t = tokens.shape[1]
    cache: dict[str, Any] = {"blocks": []}

    tok, cache["tok"] = embedding_forward({"w": params["embed.tok"]}, tokens)
    pos, cache["pos"] = position_forward({"w": params["embed.pos"]}, t)
    x = hook("embed", tok) + hook("pos_embed", pos)
    if config.n_token_types:
        types = token_types if token_types is not None else namespace(tokens).zeros_like(tokens)
        typ, cache["type"] = embedding_forward({"w": params["embed.type"]}, types)
        x = x + hook("type_embed", typ)
    if config.embed_norm:
        x, cache["embed_ln"] = layernorm_forward(_local(params, "embed.ln."), x, config.ln_eps)

    for i in range(config.n_layers):
        x, block_cache = block_forward(
            _local(params, f"blocks.{i}."), config, x,
            bias=_layer_bias(attn_bias, i), temperature=_layer_bias(temperature, i), hook=_scoped(hook, f"blocks.{i}."),
        )
        cache["blocks"].append(block_cache)

    if config.final_norm:
        x, cache["ln_final"] = layernorm_forward(_local(params, "ln_final."), x, config.ln_eps)
        x = hook("final_norm", x)
    head_w = params["embed.tok"].T if config.tied_head else params["head.w"]
    logits, cache["head"] = linear_forward({"w": head_w}, x)
    return hook("logits", logits), cache


def block_forward(
    params: Params, config: ModelConfig, x: Any, *, bias: Any = None, temperature: float = 1.0, hook: Hook = no_hook
) -> tuple[Any, dict]:
    """One transformer block, x (B, T, D) -> (B, T, D); params are the block's local names."""
    x = hook("resid_pre", x)
    attn_params, mlp_params = _local(params, "attn."), _local(params, "mlp.")
    ln1, ln2 = _local(params, "ln1."), _local(params, "ln2.")
    attn_hook, mlp_hook = _scoped(hook, "attn."), _scoped(hook, "mlp.")
    heads, causal, eps = config.n_heads, config.causal, config.ln_eps
    c: dict[str, Any] = {}
    kind = ffn_kind(config)
    if kind is not None:  # the FFN slot's kind in place of the MLP (module docstring, "FFN slot")
        mlp_params, mlp_hook = _local(params, kind.prefix + "."), _scoped(hook, kind.prefix + ".")
    if config.norm == "pre":
        h, c["ln1"] = layernorm_forward(ln1, x, eps)
        a, c["attn"] = attention_forward(attn_params, h, heads, causal, bias, temperature, attn_hook)
        mid = hook("resid_mid", x + hook("attn_out", a))
        if kind is not None and kind.own_norm:
            m, c["mlp"] = kind.forward(mlp_params, mid, config, mlp_hook)
        else:
            h, c["ln2"] = layernorm_forward(ln2, mid, eps)
            m, c["mlp"] = (kind.forward(mlp_params, h, config, mlp_hook) if kind
                           else mlp_forward(mlp_params, h, config.gelu, mlp_hook))
        out = hook("resid_post", mid + hook("mlp_out", m))
    else:
        a, c["attn"] = attention_forward(attn_params, x, heads, causal, bias, temperature, attn_hook)
        mid, c["ln1"] = layernorm_forward(ln1, x + hook("attn_out", a), eps)
        mid = hook("resid_mid", mid)
        if kind is not None:
            m, c["mlp"] = kind.forward(mlp_params, mid, config, mlp_hook)
        else:
            m, c["mlp"] = mlp_forward(mlp_params, mid, config.gelu, mlp_hook)
        out, c["ln2"] = layernorm_forward(ln2, mid + hook("mlp_out", m), eps)
        out = hook("resid_post", out)
    return out, c


# --------------------------------------------------------------------------- backward


def _plus(d: Any, extra: Mapping[str, Any], name: str) -> Any:
    """d + extra[name] when an extra upstream gradient is given there."""
    return d + extra[name] if name in extra else d


def block_backward(config: ModelConfig, cache: dict, d_out: Any, extra: Mapping[str, Any]) -> tuple[Any, dict]:
    """d resid_post (B, T, D) -> d resid_pre and the block's local grads; ``extra`` uses local names."""
    attn_extra, mlp_extra = _local(extra, "attn."), _local(extra, "mlp.")
    kind, mlp_prefix, ffn_backward = ffn_kind(config), "mlp.", mlp_backward
    if kind is not None:  # mirror of block_forward's FFN-slot dispatch
        mlp_prefix, ffn_backward = kind.prefix + ".", kind.backward
        mlp_extra = _local(extra, mlp_prefix)
    grads: dict[str, Any] = {}
    d = _plus(d_out, extra, "resid_post")
    if config.norm == "pre":
        d_mlp_in, g = ffn_backward(cache["mlp"], _plus(d, extra, "mlp_out"), mlp_extra)
        grads.update(_prefixed(g, mlp_prefix))
        if kind is not None and kind.own_norm:
            d_ln2 = d_mlp_in
        else:
            d_ln2, g = layernorm_backward(cache["ln2"], d_mlp_in)
            grads.update(_prefixed(g, "ln2."))
        d_mid = _plus(d + d_ln2, extra, "resid_mid")
        d_attn_in, g = attention_backward(cache["attn"], _plus(d_mid, extra, "attn_out"), attn_extra)
        grads.update(_prefixed(g, "attn."))
        d_ln1, g = layernorm_backward(cache["ln1"], d_attn_in)
        grads.update(_prefixed(g, "ln1."))
        d_in = d_mid + d_ln1
    else:
        d_sum2, g = layernorm_backward(cache["ln2"], d)
        grads.update(_prefixed(g, "ln2."))
        d_mlp_in, g = ffn_backward(cache["mlp"], _plus(d_sum2, extra, "mlp_out"), mlp_extra)
        grads.update(_prefixed(g, mlp_prefix))
        d_mid = _plus(d_sum2 + d_mlp_in, extra, "resid_mid")
        d_sum1, g = layernorm_backward(cache["ln1"], d_mid)
        grads.update(_prefixed(g, "ln1."))
        d_attn_in, g = attention_backward(cache["attn"], _plus(d_sum1, extra, "attn_out"), attn_extra)
        grads.update(_prefixed(g, "attn."))
        d_in = d_sum1 + d_attn_in
    return _plus(d_in, extra, "resid_pre"), grads


def backward(config: ModelConfig, cache: dict, d_logits: Any, extra: Mapping[str, Any] | None = None) -> Params:
    """d loss / d logits (B, T, V) -> d loss / d every parameter (same names and shapes).

    ``extra`` adds upstream gradients at hook points by name (e.g. a penalty
    on ``blocks.0.attn.pattern``, or gradients injected at ``blocks.2.resid_post``).
    """
    extra = dict(extra or {})
    grads: Params = {}
    d_logits = _plus(d_logits, extra, "logits")
    d_x, g_head = linear_backward(cache["head"], d_logits)
    if config.tied_head:
        grads["embed.tok"] = g_head["w"].T
    else:
        grads["head.w"] = g_head["w"]
    if config.final_norm:
        d_x, g = layernorm_backward(cache["ln_final"], _plus(d_x, extra, "final_norm"))
        grads.update(_prefixed(g, "ln_final."))

    for i in reversed(range(config.n_layers)):
        d_x, g = block_backward(config, cache["blocks"][i], d_x, _local(extra, f"blocks.{i}."))
        grads.update(_prefixed(g, f"blocks.{i}."))

    if config.embed_norm:
        d_x, g = layernorm_backward(cache["embed_ln"], d_x)
        grads.update(_prefixed(g, "embed.ln."))
    _, g = embedding_backward(cache["tok"], _plus(d_x, extra, "embed"))
    grads["embed.tok"] = grads["embed.tok"] + g["w"] if "embed.tok" in grads else g["w"]
    _, g = position_backward(cache["pos"], _plus(d_x, extra, "pos_embed"))
    grads["embed.pos"] = g["w"]
    if config.n_token_types:
        _, g = embedding_backward(cache["type"], _plus(d_x, extra, "type_embed"))
        grads["embed.type"] = g["w"]
    return grads


# --------------------------------------------------------------------------- loss, cache, sampling


def loss_fn(params: Params, config: ModelConfig, tokens: Any, targets: Any, **forward_kwargs: Any) -> Any:
    """Mean next-token cross-entropy (nats); differentiable by autograd (the oracle)."""
    logits, _ = forward(params, config, tokens, **forward_kwargs)
    loss, _ = cross_entropy_forward(logits, targets)
    return loss


def loss_and_grads(
    params: Params,
    config: ModelConfig,
    tokens: Any,
    targets: Any,
    *,
    extra_loss: Callable[[dict], tuple[Any, dict]] | None = None,
    **forward_kwargs: Any,
) -> tuple[float, Params, dict]:
    """Cross-entropy, its gradient by the hand-written backward, and the activations.

    ``extra_loss(activations) -> (value, {hook name: gradient})`` adds a term
    computed from recorded activations (a mechanism's penalty); its gradients
    enter :func:`backward` as ``extra``. Returns (loss, grads, activations).
    """
    recorded: dict[str, Any] = {}

    def record(name: str, value: Any) -> Any:
        recorded[name] = value
        return value

    logits, cache = forward(params, config, tokens, hook=record if extra_loss else no_hook, **forward_kwargs)
    loss, ce_cache = cross_entropy_forward(logits, targets)
    extra: dict[str, Any] = {}
    if extra_loss is not None:
        penalty, extra = extra_loss(recorded)
        loss = loss + penalty
    grads = backward(config, cache, cross_entropy_backward(ce_cache), extra)
    return float(loss), grads, recorded


class ActivationCache(dict):
    """Activations by hook name, as :func:`run_with_cache` returns them.

    A plain dict (``cache["blocks.0.attn.pattern"]``) with one helper to stack
    a per-layer activation across layers.
    """

    def stack(self, template: str, n_layers: int) -> Any:
        """``template`` with ``{i}`` (e.g. ``"blocks.{i}.resid_post"``) stacked to (L, ...)."""
        values = [self[template.format(i=i)] for i in range(n_layers)]
        return namespace(*values).stack(values)


def run_with_cache(
    params: Params,
    config: ModelConfig,
    tokens: Any,
    *,
    names: Iterable[str] | None = None,
    hooks: Mapping[str, Callable[[Any], Any]] | None = None,
    **forward_kwargs: Any,
) -> tuple[Any, ActivationCache]:
    """Forward pass that records activations and applies replacing hooks.

    names: which hook points to keep (default: all).
    hooks: ``{hook name: fn(value) -> value}``; a replacement acts before it
        is recorded, so the cache shows what the model actually used.
    Returns (logits (B, T, V), ActivationCache).
    """
    keep = None if names is None else set(names)
    hooks = dict(hooks or {})
    activations = ActivationCache()

    def hook(name: str, value: Any) -> Any:
        if name in hooks:
            value = hooks[name](value)
        if keep is None or name in keep:
            activations[name] = value
        return value

    logits, _ = forward(params, config, tokens, hook=hook, **forward_kwargs)
    return logits, activations


def hook_names(config: ModelConfig) -> list[str]:
    """Every hook point of a model with this config, in forward order."""
    names = ["embed", "pos_embed"] + (["type_embed"] if config.n_token_types else [])
    for i in range(config.n_layers):
        p = f"blocks.{i}."
        names += [p + "resid_pre"] + [p + f"attn.{n}" for n in ("q", "k", "v", "scores", "pattern", "z")]
        kind = ffn_kind(config)
        ffn = [p + "mlp.pre", p + "mlp.post"] if kind is None else [f"{p}{kind.prefix}.{h}" for h in kind.hooks]
        names += [p + "attn_out", p + "resid_mid", *ffn, p + "mlp_out", p + "resid_post"]
    return names + (["final_norm"] if config.final_norm else []) + ["logits"]


def generate(
    params: Params,
    config: ModelConfig,
    prompt: Sequence[int],
    n_new: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    stop_id: int | None = None,
    forward_kwargs: Callable[[Any], dict] | None = None,
) -> list[int]:
    """Sample ``n_new`` tokens after ``prompt`` (a list of ids); returns prompt + new ids.

    temperature 0 is greedy. The context window slides when the sequence
    outgrows ``config.context``. Sampling draws from a seeded host RNG.
    forward_kwargs(window): the forward arguments of each step, from the
    window (1, T) of tokens it reads (a mechanism's attention bias, say,
    rebuilt from the tokens so far); None runs the plain model.
    """
    if temperature < 0:
        raise InputError(f"temperature: {temperature} is negative")
    generator = rng(seed)
    ids = list(prompt)
    if not ids:
        raise InputError("prompt: empty; give at least one token")
    like = params["embed.tok"]
    xp = namespace(like)
    for _ in range(n_new):
        window = xp.asarray(np.asarray(ids[-config.context:], dtype=np.int64)[None, :])
        logits, _ = forward(params, config, window, **(forward_kwargs(window) if forward_kwargs else {}))
        last = to_host(logits[0, -1]).astype(np.float64)
        if temperature == 0:
            next_id = int(np.argmax(last))
        else:
            if top_k is not None and top_k < last.size:
                cutoff = np.partition(last, -top_k)[-top_k]
                last = np.where(last < cutoff, -np.inf, last)
            probs = softmax(last / temperature)
            next_id = int(generator.choice(last.size, p=probs))
        ids.append(next_id)
        if stop_id is not None and next_id == stop_id:
            break
    return ids
