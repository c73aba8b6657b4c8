"""MSA theorems (specs/04-msma.md §4): every MSA-k passes, and the checks catch the bugs they guard against."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

import proofs  # noqa: F401  (registers every theorem)
from proofs.msma import MSA_IDS, geometry, information
from proofs.registry import all_theorems, get, run_theorem


def test_msma_theorems_are_registered_with_scopes():
    ids = [t.id for t in all_theorems() if t.mechanism == "MSA"]
    assert tuple(ids) == MSA_IDS
    for t in map(get, ids):
        assert t.symbolic is not None and t.numeric is not None and t.scope != "none"


@pytest.mark.parametrize("theorem_id", MSA_IDS)
def test_msma_theorem_passes(theorem_id):
    result = run_theorem(get(theorem_id), max(5, settings.default.max_examples // 2))
    assert result.passed, result.message
    assert result.symbolic == "pass" and result.numeric == "pass"


def test_msma_planted_bugs_are_caught(monkeypatch):
    """A wrong Procrustes (no transpose), a KL without the log term, a positive 'unshuffled' value each fail their theorem."""
    import reference.mechanisms.msma.maps as maps

    real = maps.procrustes

    def broken(x, y, **kw):
        out = real(x, y, **kw)
        out["R"] = out["R"].T
        return out

    monkeypatch.setattr(geometry, "procrustes", broken)
    assert not run_theorem(get("MSA-1"), 30).passed
    monkeypatch.setattr(geometry, "procrustes", real)

    from reference.metrics import information as info

    def kl_no_log(a, b, eps=1e-6):
        sa, sb = np.maximum(a.var(0) + eps, eps), np.maximum(b.var(0) + eps, eps)
        return float(0.5 * np.sum(sa / sb + (a.mean(0) - b.mean(0)) ** 2 / sb - 1))

    monkeypatch.setattr(geometry, "kl_diag", kl_no_log)
    assert not run_theorem(get("MSA-2"), 30).passed
    monkeypatch.setattr(geometry, "kl_diag", info.kl_diag)

    monkeypatch.setattr(information, "mine_unshuffled", lambda t: float(np.mean(t) - np.log(np.mean(np.exp(t))) + 1e-3))
    assert not run_theorem(get("MSA-6"), 10).passed
