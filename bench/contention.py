"""Training under contention: steps/s of the demo model idle and beside one CPU-bound process.

    python bench/contention.py [--steps N] [--warmup N]

For clearform (the Trainer as ``clearform demo`` runs it: automatic thread choice,
shards, allocator) and for PyTorch (the same decoder, default threads) in the same
run, the demo model's training step is timed twice: on an idle machine, then while
one competing process spins a Python busy loop on one core (a fair share of two
cores is then one: a slowdown of 2×). The table gives steps/s and the slowdown
idle/contended; the check asks clearform's slowdown to be ≤ 2.5× and ≤ PyTorch's.
Needs torch (``pip install torch==2.13.0``); results go into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_throughput import torch_model  # noqa: E402  (the PyTorch twin of the decoder)

from reference.cli import DEMO_OVERRIDES  # noqa: E402
from reference.config import RunConfig  # noqa: E402
from reference.train import Trainer  # noqa: E402

LIMIT = 2.5


def busy_loop() -> None:
    """The competitor: one core, forever (until terminated)."""
    x = 0
    while True:
        x += 1


def demo_run(steps: int) -> RunConfig:
    overrides = {k: dict(v) for k, v in DEMO_OVERRIDES.items()}
    overrides["model"]["dtype"] = "float32"
    overrides["train"].update(steps=steps, eval_every=0, checkpoint_every=0, log_every=10**6)
    return RunConfig().overridden(overrides)


def clearform_rate(steps: int, warmup: int) -> tuple[float, int]:
    """Steps/s of the Trainer's step, and the thread count it chose (a fresh Trainer: it chooses now)."""
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(demo_run(steps + warmup), folder, progress=False)
        with trainer.parallel():
            threads = trainer.active_threads
            for _ in range(warmup):
                trainer.train_step()
            start = time.perf_counter()
            for _ in range(steps):
                trainer.train_step()
            return steps / (time.perf_counter() - start), threads


def torch_rate(steps: int, warmup: int) -> float:
    import torch
    import torch.nn.functional as F

    from reference.model import init_params

    run = demo_run(steps + warmup)
    config = run.model
    forward, weights, optimizer = torch_model(config, init_params(config, seed=0))
    rs = np.random.default_rng(0)
    b, t = run.train.batch_size, config.context
    draw = lambda: torch.from_numpy(rs.integers(0, config.vocab_size, (b, t)))  # noqa: E731
    batches = [(draw(), draw()) for _ in range(steps + warmup)]
    start = 0.0
    for i, (inputs, targets) in enumerate(batches):
        if i == warmup:
            start = time.perf_counter()
        loss = F.cross_entropy(forward(inputs).reshape(-1, config.vocab_size), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(weights.values()), 1.0)
        optimizer.step()
    return steps / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per measurement (default 40)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps (default 5)")
    args = parser.parse_args()
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); demo model, batch {DEMO_OVERRIDES['train']['batch_size']}")
    rates: dict[str, dict[str, float]] = {"clearform": {}, "pytorch": {}}
    chosen: dict[str, int] = {}
    for phase in ("idle", "contended"):
        competitor = None
        if phase == "contended":
            competitor = multiprocessing.get_context("spawn").Process(target=busy_loop, daemon=True)
            competitor.start()
            time.sleep(1.0)  # let it settle on a core
        try:
            rates["clearform"][phase], chosen[phase] = clearform_rate(args.steps, args.warmup)
            rates["pytorch"][phase] = torch_rate(args.steps, args.warmup)
        finally:
            if competitor is not None:
                competitor.terminate()
                competitor.join()
    header = f"{'':<10} | {'idle steps/s':>12} | {'contended steps/s':>17} | {'slowdown':>8}"
    print(header)
    print("-" * len(header))
    slow = {}
    for name, r in rates.items():
        slow[name] = r["idle"] / r["contended"]
        print(f"{name:<10} | {r['idle']:>12.2f} | {r['contended']:>17.2f} | {slow[name]:>7.2f}×")
    print(f"clearform threads chosen: {chosen['idle']} idle, {chosen['contended']} contended")
    ok = slow["clearform"] <= LIMIT and slow["clearform"] <= slow["pytorch"]
    print(f"check: clearform slowdown {slow['clearform']:.2f}× ≤ {LIMIT}× and ≤ PyTorch's {slow['pytorch']:.2f}×: "
          f"{'pass' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
