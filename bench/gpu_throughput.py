"""Training throughput on one GPU: clearform on CuPy against the same decoder in PyTorch eager, fp32 and tf32.

    PYTHONPATH=$PWD python bench/gpu_throughput.py [--shapes small large] [--precisions fp32 tf32] [--steps N] [--warmup N]

Shapes: ``small`` = GPT-2 small (12 layers, width 768, 12 heads, T 1024, V 50257, batch 8);
``large`` = GPT-2 medium (24 layers, width 1024, 16 heads, T 1024, V 50257, batch 4). A batch is
halved until the activation estimate fits in 70 % of the device's free memory.

Both implementations start from the same weights (``reference.model.init_params``, float32) and
run forward + backward + global-norm clipping + AdamW on identical batches; after warm-up steps
(CuPy compiles its kernels then), the timed steps give tokens/s. clearform runs the core's own
``loss_and_grads``, ``clip_by_global_norm`` and ``AdamW.step`` on CuPy arrays (one shard);
PyTorch runs the twin of ``bench/train_throughput.py`` (``F.scaled_dot_product_attention``, so
it skips the masked half of the T × T square that clearform computes and keeps as a hook).

Precision: ``fp32`` = full float32 matmuls (CuPy's default compute type; PyTorch
``allow_tf32 = False``); ``tf32`` = float32 storage, TF32 tensor-core matmuls (CuPy
``set_compute_type(float32, COMPUTE_TYPE_TF32)``, what ``CUPY_TF32=1`` selects; PyTorch
``torch.backends.cuda.matmul.allow_tf32 = True``). MFU = model FLOP/s (matmul FLOPs of
``train_flops_per_token``, full T × T attention counted for both) / the best n × n matmul rate of
that precision measured in the same run (CuPy and PyTorch, the larger). Without CuPy, a CUDA
device or CUDA PyTorch, it says why and exits 0. (``--cpu-dry-run``, for the CPU tests: a tiny shape with
NumPy and CPU PyTorch through the same code, to check the script before device time is spent on it.)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: its sibling's FLOP count

from train_throughput import CLIP, LR, WEIGHT_DECAY, torch_model, train_flops_per_token  # noqa: E402

from reference.config import ModelConfig  # noqa: E402
from reference.model import init_params  # noqa: E402

SHAPES = {
    "small": dict(model=dict(vocab_size=50257, context=1024, d_model=768, n_layers=12, n_heads=12), batch=8),
    "large": dict(model=dict(vocab_size=50257, context=1024, d_model=1024, n_layers=24, n_heads=16), batch=4),
}
PRECISIONS = ("fp32", "tf32")
DRY_SHAPE = dict(model=dict(vocab_size=64, context=32, d_model=32, n_layers=2, n_heads=4), batch=2)


@dataclass(frozen=True)
class Place:
    """Where both implementations run: the GPU (CuPy, CUDA PyTorch) or, for the CPU dry run, NumPy and CPU PyTorch."""

    torch_device: str
    put: Callable[[Any], Any]  # a host array -> clearform's array
    sync: Callable[[], None]  # wait for clearform's queued work
    torch_sync: Callable[[], None]
    pool_gib: Callable[[], float]  # memory held for clearform's arrays
    free: Callable[[], None]


def gpu_place() -> Place:
    import cupy
    import torch

    pool = cupy.get_default_memory_pool()

    def free() -> None:
        pool.free_all_blocks()
        torch.cuda.empty_cache()

    return Place("cuda", cupy.asarray, cupy.cuda.Device().synchronize, torch.cuda.synchronize,
                 lambda: pool.total_bytes() / 2**30, free)


def cpu_place() -> Place:
    """The dry run: the same code paths on the CPU (checks the script, measures nothing of a GPU)."""
    return Place("cpu", np.asarray, lambda: None, lambda: None, lambda: math.nan, lambda: None)


def why_not() -> str | None:
    """None when CuPy, a CUDA device and CUDA PyTorch are all there; else the reason."""
    from gpu import available

    ok, why = available()
    if not ok:
        return why
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} sees no CUDA device"
    return None


def activation_bytes(config: ModelConfig, batch: int) -> float:
    """A generous estimate of clearform's float32 training memory (the T × T patterns dominate).

    Per layer and token: the kept pattern and about three transient (H, T) rows (scores, biased
    logits, the softmax's exponentials; then their gradients), 20 D-wide and 4 F-wide activations;
    the head: logits, log-probabilities and their gradient (3 V); plus parameters and two moments.
    """
    h, t, d, f, v = config.n_heads, config.context, config.d_model, config.mlp_dim, config.vocab_size
    per_token = config.n_layers * (4 * h * t + 20 * d + 4 * f) + 3 * v
    n_params = sum(math.prod(s) for s in _shapes(config).values())
    return 4.0 * (batch * t * per_token + 4 * n_params)


def _shapes(config: ModelConfig) -> dict:
    from reference.model import param_shapes

    return param_shapes(config)


# --------------------------------------------------------------------------- precision and peaks


def set_precision(precision: str) -> None:
    """fp32 or tf32 matmuls for both libraries from now on."""
    import numpy
    import torch
    from cupy._core import _routines_linalg as linalg

    tf32 = precision == "tf32"
    linalg.set_compute_type(numpy.float32, linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def _best_seconds(mul, sync, repeats: int) -> float:
    mul()
    sync()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        mul()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak(place: Place, n: int = 8192, repeats: int = 10) -> dict[str, float]:
    """Best float32 n × n matmul TFLOP/s under the current precision, clearform's array library and PyTorch."""
    import torch

    a, b = (place.put(np.random.default_rng(i).standard_normal((n, n), dtype=np.float32)) for i in range(2))
    ours_s = _best_seconds(lambda: a @ b, place.sync, repeats)
    ta, tb = (torch.randn(n, n, device=place.torch_device) for _ in range(2))
    torch_s = _best_seconds(lambda: ta @ tb, place.torch_sync, repeats)
    return {"ours": 2 * n**3 / ours_s / 1e12, "torch": 2 * n**3 / torch_s / 1e12}


# --------------------------------------------------------------------------- the two implementations


def time_torch(config: ModelConfig, params: dict, batches: list, warmup: int, place: Place) -> tuple[float, float]:
    """(first loss, seconds of the timed steps)."""
    import torch
    import torch.nn.functional as F

    forward, weights, optimizer = torch_model(config, params, place.torch_device)
    first_loss, start = math.nan, 0.0
    for i, (inputs, targets) in enumerate(batches):
        if i == warmup:
            place.torch_sync()
            start = time.perf_counter()
        x, y = torch.from_numpy(inputs).to(place.torch_device), torch.from_numpy(targets).to(place.torch_device)
        loss = F.cross_entropy(forward(x).reshape(-1, config.vocab_size), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(weights.values()), CLIP)
        optimizer.step()
        if i == 0:
            first_loss = float(loss.detach())
    place.torch_sync()
    seconds = time.perf_counter() - start
    del forward, weights, optimizer
    place.free()
    return first_loss, seconds


def time_clearform(config: ModelConfig, params: dict, batches: list, warmup: int, place: Place) -> tuple[float, float, float]:
    """(first loss, seconds of the timed steps, peak GiB held by CuPy's memory pool)."""
    from reference.model import loss_and_grads
    from reference.optim import AdamW, clip_by_global_norm

    device_params = {name: place.put(value) for name, value in params.items()}
    optimizer = AdamW.for_params(device_params, WEIGHT_DECAY, beta1=0.9, beta2=0.99, eps=1e-8)
    first_loss, start, peak = math.nan, 0.0, 0.0
    for i, (inputs, targets) in enumerate(batches):
        if i == warmup:
            place.sync()
            start = time.perf_counter()
        loss, grads, _ = loss_and_grads(device_params, config, place.put(inputs), place.put(targets))
        clip_by_global_norm(grads, CLIP)
        optimizer.step(device_params, grads, LR)
        peak = max(peak, place.pool_gib())
        del grads
        if i == 0:
            first_loss = loss
    place.sync()
    seconds = time.perf_counter() - start
    del device_params, optimizer
    place.free()
    return first_loss, seconds, peak


# --------------------------------------------------------------------------- the table


def fitting_batch(config: ModelConfig, batch: int) -> int:
    import cupy

    free, _ = cupy.cuda.Device().mem_info
    while batch > 1 and activation_bytes(config, batch) > 0.7 * free:
        batch //= 2
    return batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    parser.add_argument("--steps", type=int, default=6, help="timed steps per row (default 6)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps (default 2; CuPy compiles kernels here)")
    parser.add_argument("--batch", type=int, default=None, help="batch size for every shape (default: the shape's, halved to fit)")
    parser.add_argument("--cpu-dry-run", action="store_true", help=argparse.SUPPRESS)  # the CPU test: a tiny shape, NumPy
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be at least 1")

    import torch

    if args.cpu_dry_run:
        place, shapes, precisions, peak_n = cpu_place(), {"dry": DRY_SHAPE}, ["fp32"], 256
        torch.set_num_threads(1)
        print(f"CPU dry run (checks the script, not a GPU): numpy {np.__version__}, torch {torch.__version__}")
    else:
        reason = why_not()
        if reason is not None:
            print(f"gpu_throughput: SKIPPED, {reason}")
            return 0
        import cupy

        from gpu import available

        place, shapes, precisions, peak_n = gpu_place(), {k: SHAPES[k] for k in args.shapes}, args.precisions, 8192
        print(f"device: {available()[1]}; cupy {cupy.__version__} (CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}), "
              f"torch {torch.__version__} (CUDA {torch.version.cuda}), numpy {np.__version__}")
    peaks = {}
    for precision in precisions:
        if not args.cpu_dry_run:
            set_precision(precision)
        peaks[precision] = matmul_peak(place, peak_n)
        place.free()
        print(f"{precision} matmul peak ({peak_n}², best of 10): clearform's arrays {peaks[precision]['ours']:.1f}, "
              f"PyTorch {peaks[precision]['torch']:.1f} TFLOP/s")
    print()
    head = (f"{'shape':<6} {'prec':<5} {'L':>2} {'D':>5} {'H':>3} {'T':>5} {'B':>3} | {'torch tok/s':>11} {'ours tok/s':>10} "
            f"{'ratio':>6} | {'torch MFU':>9} {'ours MFU':>8} | {'ours GiB':>8} | {'loss torch':>10} {'loss ours':>10}")
    print(head)
    print("-" * len(head))
    for name, shape in shapes.items():
        config = ModelConfig(**shape["model"], dtype="float32")
        batch = args.batch or (shape["batch"] if args.cpu_dry_run else fitting_batch(config, shape["batch"]))
        length = config.context
        rs = np.random.default_rng(0)
        batches = [(rs.integers(0, config.vocab_size, (batch, length)), rs.integers(0, config.vocab_size, (batch, length)))
                   for _ in range(args.warmup + args.steps)]
        params = init_params(config, seed=0)
        for precision in precisions:
            if not args.cpu_dry_run:
                set_precision(precision)
            loss_t, sec_t = time_torch(config, params, batches, args.warmup, place)
            loss_o, sec_o, gib = time_clearform(config, params, batches, args.warmup, place)
            tokens = args.steps * batch * length
            tps_t, tps_o = tokens / sec_t, tokens / sec_o
            flops = train_flops_per_token(config, length)
            peak = max(peaks[precision].values()) * 1e12
            print(f"{name:<6} {precision:<5} {config.n_layers:>2} {config.d_model:>5} {config.n_heads:>3} {length:>5} {batch:>3} | "
                  f"{tps_t:>11,.0f} {tps_o:>10,.0f} {tps_o / tps_t:>6.2f} | {100 * flops * tps_t / peak:>8.1f}% "
                  f"{100 * flops * tps_o / peak:>7.1f}% | {gib:>8.1f} | {loss_t:>10.5f} {loss_o:>10.5f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
