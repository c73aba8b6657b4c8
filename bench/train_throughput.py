"""Training throughput: clearform (NumPy float32) against PyTorch (CPU float32), same decoder, same batch.

    python bench/train_throughput.py [--steps N] [--warmup N] [--presets tiny small] [--threads 2 1]

For each thread count and preset both implementations start from the same weights
and run forward + backward + global-norm clipping + AdamW on identical batches;
after warm-up steps, the timed steps give tokens/s. clearform runs the Trainer's
own step (``Trainer.parallel`` and ``train_step``: ``train.shards`` = 2 row shards
on a pool of N threads with one BLAS thread each, the allocator setting);
PyTorch gets ``torch.set_num_threads(N)``. The first step's losses are compared as
a sanity check (they must agree to float32 precision). The table also shows
clearform's achieved GFLOP/s against a NumPy float32 matmul peak measured on the
same machine in the same run.

Needs torch (``pip install torch==2.13.0``); results go into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np

from reference.config import ModelConfig, TrainConfig
from reference.model import init_params
from reference.optim import AdamW, clip_by_global_norm
from reference.parallel import shard_rows, sharded_loss_and_grads, tune_allocator

PRESETS = {
    # the demo's model: 2 blocks, width 64, context 64, toy-world vocabulary
    "tiny": dict(model=dict(vocab_size=371, context=64, d_model=64, n_layers=2, n_heads=4), batch=16),
    # a small GPT: 4 blocks, width 256, context 128
    "small": dict(model=dict(vocab_size=512, context=128, d_model=256, n_layers=4, n_heads=4), batch=16),
}
LR, WEIGHT_DECAY, CLIP = 1e-3, 0.1, 1.0


def train_flops_per_token(config: ModelConfig, length: int) -> float:
    """Matmul FLOPs of one training step per token: 3 × forward (backward ≈ 2 × forward).

    Forward per token and layer: 2·(3·D·HD + HD·D + 2·D·F) for the projections
    and MLP, 2·2·T·HD for scores and pattern·V over the full (masked) T × T
    square, which is what both implementations compute; plus 2·D·V for the head.
    """
    d, hd, f, v = config.d_model, config.n_heads * config.head_dim, config.mlp_dim, config.vocab_size
    per_layer = 2 * (3 * d * hd + hd * d + 2 * d * f) + 4 * length * hd
    return 3.0 * (config.n_layers * per_layer + 2 * d * v)


def numpy_matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n × n matmul."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


# --------------------------------------------------------------------------- PyTorch twin


def torch_model(config: ModelConfig, params: dict, device: str = "cpu"):
    """The same pre-LN decoder in PyTorch on ``device``, initialised from clearform's parameters."""
    import torch
    import torch.nn.functional as F

    weights = {name: torch.nn.Parameter(torch.tensor(value, device=device)) for name, value in params.items()}
    heads, head_dim = config.n_heads, config.head_dim

    def forward(tokens: torch.Tensor) -> torch.Tensor:
        b, t = tokens.shape
        x = weights["embed.tok"][tokens] + weights["embed.pos"][:t]
        for i in range(config.n_layers):
            def p(name: str, i: int = i) -> torch.Tensor:
                return weights[f"blocks.{i}.{name}"]

            h = F.layer_norm(x, (config.d_model,), p("ln1.g"), p("ln1.b"), config.ln_eps)
            q = (h @ p("attn.w_q") + p("attn.b_q")).view(b, t, heads, head_dim).transpose(1, 2)
            k = (h @ p("attn.w_k") + p("attn.b_k")).view(b, t, heads, head_dim).transpose(1, 2)
            v = (h @ p("attn.w_v") + p("attn.b_v")).view(b, t, heads, head_dim).transpose(1, 2)
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + z.transpose(1, 2).reshape(b, t, heads * head_dim) @ p("attn.w_o") + p("attn.b_o")
            h = F.layer_norm(x, (config.d_model,), p("ln2.g"), p("ln2.b"), config.ln_eps)
            x = x + F.gelu(h @ p("mlp.w_in") + p("mlp.b_in"), approximate="tanh") @ p("mlp.w_out") + p("mlp.b_out")
        x = F.layer_norm(x, (config.d_model,), weights["ln_final.g"], weights["ln_final.b"], config.ln_eps)
        return x @ weights["embed.tok"].T

    decay = [w for w in weights.values() if w.ndim >= 2]
    plain = [w for w in weights.values() if w.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": plain, "weight_decay": 0.0}],
        lr=LR, betas=(0.9, 0.99), eps=1e-8,
    )
    return forward, weights, optimizer


def time_torch(config: ModelConfig, params: dict, batches: list, warmup: int) -> tuple[float, float]:
    import torch
    import torch.nn.functional as F

    forward, weights, optimizer = torch_model(config, params)
    first_loss, start = math.nan, 0.0
    for i, (inputs, targets) in enumerate(batches):
        if i == warmup:
            start = time.perf_counter()
        logits = forward(torch.from_numpy(inputs))
        loss = F.cross_entropy(logits.reshape(-1, config.vocab_size), torch.from_numpy(targets).reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(weights.values()), CLIP)
        optimizer.step()
        if i == 0:
            first_loss = float(loss.detach())
    return first_loss, time.perf_counter() - start


def time_clearform(config: ModelConfig, params: dict, batches: list, warmup: int, threads: int) -> tuple[float, float]:
    """The Trainer's step (shards, pool, allocator, BLAS limit) on the bench's batches."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    params = {k: v.copy() for k, v in params.items()}
    optimizer = AdamW.for_params(params, WEIGHT_DECAY, beta1=0.9, beta2=0.99, eps=1e-8)
    tune_allocator()
    rows = shard_rows(batches[0][0].shape[0], TrainConfig().shards)
    pool = ThreadPoolExecutor(threads) if threads > 1 and len(rows) > 1 else None
    first_loss, start = math.nan, 0.0
    with threadpool_limits(limits=1 if len(rows) > 1 else threads):
        for i, (inputs, targets) in enumerate(batches):
            if i == warmup:
                start = time.perf_counter()
            loss, grads = sharded_loss_and_grads(params, config, inputs, targets, rows, pool)
            clip_by_global_norm(grads, CLIP)
            optimizer.step(params, grads, LR, pool=pool)
            if i == 0:
                first_loss = loss
        seconds = time.perf_counter() - start
    if pool is not None:
        pool.shutdown()
    return first_loss, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per preset (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps (default 3)")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--threads", nargs="+", type=int, default=[2, 1], help="thread counts, one table row each (default 2 1)")
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(args.threads)):
        peak = numpy_matmul_peak()
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores; numpy {np.__version__}, torch {torch.__version__}")
    print(f"NumPy float32 matmul peak (2048², best of 5, {max(args.threads)} threads): {peak:.1f} GFLOP/s\n")
    header = f"{'thr':>3} {'preset':<6} {'L':>2} {'D':>4} {'H':>2} {'T':>4} {'B':>3} {'V':>4} | {'torch tok/s':>11} "
    header += f"{'ours tok/s':>10} {'ratio':>6} | {'ours GFLOP/s':>12} {'% peak':>6} | {'loss torch':>10} {'loss ours':>10}"
    print(header)
    print("-" * len(header))
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name in args.presets:
            preset = PRESETS[name]
            config = ModelConfig(**preset["model"], dtype="float32")
            batch, length = preset["batch"], config.context
            rs = np.random.default_rng(0)
            batches = [
                (rs.integers(0, config.vocab_size, (batch, length)), rs.integers(0, config.vocab_size, (batch, length)))
                for _ in range(args.warmup + args.steps)
            ]
            params = init_params(config, seed=0)
            loss_t, seconds_t = time_torch(config, params, batches, args.warmup)
            loss_o, seconds_o = time_clearform(config, params, batches, args.warmup, threads)
            tokens = args.steps * batch * length
            tps_t, tps_o = tokens / seconds_t, tokens / seconds_o
            gflops = train_flops_per_token(config, length) * tps_o / 1e9
            print(
                f"{threads:>3} {name:<6} {config.n_layers:>2} {config.d_model:>4} {config.n_heads:>2} {length:>4} {batch:>3} "
                f"{config.vocab_size:>4} | "
                f"{tps_t:>11.0f} {tps_o:>10.0f} {tps_o / tps_t:>6.2f} | {gflops:>12.1f} {100 * gflops / peak:>5.1f}% | "
                f"{loss_t:>10.5f} {loss_o:>10.5f}"
            )


if __name__ == "__main__":
    main()
