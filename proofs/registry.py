"""The theorem registry: what a theorem is, where it is kept, and how it is checked.

A :class:`Theorem` is a record, not a test: a one-line statement, a provenance
label, and up to two independent checks of it:

* ``symbolic`` — a zero-argument callable that states the theorem in SymPy
  and returns ``True`` when it reduces to a known truth (an identity
  simplified to zero, an inequality brought to a form of known sign).
* ``numeric``  — a :class:`NumericCheck`: a plain function ``check(example)``
  that raises ``AssertionError`` when the project's NumPy code violates the
  theorem on ``example``, and a Hypothesis strategy that draws examples.

Either may be ``None`` (reported "n/a"). :func:`run_theorem` runs both and
never raises: a failed assertion, a symbolic part that reduces to ``False``,
or any exception inside a check is reported as "fail" with a one-line message.

A symbolic "pass" is only worth what the SymPy part states, so every theorem
also says its ``scope`` — how much of the statement the symbolic check proves:

* ``"general"`` — the statement itself, for every size and value it quantifies over;
* ``"lemma: <what>"`` — an ingredient the statement rests on, not the whole statement;
* ``"instance: <which>"`` — the statement at one size or one point, e.g. ``"instance: n = 5"``;
* ``"none"`` — there is no symbolic check (then ``symbolic`` is ``None``).

Every mechanism's module (``proofs/core.py``) or package (``proofs/locality/``)
calls :func:`register` at import time; ``import proofs`` imports them all.

Usage::

    import proofs
    from proofs.registry import run_all
    for result in run_all(examples=100, mechanism="CORE"):
        print(result.as_dict())
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.strategies import SearchStrategy

from reference.mechanisms import codes

MECHANISMS = ("CORE",) + codes()
"""Theorem groups, in report order: the core, then every registered mechanism (``reference.mechanisms``)."""

PASS, FAIL, NA = "pass", "fail", "n/a"

_PROVENANCE = re.compile(r"^\[[^\[\]]+\]$")
_SCOPE = re.compile(r"^(general|none|lemma: \S.*|instance: \S.*)$")
SCOPES = ("general", "lemma: <what>", "instance: <which>", "none")
"""The accepted forms of :attr:`Theorem.scope` (see the module docstring)."""
_MESSAGE_CHARS = 400  # a message is one table cell; the falsifying example is cut to fit
_EXAMPLE_CHARS = 200


@dataclass(frozen=True)
class NumericCheck:
    """A property of the project's code, checked on drawn examples.

    ``check(example)`` returns ``None`` and raises ``AssertionError`` (with a
    one-line message) when the property fails; ``strategy`` draws examples.
    """

    check: Callable[[Any], None]
    strategy: SearchStrategy


@dataclass(frozen=True)
class Theorem:
    """One theorem: an id such as "CORE-1", its mechanism, provenance label, checks and symbolic scope.

    ``scope`` (required) says what ``symbolic`` proves: "general", "lemma: <what>",
    "instance: <which>", or "none" exactly when there is no symbolic check.
    """

    id: str
    mechanism: str
    provenance: str
    statement: str
    scope: str
    symbolic: Callable[[], bool] | None = None
    numeric: NumericCheck | None = None

    def __post_init__(self) -> None:
        # Reject malformed records at import time, where the mistake is made.
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"theorem {self.id}: mechanism {self.mechanism!r} is not one of {', '.join(MECHANISMS)}")
        if not re.fullmatch(rf"{self.mechanism}-\d+", self.id):
            raise ValueError(f"theorem id {self.id!r} is not '{self.mechanism}-<number>'")
        if not _PROVENANCE.match(self.provenance):
            raise ValueError(f"theorem {self.id}: provenance {self.provenance!r} is not a label like '[standard]'")
        if not self.statement.strip() or "\n" in self.statement:
            raise ValueError(f"theorem {self.id}: statement must be one non-empty line")
        if self.symbolic is None and self.numeric is None:
            raise ValueError(f"theorem {self.id}: needs a symbolic or a numeric check (or both)")
        if self.numeric is not None and not isinstance(self.numeric, NumericCheck):
            raise ValueError(f"theorem {self.id}: numeric must be a NumericCheck or None")
        if not isinstance(self.scope, str) or "\n" in self.scope or not _SCOPE.match(self.scope):
            raise ValueError(f"theorem {self.id}: scope {self.scope!r} is not one of {', '.join(repr(s) for s in SCOPES)}")
        if (self.symbolic is None) != (self.scope == "none"):
            has = "no symbolic check" if self.symbolic is None else "a symbolic check"
            raise ValueError(f"theorem {self.id}: scope {self.scope!r} does not fit {has} (scope 'none' iff symbolic is None)")


@dataclass(frozen=True)
class TheoremResult:
    """The outcome of checking one theorem.

    ``symbolic`` and ``numeric`` are each exactly one of "pass", "fail", "n/a";
    ``scope`` is the theorem's :attr:`Theorem.scope` (what a symbolic "pass" proves);
    ``examples`` is how many drawn examples the numeric check ran (examples that
    ``assume`` rejected are not counted): the number requested when it passes —
    fewer only if the strategy ran out of distinct examples, which the proofs
    tests forbid — more when a failure was shrunk (the replays count), 0 when
    there is no numeric check;
    ``message`` is one line, empty when everything passed.
    """

    id: str
    mechanism: str
    provenance: str
    statement: str
    symbolic: str
    scope: str
    numeric: str
    examples: int
    message: str = ""

    @property
    def passed(self) -> bool:
        """True when neither check failed."""
        return FAIL not in (self.symbolic, self.numeric)

    def as_dict(self) -> dict[str, Any]:
        """The table row: keys id, mechanism, provenance, symbolic, scope, numeric, examples."""
        return {
            "id": self.id,
            "mechanism": self.mechanism,
            "provenance": self.provenance,
            "symbolic": self.symbolic,
            "scope": self.scope,
            "numeric": self.numeric,
            "examples": self.examples,
        }


# --------------------------------------------------------------------------- the registry

_REGISTRY: dict[str, Theorem] = {}


def register(theorem: Theorem) -> Theorem:
    """Add ``theorem`` to the registry and return it; a duplicate id raises ValueError."""
    if theorem.id in _REGISTRY:
        raise ValueError(f"theorem id {theorem.id!r} is already registered")
    _REGISTRY[theorem.id] = theorem
    return theorem


def all_theorems() -> list[Theorem]:
    """Every registered theorem, by mechanism (in MECHANISMS order) then by number."""
    return sorted(_REGISTRY.values(), key=_order)


def get(theorem_id: str) -> Theorem:
    """The theorem with id ``theorem_id``; KeyError naming the known ids otherwise."""
    try:
        return _REGISTRY[theorem_id]
    except KeyError:
        known = ", ".join(t.id for t in all_theorems()) or "none"
        raise KeyError(f"no theorem {theorem_id!r} (registered: {known})") from None


def _order(theorem: Theorem) -> tuple[int, int]:
    return MECHANISMS.index(theorem.mechanism), int(theorem.id.rsplit("-", 1)[1])


# --------------------------------------------------------------------------- running


def run_theorem(theorem: Theorem, examples: int) -> TheoremResult:
    """Check ``theorem`` symbolically and on up to ``examples`` drawn examples.

    A failing or crashing check is reported in the result, never raised;
    only ``examples < 1`` (a caller's mistake) raises ValueError.
    """
    if examples < 1:
        raise ValueError(f"examples: {examples!r} is not an int >= 1")
    symbolic, symbolic_msg = _run_symbolic(theorem.symbolic)
    numeric, ran, numeric_msg = _run_numeric(theorem.numeric, examples)
    messages = [f"symbolic: {symbolic_msg}"] if symbolic_msg else []
    messages += [f"numeric: {numeric_msg}"] if numeric_msg else []
    return TheoremResult(
        id=theorem.id,
        mechanism=theorem.mechanism,
        provenance=theorem.provenance,
        statement=theorem.statement,
        symbolic=symbolic,
        scope=theorem.scope,
        numeric=numeric,
        examples=ran,
        message="; ".join(messages),
    )


def run_all(examples: int = 100, mechanism: str | None = None) -> list[TheoremResult]:
    """Run every registered theorem (or only those of ``mechanism``), in registry order."""
    if mechanism is not None and mechanism not in MECHANISMS:
        raise ValueError(f"mechanism: {mechanism!r} is not one of {', '.join(MECHANISMS)}")
    return [run_theorem(t, examples) for t in all_theorems() if mechanism in (None, t.mechanism)]


def _run_symbolic(symbolic: Callable[[], bool] | None) -> tuple[str, str]:
    if symbolic is None:
        return NA, ""
    try:
        verdict = symbolic()
    except Exception as error:  # any error inside a check is a failed check, never a crash
        return FAIL, _one_line(error)
    # Only an explicit truth counts: a SymPy expression is truthy in Python,
    # so returning ``simplify(expr)`` instead of ``simplify(expr) == 0`` must not pass.
    if verdict is True or verdict is sympy.true or (isinstance(verdict, np.bool_) and bool(verdict)):
        return PASS, ""
    if verdict is False or verdict is sympy.false or isinstance(verdict, np.bool_):
        return FAIL, "the statement did not reduce to True"
    return FAIL, f"the check returned {type(verdict).__name__}, not True/False"


def _run_numeric(numeric: NumericCheck | None, examples: int) -> tuple[str, int, str]:
    if numeric is None:
        return NA, 0, ""
    ran = 0
    falsifying: list[Any] = []

    def counted(example: Any) -> None:
        # Count what Hypothesis counts as an example: a call that returned or failed,
        # not one that assume(False) rejected (Hypothesis draws another in its place).
        nonlocal ran
        try:
            numeric.check(example)
        except UnsatisfiedAssumption:  # rejected: not an example, not a failure
            raise
        except Exception:
            ran += 1
            # Hypothesis replays the shrunk failure last, so the last one kept is the minimal one.
            falsifying[:] = [example]
            raise
        ran += 1

    run = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        verbosity=Verbosity.quiet,  # the falsifying example goes into the message instead
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )(given(numeric.strategy)(counted))
    try:
        run()
    except Exception as error:  # any error inside a check is a failed check, never a crash
        message = _one_line(error)
        if falsifying:
            message += f" (falsifying example: {_short_repr(falsifying[0])})"
        return FAIL, ran, message
    return PASS, ran, ""


def _one_line(error: BaseException) -> str:
    """'Type: first non-empty line of the message', cut to fit a table cell."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


def _short_repr(example: Any) -> str:
    with np.printoptions(threshold=8, edgeitems=2, precision=6):
        text = " ".join(repr(example).split())
    return text if len(text) <= _EXAMPLE_CHARS else text[: _EXAMPLE_CHARS - 1] + "…"
