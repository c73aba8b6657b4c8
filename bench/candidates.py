"""What each speed change of issue 10 brings: the training step before and after, in one run.

    python bench/candidates.py [--baseline COMMIT] [--steps N] [--presets tiny small] [--threads 1 2]

Every measurement runs in a fresh process (the allocator setting is per process and
cannot be undone), on the same batches and weights as bench/train_throughput.py:

* ``baseline``   the step at ``--baseline`` (a git commit, checked out into a temporary
                 worktree): ``loss_and_grads`` with N BLAS threads, default allocator;
* ``+gemm/adamw`` this checkout's layers (2-D GEMMs, in-place bias, in-place AdamW),
                 one shard, N BLAS threads, default allocator;
* ``+allocator``  the same with :func:`reference.parallel.tune_allocator`;
* ``+shards``     the Trainer's step: ``train.shards`` = 2 on a pool of N threads, one BLAS
                 thread each (what ``clearform train`` runs);
* ``pytorch``     the PyTorch twin with N threads, for reference.

Prints tokens/s per row and thread count. Results go into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VARIANTS = ("baseline", "+gemm/adamw", "+allocator", "+shards", "pytorch")


def child(preset: str, threads: int, variant: str, steps: int, warmup: int) -> None:
    """One measurement in this process; prints ``{"tok_s": …, "loss": …}``."""
    sys.path.insert(0, str(HERE))
    import numpy as np
    from threadpoolctl import threadpool_limits
    from train_throughput import LR, PRESETS, WEIGHT_DECAY, time_torch

    from reference.config import ModelConfig
    from reference.model import init_params, loss_and_grads
    from reference.optim import AdamW, clip_by_global_norm

    spec = PRESETS[preset]
    config = ModelConfig(**spec["model"], dtype="float32")
    rs = np.random.default_rng(0)
    b, t = spec["batch"], config.context
    batches = [(rs.integers(0, config.vocab_size, (b, t)), rs.integers(0, config.vocab_size, (b, t)))
               for _ in range(warmup + steps)]
    params = init_params(config, seed=0)
    if variant == "pytorch":
        import torch

        torch.set_num_threads(threads)
        loss, seconds = time_torch(config, params, batches, warmup)
    else:
        pool, rows, blas = None, None, threads
        if variant in ("+allocator", "+shards"):
            from reference.parallel import tune_allocator

            tune_allocator()
        if variant == "+shards":
            from concurrent.futures import ThreadPoolExecutor

            from reference.parallel import shard_rows, sharded_loss_and_grads

            rows = shard_rows(b, 2)
            pool = ThreadPoolExecutor(threads) if threads > 1 else None
            blas = 1
        optimizer = AdamW.for_params(params, WEIGHT_DECAY, beta1=0.9, beta2=0.99, eps=1e-8)
        with threadpool_limits(limits=blas):
            for i, (inputs, targets) in enumerate(batches):
                if i == warmup:
                    start = time.perf_counter()
                if rows is None:
                    value, grads, _ = loss_and_grads(params, config, inputs, targets)
                else:
                    value, grads = sharded_loss_and_grads(params, config, inputs, targets, rows, pool)
                clip_by_global_norm(grads, 1.0)
                if pool is not None:
                    optimizer.step(params, grads, LR, pool=pool)
                else:
                    optimizer.step(params, grads, LR)
                if i == 0:
                    loss = value
            seconds = time.perf_counter() - start
    print(json.dumps({"tok_s": steps * b * t / seconds, "loss": float(loss)}))


def measure(preset: str, threads: int, variant: str, steps: int, warmup: int, baseline_tree: Path | None) -> float:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    env.pop("CLEARFORM_THREADS", None)
    env["PYTHONPATH"] = str(baseline_tree if variant == "baseline" else ROOT)
    out = subprocess.run([sys.executable, str(HERE / "candidates.py"), "--child", preset, str(threads), variant,
                          str(steps), str(warmup)], env=env, capture_output=True, text=True, check=True, cwd=str(HERE))
    return json.loads(out.stdout.strip().splitlines()[-1])["tok_s"]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        preset, threads, variant, steps, warmup = sys.argv[2:7]
        child(preset, int(threads), variant, int(steps), int(warmup))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="b3722fd", help="git commit before the speed changes (default b3722fd)")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), args.baseline], check=True)
        try:
            print(f"tokens/s of one training step (fresh process each); baseline = {args.baseline}")
            header = f"{'thr':>3} {'preset':<6} | " + " | ".join(f"{v:>12}" for v in VARIANTS) + " | shards/pytorch"
            print(header)
            print("-" * len(header))
            for threads in args.threads:
                for preset in args.presets:
                    rates = {v: measure(preset, threads, v, args.steps, args.warmup, tree) for v in VARIANTS}
                    cells = " | ".join(f"{rates[v]:>12.0f}" for v in VARIANTS)
                    print(f"{threads:>3} {preset:<6} | {cells} | {rates['+shards'] / rates['pytorch']:>13.2f}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


if __name__ == "__main__":
    main()
