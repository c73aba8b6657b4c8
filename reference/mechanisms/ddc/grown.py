"""The growing DDCL-INCRT model: named heads per layer + a DDCL block per layer (spec §2.1, pre-LN, head sum) [reconstructed].

Parameters (one flat dict; heads come and go, ids stable)::

    embed.tok (V, d)   embed.pos (context, d)
    blocks.{i}.ln1.g, .ln1.b (d,)
    blocks.{i}.attn.h{j}.w_q, .w_k (d, d_k)  .w_v (d, d_v)  .w_o (d_v, d)  .log_tau (1,)
    blocks.{i}.ddcl.prototypes (K, d)  .log_tau (1,)
    ln_final.g, .b (d,)          (tied head: logits = x · embed.tokᵀ)

Block i, with Z = LN_1(X)::

    X'  = X + Σ_h O_h(Z)                (``head_combine="sum"``; O_h by :mod:`~reference.mechanisms.ddc.heads`)
    X'' = X' + DDCL(LN_0(X'))           (:func:`reference.mechanisms.ddc.block.block_forward`)

Loss: mean cross-entropy + β Σ_ℓ L̄_q^{(ℓ)} (``ddcl_loss="free_energy"``: F̄). The hand-written
backward is :func:`loss_and_grads` (checked against autograd in the tests). The gate input of layer i
is Z (``gate_input="layer"``), C = mean over the batch's sequences of Σ_t z_t z_tᵀ (``gate_batch="mean"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.layers.embedding import embedding_backward, embedding_forward, position_backward, position_forward
from reference.layers.layernorm import layernorm_backward, layernorm_forward
from reference.layers.linear import linear_backward, linear_forward
from reference.layers.loss import cross_entropy_backward, cross_entropy_forward
from reference.mechanisms.ddc.block import block_backward as ddcl_block_backward
from reference.mechanisms.ddc.block import block_forward as ddcl_block_forward
from reference.mechanisms.ddc.growth import head_ids, head_params, head_prefix
from reference.mechanisms.ddc.heads import head_backward, head_forward, head_m_a

LN_EPS = 1e-5


class _Eps:
    """The one field :func:`ddcl_block_forward` reads from a model config."""

    ln_eps = LN_EPS


def init_model(vocab: int, context: int, d: int, n_layers: int, k: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Everything but the heads: embeddings N(0, 0.02²), unit LN gains, prototypes N(0, 1), DDCL log τ = log 2."""
    params = {"embed.tok": rng.standard_normal((vocab, d)) * 0.02, "embed.pos": rng.standard_normal((context, d)) * 0.02}
    for i in range(n_layers):
        params[f"blocks.{i}.ln1.g"], params[f"blocks.{i}.ln1.b"] = np.ones(d), np.zeros(d)
        params[f"blocks.{i}.ddcl.prototypes"] = rng.standard_normal((k, d))
        params[f"blocks.{i}.ddcl.log_tau"] = np.full(1, np.log(2.0))
    params["ln_final.g"], params["ln_final.b"] = np.ones(d), np.zeros(d)
    return params


def n_layers_of(params: dict[str, Any]) -> int:
    return len({n.split(".")[1] for n in params if n.startswith("blocks.")})


def forward(params: dict[str, Any], tokens: np.ndarray, causal: bool = True) -> tuple[np.ndarray, dict]:
    """tokens (B, T) -> logits (B, T, V) and the cache (per layer: Z, head caches, DDCL cache, L̄_q, F̄)."""
    t = tokens.shape[1]
    tok, c_tok = embedding_forward({"w": params["embed.tok"]}, tokens)
    pos, c_pos = position_forward({"w": params["embed.pos"]}, t)
    x = tok + pos
    cache: dict[str, Any] = {"tok": c_tok, "pos": c_pos, "layers": []}
    for i in range(n_layers_of(params)):
        layer: dict[str, Any] = {}
        z, layer["ln1"] = layernorm_forward({"g": params[f"blocks.{i}.ln1.g"], "b": params[f"blocks.{i}.ln1.b"]}, x, LN_EPS)
        layer["z"], layer["heads"] = z, {}
        a: Any = 0.0  # a layer without heads adds nothing (np.zeros_like would break autograd's tracing)
        for j in head_ids(params, i):
            out, layer["heads"][j] = head_forward(head_params(params, i, j), z, causal)
            a = a + out
        mid = x + a
        rec: dict[str, Any] = {}
        y, layer["ddcl"] = ddcl_block_forward(_local(params, f"blocks.{i}.ddcl."), mid, _Eps, _recorder(rec))
        layer["lq"], layer["free_energy"], layer["assign"] = rec["lq"], rec["free_energy"], rec["assign"]
        x = mid + y
        cache["layers"].append(layer)
    x, cache["ln_final"] = layernorm_forward({"g": params["ln_final.g"], "b": params["ln_final.b"]}, x, LN_EPS)
    logits, cache["head"] = linear_forward({"w": params["embed.tok"].T}, x)
    return logits, cache


def loss_and_grads(params: dict[str, Any], tokens: np.ndarray, targets: np.ndarray, beta: float, loss: str = "lq",
                   causal: bool = True) -> tuple[float, float, dict[str, Any], dict]:
    """(total loss, task loss, grads, cache): total = CE + β Σ_ℓ L̄_ℓ, by the hand-written backward."""
    logits, cache = forward(params, tokens, causal)
    ce, ce_cache = cross_entropy_forward(logits, targets)
    key = "lq" if loss == "lq" else "free_energy"
    total = float(ce) + beta * sum(float(layer[key]) for layer in cache["layers"])
    grads: dict[str, Any] = {}
    d_x, g = linear_backward(cache["head"], cross_entropy_backward(ce_cache))
    grads["embed.tok"] = g["w"].T
    d_x, g = layernorm_backward(cache["ln_final"], d_x)
    grads["ln_final.g"], grads["ln_final.b"] = g["g"], g["b"]
    for i in reversed(range(len(cache["layers"]))):
        layer = cache["layers"][i]
        d_mid, g = ddcl_block_backward(layer["ddcl"], d_x, {key: beta})
        grads[f"blocks.{i}.ddcl.prototypes"], grads[f"blocks.{i}.ddcl.log_tau"] = g["prototypes"], g["log_tau"]
        d_mid = d_mid + d_x
        d_z = np.zeros_like(d_mid)
        for j, hc in layer["heads"].items():
            dz_h, gh = head_backward(hc, d_mid)
            d_z += dz_h
            for name, value in gh.items():
                grads[head_prefix(i, j) + name] = value
        d_in, g = layernorm_backward(layer["ln1"], d_z)
        grads[f"blocks.{i}.ln1.g"], grads[f"blocks.{i}.ln1.b"] = g["g"], g["b"]
        d_x = d_mid + d_in
    _, g = embedding_backward(cache["tok"], d_x)
    grads["embed.tok"] = grads["embed.tok"] + g["w"]
    _, g = position_backward(cache["pos"], d_x)
    grads["embed.pos"] = g["w"]
    return total, float(ce), grads, cache


def total_loss(params: dict[str, Any], tokens: np.ndarray, targets: np.ndarray, beta: float, loss: str = "lq",
               causal: bool = True) -> Any:
    """CE + β Σ_ℓ L̄_ℓ by the forward pass alone (differentiable by autograd: the oracle of :func:`loss_and_grads`)."""
    logits, cache = forward(params, tokens, causal)
    key = "lq" if loss == "lq" else "free_energy"
    return cross_entropy_forward(logits, targets)[0] + beta * sum(layer[key] for layer in cache["layers"])


def gate_inputs(cache: dict, params: dict[str, Any], layer: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(C, {head id: M_{a,h}}) of ``layer``: C = mean over sequences of Σ_t z_t z_tᵀ (float64), heads' generators."""
    z = np.asarray(cache["layers"][layer]["z"], dtype=np.float64)
    c = np.einsum("btd,bte->de", z, z) / z.shape[0]
    return c, {j: head_m_a(head_params(params, layer, j)) for j in head_ids(params, layer)}


def _local(params: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {n[len(prefix):]: v for n, v in params.items() if n.startswith(prefix)}


def _recorder(into: dict) -> Any:
    def hook(name: str, value: Any) -> Any:
        into[name] = value
        return value

    return hook
