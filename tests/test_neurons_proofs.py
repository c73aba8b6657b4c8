"""NEU theorems (proofs/neurons/): registered with provenance and scope, and passing through ``clearform proofs``.

Example counts follow spec §4: 200 per theorem under the ``dev`` profile, 500 under ``ci``,
5,000 under ``thorough``.
"""

from __future__ import annotations

import json

from hypothesis import settings

from proofs.neurons import NEU_IDS
from proofs.registry import all_theorems
from reference.cli import main

EXAMPLES = {20: 200, 40: 500, 400: 5000}


def test_neurons_theorems_are_registered_with_provenance_and_scope():
    neu = [t for t in all_theorems() if t.mechanism == "NEU"]
    assert tuple(t.id for t in neu) == NEU_IDS
    assert all(t.symbolic and t.numeric for t in neu)
    assert {t.id for t in neu if t.provenance == "[classical]"} == {"NEU-2", "NEU-4", "NEU-7", "NEU-8"}
    kinds = {t.id: t.scope.split(":")[0] for t in neu}
    assert kinds == {"NEU-1": "instance", "NEU-2": "lemma", "NEU-3": "lemma", "NEU-4": "lemma", "NEU-5": "instance",
                     "NEU-6": "lemma", "NEU-7": "instance", "NEU-8": "instance", "NEU-9": "lemma", "NEU-10": "lemma"}


def test_neurons_theorems_pass_in_clearform_proofs(capsys):
    examples = EXAMPLES.get(settings.default.max_examples, 10 * settings.default.max_examples)
    code = main(["proofs", "--json", "--mechanism", "NEU", "--examples", str(examples)])
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == list(NEU_IDS)
    for r in rows:
        assert (r["symbolic"], r["numeric"]) == ("pass", "pass"), r
        assert r["examples"] == examples, r
    assert code == 0
