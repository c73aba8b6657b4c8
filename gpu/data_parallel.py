"""Data parallelism over several GPUs: the CPU path's shard / all-reduce step, with NCCL as the all-reduce.

Status: a design, tested on the CPU (world size 1 bit for bit against the plain step; world size 2
and 3 with an in-process all-reduce bit for bit against ``reference.parallel.sharded_loss_and_grads``);
not yet run on GPUs. Launch (one process per GPU, from the repository root)::

    PYTHONPATH=$PWD python -m gpu.data_parallel --gpus 2 --preset locality_tiny --steps 150 --out runs/dp

The structure is :func:`reference.parallel.sharded_loss_and_grads`'s, with ranks for threads. Every
rank holds the same parameters and optimiser state and draws the same batch (the data source is
seeded: batch k is the same on every rank); rank r takes row shard r of ``shard_rows(B, W)`` and
computes its loss and gradients; with n_r counted targets on rank r and N = Σ n_r::

    loss  = Σ_r (n_r / N) · loss_r          grads = Σ_r (n_r / N) · grads_r

One all-reduce of the counts gives every rank N, each rank scales its own terms by n_r / N, and one
all-reduce per dtype over the flat gradient buffer (plus one for the loss) sums them. Every rank then
clips and steps AdamW on identical gradients, so the parameters stay identical with no broadcast.
Summed in rank order (the CPU tests' group) this is the thread path's arithmetic exactly; NCCL's ring
may add in another order, so on GPUs ranks agree bit for bit with each other and with the
single-device run up to float reassociation. [reconstructed]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from reference.backend import namespace
from reference.config import ConfigError
from reference.layers.loss import IGNORE
from reference.model import loss_and_grads
from reference.parallel import shard_rows


class Communicator(Protocol):
    """What a data-parallel step needs of its process group."""

    rank: int
    world: int

    def all_reduce_sum(self, buffer: Any) -> None:
        """Replace ``buffer`` (a contiguous 1-D array, the same shape and dtype on every rank) by its sum over ranks."""


class Alone:
    """World size 1: the all-reduce is the identity."""

    rank, world = 0, 1

    def all_reduce_sum(self, buffer: Any) -> None:
        return None


class NcclGroup:
    """One rank of an NCCL process group on the current CuPy device (``cupy.cuda.nccl``)."""

    def __init__(self, world: int, rank: int, unique_id: Any):
        from cupy.cuda import nccl

        self.nccl, self.world, self.rank = nccl, world, rank
        self.comm = nccl.NcclCommunicator(world, unique_id, rank)

    def all_reduce_sum(self, buffer: Any) -> None:
        import cupy

        kinds = {np.dtype(np.float32): self.nccl.NCCL_FLOAT32, np.dtype(np.float64): self.nccl.NCCL_FLOAT64,
                 np.dtype(np.int64): self.nccl.NCCL_INT64}
        stream = cupy.cuda.get_current_stream()
        self.comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, kinds[buffer.dtype], self.nccl.NCCL_SUM, stream.ptr)
        stream.synchronize()


def data_parallel_loss_and_grads(params: dict, config: Any, inputs: Any, targets: Any, group: Communicator) -> tuple[float, dict]:
    """This rank's share of the batch's loss and gradients, summed over the group (see the module docstring).

    inputs, targets (B, T): the whole batch, the same on every rank; B ≥ world size.
    """
    if inputs.shape[0] < group.world:
        raise ConfigError(f"train.batch_size: {inputs.shape[0]} rows cannot be split over {group.world} devices")
    rows = shard_rows(inputs.shape[0], group.world)[group.rank]
    xp = namespace(inputs)
    if group.world == 1:  # the plain step, bit for bit (as sharded_loss_and_grads with one shard)
        loss, grads, _ = loss_and_grads(params, config, inputs, targets)
        return loss, grads
    loss, grads, _ = loss_and_grads(params, config, inputs[rows], targets[rows])
    counts = xp.zeros(group.world, dtype=np.int64)
    counts[group.rank] = int((targets[rows] != IGNORE).sum())
    group.all_reduce_sum(counts)
    total = int(counts.sum())
    weight = int(counts[group.rank]) / total if total else 0.0

    names = sorted(grads)
    out: dict[str, Any] = {}
    for dtype in sorted({grads[n].dtype.str for n in names}):
        part = [n for n in names if grads[n].dtype.str == dtype]
        flat = xp.concatenate([(grads[n] * grads[n].dtype.type(weight)).reshape(-1) for n in part])
        group.all_reduce_sum(flat)
        offset = 0
        for n in part:
            size = math.prod(grads[n].shape)
            out[n] = flat[offset : offset + size].reshape(grads[n].shape)
            offset += size
    summed = xp.asarray([weight * loss], dtype=np.float64)
    group.all_reduce_sum(summed)
    return float(summed[0]), out


def train_step(trainer: Any, group: Communicator) -> dict:
    """One update of a :class:`gpu.trainer.DeviceTrainer` with the data-parallel gradients (no plug-ins).

    The Trainer's own step with :func:`data_parallel_loss_and_grads` for its sharded gradients: the
    same batch, clipping, learning rate and AdamW update, on every rank.
    """
    from reference.optim import clip_by_global_norm, lr_at
    from reference.train import TrainingDiverged

    if trainer.plugins:
        raise ConfigError("data parallelism: plug-in terms (a mechanism's bias or penalty) are defined on the whole batch")
    t = trainer.run.train
    batch = trainer.data.train_batch(trainer.step, t.batch_size, trainer.generator)
    loss, grads = data_parallel_loss_and_grads(trainer.params, trainer.run.model, batch.inputs, batch.targets, group)
    norm = clip_by_global_norm(grads, t.grad_clip)
    if not (math.isfinite(loss) and math.isfinite(norm)):
        raise TrainingDiverged(f"step {trainer.step + 1}: loss {loss}, gradient norm {norm}; stopped before updating")
    lr = lr_at(trainer.step, t.lr, t.warmup, t.steps, t.min_lr_ratio)
    trainer.optimizer.step(trainer.params, grads, lr)
    trainer.step += 1
    return {"step": trainer.step, "loss": loss, "lr": lr, "grad_norm": norm}


def _rank_main(rank: int, world: int, unique_id: Any, overrides: dict, out: str) -> None:
    """One process of the launch: its GPU, its NCCL rank, the Trainer on the device; rank 0 logs and checkpoints."""
    import cupy

    from gpu.trainer import DeviceTrainer
    from reference.config import RunConfig

    cupy.cuda.Device(rank).use()
    group = NcclGroup(world, rank, unique_id)
    run = RunConfig().overridden(overrides)
    trainer = DeviceTrainer(run, Path(out) / f"rank{rank}", progress=False, plugins=[])
    with trainer.parallel():
        while trainer.step < trainer.run.train.steps:
            record = train_step(trainer, group)
            if rank == 0 and (trainer.step % trainer.run.train.log_every == 0 or trainer.step == trainer.run.train.steps):
                print(f"step {record['step']}: loss {record['loss']:.4f}", flush=True)
    if rank == 0:
        trainer.checkpoint()
        print(f"final {trainer.evaluate()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu.data_parallel", description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, required=True, help="processes, one per GPU (devices 0 … N−1)")
    parser.add_argument("--preset", required=True, help="a toy-world preset (reference.data.toyworld.PRESETS)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    parser.add_argument("--out", required=True, help="run folder (rank r writes OUT/rank{r}; rank 0 checkpoints)")
    args = parser.parse_args(argv)
    import multiprocessing

    import cupy
    from cupy.cuda import nccl

    from reference.data.toyworld import PRESETS

    if args.preset not in PRESETS:
        parser.error(f"--preset: one of {', '.join(PRESETS)}")
    found = cupy.cuda.runtime.getDeviceCount()
    if not 1 <= args.gpus <= found:
        parser.error(f"--gpus: {args.gpus} requested, {found} CUDA device(s) here")
    overrides = {k: dict(v) for k, v in PRESETS[args.preset].items()}
    if args.steps is not None:
        overrides["train"] = {**overrides.get("train", {}), "steps": args.steps}
    unique_id = nccl.get_unique_id()
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_rank_main, args=(r, args.gpus, unique_id, overrides, args.out)) for r in range(args.gpus)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return 0 if all(p.exitcode == 0 for p in procs) else 1


if __name__ == "__main__":
    sys.exit(main())
