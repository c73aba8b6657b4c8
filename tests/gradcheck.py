"""The gradient-check error measure shared by the gradient tests.

Error for one tensor: max |ours − autograd| / max(max |autograd|, 1e-6 · S), where S
is the largest autograd gradient entry over all tensors of the check; it must be
≤ TOL = 1e-8. The floor keeps tiny gradients from turning rounding noise into a
"relative" error.

One gradient is exactly zero in theory: the key bias ``attn.b_k`` adds q_i·b_k to
every score of row i, a constant that softmax cancels (CORE-1). Both sides then hold
only rounding noise, whose size follows the intermediates (large where a penalty
divides by a small block norm), not the gradients; for it the check is that both are
zero to 1e-9 · S.
"""

from __future__ import annotations

import numpy as np

TOL = 1e-8
ZERO_IN_THEORY = ("attn.b_k",)


def _max_abs(x) -> float:
    return float(np.max(np.abs(np.asarray(x)))) if np.size(x) else 0.0


def assert_grads_match(ours: dict, oracle: dict) -> None:
    assert set(ours) == set(oracle), f"gradient names differ: {set(ours) ^ set(oracle)}"
    scale = max(_max_abs(g) for g in oracle.values())
    for name in oracle:
        if name.endswith(ZERO_IN_THEORY):
            assert max(_max_abs(ours[name]), _max_abs(oracle[name])) <= 1e-9 * max(scale, 1e-300), name
            continue
        diff = _max_abs(np.asarray(ours[name]) - np.asarray(oracle[name]))
        denom = max(_max_abs(oracle[name]), 1e-6 * scale, 1e-300)
        assert diff / denom <= TOL, f"{name}: relative error {diff / denom:.3e} > {TOL}"
