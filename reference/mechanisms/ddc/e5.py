"""A4 on the growing model: train with the INCRT gate growing and pruning heads (spec §3 A4, §5.2 E5) [reconstructed].

One run: toy-world batches (preset ``ddc``: V = 371, context 64), the growing model of
:mod:`~reference.mechanisms.ddc.grown`, AdamW (lr 10⁻³, weight decay 0.01 on matrices, clip 1.0,
prototypes at ρ·lr, the DDCL τ frozen unless ``ddcl_tau_mode`` says otherwise, head τ_h learned and
clamped), calibration A2 before the first step (k-means++ prototypes and τ₀ = 2λ_max(Σ₀) per layer,
layer by layer on the first batch; Γ_ℓ = median ‖A_res‖_F over ``calib_batches`` batches), then a
gate call per layer every ``grow_every`` steps after the optimiser step, on a fresh no-grad forward
of the same batch (the loss on that batch is recorded before and after each growth).

The run's state — parameters, AdamW moments and step counters, every layer's gate (E, trackers,
thresholds, heads, counters, RNG), the head-init RNG, the step — is :func:`save_checkpoint`-ed as
``.npz`` + ``.json``, and :func:`train` resumes from it with the same remaining trace.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference.data.toyworld.presets import world_from_preset
from reference.layers.loss import cross_entropy_forward
from reference.mechanisms.ddc.block import losses
from reference.mechanisms.ddc.config import DDCConfig
from reference.mechanisms.ddc.gate import GateState, calibrate, gate_call, projector, residual_operator, unit
from reference.mechanisms.ddc.grown import forward, gate_inputs, init_model, loss_and_grads
from reference.mechanisms.ddc.growth import add_head, head_ids, head_params, head_prefix, remove_head
from reference.mechanisms.ddc.heads import head_m_a, new_head
from reference.mechanisms.ddc.theory import covariance, separation
from reference.optim import AdamW, ParamGroup, clip_by_global_norm, lr_at

PRESET = "ddc"


@dataclass(frozen=True)
class E5Settings:
    """A run's size: ``steps``, ``batch``, ``lr``, ``warmup``, ``log_every``, ``n_layers``; ``grow`` False: fixed heads."""

    steps: int = 3000
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 100
    log_every: int = 25
    n_layers: int = 2
    grow: bool = True
    val_batches: int = 4


def _batch(world: Any, settings: E5Settings, seed: int, index: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    b = world.documents(settings.batch, seed, split, index * settings.batch)
    tokens = np.asarray(b.tokens, dtype=np.int64)
    targets = np.where(np.asarray(b.valid)[:, 1:], tokens[:, 1:], -1)
    return tokens[:, :-1], targets


def kmeanspp(z: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on rows of z (n, d): first centre uniform, then ∝ squared distance to the nearest chosen."""
    centres = [z[rng.integers(len(z))]]
    for _ in range(k - 1):
        d2 = np.min(((z[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        total = d2.sum()
        centres.append(z[rng.choice(len(z), p=d2 / total)] if total > 0 else z[rng.integers(len(z))])
    return np.array(centres)


def _head_tensors(cfg: DDCConfig, context: int, rng: np.random.Generator, init: str, v: np.ndarray | None = None,
                  c: np.ndarray | None = None, e: np.ndarray | None = None) -> dict[str, np.ndarray]:
    d, dk = cfg.d_model, cfg.d_k
    dv = cfg.d_v or dk
    t = new_head(d, dk, dv, context, rng, "author" if init == "author" else "function_preserving", cfg.new_head_out_scale)
    if init == "eigen_seed" and v is not None and c is not None and e is not None:
        p = projector(e, d)
        w_vecs = np.linalg.eigh(p @ c @ p)[1][:, ::-1]
        w = next((unit(x - (x @ v) * v) for x in w_vecs.T if np.linalg.norm(x - (x @ v) * v) > 1e-8), None)
        if w is not None:
            t["w_q"][:, 0], t["w_k"][:, 0] = cfg.eigen_seed_eps * v, cfg.eigen_seed_eps * w
    return t


class Run:
    """One E5 run's state (model, optimiser, gates, RNGs, logs); :meth:`step` advances it by one optimiser step."""

    def __init__(self, cfg: DDCConfig, settings: E5Settings, seed: int) -> None:
        self.cfg, self.settings, self.seed = cfg, settings, seed
        self.world = world_from_preset(PRESET)
        self.context = self.world.documents(1, seed).tokens.shape[1] - 1
        self.rng = np.random.default_rng([seed, 5])
        self.params = init_model(self.world.V, self.context, cfg.d_model, settings.n_layers, cfg.n_prototypes, self.rng)
        for i in range(settings.n_layers):
            for j in range(cfg.initial_heads):
                for name, value in _head_tensors(cfg, self.context, self.rng, "author").items():
                    self.params[head_prefix(i, j) + name] = value
        self.step_no = 0
        self.gate_calls = 0
        self.metrics: list[dict[str, Any]] = []
        self.trace: list[dict[str, Any]] = []
        self._calibrate()
        self.opt = AdamW()
        names = [n for n in self.params if ".attn.h" not in n]
        self._add_groups(names)
        for i in range(settings.n_layers):
            for j in head_ids(self.params, i):
                self._add_groups([n for n in self.params if n.startswith(head_prefix(i, j))])

    # ------------------------------------------------------------------ set-up

    def _add_groups(self, names: list[str]) -> None:
        cfg = self.cfg
        frozen = cfg.ddcl_tau_mode == "frozen"
        mats = [n for n in names if self.params[n].ndim >= 2 and not n.endswith("prototypes")]
        protos = [n for n in names if n.endswith("prototypes")]
        vecs = [n for n in names if self.params[n].ndim < 2 and not (n.endswith("ddcl.log_tau") and frozen)
                and not (n.endswith("log_tau") and ".attn.h" in n and not cfg.attn_tau_learnable)]
        for group, decay, scale in ((mats, self.settings.weight_decay, 1.0), (protos, 0.0, cfg.proto_lr_ratio), (vecs, 0.0, 1.0)):
            if group:
                self.opt.add_group(group, self.params, decay, scale)

    def _calibrate(self) -> None:
        cfg, s = self.cfg, self.settings
        tokens, _ = _batch(self.world, s, self.seed, 0)
        for i in range(s.n_layers):  # DDCL: k-means++ and τ₀ = 2λ_max(Σ₀), layer by layer
            _, cache = forward(self.params, tokens)
            z = np.asarray(cache["layers"][i]["ddcl"]["z"]).reshape(-1, cfg.d_model)
            if cfg.ddcl_init == "kmeanspp":
                self.params[f"blocks.{i}.ddcl.prototypes"] = kmeanspp(z, cfg.n_prototypes, self.rng)
            else:
                noise = self.rng.standard_normal((cfg.n_prototypes, z.shape[1]))
                self.params[f"blocks.{i}.ddcl.prototypes"] = z.mean(0) + 1e-3 * noise
            tau0 = 2 * float(np.linalg.eigvalsh(covariance(z))[-1]) if cfg.ddcl_tau_init == "auto" else float(cfg.ddcl_tau_init)
            self.params[f"blocks.{i}.ddcl.log_tau"] = np.full(1, math.log(tau0))
        ops: list[list[np.ndarray]] = [[] for _ in range(s.n_layers)]
        for b in range(cfg.calib_batches):
            tokens, _ = _batch(self.world, s, self.seed, b)
            _, cache = forward(self.params, tokens)
            for i in range(s.n_layers):
                c, heads = gate_inputs(cache, self.params, i)
                ops[i].append(residual_operator(c, sum(heads.values()), np.zeros((cfg.d_model, 0)), cfg.gate_operator))
        gammas = [calibrate(o) for o in ops]
        if not cfg.calibrate_per_layer:
            gammas = [gammas[0]] * s.n_layers
        self.gates = [GateState.new(cfg.d_model, gammas[i], cfg, seed=self.seed * 1000 + i, n_heads=cfg.initial_heads)
                      for i in range(s.n_layers)]

    # ------------------------------------------------------------------ training

    def step(self) -> bool:
        """One optimiser step (and a gate call after it every ``grow_every``); False when the loss is not finite."""
        cfg, s = self.cfg, self.settings
        tokens, targets = _batch(self.world, s, self.seed, self.step_no)
        total, task, grads, cache = loss_and_grads(self.params, tokens, targets, cfg.ddcl_beta, cfg.ddcl_loss)
        if not math.isfinite(total):
            return False
        live = {n for g in self.opt.groups for n in g.names}
        clip_by_global_norm({n: grads[n] for n in live}, 1.0)
        self.opt.step(self.params, grads, lr_at(self.step_no, s.lr, s.warmup, s.steps, 0.1))
        lo, hi = cfg.attn_tau_clamp
        for n in self.params:
            if ".attn.h" in n and n.endswith("log_tau"):
                np.clip(self.params[n], math.log(lo), math.log(hi), out=self.params[n])
        if self.step_no % s.log_every == 0 or self.step_no == s.steps - 1:
            self._log(total, task, cache)
        if s.grow and self.step_no % cfg.grow_every == 0:
            self._gate(tokens, targets)
        self.step_no += 1
        return True

    def _log(self, total: float, task: float, cache: dict) -> None:
        row: dict[str, Any] = {"step": self.step_no, "loss": total, "task_loss": task, "layers": []}
        for i, layer in enumerate(cache["layers"]):
            z = np.asarray(layer["ddcl"]["z"]).reshape(-1, self.cfg.d_model)
            p = self.params[f"blocks.{i}.ddcl.prototypes"]
            tau = float(np.exp(self.params[f"blocks.{i}.ddcl.log_tau"][0]))
            out = losses(z, p, tau)
            lq, ols, v = float(out["lq"].mean()), float(out["ols"].mean()), float(out["v"].mean())
            lam = float(np.linalg.eigvalsh(covariance(z))[-1])
            row["layers"].append({
                "lq": lq, "ols": ols, "v": v, "identity_residual": abs(lq - ols - v), "sep": separation(p),
                "usage": out["q"].mean(0).tolist(), "kappa": tau / (4 * lam), "heads": len(head_ids(self.params, i)),
                "tau_h": [float(np.exp(self.params[head_prefix(i, j) + "log_tau"][0])) for j in head_ids(self.params, i)],
                "head_ids": head_ids(self.params, i)})
        self.metrics.append(row)

    def _gate(self, tokens: np.ndarray, targets: np.ndarray) -> None:
        """One gate call per layer (A3) on a fresh forward of this batch; events carry the same-batch loss around them."""
        cfg = self.cfg
        logits, cache = forward(self.params, tokens)
        before = float(cross_entropy_forward(logits, targets)[0])
        for i, gate in enumerate(self.gates):
            c, heads = gate_inputs(cache, self.params, i)

            def on_grow(v: np.ndarray, state: GateState, i: int = i, c: np.ndarray = c) -> np.ndarray:
                tensors = _head_tensors(cfg, self.context, self.rng, cfg.new_head_init, v, c, state.e[:, :-1])
                add_head(self.params, self.opt, i, state.heads[-1].id, tensors, self.settings.weight_decay)
                return head_m_a(head_params(self.params, i, state.heads[-1].id))

            def on_prune(head_id: int, i: int = i) -> None:
                remove_head(self.params, self.opt, i, head_id)

            row = {"layer": i, "step": self.step_no, **gate_call(gate, c, heads, cfg, on_grow=on_grow, on_prune=on_prune)}
            if row["events"]:
                logits, cache = forward(self.params, tokens)  # later layers see the changed model
                after = float(cross_entropy_forward(logits, targets)[0])
                for event in row["events"]:
                    event.update(loss_before=before, loss_after=after)
                before = after
            self.trace.append(row)
        self.gate_calls += 1

    def val_loss(self) -> float:
        """Mean task loss over ``val_batches`` held-out batches."""
        s = self.settings
        vals = []
        for b in range(s.val_batches):
            tokens, targets = _batch(self.world, s, self.seed, b, "heldout")
            vals.append(float(cross_entropy_forward(forward(self.params, tokens)[0], targets)[0]))
        return float(np.mean(vals))

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, path: str | Path) -> None:
        """``path.npz`` (parameters and AdamW moments) and ``path.json`` (everything else)."""
        path = Path(path)
        arrays = {f"p/{n}": v for n, v in self.params.items()}
        arrays |= {f"m/{n}": v for n, v in self.opt.m.items()} | {f"v/{n}": v for n, v in self.opt.v.items()}
        np.savez(path.with_suffix(".npz"), **arrays)
        meta = {"step": self.step_no, "gate_calls": self.gate_calls, "rng": self.rng.bit_generator.state,
                "opt_steps": self.opt.steps, "groups": [[g.names, g.weight_decay, g.lr_scale] for g in self.opt.groups],
                "gates": [g.to_state() for g in self.gates]}
        path.with_suffix(".json").write_text(json.dumps(meta))

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore what :meth:`save_checkpoint` wrote (logs restart empty)."""
        path = Path(path)
        with np.load(path.with_suffix(".npz")) as data:
            self.params = {k[2:]: data[k].copy() for k in data.files if k.startswith("p/")}
            m = {k[2:]: data[k].copy() for k in data.files if k.startswith("m/")}
            v = {k[2:]: data[k].copy() for k in data.files if k.startswith("v/")}
        meta = json.loads(path.with_suffix(".json").read_text())
        self.step_no, self.gate_calls = meta["step"], meta["gate_calls"]
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = meta["rng"]
        self.opt = AdamW(groups=[ParamGroup(list(n), d, s) for n, d, s in meta["groups"]], m=m, v=v,
                         steps={k: int(x) for k, x in meta["opt_steps"].items()})
        self.gates = [GateState.from_state(g) for g in meta["gates"]]
        self.metrics, self.trace = [], []


def train(cfg: DDCConfig, settings: E5Settings, seed: int, *, resume: str | Path | None = None,
          stop_at: int | None = None, checkpoint_at: int | None = None, checkpoint_path: str | Path | None = None) -> Run:
    """Train one run to ``settings.steps`` (or ``stop_at``), optionally from a checkpoint and writing one at a step."""
    run = Run(cfg, settings, seed)
    if resume is not None:
        run.load_checkpoint(resume)
    end = settings.steps if stop_at is None else stop_at
    while run.step_no < end:
        if checkpoint_at is not None and run.step_no == checkpoint_at and checkpoint_path is not None:
            run.save_checkpoint(checkpoint_path)
        if not run.step():
            break
    return run
