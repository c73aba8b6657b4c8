"""Layers: one module per layer kind, each a pair of pure functions.

``*_forward(params, x, ...) -> (y, cache)`` and ``*_backward(cache, dy) -> (dx, grads)``.
``params`` and ``grads`` are dicts keyed by the layer's local parameter names
(``"w"``, ``"b"``, ``"g"`` ...); the model maps them to dotted global names.
Forward functions take their array namespace from their inputs, so they run
under NumPy, CuPy and autograd alike; backward functions are hand-written.

Hooks: a forward that exposes activations takes ``hook(name, value) -> value``
and passes each named activation through it; the matching backward takes
``extra``, a dict of additional upstream gradients keyed by the same names.
"""

from collections.abc import Callable
from typing import Any

Hook = Callable[[str, Any], Any]


def no_hook(name: str, value: Any) -> Any:
    """The identity hook."""
    return value
