"""Parallel work: threads inside one training run, and independent jobs over workers.

Two levels, never mixed:

* **Threads inside one training run.** A batch is split into ``train.shards`` row
  shards (:func:`shard_rows`); :func:`sharded_loss_and_grads` computes each shard's
  loss and gradients on a thread pool, one BLAS thread per shard, and sums them
  weighted by counted tokens — the shard/all-reduce shape that data parallelism over
  GPUs takes too. NumPy releases the GIL inside its kernels, so the shards' elementwise
  work runs in parallel as well as their GEMMs. :func:`choose_threads` decides how many
  threads a run gets (see its docstring); ``--threads N`` on every training command or
  ``CLEARFORM_THREADS=N`` overrides it. The thread count never changes a sharded step:
  the shards are fixed by the config and each runs on one BLAS thread, threads only
  decide how many run at once (a one-shard step on several BLAS threads may differ in
  the last bits: threaded GEMMs round differently).
* **Independent jobs** (a sweep's seeds and λ's, a mechanism experiment's seeds):
  :func:`run_jobs` runs them serially, in ``--workers N`` local processes with one BLAS
  thread each, or on a Dask distributed cluster (``--scheduler ADDRESS``, the optional
  ``cluster`` extra). The results come back in job order and do not depend on where a
  job ran: every job is a pure function of its arguments (its seed included).

A mechanism's command adds the flags with :func:`add_parallel_args` and reads them with
:func:`jobs_from_args`; a job is a module-level function (picklable) of one argument.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tqdm import tqdm

from reference.config import ConfigError

ENV_THREADS = "CLEARFORM_THREADS"
MAX_THREADS = 256
MAX_WORKERS = 64
MAX_SCHEDULER_CHARS = 200

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _check_count(flag: str, value: Any, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise ConfigError(f"{flag}: expected an integer from 1 to {hi}, got {value!r}")
    return value


def threads_from_env() -> int | None:
    """``CLEARFORM_THREADS`` as an int, None when unset; ConfigError (one line) when malformed."""
    raw = os.environ.get(ENV_THREADS)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip()[:20])
    except ValueError:
        raise ConfigError(f"{ENV_THREADS}: expected an integer from 1 to {MAX_THREADS}, got {raw[:40]!r}") from None
    return _check_count(ENV_THREADS, value, MAX_THREADS)


BLAS_THREADS_MIN_WORK = 2**26
"""Multiply-adds of a step's largest GEMM below which extra BLAS threads do not pay
(measured: the demo model, whose largest GEMM is 2²² multiply-adds, ran faster with
one OpenBLAS thread than with two; see bench/RESULTS.md)."""


def idle_cores(sample_s: float = 0.05) -> float:
    """How many of the machine's cores were idle over a short sample of ``/proc/stat``.

    The machine's count (no sample) where ``/proc/stat`` cannot be read.
    """
    import time

    def read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as handle:
                fields = handle.readline().split()
        except OSError:
            return None
        if len(fields) < 6 or fields[0] != "cpu":
            return None
        ticks = [int(f) for f in fields[1:9] if f.isdigit()]
        return sum(ticks), ticks[3] + ticks[4]  # total, idle + iowait

    first = read()
    if first is None:
        return float(os.cpu_count() or 1)
    time.sleep(sample_s)
    second = read()
    total = second[0] - first[0] if second else 0
    if total <= 0:
        return float(os.cpu_count() or 1)
    return (second[1] - first[1]) / total * (os.cpu_count() or 1)


def choose_threads(requested: int | None = None, *, shards: int = 1, largest_gemm: int = 0) -> int:
    """Threads for one training run.

    ``requested`` (``--threads``) wins, then ``CLEARFORM_THREADS``. Otherwise the
    automatic choice: the cores this process may use (its CPU affinity) that are idle
    now (a 50 ms sample of ``/proc/stat``, so a busy machine gets fewer threads),
    at least one, and

    * at most ``shards`` when the step is sharded (one thread per shard, each with one
      BLAS thread: nothing busy-waits);
    * one when the step runs as one shard and its largest GEMM has fewer than
      :data:`BLAS_THREADS_MIN_WORK` multiply-adds (extra BLAS threads cost more than
      they bring on small matrices).
    """
    if requested is not None:
        return _check_count("--threads", requested, MAX_THREADS)
    from_env = threads_from_env()
    if from_env is not None:
        return from_env
    free = max(1, min(available_cores(), int(idle_cores() + 0.5)))
    if shards > 1:
        return min(free, shards)
    return free if largest_gemm >= BLAS_THREADS_MIN_WORK else 1


def tune_allocator() -> None:
    """Keep freed activation buffers in the heap instead of returning them to the OS (glibc only).

    A training step allocates and frees the same large arrays every step. glibc serves
    allocations above its mmap threshold (128 KiB at start) with fresh mmap'd pages, so
    each step page-faults its activations in again; raising the mmap and trim
    thresholds lets the heap reuse them. Measured on the demo model: 38.5 → 24.6 ms per
    step (bench/RESULTS.md). A no-op where the C library is not glibc.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 1 << 30)
        libc.mallopt(m_trim_threshold, (1 << 31) - 1)
    except (OSError, AttributeError):
        pass


_ALLOCATOR_TUNED = False


# --------------------------------------------------------------------------- shards of a batch


def shard_rows(batch_size: int, shards: int) -> list[slice]:
    """Row slices of ``min(shards, batch_size)`` contiguous shards, sizes differing by at most one.

    The first ``batch_size % n`` shards get the extra row (``numpy.array_split``'s rule).
    """
    n = max(1, min(shards, batch_size))
    size, extra = divmod(batch_size, n)
    bounds = [0]
    for i in range(n):
        bounds.append(bounds[-1] + size + (1 if i < extra else 0))
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def sharded_loss_and_grads(
    params: dict, config: Any, inputs: Any, targets: Any, rows: list[slice], pool: Any = None
) -> tuple[float, dict]:
    """The batch's mean cross-entropy and its gradients, computed shard by shard.

    With n_s counted (non-IGNORE) targets in shard s and N = Σ n_s::

        loss  = Σ_s (n_s / N) · loss_s          grads = Σ_s (n_s / N) · grads_s

    which is the whole batch's mean over counted tokens, the unsharded loss (equal up
    to float reassociation). ``pool``: a ``concurrent.futures`` executor running the
    shards concurrently; None runs them one after the other. The sum is taken in shard
    order whatever finished first, so the result does not depend on the pool.
    """
    from reference.layers.loss import IGNORE
    from reference.model import loss_and_grads

    if len(rows) == 1:
        loss, grads, _ = loss_and_grads(params, config, inputs, targets)
        return loss, grads
    counted = [int((targets[r] != IGNORE).sum()) for r in rows]
    total = sum(counted)
    weights = [c / total if total else 0.0 for c in counted]
    if pool is None:
        results = [loss_and_grads(params, config, inputs[r], targets[r]) for r in rows]
    else:
        futures = [pool.submit(loss_and_grads, params, config, inputs[r], targets[r]) for r in rows]
        results = [f.result() for f in futures]
    loss = sum(w * r[0] for w, r in zip(weights, results))
    grads = {}
    for name, first in results[0][1].items():
        acc = first * first.dtype.type(weights[0])
        for w, r in zip(weights[1:], results[1:]):
            g = r[1][name]
            g *= g.dtype.type(w)  # the shard's own fresh array
            acc += g
        grads[name] = acc
    return float(loss), grads


def check_threads(requested: int | None) -> None:
    """Validate ``--threads`` and ``CLEARFORM_THREADS`` up front (ConfigError, one line)."""
    if requested is not None:
        _check_count("--threads", requested, MAX_THREADS)
    threads_from_env()


def use_threads(n: int) -> None:
    """Limit every BLAS/OpenMP pool in this process to ``n`` threads (threadpoolctl), from now on."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=_check_count("threads", n, MAX_THREADS))


@dataclass(frozen=True)
class Jobs:
    """Where independent jobs run: ``workers`` local processes or a Dask ``scheduler`` address."""

    workers: int = 1
    scheduler: str | None = None

    def __post_init__(self) -> None:
        _check_count("--workers", self.workers, MAX_WORKERS)
        if self.scheduler is not None:
            s = self.scheduler
            if not isinstance(s, str) or not 0 < len(s) <= MAX_SCHEDULER_CHARS or any(c.isspace() for c in s):
                raise ConfigError(f"--scheduler: expected an address like tcp://HOST:8786, got {str(s)[:60]!r}")


def add_parallel_args(parser: argparse.ArgumentParser, *, jobs: bool = True) -> None:
    """Add ``--threads`` (and, for commands with independent jobs, ``--workers`` and ``--scheduler``)."""
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help=f"BLAS threads per training run (default: ${ENV_THREADS} or the automatic choice, see README)")
    if jobs:
        parser.add_argument("--workers", type=int, default=1, metavar="N",
                            help="run independent jobs in N local processes, one BLAS thread each (default 1: serial)")
        parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                            help="run independent jobs on this Dask distributed scheduler (pip install 'clearform[cluster]')")


def jobs_from_args(args: argparse.Namespace) -> Jobs:
    """The :class:`Jobs` the parsed flags ask for; validates ``--threads`` (the trainer applies it)."""
    requested = getattr(args, "threads", None)
    check_threads(requested)
    if requested is not None:
        os.environ[ENV_THREADS] = str(requested)  # every Trainer of this command, and its worker processes
    return Jobs(workers=getattr(args, "workers", 1), scheduler=getattr(args, "scheduler", None))


def _worker_init() -> None:
    # A worker process runs one job at a time on one core: one thread (BLAS and the
    # trainer's shards), so that N workers use N cores and never busy-wait against each other.
    os.environ[ENV_THREADS] = "1"
    use_threads(1)


def run_jobs(fn: Callable[[T], R], items: Sequence[T], jobs: Jobs | None = None, *, progress: bool = False,
             desc: str = "jobs") -> list[R]:
    """``[fn(item) for item in items]``, in order, serially or over ``jobs``' workers.

    ``fn`` must be a module-level function and ``items`` picklable when ``jobs`` asks for
    processes or a cluster. An exception in any job is raised here (the other jobs are
    cancelled). With one worker and no scheduler nothing leaves this process.
    """
    jobs = jobs or Jobs()
    items = list(items)
    bar = tqdm(total=len(items), desc=desc, unit="job", disable=not progress or len(items) < 2,
               file=sys.stderr, dynamic_ncols=True)
    try:
        if jobs.scheduler is not None:
            return _run_dask(fn, items, jobs.scheduler, bar)
        if jobs.workers == 1 or len(items) < 2:
            out = []
            for item in items:
                out.append(fn(item))
                bar.update(1)
            return out
        return _run_processes(fn, items, min(jobs.workers, len(items)), bar)
    finally:
        bar.close()


def _run_processes(fn: Callable, items: list, workers: int, bar: Any) -> list:
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    # spawn, not fork: a forked child inherits the parent's BLAS thread pool in an undefined state.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init) as pool:
        futures = [pool.submit(fn, item) for item in items]
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                bar.update(len(done))
                for f in done:
                    if f.exception() is not None:
                        raise f.exception()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        return [f.result() for f in futures]


def _run_dask(fn: Callable, items: list, address: str, bar: Any) -> list:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise ConfigError("--scheduler needs Dask: pip install 'clearform[cluster]'") from None
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"--scheduler {address}: cannot connect ({type(exc).__name__})") from None
    try:
        client.run(_worker_init)
        futures = client.map(fn, items, pure=False)
        for _ in as_completed(futures):
            bar.update(1)
        return client.gather(futures)
    finally:
        client.close()
