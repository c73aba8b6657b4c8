"""DDC: the INCRT gate — trackers, dwell, thresholds, E2's exact trace, growth/prune edits, checkpoints (spec §2.3, §5.3, §7)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.config import ConfigError, RunConfig
from reference.mechanisms.ddc.config import DDCConfig
from reference.mechanisms.ddc.frozen import events, frozen_gate
from reference.mechanisms.ddc.gate import GateState, dwell, gaps, gate_call, residual_operator, track
from reference.mechanisms.ddc.growth import add_head, head_ids, remove_head
from reference.mechanisms.ddc.heads import new_head
from reference.mechanisms.ddc.planted import planted
from reference.optim import AdamW

E2 = DDCConfig(d_model=16, d_k=2, max_heads=8, gate_estimator="exact")


def test_ddc_gate_call_matches_the_author_formulas_on_a_4x4_example():
    """γ*, one Oja and one EXIN step and T_d, written out independently of the package (normalised and not)."""
    a = np.array([[2.0, 0.5, 0.0, 0.1], [0.5, 1.0, 0.2, 0.0], [0.0, 0.2, -0.5, 0.3], [0.1, 0.0, 0.3, -1.5]])
    up0 = np.array([1.0, 1.0, 0.0, 0.0]) / math.sqrt(2)
    um0 = np.array([0.0, 0.0, 1.0, -1.0]) / math.sqrt(2)
    for normalise in (True, False):
        cfg = DDCConfig(d_model=4, d_k=1, gate_normalise=normalise)
        lam = np.sort(np.linalg.eigvalsh(a))[::-1]
        s = np.max(np.abs(lam)) if normalise else 1.0
        at, lt = a / s, lam / s
        dp, dm = max(lt[0] - lt[1], 1e-8), max(lt[2] - lt[3], 1e-8)
        g = dp / (dp + dm + 1e-8)
        eta = 1 / 40
        r, c = up0 @ at @ up0, up0 @ at @ um0
        up = up0 + eta * ((at @ up0 - r * up0) - (1 - g) * c * um0)
        up /= np.linalg.norm(up)
        y, nu, c2 = um0 @ at @ um0, um0 @ um0, up @ at @ um0
        um = um0 - (eta / 2 * y / nu) * (at @ um0 - (y / nu) * um0) + (eta / 2) * g * (1 - g) * c2 * up
        um /= np.linalg.norm(um)
        um = um - (um @ up) * up
        um /= np.linalg.norm(um)
        state = GateState(4, 1.0, 0.5, 0.01, np.zeros((4, 0)), up0.copy(), um0.copy(), np.random.default_rng(0))
        out = track(state, a, cfg)
        assert np.allclose(gaps(lt), (dp, dm, g), rtol=1e-14, atol=0)
        assert np.max(np.abs(state.u_plus - up)) <= 1e-14 and np.max(np.abs(state.u_minus - um)) <= 1e-14
        assert abs(out["lambda_max"] - up @ a @ up) <= 1e-13 and abs(out["lambda_min"] - um @ a @ um) <= 1e-13
        want = min(math.ceil(2 * math.log(20) / (eta * dp * dp)), 10000)
        assert dwell(eta, dp, cfg) == want


def test_ddc_dwell_constants():
    cfg = DDCConfig(d_model=16, d_k=2)
    assert [dwell(cfg.eta, g, cfg.replace(dwell_cap=10**6)) for g in (0.3, 0.35)] == [10652, 7826]
    assert dwell(cfg.eta, 0.3, cfg) == 10000 and dwell(cfg.eta, 1e-9, cfg) == 10000
    assert dwell(cfg.eta, 0.3, cfg.replace(dwell_fixed=40)) == 40
    assert dwell(cfg.eta, 0.35, cfg.replace(dwell_scale=5.0, dwell_cap=10**6)) == 5 * 7826


def test_ddc_e2_exact_trace():
    """H2: 3 heads, triggers (1.0, 0.7, 0.4) to 1e-10 at gate calls 10,000, 20,000, 27,826, then none."""
    p = planted()
    rows, state = frozen_gate(p.c, p.m_a, E2, 40000)
    grown = events(rows)
    assert [e["call"] for e in grown] == [10000, 20000, 27826]
    assert np.max(np.abs(np.array([e["trigger"] for e in grown]) - [1.0, 0.7, 0.4])) <= 1e-10
    assert abs(rows[-1]["lambda_1"] - 0.05) <= 1e-10 and rows[-1]["lambda_1"] < state.theta_w
    assert np.max(np.abs(state.e.T @ state.e - np.eye(3))) <= 1e-12
    top = p.o @ np.column_stack([np.eye(16)[:, 2 * j] + np.eye(16)[:, 2 * j + 1] for j in range(3)]) / math.sqrt(2)
    assert np.linalg.norm(top - state.e @ (state.e.T @ top)) <= 1e-9  # span E = the top-3 eigenspace


@pytest.mark.parametrize(("frac", "count", "last"), [(0.02, 4, 37826), (0.25, 2, 20000), (0.5, 1, 10000)])
def test_ddc_e2_theta_sweep(frac, count, last):
    """H4: θ_w_frac 0.02, 0.25, 0.5 give 4, 2, 1 heads with last events at 37,826, 20,000, 10,000 (0.1: above)."""
    p = planted()
    rows, _ = frozen_gate(p.c, p.m_a, E2.replace(theta_w_frac=frac), last + 2000)
    grown = events(rows)
    assert len(grown) == count and grown[-1]["call"] == last


def test_ddc_gate_state_checkpoint_resumes_the_same_trace():
    p = planted()
    cfg = DDCConfig(d_model=16, d_k=2, max_heads=8, dwell_fixed=300)
    rows, _ = frozen_gate(p.c, p.m_a, cfg, 1200, seed=3)
    again, _ = frozen_gate(p.c, p.m_a, cfg, 1200, seed=3)
    assert json.dumps(rows, default=str) == json.dumps(again, default=str)
    _, half = frozen_gate(p.c, p.m_a, cfg, 500, seed=3)
    resumed = GateState.from_state(json.loads(json.dumps(half.to_state())))
    rest = [gate_call(resumed, p.c, {}, cfg, m_a=p.m_a) for _ in range(700)]
    assert json.dumps(rest, default=str) == json.dumps(rows[500:], default=str)


def test_ddc_e4_prune_exactly_at_the_100th_check():
    """H6: a 10⁻⁴-strength head is pruned at its 100th check, strong heads never, no growth afterwards."""
    p = planted()
    rs = np.random.default_rng(0)
    b = rs.standard_normal((16, 16))
    weak = 0.5 * (b - b.T)
    heads = {0: p.plane_ops[0], 1: p.plane_ops[1], 2: p.plane_ops[2], 3: 1e-4 * weak / np.linalg.norm(weak)}
    e2_gamma = float(np.linalg.norm(p.s))
    cfg = DDCConfig(d_model=16, d_k=2, max_heads=8, prune_min_age=0, gate_estimator="exact")
    rows, state = frozen_gate(p.c, None, cfg, 1100, heads=heads, gamma=e2_gamma)
    pruned = events(rows, "prune")
    assert [(e["call"], e["head"]) for e in pruned] == [(99, 3)]
    assert [h.id for h in state.heads] == [0, 1, 2]
    assert not events(rows, "grow")


def test_ddc_growth_edits_params_and_optimiser_together():
    rng = np.random.default_rng(0)
    params = {"x": np.ones((3, 3))}
    opt = AdamW.for_params(params, 0.01)
    opt.step(params, {"x": np.ones((3, 3))}, 1e-2)
    add_head(params, opt, 0, 0, new_head(8, 2, 2, 16, rng), 0.01)
    add_head(params, opt, 0, 1, new_head(8, 2, 2, 16, rng), 0.01)
    assert head_ids(params, 0) == [0, 1]
    assert all(opt.steps[n] == 0 and not opt.m[n].any() and not opt.v[n].any() for n in params if ".h1." in n)
    grads = {n: np.ones_like(v) for n, v in params.items()}
    opt.step(params, grads, 1e-2)
    assert opt.steps["blocks.0.attn.h1.w_q"] == 1 and opt.steps["x"] == 2
    removed = remove_head(params, opt, 0, 0)
    assert len(removed) == 5 and head_ids(params, 0) == [1]
    assert not any(".h0." in n for n in (*opt.m, *opt.v, *opt.steps, *(m for g in opt.groups for m in g.names)))
    opt.step(params, {n: np.ones_like(v) for n, v in params.items()}, 1e-2)
    with pytest.raises(ValueError, match="already in use"):
        add_head(params, opt, 0, 1, new_head(8, 2, 2, 16, rng), 0.01)


@given(st.integers(2, 6), st.integers(0, 2**31 - 1))
def test_ddc_growth_keeps_e_orthonormal_and_heads_bounded(m, seed):
    rs = np.random.default_rng(seed)
    d = 2 * m
    b = rs.standard_normal((d, d))
    c = b @ b.T
    ma = rs.standard_normal((d, d))
    ma = ma - ma.T
    cfg = DDCConfig(d_model=d, d_k=1, max_heads=3, dwell_fixed=5, gate_estimator="exact", theta_w_frac=0.01, min_heads=1)
    rows, state = frozen_gate(c, ma, cfg, 60, seed=seed)
    assert state.e.shape[1] >= 1, "no growth: the check below would be empty"
    assert np.max(np.abs(state.e.T @ state.e - np.eye(state.e.shape[1]))) <= 1e-12
    k_star = int(np.sum(np.linalg.eigvalsh(residual_operator(c, ma, np.zeros((d, 0)))) > state.theta_w))
    assert all(r["heads"] <= 3 for r in rows) and rows[-1]["heads"] == min(3, k_star)  # exact capture: T8


@pytest.mark.parametrize(("section", "message"), [
    ({"d_model": 30, "d_k": 8}, "does not divide"),
    ({"n_prototypes": 1}, "n_prototypes"),
    ({"ddcl_tau_init": -1.0}, "ddcl_tau_init"),
    ({"ddcl_tau_init": 0.0}, "ddcl_tau_init"),
    ({"theta_w_frac": 1.0}, "theta_w_frac"),
    ({"phi_w_frac": 0.0}, "phi_w_frac"),
    ({"phi_g_frac": 1.5}, "phi_g_frac"),
    ({"initial_heads": 5}, "initial_heads"),
    ({"attn_tau_clamp": [1.0, 0.5]}, "attn_tau_clamp"),
])
def test_ddc_bad_config_is_one_line(section, message):
    with pytest.raises(ConfigError, match=message) as err:
        RunConfig.from_dict({"ddc": section}) if "ddc" in RunConfig.section_classes() else DDCConfig.from_dict(section)
    assert "\n" not in str(err.value)


def test_ddc_residual_operator_kinds():
    p = planted()
    s = residual_operator(p.c, p.m_a, np.zeros((16, 0)))
    assert abs(np.trace(s)) <= 1e-12 and np.allclose(np.sort(np.linalg.eigvalsh(s))[-3:], [0.4, 0.7, 1.0], atol=1e-12)
    psd = residual_operator(p.c, p.m_a, np.zeros((16, 0)), "psd")
    assert np.allclose(psd, p.c)
