"""The CORE theorems hold, and the registry can tell a true theorem from a false one.

The example count follows the Hypothesis profile: at least 30 (the default
``dev`` run stays fast), more under ``--hypothesis-profile ci`` / ``thorough``;
every theorem must run exactly that many.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, settings
from hypothesis import strategies as st

import proofs
from proofs.core import ShiftCase, softmax_formula
from proofs.registry import NumericCheck, Theorem, TheoremResult, all_theorems, get, register, run_all, run_theorem
from proofs.toolkit import assert_close
from reference.layers.attention import softmax
from reference.metrics import entropy

CORE_IDS = [f"CORE-{number}" for number in range(1, 9)]


def _examples() -> int:
    return max(30, settings.default.max_examples)


@pytest.fixture(scope="module")
def core_results() -> dict[str, TheoremResult]:
    return {result.id: result for result in run_all(examples=_examples(), mechanism="CORE")}


def _theorem(**overrides) -> Theorem:
    """A throwaway theorem (never registered), true unless overridden."""
    fields = {
        "id": "CORE-900",
        "mechanism": "CORE",
        "provenance": "[test]",
        "statement": "a statement under test",
        "scope": "general",
        "symbolic": lambda: True,
        "numeric": NumericCheck(check=lambda example: None, strategy=st.integers()),
    }
    return Theorem(**(fields | overrides))


# --------------------------------------------------------------------------- the CORE theorems


def test_every_core_theorem_is_registered():
    assert [t.id for t in all_theorems() if t.mechanism == "CORE"] == CORE_IDS
    assert all(t.symbolic is not None and t.numeric is not None for t in map(get, CORE_IDS))


@pytest.mark.parametrize("theorem_id", CORE_IDS)
def test_core_theorem_passes(core_results, theorem_id):
    result = core_results[theorem_id]
    assert (result.symbolic, result.numeric, result.message) == ("pass", "pass", ""), result.message
    assert result.examples == _examples()  # every requested example ran
    assert result.provenance == "[standard]"
    assert result.scope == get(theorem_id).scope


def test_run_all_filters_by_mechanism(core_results):
    assert set(core_results) == set(CORE_IDS)
    assert {r.mechanism for r in core_results.values()} == {"CORE"}
    with pytest.raises(ValueError, match="mechanism"):
        run_all(examples=1, mechanism="XYZ")


def test_result_row_has_exactly_the_table_keys(core_results):
    row = core_results["CORE-1"].as_dict()
    assert list(row) == ["id", "mechanism", "provenance", "symbolic", "scope", "numeric", "examples"]
    assert row["id"] == "CORE-1" and row["symbolic"] == "pass" and isinstance(row["examples"], int)
    assert row["scope"] == "general"


# --------------------------------------------------------------------------- the registry


def test_registry_rejects_a_duplicate_id():
    before = all_theorems()
    with pytest.raises(ValueError, match="CORE-1"):
        register(_theorem(id="CORE-1"))
    assert all_theorems() == before and get("CORE-1").statement.startswith("softmax is shift invariant")


def test_get_names_the_known_ids_for_an_unknown_one():
    with pytest.raises(KeyError, match="CORE-1"):
        get("CORE-999")


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"mechanism": "FOO"}, "mechanism"),
        ({"id": "LOC-1"}, "id"),
        ({"provenance": "standard"}, "provenance"),
        ({"statement": "two\nlines"}, "statement"),
        ({"symbolic": None, "numeric": None}, "check"),
        ({"scope": "proved"}, "scope"),
        ({"scope": "lemma:"}, "scope"),  # a lemma must say which
        ({"scope": "instance:  "}, "scope"),
        ({"scope": "General"}, "scope"),
        ({"scope": "instance: n = 5\nand more"}, "scope"),
        ({"scope": "none"}, "scope"),  # a symbolic check with no scope
        ({"symbolic": None}, "scope"),  # no symbolic check, yet scope "general"
        ({"symbolic": None, "scope": "lemma: a step"}, "scope"),
    ],
)
def test_malformed_theorems_are_rejected(overrides, field):
    with pytest.raises(ValueError, match=field):
        _theorem(**overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"scope": "general"},
        {"scope": "lemma: the per-block step"},
        {"scope": "instance: n = 5"},
        {"symbolic": None, "scope": "none"},
    ],
)
def test_each_scope_form_is_accepted_and_reported(overrides):
    result = run_theorem(_theorem(**overrides), examples=3)
    assert result.scope == overrides["scope"] and result.as_dict()["scope"] == overrides["scope"]


def test_core_scopes_say_what_the_symbolic_part_proves():
    scopes = {t.id: t.scope for t in all_theorems() if t.mechanism == "CORE"}
    # GELU's gap bound is evaluated at one stationary point, causality at T ≤ 5: neither is "general".
    assert scopes["CORE-5"].startswith("lemma: ") and scopes["CORE-8"] == "instance: lengths T = 1 … 5"
    assert all(scopes[f"CORE-{k}"] == "general" for k in (1, 2, 3, 4, 6, 7))


def test_numeric_counts_the_examples_it_ran():
    seen = []
    result = run_theorem(_theorem(numeric=NumericCheck(check=seen.append, strategy=st.integers())), examples=17)
    assert result.examples == len(seen) == 17 and result.numeric == "pass"


def test_numeric_does_not_count_examples_an_assumption_rejected():
    ran = []

    def even_only(example: int) -> None:
        assume(example % 2 == 0)  # rejects about half; Hypothesis draws others in their place
        ran.append(example)

    result = run_theorem(_theorem(numeric=NumericCheck(check=even_only, strategy=st.integers())), examples=17)
    assert result.numeric == "pass" and result.examples == len(ran) == 17


def test_n_a_when_a_check_is_absent():
    result = run_theorem(_theorem(numeric=None), examples=5)
    assert (result.symbolic, result.numeric, result.examples) == ("pass", "n/a", 0)
    result = run_theorem(_theorem(symbolic=None, scope="none"), examples=5)
    assert (result.symbolic, result.scope, result.numeric) == ("n/a", "none", "pass")


# --------------------------------------------------------------------------- checks can fail


def _false_shift_check(case: ShiftCase) -> None:
    # The false statement softmax(z + c) = softmax(z) + c, on the project's softmax.
    assert_close(softmax(case.z + case.c), softmax(case.z) + case.c, 1e-12, "softmax(z + c) vs softmax(z) + c")


def test_a_false_numeric_theorem_fails():
    strategy = get("CORE-1").numeric.strategy
    false = _theorem(symbolic=None, scope="none", numeric=NumericCheck(check=_false_shift_check, strategy=strategy))
    result = run_theorem(false, examples=_examples())
    assert result.numeric == "fail" and not result.passed
    assert "softmax(z + c) vs softmax(z) + c" in result.message and "falsifying example" in result.message
    assert result.examples >= 1 and "\n" not in result.message


def test_a_false_symbolic_identity_fails():
    c = sp.Symbol("c", real=True)
    false = _theorem(symbolic=lambda: sp.simplify(softmax_formula(c) - (softmax_formula() + c)) == 0, numeric=None)
    result = run_theorem(false, examples=1)
    assert (result.symbolic, result.numeric) == ("fail", "n/a")
    assert result.message.startswith("symbolic:")


def test_a_symbolic_check_must_return_a_bool_not_an_expression():
    # sp.simplify(...) without "== 0" is a truthy SymPy object; it must not count as a proof.
    c = sp.Symbol("c", real=True)
    result = run_theorem(_theorem(symbolic=lambda: sp.simplify(softmax_formula(c) + 1), numeric=None), examples=1)
    assert result.symbolic == "fail" and "not True/False" in result.message


def _raises(_example=None):
    raise ZeroDivisionError("boom in the check")


@pytest.mark.parametrize("part", ["symbolic", "numeric"])
def test_an_exception_inside_a_check_is_a_fail_with_a_message(part):
    broken = {"symbolic": _raises} if part == "symbolic" else {"numeric": NumericCheck(_raises, st.integers())}
    result = run_theorem(_theorem(**broken), examples=5)
    assert getattr(result, part) == "fail"
    assert f"{part}: ZeroDivisionError: boom in the check" in result.message and "\n" not in result.message


# --------------------------------------------------------------------------- entropy (CORE-3's metric)


def test_entropy_values_and_units():
    assert entropy(np.array([1.0, 0.0, 0.0])) == 0.0  # 0 · log 0 = 0, no NaN
    assert entropy([0.5, 0.5], base=2) == pytest.approx(1.0, abs=1e-15)
    assert entropy(np.full((2, 3, 8), 1 / 8)).shape == (2, 3)
    with pytest.raises(ValueError, match="base"):
        entropy([0.5, 0.5], base=1)


def test_importing_proofs_exposes_the_registry_api():
    assert proofs.run_theorem is run_theorem and proofs.get("CORE-3").mechanism == "CORE"
