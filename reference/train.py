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

Speed: each batch is split into ``train.shards`` row shards whose gradients run
concurrently on a thread pool, one BLAS thread each (:mod:`reference.parallel`);
the thread count is chosen per run (``threads``, ``--threads``,
``CLEARFORM_THREADS``) and never changes a number. A step with plug-in terms
(a mechanism's bias or penalty, defined on the whole batch) runs as one shard
on the chosen number of BLAS threads. [reconstructed]
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference.backend import rng
from reference.checkpoint import CHECKPOINT_DIR, CheckpointError, load_checkpoint, save_checkpoint, save_weights
from reference.config import ConfigError, RunConfig, check_memory
from reference.data.batch import Batch, shift_targets
from reference.evaluation import evaluate, json_safe, unigram_loss
from reference.mechanisms import plugins_for
from reference.model import init_params, loss_and_grads
from reference.optim import AdamW, clip_by_global_norm, lr_at
from reference.parallel import choose_threads, shard_rows, sharded_loss_and_grads, tune_allocator
from reference.plugins import StepTerms, TrainingPlugin, combine_forward_kwargs, combine_terms

__all__ = [
    "Batch", "StepTerms", "Trainer", "TrainingDiverged", "TrainingPlugin", "TrainResult",
    "evaluate", "make_data", "prepare_run", "shift_targets", "unigram_loss",
]


class TrainingDiverged(RuntimeError):
    """The loss or a gradient became NaN or Inf; training stopped before the bad update."""


# --------------------------------------------------------------------------- data


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


# --------------------------------------------------------------------------- trainer


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

    ``plugins``: the :class:`~reference.plugins.TrainingPlugin` objects that add
    forward arguments and penalties to every step; their terms add up
    (:func:`reference.plugins.combine_terms`). None (the default) means the
    plug-ins the run's config switches on, from the mechanism registry
    (:func:`reference.mechanisms.plugins_for`); ``[]`` trains the plain model.

    ``threads``: how many threads a step may use (None: the automatic choice of
    :func:`reference.parallel.choose_threads`); results do not depend on it.
    """

    def __init__(
        self, run: RunConfig, run_dir: str | Path, *, progress: bool = True, plugins: Sequence[TrainingPlugin] | None = None,
        threads: int | None = None,
    ):
        """A fresh run: derived fields filled in, activation memory checked, parameters initialised from ``train.seed``."""
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self.run = prepare_run(run)
        check_memory(self.run.model, self.run.train.batch_size)
        t = self.run.train
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.plugins = plugins_for(self.run) if plugins is None else list(plugins)
        self.params = init_params(self.run.model, seed=t.seed)
        self.optimizer = AdamW.for_params(self.params, t.weight_decay, beta1=t.beta1, beta2=t.beta2, eps=t.adam_eps)
        self.step = 0
        self.generator = rng([t.seed, 1])
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "metrics.jsonl").write_text("")
        self._setup_data()

    @classmethod
    def resume(
        cls, run_dir: str | Path, *, progress: bool = True, plugins: Sequence[TrainingPlugin] | None = None,
        threads: int | None = None,
    ) -> Trainer:
        """Continue the run in ``run_dir`` from its checkpoint, with the config saved there."""
        self = cls.__new__(cls)
        self.threads = threads
        self._pool = None
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.params, self.run, opt_arrays, state = load_checkpoint(self.run_dir)
        self.plugins = plugins_for(self.run) if plugins is None else list(plugins)
        self.optimizer = AdamW.from_state(state["optimizer"], opt_arrays)
        self.step = int(state["step"])
        self.generator = rng(0)
        try:
            self.generator.bit_generator.state = state["rng"]
        except (ValueError, TypeError) as exc:  # check_rng_state passed, NumPy still refused it
            raise CheckpointError(f"{self.run_dir / CHECKPOINT_DIR}: rng state refused ({exc})") from None
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
        try:
            lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
            records = [json.loads(line) for line in lines if line]
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CheckpointError(f"{path}: not a metrics file clearform wrote ({exc.__class__.__name__})") from None
        if not all(isinstance(r, dict) and isinstance(r.get("step"), int) for r in records):
            raise CheckpointError(f"{path}: every line must be a JSON object with an integer 'step'")
        kept = [line for line, record in zip([x for x in lines if x], records) if record["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))

    def _log(self, record: dict) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(json_safe(record), allow_nan=False) + "\n")  # strict JSON: inf → null

    def checkpoint(self) -> None:
        state = {"step": self.step, "optimizer": self.optimizer.state_meta(), "rng": self.generator.bit_generator.state}
        save_checkpoint(self.run_dir, self.params, self.run, self.optimizer.state_arrays(), state)
        save_weights(self.run_dir, self.params, self.run)

    def evaluate(self) -> dict:
        kwargs = (lambda batch: combine_forward_kwargs([p.eval_kwargs(batch) for p in self.plugins])) if self.plugins else None
        result = evaluate(self.params, self.run, self.val, kwargs)
        result["unigram_loss"] = self.unigram
        return result

    # ---------------------------------------------------------------- the loop

    @contextlib.contextmanager
    def parallel(self) -> Iterator[None]:
        """Threads for the steps inside this block: the shard pool and the BLAS thread limit.

        Sharded steps (no plug-in terms) get one thread per shard, up to the chosen
        count, each with one BLAS thread; a one-shard step gets the chosen count as
        BLAS threads. Outside the block a step runs its shards one after the other.
        """
        from threadpoolctl import threadpool_limits

        tune_allocator()
        m, t = self.run.model, self.run.train
        shards = 1 if self.plugins else len(shard_rows(t.batch_size, t.shards))
        largest = t.batch_size * m.context * m.d_model * max(m.mlp_dim, m.vocab_size, 3 * m.n_heads * m.head_dim)
        threads = choose_threads(self.threads, shards=shards, largest_gemm=largest)
        self.active_threads = threads
        pool = ThreadPoolExecutor(threads, thread_name_prefix="shard") if threads > 1 and shards > 1 else None
        try:
            with threadpool_limits(limits=1 if shards > 1 else threads):
                self._pool = pool
                yield
        finally:
            self._pool = None
            if pool is not None:
                pool.shutdown()

    def train_step(self) -> dict:
        """One update; raises TrainingDiverged (parameters untouched) on a non-finite loss or gradient."""
        t = self.run.train
        batch = self.data.train_batch(self.step, t.batch_size, self.generator)
        terms = combine_terms([p.step_terms(self.step, batch, self.generator) for p in self.plugins] or [StepTerms()])
        if self.plugins:  # plug-in terms are defined on the whole batch: one shard
            loss, grads, _ = loss_and_grads(
                self.params, self.run.model, batch.inputs, batch.targets, extra_loss=terms.extra_loss, **terms.forward_kwargs
            )
        else:
            rows = shard_rows(t.batch_size, t.shards)
            loss, grads = sharded_loss_and_grads(self.params, self.run.model, batch.inputs, batch.targets, rows, self._pool)
        norm = clip_by_global_norm(grads, t.grad_clip)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            what = "loss" if not math.isfinite(loss) else "gradient norm"
            saved = self.run_dir / CHECKPOINT_DIR
            where = f"the last good checkpoint is in {saved}" if saved.is_dir() else "no checkpoint was written yet"
            raise TrainingDiverged(f"step {self.step + 1}: {what} is {loss if what == 'loss' else norm}; "
                                   f"stopped before updating; {where}")
        lr = lr_at(self.step, t.lr, t.warmup, t.steps, t.min_lr_ratio)
        self.optimizer.step(self.params, grads, lr, pool=self._pool)
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
        with contextlib.ExitStack() as stack:
            if bar is not None:
                stack.callback(bar.close)
            stack.enter_context(self.parallel())
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
        if not last_eval:
            last_eval = self.evaluate()
        return TrainResult(self.step, last_eval, self.run_dir)
