"""LOC metrics (spec §5): attention entropy in bits, pointer fidelity and its variants, off-block mass."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.config import InputError
from reference.metrics import (
    attention_entropy,
    entropy,
    off_block_mass,
    pointer_fidelity,
    pointer_targets,
    row_entropy_bits,
)


def causal_uniform(t: int) -> np.ndarray:
    """(1, 1, T, T): row i uniform over its i + 1 visible keys."""
    return np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None]


@given(st.integers(1, 40))
def test_locality_uniform_rows_give_log2_of_the_visible_count(t):
    pattern = causal_uniform(t)[None, None]
    h = row_entropy_bits([pattern])[0, 0, 0]
    assert np.allclose(h, np.log2(np.arange(1, t + 1)), rtol=0, atol=1e-12)
    summary = attention_entropy([pattern, pattern])
    # the plain mean over all rows, the first (H = 0) included: mean_{i ≤ T} log₂ i
    assert math.isclose(summary["entropy_bits"], float(np.mean(np.log2(np.arange(1, t + 1)))), abs_tol=1e-12)
    assert summary["entropy_layers"] == pytest.approx([summary["entropy_bits"]] * 2, abs=1e-12)
    if t >= 2:
        assert math.isclose(summary["entropy_norm"], 1.0, abs_tol=1e-12)  # every row with |vis| ≥ 2 is uniform
    assert math.isclose(summary["effective_support"], 2 ** summary["entropy_bits"])


def test_locality_one_hot_rows_give_zero_and_the_spec_reference_numbers():
    one_hot = np.eye(5)[None, None]
    assert attention_entropy(one_hot)["entropy_bits"] == 0.0
    # §6.5: causal attention averaged over positions reaches at most 5.60 bits at T = 128, 7.57 at 512
    for t, bound in ((128, 5.60), (256, 6.58), (512, 7.57), (1024, 8.56)):
        assert round(float(np.mean(np.log2(np.arange(1, t + 1)))), 2) == bound


def test_locality_row_entropy_agrees_with_the_core_entropy():
    rs = np.random.default_rng(0)
    p = rs.dirichlet(np.full(7, 0.3), size=(2, 3, 7))
    assert np.allclose(row_entropy_bits(p)[0], entropy(p, base=2), rtol=1e-13, atol=1e-15)


def hand_made() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One sequence, T = 4, blocks (0, 0, 1, 1); row 3 is a rule row with G* = block 0 and T(3) = {1}.

    Two heads: head 0 puts (0.1, 0.6, 0.2, 0.1) on row 3, head 1 (0.5, 0.2, 0.2, 0.1).
    """
    pattern = np.tile(causal_uniform(4), (1, 2, 1, 1))
    pattern[0, 0, 3] = [0.1, 0.6, 0.2, 0.1]
    pattern[0, 1, 3] = [0.5, 0.2, 0.2, 0.1]
    rule = np.array([[False, False, False, True]])
    targets = np.array([[-1, -1, -1, 1]])
    block_id = np.array([[0, 0, 1, 1]])
    relevant = np.array([[0, 0, 1, 0]])
    return pattern, rule, targets, block_id, relevant


def test_locality_pointer_fidelity_on_a_hand_made_pattern():
    pattern, rule, targets, block_id, relevant = hand_made()
    second = pattern.copy()
    second[0, 0, 3] = [0.0, 0.9, 0.05, 0.05]  # layer 1, head 0 points well
    result = pointer_fidelity([pattern, second], targets, rule, relevant_block=relevant, block_id=block_id,
                              anchor_targets=np.array([[-1, -1, -1, 0]]))
    pf = [0.6, 0.2, 0.9, 0.2]  # (layer, head) = (0,0), (0,1), (1,0), (1,1)
    assert math.isclose(result["pointer_fidelity"], np.mean(pf), abs_tol=1e-15)
    assert math.isclose(result["pf_hit"], 0.5)  # arg-max on the target for (0,0) and (1,0) only
    assert math.isclose(result["pf_block"], np.mean([0.7, 0.7, 0.9, 0.7]), abs_tol=1e-15)
    assert math.isclose(result["pf_anchor"], np.mean([0.1, 0.5, 0.0, 0.5]), abs_tol=1e-15)
    assert math.isclose(result["pf_best_head"], 0.9)
    assert result["pf_layers"] == pytest.approx([0.4, 0.55])
    # the same targets as a mask give the same numbers
    mask = pointer_targets(targets, (1, 4))
    assert pointer_fidelity([pattern, second], mask, rule)["pointer_fidelity"] == result["pointer_fidelity"]


def test_locality_no_rule_rows_give_null_pointer_metrics_and_off_block_mass():
    pattern, _, targets, block_id, relevant = hand_made()
    none = pointer_fidelity(pattern, targets * 0 - 1, np.zeros((1, 4), bool))
    assert all(v is None for v in none.values())
    off = block_id[:, None, :] != relevant[:, :, None]
    off &= np.tril(np.ones((4, 4), bool))[None]
    rows = np.array([[False, False, False, True]])
    assert math.isclose(off_block_mass(pattern, off, rows), np.mean([0.3, 0.3]))
    assert off_block_mass(pattern, off, np.zeros((1, 4), bool)) is None


def test_locality_user_inputs_are_validated():
    pattern, rule, targets, _, _ = hand_made()
    with pytest.raises(InputError, match=r"^targets: position 4 is outside the sequence \[0, 4\)"):
        pointer_fidelity(pattern, np.array([[-1, -1, -1, 4]]), rule)
    with pytest.raises(InputError, match=r"^targets: row 1 of sequence 0 points at position 2, after itself"):
        pointer_fidelity(pattern, np.array([[-1, 2, -1, -1]]), np.array([[False, True, False, False]]))
    with pytest.raises(InputError, match=r"^targets: rule row 3 of sequence 0 has no target"):
        pointer_fidelity(pattern, np.full((1, 4), -1), rule)
    with pytest.raises(InputError, match=r"^patterns: entries must be finite and >= 0"):
        attention_entropy(-pattern)
    with pytest.raises(InputError, match=r"^rows: shape"):
        attention_entropy(pattern, rows=np.ones((2, 4), bool))
    with pytest.raises(InputError, match=r"^patterns: expected \(batch, heads, T, T\)"):
        attention_entropy(np.ones((2, 3, 4)))
    # a bidirectional pattern may point forward when the caller says so
    bidirectional = pointer_fidelity(np.full((1, 1, 4, 4), 0.25), np.array([[-1, 2, -1, -1]]),
                                     np.array([[False, True, False, False]]), causal=False)
    assert bidirectional["pointer_fidelity"] == 0.25
