"""VDS theorems (proofs/vds/): registered, passing through ``clearform proofs``, and sharp where the spec says so.

The registry check runs ``clearform proofs --json --mechanism VDS`` with 100 examples per theorem
under ``dev`` (the default), 200 under ``ci``, 1,000 under ``thorough``.
"""

from __future__ import annotations

import json

import numpy as np
from hypothesis import settings

from proofs.registry import all_theorems
from proofs.vds import VDS_IDS, own_peak_rate
from proofs.vds.logits import P6_TABLE, bound_fn, floor_fn
from reference.cli import main
from reference.mechanisms.vds import semantic_bases

EXAMPLES = {20: 100, 40: 200, 400: 1000}


def test_vds_theorems_are_registered_with_provenance_and_honest_scopes():
    vds = [t for t in all_theorems() if t.mechanism == "VDS"]
    assert tuple(t.id for t in vds) == VDS_IDS
    assert all(t.provenance == "[reconstructed]" and t.symbolic and t.numeric for t in vds)
    kinds = {t.id: t.scope.split(":")[0] for t in vds}
    assert kinds == {"VDS-1": "instance", "VDS-2": "instance", "VDS-3": "instance", "VDS-4": "instance",
                     "VDS-5": "instance", "VDS-6": "general", "VDS-7": "instance", "VDS-8": "instance", "VDS-9": "general"}


def test_vds_theorems_pass_in_clearform_proofs(capsys):
    examples = EXAMPLES.get(settings.default.max_examples, 5 * settings.default.max_examples)
    code = main(["proofs", "--json", "--mechanism", "VDS", "--examples", str(examples)])
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == list(VDS_IDS)
    for r in rows:
        assert (r["symbolic"], r["numeric"]) == ("pass", "pass"), r
        assert r["examples"] == examples, r
    assert code == 0


def test_vds_p6_bounds_match_the_spec_table():
    for n, (bound, floor) in P6_TABLE.items():
        assert abs(bound_fn(n, 1.0) - bound) <= 5e-4 * bound and abs(floor_fn(n, 1.0) - floor) <= 5e-4


def test_vds_p6_bound_is_attained_at_the_corner():
    """Sharpness: c = (1, −1, …, −1) reaches the bound exactly, so it cannot be lowered."""
    for n in (2, 4, 6):
        c = np.array([1.0] + [-1.0] * (n - 1))
        p = np.exp(c) / np.exp(c).sum()
        assert abs(p[0] - bound_fn(n, 1.0)) <= 1e-15


def test_vds_own_peak_is_not_a_theorem():
    """VDS-P3: argmax_j (W s_i)_j = i can fail (V > d); the counterexample and a drawn head show it."""
    W = np.array([[1.0], [2.0], [0.0]])
    assert own_peak_rate(W) < 1.0
    S = semantic_bases(W)
    assert int(np.argmax(W @ S[0])) == 1
