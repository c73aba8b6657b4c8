"""LOC-T7 and T8: anchor redundancy and dual enforcement (RULE). [reconstructed]

LOC-8's numeric check runs the project's :func:`~reference.mechanisms.locality.enforce` on
fixed sequences of try outcomes (drawn ones, and the two that pin K) and computes its exact
law — P_viol, P(abstain), the distribution of tries — by replaying every sequence it can ask
for; a seeded Monte Carlo run stays as the spec's cross-check. An off-by-one in K fails it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from proofs.registry import NumericCheck, Theorem, register
from proofs.toolkit import assert_close, bits, floats_in
from reference.mechanisms.locality import (
    attention_rows,
    enforce,
)

# =========================================================================== LOC-T7

_n = sp.Symbol("n", positive=True)  # keys in the row
_r, _c, _p = sp.symbols("r c p", positive=True)


def t7_pf() -> sp.Expr:
    """PF(r) = rc/(rc + n − r), c = e^{Δ/τ}: fidelity of r anchor copies among n keys (LOC-T7)."""
    return _r * _c / (_r * _c + _n - _r)


def t7_entropy() -> sp.Expr:
    pf = t7_pf()
    return -pf * sp.log(pf / _r, 2) - (1 - pf) * sp.log((1 - pf) / (_n - _r), 2)


def t7_r_min() -> sp.Expr:
    """The least redundancy with PF ≥ p, before rounding up: pn/(c(1 − p) + p)."""
    return _p * _n / (_c * (1 - _p) + _p)


@cache
def _t7_numeric_forms() -> dict[str, Callable[..., Any]]:
    return {
        "pf": sp.lambdify((_r, _c, _n), t7_pf(), "numpy"),
        "h": sp.lambdify((_r, _c, _n), t7_entropy(), "numpy"),
        "r_min": sp.lambdify((_p, _c, _n), t7_r_min(), "numpy"),
    }


# (Δ, r) -> (PF, H bits) for n = 64, τ = 1 (the spec's table).
T7_TABLE = {
    2.0: {1: (0.1050, 5.8344), 2: (0.1925, 5.7072), 4: (0.3300, 5.5325), 8: (0.5135, 5.3652), 16: (0.7112, 5.3248)},
    6.0: {1: (0.8649, 1.3785), 2: (0.9286, 1.7245), 4: (0.9642, 2.3630), 8: (0.9829, 3.1725), 16: (0.9926, 4.0746)},
}


def _t7_symbolic() -> bool:
    # Scope "lemma": PF(r) = rc/(rc + n − r) is taken as given (the numeric check compares it with A3);
    # SymPy proves its derivative and the root of PF = p; H(r) at n = 5, r = 2 only.
    pf = t7_pf()
    derivative = sp.simplify(sp.diff(pf, _r) - _c * _n / (_c * _r + _n - _r) ** 2) == 0
    solved = sp.solve(sp.Eq(pf, _p), _r)
    least = len(solved) == 1 and sp.simplify(solved[0] - t7_r_min()) == 0
    # Uniform inside the anchors and inside the rest gives the entropy formula (grouping).
    grouped = -2 * (pf / 2) * sp.log(pf / 2, 2) - 3 * ((1 - pf) / 3) * sp.log((1 - pf) / 3, 2)
    e_check = sp.simplify((t7_entropy() - grouped).subs({_r: 2, _n: 5})) == 0
    # The spec's least redundancies at n = 64: (Δ, p) = (2, 0.5) → 8; (6, 0.9) → 2; (6, 0.99) → 13.
    def r_min(delta: float, p: sp.Rational) -> int:
        return int(sp.ceiling(t7_r_min().subs({_p: p, _c: sp.exp(delta), _n: 64})))

    values = r_min(2, sp.Rational(1, 2)) == 8 and r_min(6, sp.Rational(9, 10)) == 2 and r_min(6, sp.Rational(99, 100)) == 13
    return derivative and least and e_check and values


class T7Case(NamedTuple):
    n: int
    delta: float
    tau: float
    p: float
    r: int


@st.composite
def _t7_cases(draw: st.DrawFn) -> T7Case:
    n = draw(st.integers(2, 256))
    delta, tau, p = draw(floats_in(0.0, 10.0)), draw(floats_in(0.1, 5.0)), draw(floats_in(1e-3, 1 - 1e-3))
    return T7Case(n, delta, tau, p, draw(st.integers(1, n - 1)))


def anchor_fidelity(n: int, r: int, delta: float, tau: float) -> tuple[float, float]:
    """(PF, H bits) of A3 on a row with r anchor copies at logit 0 and n − r keys at −Δ."""
    z = np.r_[np.zeros(r), np.full(n - r, -delta)]
    a = attention_rows(z[None], temperature=tau)[0]
    return float(a[:r].sum()), bits(a)


@cache
def _t7_table() -> dict:
    return {d: {r: anchor_fidelity(64, r, d, 1.0) for r in row} for d, row in T7_TABLE.items()}


def _t7_numeric(case: T7Case) -> None:
    forms = _t7_numeric_forms()
    c = math.exp(case.delta / case.tau)
    pf, h = anchor_fidelity(case.n, case.r, case.delta, case.tau)
    assert_close(pf, float(forms["pf"](case.r, c, case.n)), 1e-15, "T7 PF(r) vs rc/(rc + n − r)", rtol=1e-9)
    if 0 < float(forms["pf"](case.r, c, case.n)) < 1:  # the formula's 0·log 0 is NaN, A3's entropy is not
        assert_close(h, float(forms["h"](case.r, c, case.n)), 1e-12, "T7 H(r)", rtol=1e-9)
    r_min = math.ceil(float(forms["r_min"](case.p, c, case.n)) - 1e-12)
    r_min = max(r_min, 1)
    if anchor_fidelity(case.n, r_min, case.delta, case.tau)[0] < case.p - 1e-12:
        raise AssertionError(f"T7: PF(r_min = {r_min}) < p = {case.p!r}")
    if r_min >= 2 and anchor_fidelity(case.n, r_min - 1, case.delta, case.tau)[0] >= case.p + 1e-12:
        raise AssertionError(f"T7: r_min = {r_min} is not the least: PF(r_min − 1) ≥ p = {case.p!r}")
    if case.r + 1 <= case.n - 1 and anchor_fidelity(case.n, case.r + 1, case.delta, case.tau)[0] < pf - 1e-15:
        raise AssertionError("T7: one more anchor copy lowered fidelity")
    for delta, row in T7_TABLE.items():
        for r, (pf_t, h_t) in row.items():
            got = _t7_table()[delta][r]
            assert_close(np.array(got), np.array([pf_t, h_t]), 5e-5, f"T7 table at Δ = {delta}, r = {r}")


register(
    Theorem(
        id="LOC-7",
        mechanism="LOC",
        provenance="[reconstructed]",
        statement="anchor redundancy: PF(r) = rc/(rc + n − r), c = e^{Δ/τ}, increasing in r; "
        "r_min = ⌈pn/(c(1−p) + p)⌉ is the least r with PF ≥ p",
        scope="lemma: dPF/dr and r_min from PF = p, PF's form taken as given; H at n = 5",
        symbolic=_t7_symbolic,
        numeric=NumericCheck(check=_t7_numeric, strategy=_t7_cases()),
    )
)


# =========================================================================== LOC-T8

_d, _f = sp.symbols("d f", positive=True)
_K = sp.Symbol("K", integer=True, positive=True)


def t8_rho() -> sp.Expr:
    return (1 - _p) * _d + _p * _f


def t8_violation(k: Any = _K) -> sp.Expr:
    """P_viol(K) = (1 − p)(1 − d)(1 − ρ^K)/(1 − ρ), ρ = (1 − p)d + pf (LOC-T8)."""
    rho = t8_rho()
    return (1 - _p) * (1 - _d) * (1 - rho**k) / (1 - rho)


@cache
def _t8_numeric_form() -> Callable[..., Any]:
    return sp.lambdify((_p, _d, _f, _K), t8_violation(), "numpy")


def _t8_symbolic() -> bool:
    # Scope "instance": the closed form for K = 1 … 8 (any p, d, f); monotonicity in K, p, d is numeric only.
    rho = t8_rho()
    # Σ_{j<K} ρ^j = (1 − ρ^K)/(1 − ρ) for K = 1 … 8, by (1 − ρ)Σ_{j<K} ρ^j = 1 − ρ^K (ρ a free symbol) ...
    r = sp.Symbol("rho")
    sums = all(sp.expand((1 - r) * sum(r**j for j in range(k)) - (1 - r**k)) == 0 for k in range(1, 9))
    # ... so the explicit sums equal the closed form P_viol(K) (checked exactly at rational p, d, f too).
    point = {_p: sp.Rational(7, 10), _d: sp.Rational(3, 5), _f: sp.Rational(1, 10)}
    explicit = [(1 - _p) * (1 - _d) * sum(rho**j for j in range(k)) for k in range(1, 9)]
    sums = sums and all((e - t8_violation(k)).subs(point) == 0 for k, e in zip(range(1, 9), explicit))
    complement = sp.expand(1 - rho - (_p * (1 - _f) + (1 - _p) * (1 - _d))) == 0
    limit = sp.simplify((1 - _p) * (1 - _d) / (1 - rho) - (1 - _p) * (1 - _d) / (_p * (1 - _f) + (1 - _p) * (1 - _d))) == 0
    example = t8_violation(3).subs({_p: sp.Rational(7, 10), _d: sp.Rational(6, 10), _f: sp.Rational(1, 10)})
    mc = sp.simplify(example - sp.Rational(1575, 10000)) == 0  # the Monte Carlo instance: exactly 0.1575
    return sums and complement and limit and bool(mc)


# One try as the theorem sees it: the model complies or not, the external check accepts or rejects.
# After a rejection nothing depends on compliance, so three outcomes describe every try.
ACCEPTED_COMPLIANT, ACCEPTED_VIOLATION, REJECTED = "complies, accepted", "violates, accepted", "rejected"
T8_OUTCOMES = (ACCEPTED_COMPLIANT, ACCEPTED_VIOLATION, REJECTED)


class T8Case(NamedTuple):
    p: float
    d: float
    f: float
    K: int
    outcomes: tuple[str, ...]  # K + 2 tries' outcomes, replayed through enforce


@st.composite
def _t8_cases(draw: st.DrawFn) -> T8Case:
    k = draw(st.integers(1, 12))
    outcomes = draw(st.lists(st.sampled_from(T8_OUTCOMES), min_size=k + 2, max_size=k + 2))
    return T8Case(draw(floats_in(0.01, 0.99)), draw(floats_in(0.01, 0.99)), draw(floats_in(0.0, 0.99)), k, tuple(outcomes))


class _Unexplored(Exception):
    """enforce asked for a try beyond the outcome sequence being replayed."""


def t8_replay(outcomes: tuple[str, ...], k: int) -> tuple[Any, list[int]]:
    """Run :func:`enforce` (at most k tries) on a fixed sequence of try outcomes: (its result, the try indices it generated).

    Try number c (in call order) yields ``outcomes[c]``; the check accepts it unless it is REJECTED.
    Raises :class:`_Unexplored` if enforce asks for more tries than ``outcomes`` holds.
    """
    calls: list[int] = []

    def generate(index: int) -> str:
        calls.append(index)
        if len(calls) > len(outcomes):
            raise _Unexplored
        return outcomes[len(calls) - 1]

    return enforce(generate, lambda outcome: outcome != REJECTED, k), calls


def t8_expected(outcomes: tuple[str, ...], k: int) -> tuple[Any, int, bool]:
    """What A8 must do with these outcomes: (accepted output or None, tries, abstained).

    The first acceptance within k tries is the output; with none, it abstains after k tries.
    """
    for index, outcome in enumerate(outcomes[:k]):
        if outcome != REJECTED:
            return outcome, index + 1, False
    return None, k, True


def t8_check_replay(outcomes: tuple[str, ...], k: int) -> None:
    """enforce on a fixed outcome sequence makes exactly the tries A8 prescribes, and reports them."""
    try:
        result, calls = t8_replay(outcomes, k)
    except _Unexplored:
        raise AssertionError(f"T8: enforce with K = {k} asked for try {len(outcomes) + 1} on {outcomes}") from None
    output, tries, abstained = t8_expected(outcomes, k)
    if calls != list(range(tries)):
        raise AssertionError(f"T8: enforce with K = {k} generated tries {calls} on {outcomes}; expected {list(range(tries))}")
    if (result.output, result.tries, result.abstained) != (output, tries, abstained):
        raise AssertionError(
            f"T8: enforce with K = {k} returned (output, tries, abstained) = "
            f"{(result.output, result.tries, result.abstained)} on {outcomes}; expected {(output, tries, abstained)}"
        )


def t8_exact(p: float, d: float, f: float, k: int) -> dict[str, Any]:
    """The exact law of :func:`enforce` (at most k tries) when tries are independent as in LOC-T8.

    Every outcome sequence enforce can ask for is replayed through it (depth first: a sequence that
    runs out is extended by each outcome), weighted by its probability: per try, complies and accepted
    p(1 − f), violates and accepted (1 − p)(1 − d), rejected ρ = (1 − p)d + pf. Returns P(violation
    accepted), P(abstain), and P(accepted at try t) for t = 1, 2, … — computed from what enforce does,
    not from a formula, so the numbers test the code.
    """
    weight = {ACCEPTED_COMPLIANT: p * (1 - f), ACCEPTED_VIOLATION: (1 - p) * (1 - d), REJECTED: (1 - p) * d + p * f}
    law: dict[str, Any] = {"violation": 0.0, "abstain": 0.0, "accepted_at": {}}
    todo: list[tuple[str, ...]] = [()]
    while todo:
        outcomes = todo.pop()
        try:
            result, calls = t8_replay(outcomes, k)
        except _Unexplored:
            if len(outcomes) > k + 1:
                raise AssertionError(f"T8: enforce with K = {k} asks for more than K + 1 tries") from None
            todo.extend(outcomes + (o,) for o in T8_OUTCOMES)
            continue
        if result.tries != len(calls):
            raise AssertionError(f"T8: enforce reports {result.tries} tries after generating {len(calls)}")
        probability = math.prod(weight[o] for o in outcomes[: len(calls)])
        if result.abstained:
            law["abstain"] += probability
        else:
            law["accepted_at"][result.tries] = law["accepted_at"].get(result.tries, 0.0) + probability
            law["violation"] += probability if result.output == ACCEPTED_VIOLATION else 0.0
    return law


@cache
def t8_monte_carlo(
    p: float = 0.7, d: float = 0.6, f: float = 0.1, k: int = 3, runs: int = 100_000, seed: int = 8
) -> tuple[float, float]:
    """Violation rate of :func:`enforce` in seeded simulation, and its standard error."""
    rng = np.random.default_rng(seed)
    draws = iter(rng.random(2 * k * runs).tolist())
    violations = 0
    for _ in range(runs):
        result = enforce(lambda _try: next(draws) < p, lambda ok: next(draws) >= (f if ok else d), k)
        violations += (not result.abstained) and not result.output
    rate = violations / runs
    return rate, math.sqrt(rate * (1 - rate) / runs)


def _t8_numeric(case: T8Case) -> None:
    form = _t8_numeric_form()
    p, d, f, k = case.p, case.d, case.f, case.K
    rho = (1 - p) * d + p * f
    # A8 itself: the drawn outcome sequence, and the two that pin K (all K tries rejected; only try K + 1 acceptable).
    for outcomes in (case.outcomes, (REJECTED,) * k, (REJECTED,) * k + (ACCEPTED_COMPLIANT,)):
        t8_check_replay(outcomes, k)
    # The exact law of enforce against the proved formula: P_viol(K), and the tries — an off-by-one in K
    # moves P(abstain) = ρ^K by a factor ρ or 1/ρ (ρ ≤ 0.99), far outside rtol 10⁻⁹.
    law = t8_exact(p, d, f, k)
    value = float(form(p, d, f, k))
    assert_close(law["violation"], value, 1e-300, f"T8: P_viol of enforce (K = {k}) vs (1−p)(1−d)(1−ρ^K)/(1−ρ)", rtol=1e-9)
    assert_close(law["abstain"], rho**k, 1e-300, f"T8: P(abstain) of enforce (K = {k}) vs ρ^K", rtol=1e-9)
    tries = np.array([law["accepted_at"].get(t, 0.0) for t in range(1, k + 1)])
    if set(law["accepted_at"]) - set(range(1, k + 1)):
        raise AssertionError(f"T8: enforce (K = {k}) accepted at tries {sorted(law['accepted_at'])}")
    assert_close(tries, (1 - rho) * rho ** np.arange(k), 1e-300, f"T8: P(accepted at try t) vs ρ^(t−1)(1−ρ), K = {k}", rtol=1e-9)
    # Monotone in K, p, d; the limit.
    if not float(form(p, d, f, k + 1)) >= value - 1e-15:
        raise AssertionError("T8: P_viol decreases with more tries")
    h = 1e-6
    if float(form(min(p + h, 1.0), d, f, k)) > value + 1e-15 or float(form(p, min(d + h, 1.0), f, k)) > value + 1e-15:
        raise AssertionError("T8: P_viol rises with compliance p or detection d")
    limit = (1 - p) * (1 - d) / (p * (1 - f) + (1 - p) * (1 - d))
    if value > limit + 1e-15 or abs(float(form(p, d, f, 4000)) - limit) > 1e-9 * max(1.0, 1 / (1 - rho)):
        raise AssertionError("T8: P_viol(K) does not approach its limit from below")
    rate, se = t8_monte_carlo()
    expected = float(form(0.7, 0.6, 0.1, 3))
    if abs(rate - expected) > 4 * se:
        raise AssertionError(f"T8 Monte Carlo: {rate:.5f} vs {expected:.5f} (4 SE = {4 * se:.5f})")


register(
    Theorem(
        id="LOC-8",
        mechanism="LOC",
        provenance="[reconstructed]",
        statement="dual enforcement: P_viol(K) = (1−p)(1−d)Σ_{k<K}ρ^k, ρ = (1−p)d + pf; "
        "non-decreasing in K, non-increasing in p and d",
        scope="instance: the closed form at K = 1 … 8; monotonicity numeric only",
        symbolic=_t8_symbolic,
        numeric=NumericCheck(check=_t8_numeric, strategy=_t8_cases()),
    )
)
