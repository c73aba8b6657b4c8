"""DDC: the theorems DDCL-T1 … T4, T6 … T12 are registered (as DDC-1 … DDC-12, no DDC-5) and pass."""

from __future__ import annotations

import pytest

import proofs  # noqa: F401  (registers every theorem)
from proofs.ddc import DDC_IDS
from proofs.registry import all_theorems, get, run_theorem


def test_ddc_theorem_ids():
    assert tuple(t.id for t in all_theorems() if t.mechanism == "DDC") == DDC_IDS
    assert "DDC-5" not in DDC_IDS  # T5 is an experiment (E6), not a proof


@pytest.mark.parametrize("theorem_id", DDC_IDS)
def test_ddc_theorem_passes(theorem_id):
    result = run_theorem(get(theorem_id), examples=15)
    assert result.passed, result.message
    assert result.numeric == "pass" and result.examples == 15
    assert result.symbolic == ("n/a" if get(theorem_id).scope == "none" else "pass")
