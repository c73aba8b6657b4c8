"""An independent PyTorch decoder checked against ``clearform golden`` through ``clearform compare``.

Written from the definitions only (README "clearform golden" / "The core contract", the
golden manifest's config and hook meanings, specs/00-localist.md §2.3): it imports no
clearform model, layer or mechanism code and no ``transformers`` — just plain torch ops.
It drives the ``clearform`` command twice: ``golden`` to write the reference batch and
``compare`` to judge the tensors written here.

Model (the manifest's ``config.model``: norm "pre", bias, gelu "tanh", tied head, final
norm, causal): h = tok[ids] + pos[:T]; per block, with LN(x) = g·(x−μ)/√(σ²+eps)+b and σ²
the population variance,
    mid = x + (softmax_keys(mask(q kᵀ/√d_h)) v merged) W_o + b_o,  q, k, v = LN1(x) W + b
    out = mid + gelu_tanh(LN2(mid) W_in + b_in) W_out + b_out
logits = LN_f(h) tokᵀ; loss = mean cross-entropy over targets ≥ 0. Linear weights are
(in, out): y = x @ w + b. ``attn.scores`` is q·k/√d_h *before* the causal mask (masked
entries hold the raw product), ``attn.z`` is pattern @ v per head (B, H, T, d_h).

Two planted bugs must be caught at the right first tensor: the unbiased variance in
LayerNorm (first seen at ``act.blocks.0.attn.q``, the first hook after LN1) and a
missing 1/√d_h (first seen at ``act.blocks.0.attn.scores``).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from safetensors.numpy import load_file, save_file  # noqa: E402

from reference.cli import main as clearform  # noqa: E402

pytestmark = pytest.mark.crosscheck


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden_torch") / "golden"
    assert clearform(["golden", "--preset", "locality_tiny", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    return out, load_file(str(out / "golden.safetensors")), manifest


# --------------------------------------------------------------------------- the decoder


def layer_norm(x, g, b, eps, unbiased=False):
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=True) if unbiased else ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * g + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def decoder(P, cfg, tokens, targets, *, unbiased_ln=False, scale_scores=True):
    """Forward pass; returns (loss, acts) with every hook tensor kept (and its grad retained)."""
    acts = {}

    def keep(name, x):
        x.retain_grad()
        acts[name] = x
        return x

    assert cfg["norm"] == "pre" and cfg["bias"] and cfg["gelu"] == "tanh" and cfg["tied_head"] and cfg["final_norm"]
    n_b, t = tokens.shape
    heads, eps = cfg["n_heads"], cfg["ln_eps"]
    d_head = cfg["d_head"] or cfg["d_model"] // heads
    ln = lambda x, p: layer_norm(x, P[p + ".g"], P[p + ".b"], eps, unbiased_ln)  # noqa: E731
    x = keep("embed", P["embed.tok"][tokens]) + keep("pos_embed", P["embed.pos"][:t])
    visible = torch.tril(torch.ones(t, t, dtype=torch.bool)) if cfg["causal"] else torch.ones(t, t, dtype=torch.bool)
    for i in range(cfg["n_layers"]):
        p = f"blocks.{i}."
        x = keep(p + "resid_pre", x)
        h = ln(x, p + "ln1")
        split = lambda y: y.reshape(n_b, t, heads, d_head).transpose(1, 2)  # noqa: E731
        q, k, v = (keep(p + f"attn.{n}", split(h @ P[p + f"attn.w_{n}"] + P[p + f"attn.b_{n}"])) for n in "qkv")
        scores = q @ k.transpose(-1, -2)
        scores = keep(p + "attn.scores", scores / math.sqrt(d_head) if scale_scores else scores)
        pattern = keep(p + "attn.pattern", torch.softmax(scores.masked_fill(~visible, -math.inf), dim=-1))
        z = keep(p + "attn.z", pattern @ v)
        merged = z.transpose(1, 2).reshape(n_b, t, heads * d_head)
        attn_out = keep(p + "attn_out", merged @ P[p + "attn.w_o"] + P[p + "attn.b_o"])
        mid = keep(p + "resid_mid", x + attn_out)
        pre = keep(p + "mlp.pre", ln(mid, p + "ln2") @ P[p + "mlp.w_in"] + P[p + "mlp.b_in"])
        post = keep(p + "mlp.post", gelu_tanh(pre))
        mlp_out = keep(p + "mlp_out", post @ P[p + "mlp.w_out"] + P[p + "mlp.b_out"])
        x = keep(p + "resid_post", mid + mlp_out)
    x = keep("final_norm", ln(x, "ln_final"))
    logits = keep("logits", x @ P["embed.tok"].T)
    counted = targets >= 0
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    loss = -(picked * counted).sum() / counted.sum().clamp(min=1)
    return loss, acts


def run_decoder(g, cfg, dtype, **bugs):
    """Our tensors, named as in the golden file, as NumPy arrays of ``dtype``."""
    P = {k[len("param."):]: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in g.items() if k.startswith("param.")}
    tokens, targets = torch.tensor(g["input.tokens"]), torch.tensor(g["input.targets"])
    loss, acts = decoder(P, cfg, tokens, targets, **bugs)
    loss.backward()
    out = {"loss": loss.detach().reshape(1).numpy()}
    out |= {f"grad.param.{k}": p.grad.numpy() for k, p in P.items()}
    out |= {f"act.{k}": a.detach().numpy() for k, a in acts.items()}
    out |= {f"grad.act.{k}": a.grad.numpy() for k, a in acts.items()}
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def compare(golden_dir, tensors, path, capsys, *extra):
    """Write ``tensors``, run ``clearform compare --json``; returns (exit status, the JSON verdict)."""
    save_file(tensors, str(path))
    capsys.readouterr()
    status = clearform(["compare", "--golden", str(golden_dir), "--theirs", str(path), "--json", *extra])
    return status, json.loads(capsys.readouterr().out)


# --------------------------------------------------------------------------- the checks


def test_hooks_and_shapes_match_the_manifest(golden):
    _, g, manifest = golden
    ours = run_decoder(g, manifest["config"]["model"], torch.float64)
    assert set(ours) <= set(g)
    assert [n for n in manifest["order"] if n in ours and n.startswith("act.")] == [n for n in ours if n.startswith("act.")]
    assert all(ours[n].shape == g[n].shape for n in ours)
    assert {n for n in g if n.startswith(("act.", "grad."))} <= set(ours)  # every hook and gradient is given


def test_float64_decoder_matches_golden(golden, tmp_path, capsys):
    out, g, manifest = golden
    status, verdict = compare(out, run_decoder(g, manifest["config"]["model"], torch.float64), tmp_path / "theirs.safetensors",
                              capsys)
    assert (status, verdict["passed"], verdict["first_divergence"]) == (0, True, None), verdict
    assert verdict["precision"] == "float64"
    assert len(verdict["tensors"]) == sum(n.startswith(("act.", "grad.")) for n in g) + 1


def test_float32_decoder_matches_golden(golden, tmp_path, capsys):
    out, g, manifest = golden
    ours = run_decoder(g, manifest["config"]["model"], torch.float32)
    assert all(v.dtype == np.float32 for v in ours.values())
    status, verdict = compare(out, ours, tmp_path / "theirs32.safetensors", capsys, "--precision", "float32")
    assert (status, verdict["passed"]) == (0, True), verdict
    assert verdict["precision"] == "float32"
    status, verdict = compare(out, ours, tmp_path / "theirs32.safetensors", capsys)  # all float32: chosen automatically
    assert (status, verdict["precision"]) == (0, "float32"), verdict


@pytest.mark.parametrize("bug, first", [
    ({"unbiased_ln": True}, "act.blocks.0.attn.q"),
    ({"scale_scores": False}, "act.blocks.0.attn.scores"),
])
def test_planted_bug_is_found_where_it_starts(golden, tmp_path, capsys, bug, first):
    out, g, manifest = golden
    ours = run_decoder(g, manifest["config"]["model"], torch.float64, **bug)
    status, verdict = compare(out, ours, tmp_path / "buggy.safetensors", capsys)
    assert (status, verdict["passed"], verdict["first_divergence"]) == (1, False, first), verdict["first_divergence"]
    before = [r for r in verdict["tensors"] if r["name"].startswith("act.")]
    assert all(r["passed"] for r in before[: [r["name"] for r in before].index(first)])


# --------------------------------------------------------------------------- LOC A4, the group penalty


def group_penalty(pattern, block_id, target_block, lam, n_layers, causal=True, free_rows="own_block"):
    """ω = λ/(L·H·|rows|) Σ_rows Σ_{g≠g*(i), k_g>0} √k_g ‖A_{i, G_g ∩ vis(i)}‖₂ (specs/00-localist.md §2.3)."""
    _, heads, t, _ = pattern.shape
    target = torch.where(target_block >= 0, target_block, block_id) if free_rows == "own_block" else target_block
    rows = target >= 0  # (B, T)
    if not rows.any() or lam == 0.0:
        return pattern.sum() * 0.0
    visible = torch.tril(torch.ones(t, t, dtype=torch.bool)) if causal else torch.ones(t, t, dtype=torch.bool)
    n_blocks = int(block_id.max()) + 1
    member = block_id[:, :, None] == torch.arange(n_blocks)  # (B, T_key, NB)
    k = (visible[None, :, :, None] & member[:, None, :, :]).sum(2).to(pattern.dtype)  # (B, T, NB): visible keys per block
    off = (torch.arange(n_blocks) != target[..., None]) & (k > 0) & rows[..., None]  # (B, T, NB): groups summed
    squares = (pattern * visible) ** 2 @ member[:, None].to(pattern.dtype)  # (B, H, T, NB)
    norms = torch.sqrt(torch.where(off[:, None], squares, torch.ones_like(squares)))  # no sqrt at 0 outside the sum
    psi = (off[:, None] * k.sqrt()[:, None] * norms).sum()
    return lam / (n_layers * heads * int(rows.sum())) * psi


def test_loc_group_penalty_matches_golden(golden, tmp_path, capsys):
    out, g, manifest = golden
    settings = manifest["mechanisms"]["LOC"]["settings"]
    assert (settings["penalty_kind"], settings["group_weight"], settings["free_rows"]) == ("off_target", "sqrt_size",
                                                                                          "own_block")
    ours = {}
    for case in ("case0", "case1"):
        p = f"LOC.{case}."
        pattern = torch.tensor(g[p + "pattern"], requires_grad=True)
        omega = group_penalty(pattern, torch.tensor(g[p + "block_id"]), torch.tensor(g[p + "target_block"]),
                              settings["lam"], settings["n_layers"], settings["causal"], settings["free_rows"])
        omega.backward()
        ours[p + "group_penalty"] = omega.detach().reshape(1).numpy()
        ours[p + "group_penalty_grad"] = pattern.grad.numpy()
    status, verdict = compare(out, ours, tmp_path / "loc.safetensors", capsys)
    assert (status, verdict["passed"]) == (0, True), verdict
    assert len(verdict["tensors"]) == 4
