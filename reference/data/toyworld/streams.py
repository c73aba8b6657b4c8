"""The seeded streams of the toy world: u(), pick(n), bern(p) (specs/toyworld.md §3.3). [reconstructed]"""

from __future__ import annotations

import itertools

import numpy as np

# --------------------------------------------------------------------------- the seeded streams (§3.3)


class _Stream:
    """One seeded stream: the spec's u(), pick(n) = ⌊u()·n⌋ and bern(p) = u() < p. [reconstructed]

    ``key`` seeds ``np.random.default_rng(key)``. Doubles are fetched in chunks, because
    ``random(n)`` yields the same numbers as n calls of ``random()`` and one NumPy call per draw
    would dominate generation time; the chunk sizes never change a draw.
    """

    __slots__ = ("u",)

    def __init__(self, key: list[int], expected_draws: int = 16) -> None:
        rng = np.random.default_rng(key)
        first = rng.random(expected_draws).tolist()
        more = itertools.chain.from_iterable(iter(lambda: rng.random(64).tolist(), None))  # endless
        # u() is the next double: a bound C method, the cheapest call Python has.
        self.u = itertools.chain(first, more).__next__

    def pick(self, n: int) -> int:
        return int(self.u() * n)  # u ≥ 0, so int() is the floor

    def bern(self, p: float) -> bool:
        return self.u() < p


def _skip(r: int, excluded: int) -> int:
    """The r-th element of 0, 1, 2, … once ``excluded`` is left out (lists in id order)."""
    return r if r < excluded else r + 1
