"""DDC: the DDCL block and the named attention heads against autograd (float64, ≤ 1e-8 relative), spec §2.2, §7."""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from reference.mechanisms.ddc.block import (
    ddcl_backward,
    ddcl_forward,
    dual_backward,
    dual_prototypes,
    losses,
    lq_tau_grad,
    lq_weights,
    pairwise_variance,
    sq_dists,
)
from reference.mechanisms.ddc.heads import head_backward, head_forward
from tests.gradcheck import assert_grads_match


@st.composite
def ddcl_cases(draw):
    """B ∈ [1, 3], n ∈ [1, 8], d ∈ [2, 8], K ∈ [2, 6], β ∈ [0, 5], γ (free energy) on/off, τ log-uniform × mean d."""
    b, n, d, k = draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(2, 8)), draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rs = np.random.default_rng(seed)
    z = rs.standard_normal((b, n, d)) * draw(st.sampled_from([0.3, 1.0, 3.0]))
    p = rs.standard_normal((k, d))
    if draw(st.booleans()):  # a prototype on a data point: the clamp and a zero distance
        p[0] = z[0, 0]
    mean_d = float(np.mean(sq_dists(z, p))) + 1e-3
    tau = mean_d * 10 ** draw(st.floats(-2, 2))
    beta = draw(st.floats(0, 5))
    gamma = draw(st.sampled_from([0.0, 0.0, 1.3]))
    return z, p, np.full(1, np.log(tau)), rs.standard_normal((b, n, d)), beta, gamma


def _total(z, p, lt, g, beta, gamma):
    rec = {}

    def hook(name, value):
        rec[name] = value
        return value

    y, _ = ddcl_forward({"prototypes": p, "log_tau": lt}, z, hook)
    return anp.sum(y * g) + beta * rec["lq"] + gamma * rec["free_energy"]


@given(ddcl_cases())
def test_ddc_block_backward_matches_autograd(case):
    z, p, lt, g, beta, gamma = case
    oracle = autograd.grad(_total, (0, 1, 2))(z, p, lt, g, beta, gamma)
    _, cache = ddcl_forward({"prototypes": p, "log_tau": lt}, z)
    dz, grads = ddcl_backward(cache, g, {"lq": beta, "free_energy": gamma})
    assert_grads_match({"z": dz, "prototypes": grads["prototypes"], "log_tau": grads["log_tau"]},
                       {"z": oracle[0], "prototypes": oracle[1], "log_tau": oracle[2]})


@given(ddcl_cases())
def test_ddc_forward_rows_and_identities(case):
    z, p, lt, _, _, _ = case
    tau = float(np.exp(lt[0]))
    out = losses(z, p, tau)
    assert np.all(out["d"] >= 0)
    assert np.max(np.abs(out["q"].sum(-1) - 1)) <= 1e-12
    scale = max(1.0, float(np.max(out["lq"])))
    assert np.max(np.abs(out["lq"] - out["ols"] - out["v"])) <= 1e-9 * scale
    assert np.max(np.abs(out["v"] - pairwise_variance(out["q"], p))) <= 1e-9 * scale
    assert np.max(np.abs(out["lq"] - out["f"] - tau * out["h"])) <= 1e-9 * max(scale, tau * np.log(p.shape[0]))
    w = lq_weights(out["q"], out["d"], tau)
    assert np.max(np.abs(w.sum(-1) - 1)) <= 1e-9 * max(1.0, float(np.max(np.abs(w))))
    assert lq_tau_grad(out["q"], out["d"], tau) >= -1e-12


@given(ddcl_cases())
def test_ddc_pure_lq_gradients_are_the_spec_forms(case):
    """Pure L_q: ∂/∂p_k = 2 Σ_t w_tk (p_k − z_t), ∂/∂z_t = 2(z_t − Σ_k w_tk p_k), ∂/∂τ = τ⁻² Σ Var ≥ 0."""
    z, p, lt, _, _, _ = case
    _, cache = ddcl_forward({"prototypes": p, "log_tau": lt}, z)
    n = z.shape[0] * z.shape[1]
    dz, grads = ddcl_backward(cache, np.zeros_like(z), {"lq": float(n)})  # β' = 1: gradient of Σ_t L_q,t
    tau = float(np.exp(lt[0]))
    w = lq_weights(cache["q"], cache["d"], tau) * cache["active"]
    flat_w, flat_z = w.reshape(-1, p.shape[0]), z.reshape(-1, z.shape[-1])
    want_p = 2 * (flat_w.sum(0)[:, None] * p - flat_w.T @ flat_z)
    scale = max(1.0, float(np.max(np.abs(want_p))))
    if cache["active"].all():
        assert np.max(np.abs(grads["prototypes"] - want_p)) <= 1e-9 * scale
        assert np.max(np.abs(dz - 2 * (z - w @ p))) <= 1e-9 * max(1.0, float(np.max(np.abs(dz))))
        want_tau = lq_tau_grad(cache["q"], cache["d"], tau) * tau
        assert abs(float(grads["log_tau"][0]) - want_tau) <= 1e-9 * max(1.0, abs(want_tau))


@given(st.integers(1, 6), st.integers(2, 5), st.integers(2, 6), st.integers(0, 2**31 - 1))
def test_ddc_dual_prototype_gradient(m, k, d, seed):
    rs = np.random.default_rng(seed)
    w, anchors, g = rs.standard_normal((m, k)), rs.standard_normal((m, d)), rs.standard_normal((k, d))
    oracle = autograd.grad(lambda w_: anp.sum(dual_prototypes(w_, anchors) * g))(w)
    assert_grads_match({"w": dual_backward(g, anchors)}, {"w": oracle})


@st.composite
def head_cases(draw):
    b, n, d, dk, dv = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(2, 8)),
                       draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    rs = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    params = {"w_q": rs.standard_normal((d, dk)), "w_k": rs.standard_normal((d, dk)), "w_v": rs.standard_normal((d, dv)),
              "w_o": rs.standard_normal((dv, d)), "log_tau": np.full(1, draw(st.floats(-2, 2)))}
    return params, rs.standard_normal((b, n, d)), rs.standard_normal((b, n, d)), draw(st.booleans())


@given(head_cases())
def test_ddc_attention_log_tau_gradient_matches_autograd(case):
    params, z, g, causal = case
    names = list(params)

    def total(values, z_):
        out, _ = head_forward(dict(zip(names, values)), z_, causal)
        return anp.sum(out * g)

    oracle_p = autograd.grad(total, 0)([params[n] for n in names], z)
    oracle_z = autograd.grad(total, 1)([params[n] for n in names], z)
    _, cache = head_forward(params, z, causal)
    dz, grads = head_backward(cache, g)
    assert_grads_match({**grads, "z": dz}, {**dict(zip(names, oracle_p)), "z": oracle_z})
