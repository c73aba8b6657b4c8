"""LOC-T9: the zero-group condition, for a dial on parameter groups. [reconstructed]"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from proofs.locality.strategies import (
    block_partitions,
)
from proofs.registry import NumericCheck, Theorem, register
from proofs.toolkit import floats_in
from reference.mechanisms.locality import (
    group_prox,
)

# =========================================================================== LOC-T9


def _t9_symbolic() -> bool:
    # Scope "lemma": the prox restricted to the ray through x; stationarity ⇔ ‖∇_g L‖ ≤ κw_g is numeric only.
    # The proximal step of t‖y‖₂ at x along y = c·x: minimise ½(c − 1)²‖x‖² + t c‖x‖ over c ≥ 0.
    c, t, norm = sp.symbols("c t N", positive=True)
    stationary = sp.solve(sp.diff((c - 1) ** 2 * norm**2 / 2 + t * c * norm, c), c)
    scale = len(stationary) == 1 and sp.simplify(stationary[0] - (1 - t / norm)) == 0
    # c ≥ 0 exactly when ‖x‖ ≥ t: below it the minimiser is the boundary c = 0 (the group switches off).
    switch = sp.solve(sp.Eq(1 - t / norm, 0), norm) == [t]
    return scale and switch


class T9Case(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    theta: np.ndarray
    groups: np.ndarray
    group: int
    kappa: float
    direction: np.ndarray


@st.composite
def _t9_cases(draw: st.DrawFn) -> T9Case:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m, p = draw(st.integers(2, 20)), draw(st.integers(2, 10))
    groups = draw(block_partitions(p, max_blocks=4))
    group = draw(st.integers(0, int(groups.max())))
    theta = rng.standard_normal(p)
    theta[groups == group] = 0.0
    return T9Case(rng.standard_normal((m, p)), rng.standard_normal(m), theta, groups, group,
                  draw(floats_in(0.0, 5.0)), rng.standard_normal(p) * (groups == group))


def _t9_numeric(case: T9Case) -> None:
    x, y, theta = case.x, case.y, case.theta
    members = case.groups == case.group
    w = math.sqrt(members.sum())
    grad = (x.T @ (x @ theta - y))[members]
    norm = float(np.linalg.norm(grad))
    eta = 0.1
    off = not np.any(group_prox(-eta * grad, eta * case.kappa * w))
    if off != (norm <= case.kappa * w):
        raise AssertionError(f"T9: prox says {'zero' if off else 'nonzero'} but ‖∇_g L‖ = {norm:.6g}, κw = {case.kappa * w:.6g}")
    d = case.direction[members]
    derivative = float(grad @ d + case.kappa * w * np.linalg.norm(d))  # one-sided derivative of f along d
    if norm <= case.kappa * w and derivative < -1e-12 * (1 + norm * np.linalg.norm(d)):
        raise AssertionError("T9: θ_g = 0 is stationary but a direction descends")
    if norm > case.kappa * w * (1 + 1e-9):
        descent = float(-grad @ grad + case.kappa * w * norm)
        if not descent < 0:
            raise AssertionError("T9: ‖∇_g L‖ > κw but −∇_g L is not a descent direction")


register(
    Theorem(
        id="LOC-9",
        mechanism="LOC",
        provenance="[reconstructed]",
        statement="zero-group condition: θ_g = 0 is stationary for L + κΣ_g w_g‖θ_g‖₂ in block g iff "
        "‖∇_g L‖₂ ≤ κ w_g (the prox returns 0)",
        scope="lemma: the prox of t‖·‖₂ along the ray through x, (1 − t/‖x‖)₊x",
        symbolic=_t9_symbolic,
        numeric=NumericCheck(check=_t9_numeric, strategy=_t9_cases()),
    )
)
