"""The training loop: data, evaluation, metrics, checkpoints, exact resume.

A run lives in one folder::

    DIR/config.json, DIR/model.safetensors    the latest weights (for eval / generate)
    DIR/checkpoint/                           weights + optimiser + RNG state (for resume)
    DIR/metrics.jsonl                         one JSON object per line (see ``Trainer``)

Determinism: the seed fixes initialisation, data and batch order. Batch k of
the toy world is documents k·B … k·B + B − 1 of (train, seed); text batches
are drawn from a seeded generator whose state is checkpointed. Nothing else
is random, so two runs with one seed write identical metrics, and a resumed
run continues exactly where a straight run would be.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from reference.backend import rng
from reference.checkpoint import CHECKPOINT_DIR, load_checkpoint, save_checkpoint, save_weights
from reference.config import ConfigError, RunConfig
from reference.layers.loss import IGNORE, cross_entropy_forward
from reference.model import forward, init_params, loss_and_grads
from reference.optim import AdamW, clip_by_global_norm, lr_at


class TrainingDiverged(RuntimeError):
    """The loss or a gradient became NaN or Inf; training stopped before the bad update."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Batch:
    """One batch of next-token pairs.

    inputs (B, T−1) int, targets (B, T−1) int with IGNORE (−1) at padding.
    ``docs`` is the toy world's ground truth for these rows (a ``ToyBatch``
    whose (B, T) fields are aligned with ``inputs`` on their first T − 1
    positions), or None for text data.
    """

    inputs: np.ndarray
    targets: np.ndarray
    docs: Any = None


def shift_targets(tokens: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Next-token pairs: inputs tokens[:, :-1], targets tokens[:, 1:] with padding → IGNORE.

    tokens, valid (B, T) -> inputs (B, T−1), targets (B, T−1).
    """
    targets = np.where(valid[:, 1:], tokens[:, 1:], IGNORE)
    return tokens[:, :-1], targets


class ToyWorldData:
    """Batches of toy-world documents (see ``reference.data.toyworld``)."""

    def __init__(self, run: RunConfig):
        from reference.data.toyworld import ToyWorld

        self.world = ToyWorld(run.toyworld)
        self.seed = run.train.seed
        self.vocab_size = len(self.world.vocab)

    def train_batch(self, step: int, batch_size: int, generator: np.random.Generator) -> Batch:
        """Batch ``step`` (0-based): training documents step·B … step·B + B − 1."""
        docs = self.world.documents(batch_size, self.seed, split="train", start=step * batch_size)
        return Batch(*shift_targets(docs.tokens, docs.valid), docs)

    def val_batches(self, n_batches: int, batch_size: int) -> list[Batch]:
        """Held-out documents 0 … n·B − 1 of (heldout, seed), never seen in training."""
        return [
            Batch(*shift_targets(docs.tokens, docs.valid), docs)
            for docs in (
                self.world.documents(batch_size, self.seed, split="heldout", start=k * batch_size) for k in range(n_batches)
            )
        ]


class TextData:
    """Windows of a UTF-8 file under the byte tokenizer (vocabulary 256).

    The last ``heldout_fraction`` of the bytes is validation; training windows
    start at positions drawn uniformly from the rest by the trainer's generator.
    """

    vocab_size = 256

    def __init__(self, run: RunConfig):
        path = Path(run.data.path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"data.path: cannot read {str(path)!r} ({exc.strerror})") from None
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"data.path: {str(path)!r} is not UTF-8 (byte {exc.start})") from None
        self.window = run.model.context + 1
        ids = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
        split = int(len(ids) * (1.0 - run.data.heldout_fraction))
        self.train_ids, self.val_ids = ids[:split], ids[split:]
        for name, part in (("training", self.train_ids), ("held-out", self.val_ids)):
            if len(part) < self.window:
                raise ConfigError(
                    f"data.path: the {name} part of {str(path)!r} has {len(part)} bytes, fewer than context + 1 = {self.window}"
                )

    def _windows(self, ids: np.ndarray, starts: np.ndarray) -> Batch:
        rows = ids[starts[:, None] + np.arange(self.window)[None, :]]
        return Batch(rows[:, :-1], rows[:, 1:])

    def train_batch(self, step: int, batch_size: int, generator: np.random.Generator) -> Batch:
        starts = generator.integers(0, len(self.train_ids) - self.window + 1, size=batch_size)
        return self._windows(self.train_ids, starts)

    def val_batches(self, n_batches: int, batch_size: int) -> list[Batch]:
        """Evenly spaced windows of the held-out part."""
        starts = np.linspace(0, len(self.val_ids) - self.window, n_batches * batch_size).astype(np.int64)
        return [self._windows(self.val_ids, starts[i : i + batch_size]) for i in range(0, len(starts), batch_size)]


def make_data(run: RunConfig):
    """The data source named by ``run.data``."""
    return TextData(run) if run.data.source == "text" else ToyWorldData(run)


def prepare_run(run: RunConfig) -> RunConfig:
    """Fill the derived fields: the model's vocabulary comes from the data, the world's context is the model's.

    The model reads T − 1 tokens of a T-token document, so the toy world's
    ``context`` is set to the model's and inputs have length context − 1.
    """
    if run.data.source == "toyworld":
        run = dataclasses.replace(run, toyworld=run.toyworld.replace(context=run.model.context))
    data = make_data(run)
    # dataclasses.replace keeps every other section (a mechanism's, say) as it is.
    return dataclasses.replace(run, model=run.model.replace(vocab_size=data.vocab_size))


# --------------------------------------------------------------------------- evaluation


def unigram_loss(batches: list[Batch]) -> float:
    """Cross-entropy (nats) of the targets under their own empirical unigram distribution.

    It is the best any context-free predictor can do on exactly these
    targets, the baseline the demo's loss is compared with.
    """
    targets = np.concatenate([b.targets[b.targets != IGNORE] for b in batches])
    counts = np.bincount(targets).astype(np.float64)
    probs = counts[counts > 0] / counts.sum()
    return float(-(probs * np.log(probs)).sum())


def evaluate(
    params: dict, run: RunConfig, batches: list[Batch], forward_kwargs: Callable[[Batch], dict] | None = None
) -> dict:
    """Mean loss (nats per counted token), perplexity and next-token accuracy on ``batches``.

    ``forward_kwargs(batch)`` may supply per-batch forward arguments (an
    attention bias, say), as a plug-in does in training.
    """
    total_loss, total_correct, total_count = 0.0, 0, 0
    for batch in batches:
        inputs, targets = batch.inputs, batch.targets
        kwargs = forward_kwargs(batch) if forward_kwargs else {}
        logits, _ = forward(params, run.model, inputs, **kwargs)
        loss, cache = cross_entropy_forward(logits, targets)
        count = int(cache["counted"].sum())
        total_loss += float(loss) * count
        counted = targets != IGNORE
        total_correct += int(((np.asarray(logits).argmax(-1) == targets) & counted).sum())
        total_count += count
    mean = total_loss / max(total_count, 1)
    return {"val_loss": mean, "val_perplexity": math.exp(mean), "val_accuracy": total_correct / max(total_count, 1)}


# --------------------------------------------------------------------------- trainer


@dataclass
class StepTerms:
    """What a plug-in adds to one training step.

    forward_kwargs: extra arguments of :func:`reference.model.forward`
        (``attn_bias``, ``temperature`` ...).
    extra_loss: ``activations -> (value, {hook name: gradient})``, a penalty
        on recorded activations whose gradients enter the backward pass.
    record: metric values to add to this step's metrics line.
    """

    forward_kwargs: dict = field(default_factory=dict)
    extra_loss: Callable | None = None
    record: dict = field(default_factory=dict)


class TrainingPlugin(Protocol):
    """A mechanism that shapes training without forking the loop (LOC's dial, say).

    ``step_terms`` is called once per step with the batch and the trainer's
    checkpointed generator (draw from it, never from global state, so runs
    stay deterministic and resumable). ``eval_kwargs`` gives the forward
    arguments used for validation batches.
    """

    def step_terms(self, step: int, batch: Batch, generator: np.random.Generator) -> StepTerms: ...

    def eval_kwargs(self, batch: Batch) -> dict: ...


@dataclass
class TrainResult:
    step: int
    final_eval: dict
    run_dir: Path


class Trainer:
    """Trains the model of a :class:`RunConfig`, writing into ``run_dir``.

    metrics.jsonl lines:
      * every ``log_every`` steps: ``{"step", "loss", "lr", "grad_norm"}``;
      * every ``eval_every`` steps and at the end: ``{"step", "val_loss",
        "val_perplexity", "val_accuracy", "unigram_loss"}``.
    ``step`` counts completed updates. No wall-clock times are written, so
    equal seeds give byte-identical files.

    ``plugin`` (optional, a :class:`TrainingPlugin`) lets a mechanism add
    forward arguments and a penalty to every step.
    """

    def __init__(self, run: RunConfig, run_dir: str | Path, *, progress: bool = True, plugin: TrainingPlugin | None = None):
        """A fresh run: derived fields filled in, parameters initialised from ``train.seed``."""
        self.run = prepare_run(run)
        t = self.run.train
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.plugin = plugin
        self.params = init_params(self.run.model, seed=t.seed)
        self.optimizer = AdamW.for_params(self.params, t.weight_decay, beta1=t.beta1, beta2=t.beta2, eps=t.adam_eps)
        self.step = 0
        self.generator = rng([t.seed, 1])
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "metrics.jsonl").write_text("")
        self._setup_data()

    @classmethod
    def resume(cls, run_dir: str | Path, *, progress: bool = True, plugin: TrainingPlugin | None = None) -> Trainer:
        """Continue the run in ``run_dir`` from its checkpoint, with the config saved there."""
        self = cls.__new__(cls)
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.plugin = plugin
        self.params, self.run, opt_arrays, state = load_checkpoint(self.run_dir)
        self.optimizer = AdamW.from_state(state["optimizer"], opt_arrays)
        self.step = int(state["step"])
        self.generator = rng(0)
        self.generator.bit_generator.state = state["rng"]
        self._truncate_metrics(self.step)
        self._setup_data()
        return self

    def _setup_data(self) -> None:
        self.data = make_data(self.run)
        self.val = self.data.val_batches(self.run.train.eval_batches, self.run.train.batch_size)
        self.unigram = unigram_loss(self.val)

    # ---------------------------------------------------------------- bookkeeping

    def _truncate_metrics(self, step: int) -> None:
        """Drop metric lines written after the checkpoint, so a resumed file equals a straight one."""
        path = self.run_dir / "metrics.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        kept = [line for line in lines if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))

    def _log(self, record: dict) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def checkpoint(self) -> None:
        state = {"step": self.step, "optimizer": self.optimizer.state_meta(), "rng": self.generator.bit_generator.state}
        save_checkpoint(self.run_dir, self.params, self.run, self.optimizer.state_arrays(), state)
        save_weights(self.run_dir, self.params, self.run)

    def evaluate(self) -> dict:
        result = evaluate(self.params, self.run, self.val, self.plugin.eval_kwargs if self.plugin else None)
        result["unigram_loss"] = self.unigram
        return result

    # ---------------------------------------------------------------- the loop

    def train_step(self) -> dict:
        """One update; raises TrainingDiverged (parameters untouched) on a non-finite loss or gradient."""
        t = self.run.train
        batch = self.data.train_batch(self.step, t.batch_size, self.generator)
        terms = self.plugin.step_terms(self.step, batch, self.generator) if self.plugin else StepTerms()
        loss, grads, _ = loss_and_grads(
            self.params, self.run.model, batch.inputs, batch.targets, extra_loss=terms.extra_loss, **terms.forward_kwargs
        )
        norm = clip_by_global_norm(grads, t.grad_clip)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            what = "loss" if not math.isfinite(loss) else "gradient norm"
            raise TrainingDiverged(
                f"step {self.step + 1}: {what} is {loss if what == 'loss' else norm}; stopped before updating. "
                f"The last good checkpoint is in {self.run_dir / CHECKPOINT_DIR}"
            )
        lr = lr_at(self.step, t.lr, t.warmup, t.steps, t.min_lr_ratio)
        self.optimizer.step(self.params, grads, lr)
        self.step += 1
        return {"step": self.step, "loss": loss, "lr": lr, "grad_norm": norm, **terms.record}

    def train(self, until: int | None = None) -> TrainResult:
        """Train up to step ``until`` (default: ``train.steps``), checkpointing on the way and at the end."""
        t = self.run.train
        stop = t.steps if until is None else min(until, t.steps)
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=stop, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        last_eval: dict = {}
        try:
            while self.step < stop:
                record = self.train_step()
                if self.step % t.log_every == 0 or self.step == t.steps:
                    self._log(record)
                if (t.eval_every and self.step % t.eval_every == 0) or self.step == t.steps:
                    last_eval = self.evaluate()
                    self._log({"step": self.step, **last_eval})
                if (t.checkpoint_every and self.step % t.checkpoint_every == 0) or self.step == stop:
                    self.checkpoint()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", **({"val": f"{last_eval['val_loss']:.3f}"} if last_eval else {}))
        finally:
            if bar is not None:
                bar.close()
        if not last_eval:
            last_eval = self.evaluate()
        return TrainResult(self.step, last_eval, self.run_dir)
