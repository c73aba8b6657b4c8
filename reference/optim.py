"""AdamW with decoupled weight decay, the learning-rate schedule, gradient clipping.

The optimiser state is plain arrays keyed by parameter name, so it saves to
safetensors next to the weights and resumes bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reference.backend import namespace


def lr_at(step: int, base_lr: float, warmup: int, total: int, min_ratio: float) -> float:
    """Learning rate for (0-based) ``step``: linear warmup, then cosine to ``base_lr·min_ratio``.

    warmup:  lr = base · (step + 1) / warmup                  for step < warmup
    cosine:  lr = min + ½ (base − min)(1 + cos(π · progress))  progress = (step − warmup) / (total − warmup)
    """
    if step < warmup:
        return base_lr * (step + 1) / warmup
    min_lr = base_lr * min_ratio
    span = max(total - warmup, 1)
    progress = min((step - warmup) / span, 1.0)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def global_norm(grads: Mapping[str, Any]) -> float:
    """√(Σ over every gradient entry of g²), accumulated in float64."""
    total = 0.0
    for g in grads.values():
        xp = namespace(g)
        total += float(xp.sum(xp.square(g.astype(xp.float64))))
    return math.sqrt(total)


def clip_by_global_norm(grads: dict[str, Any], max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most ``max_norm``; returns the norm before.

    ``max_norm`` 0 disables clipping. A non-finite norm is returned unchanged
    (the trainer's NaN guard acts on it).
    """
    norm = global_norm(grads)
    if max_norm > 0 and math.isfinite(norm) and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= g.dtype.type(scale)
    return norm


def decays_by_default(name: str, value: Any) -> bool:
    """[reconstructed] Weight decay applies to matrices (ndim ≥ 2: projections and embeddings), not to biases or gains."""
    return value.ndim >= 2


@dataclass
class ParamGroup:
    """Parameters that share weight decay and a learning-rate multiplier."""

    names: list[str]
    weight_decay: float
    lr_scale: float = 1.0


@dataclass
class AdamW:
    """AdamW (Loshchilov & Hutter) with decoupled weight decay.

    For each parameter θ with gradient g at step t (1-based)::

        m ← β1 m + (1 − β1) g          v ← β2 v + (1 − β2) g²
        m̂ = m / (1 − β1ᵗ)              v̂ = v / (1 − β2ᵗ)
        θ ← θ − lr·s · (m̂ / (√v̂ + ε) + wd · θ)

    where s is the group's ``lr_scale``. Groups can be added during a run
    (:meth:`add_group`); their moments start at zero and their own step
    counters start at their first update, so bias correction is right for them.
    """

    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    groups: list[ParamGroup] = field(default_factory=list)
    m: dict[str, Any] = field(default_factory=dict)
    v: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_params(cls, params: Mapping[str, Any], weight_decay: float, **kwargs: Any) -> AdamW:
        """One group of decayed matrices and one of undecayed vectors."""
        opt = cls(**kwargs)
        decayed = [n for n, p in params.items() if decays_by_default(n, p)]
        plain = [n for n, p in params.items() if not decays_by_default(n, p)]
        opt.add_group(decayed, params, weight_decay)
        opt.add_group(plain, params, 0.0)
        return opt

    def add_group(self, names: Iterable[str], params: Mapping[str, Any], weight_decay: float, lr_scale: float = 1.0) -> None:
        """Start optimising ``names`` (which must not be in another group) with fresh moments."""
        names = list(names)
        taken = {n for g in self.groups for n in g.names}
        clash = sorted(taken.intersection(names))
        if clash:
            raise ValueError(f"parameter {clash[0]!r} is already in an optimiser group")
        for name in names:
            xp = namespace(params[name])
            self.m[name] = xp.zeros_like(params[name])
            self.v[name] = xp.zeros_like(params[name])
            self.steps[name] = 0
        self.groups.append(ParamGroup(names, weight_decay, lr_scale))

    def step(self, params: dict[str, Any], grads: Mapping[str, Any], lr: float, *, pool: Any = None) -> None:
        """Update ``params`` in place from ``grads``.

        ``pool``: a ``concurrent.futures`` executor; each parameter's update is
        independent of the others', so they may run concurrently with the same result.
        """
        jobs = [(name, group.lr_scale * lr, group.weight_decay) for group in self.groups for name in group.names]
        if pool is None:
            for name, group_lr, decay in jobs:
                self._update(name, params[name], grads[name], group_lr, decay)
            return
        futures = [pool.submit(self._update, name, params[name], grads[name], group_lr, decay) for name, group_lr, decay in jobs]
        for f in futures:
            f.result()

    def _update(self, name: str, theta: Any, g: Any, lr: float, weight_decay: float) -> None:
        """One parameter's AdamW update, in place, in the order of the class docstring's formula.

        Written as in-place operations on one scratch array (``update``): the optimiser
        never runs under autograd, and at the sizes clearform trains its passes over
        memory are what it costs.
        """
        xp = namespace(theta)
        t = self.steps[name] + 1
        self.steps[name] = t
        m, v = self.m[name], self.v[name]
        m *= self.beta1
        m += (1.0 - self.beta1) * g                      # m ← β1 m + (1 − β1) g
        v *= self.beta2
        scratch = g * g
        scratch *= 1.0 - self.beta2
        v += scratch                                     # v ← β2 v + (1 − β2) g²
        m_hat_scale = 1.0 / (1.0 - self.beta1**t)
        v_hat_scale = 1.0 / (1.0 - self.beta2**t)
        update = v * v_hat_scale                         # v̂
        xp.sqrt(update, out=update)
        update += self.eps                               # √v̂ + ε
        xp.divide(m, update, out=update)
        update *= m_hat_scale                            # m̂ / (√v̂ + ε), m̂ = m / (1 − β1ᵗ)
        if weight_decay:
            update += weight_decay * theta
        update *= theta.dtype.type(lr)
        theta -= update

    # ------------------------------------------------------------------ state

    def state_arrays(self) -> dict[str, Any]:
        """Moments as a flat dict for safetensors: ``m.<name>``, ``v.<name>``."""
        out = {f"m.{k}": a for k, a in self.m.items()}
        out.update({f"v.{k}": a for k, a in self.v.items()})
        return out

    def state_meta(self) -> dict:
        """Everything else as JSON: hyperparameters, groups, per-parameter steps."""
        return {
            "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
            "groups": [{"names": g.names, "weight_decay": g.weight_decay, "lr_scale": g.lr_scale} for g in self.groups],
            "steps": dict(self.steps),
        }

    @staticmethod
    def check_state(meta: Any, arrays: Mapping[str, Any], params: Mapping[str, Any], step: int) -> None:
        """Raise ValueError (one line) unless ``meta`` and ``arrays`` are a valid state for ``params``.

        What :meth:`state_meta` writes: beta1, beta2 in [0, 1), eps > 0, groups whose names
        cover every parameter exactly once with finite weight decay and lr scale ≥ 0,
        per-parameter step counts in [0, ``step``]; and for each counted parameter the
        moments ``m.<name>``, ``v.<name>`` with its shape and dtype (``v`` ≥ 0), nothing else.
        """

        def number(value: Any, lo: float, hi: float, what: str, hi_open: bool = False) -> None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < lo or value > hi or (hi_open and value == hi):
                raise ValueError(f"{what} is not a number in [{lo}, {hi}{')' if hi_open else ']'}")

        if not isinstance(meta, dict) or sorted(meta) != ["beta1", "beta2", "eps", "groups", "steps"]:
            raise ValueError("expected exactly beta1, beta2, eps, groups, steps")
        number(meta["beta1"], 0.0, 1.0, "beta1", hi_open=True)
        number(meta["beta2"], 0.0, 1.0, "beta2", hi_open=True)
        number(meta["eps"], 0.0, math.inf, "eps")
        if not meta["eps"] > 0:
            raise ValueError("eps must be > 0")
        groups, seen = meta["groups"], []
        if not isinstance(groups, list) or not groups:
            raise ValueError("groups must be a non-empty list")
        for k, group in enumerate(groups):
            if not isinstance(group, dict) or sorted(group) != ["lr_scale", "names", "weight_decay"]:
                raise ValueError(f"group {k} must hold exactly names, weight_decay, lr_scale")
            if not isinstance(group["names"], list) or not all(isinstance(n, str) for n in group["names"]):
                raise ValueError(f"group {k}: names must be a list of parameter names")
            number(group["weight_decay"], 0.0, math.inf, f"group {k} weight_decay")
            number(group["lr_scale"], 0.0, math.inf, f"group {k} lr_scale")
            seen += group["names"]
        if len(seen) != len(set(seen)) or set(seen) != set(params):
            raise ValueError("the groups must name every parameter exactly once")
        steps = meta["steps"]
        if not isinstance(steps, dict) or not set(steps) <= set(params):
            raise ValueError("steps must map parameter names to step counts")
        for name, count in steps.items():
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= step:
                raise ValueError(f"steps of {name!r} is not an int in [0, {step}]")
        expected = {f"{kind}.{name}" for name in steps for kind in ("m", "v")}
        if set(arrays) != expected:
            odd = sorted(set(arrays) ^ expected)[0]
            raise ValueError(f"moment {odd!r} is {'missing' if odd in expected else 'unexpected'}")
        for key, value in arrays.items():
            target = params[key.split(".", 1)[1]]
            if tuple(value.shape) != tuple(target.shape) or value.dtype != target.dtype:
                have, need = f"{value.dtype}{tuple(value.shape)}", f"{target.dtype}{tuple(target.shape)}"
                raise ValueError(f"moment {key!r} is {have}, its parameter {need}")
            if key.startswith("v.") and not bool((value >= 0).all()):
                raise ValueError(f"moment {key!r} has negative entries (a second moment is ≥ 0)")

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, Any]) -> AdamW:
        """Rebuild from :meth:`state_meta` and :meth:`state_arrays` output."""
        opt = cls(beta1=meta["beta1"], beta2=meta["beta2"], eps=meta["eps"])
        opt.groups = [ParamGroup(list(g["names"]), g["weight_decay"], g["lr_scale"]) for g in meta["groups"]]
        opt.steps = {k: int(v) for k, v in meta["steps"].items()}
        for name in opt.steps:
            opt.m[name] = arrays[f"m.{name}"]
            opt.v[name] = arrays[f"v.{name}"]
        return opt
