"""LOC rules (A8): anchors, verification, injection, hot reloading, dual enforcement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reference.config import InputError, ModelConfig, ToyWorldConfig
from reference.data.toyworld import ToyWorld, preset_config
from reference.mechanisms.locality import (
    LocalityConfig,
    anchor_surprisal_bits,
    enforce,
    generate_dialled,
    hot_reload,
    inject,
    rule_region_end,
    template_entropy_bits,
    toy_layout_from_tokens,
    verify_rule,
)
from reference.model import forward, init_params

WORLD = ToyWorld(preset_config("locality_tiny"))


def a_document(index: int = 0):
    docs = WORLD.documents(index + 1, data_seed=5, split="heldout")
    return docs.tokens[index], docs.rules[index], docs


def test_locality_template_entropy_is_zero_for_one_template_and_log2_m_for_m():
    assert template_entropy_bits(WORLD.documents(50, 0).rule_template) == 0.0
    world = ToyWorld(ToyWorldConfig(context=96, rules_per_doc=4, queries_per_doc=2, rule_templates=4))
    h = template_entropy_bits(world.documents(2000, 0).rule_template)
    assert abs(h - 2.0) < 0.01  # 8000 uniform draws over 4 templates


def test_locality_anchor_surprisal_from_counts():
    tokens = np.array([[1, 7, 7, 3, 0], [1, 7, 3, 3, 3]])
    valid = tokens != 0
    assert math.isclose(anchor_surprisal_bits(tokens, valid, 7), -math.log2(3 / 9))
    assert anchor_surprisal_bits(tokens, valid, 9) == math.inf
    docs = WORLD.documents(100, 0)
    # one anchor per rule block: its unigram probability is (documents)/(valid tokens) per slot
    expected = -math.log2(100 / docs.valid.sum())
    assert math.isclose(anchor_surprisal_bits(docs.tokens, docs.valid, int(WORLD.anchor_ids[0])), expected)


def test_locality_verification_rejects_bad_rules():
    tokens, rules, _ = a_document()
    key, value = int(WORLD.key_ids[0]), int(WORLD.value_ids[0])
    assert verify_rule([0, key, value, 0, 1], [], WORLD) is None
    assert "slot 9 does not exist" in verify_rule([9, key, value, 0, 1], [], WORLD)
    assert "is not a key" in verify_rule([0, value, value, 0, 1], [], WORLD)
    assert "is not a value" in verify_rule([0, key, key, 0, 1], [], WORLD)
    assert "already active" in verify_rule([1, key, value, 0, 1], [[0, key, value, 0, 1]], WORLD)
    assert "already holds" in verify_rule([0, int(WORLD.key_ids[1]), value, 0, 1], [[0, key, value, 0, 1]], WORLD)


def test_locality_injection_rebuilds_the_generator_document_and_never_injects_unverified_rules():
    tokens, rules, docs = a_document()
    end = rule_region_end(tokens, WORLD)
    body = tokens[end : int(docs.length[0])]
    again = inject(body, rules, WORLD, length=len(tokens))
    assert np.array_equal(again.tokens, tokens)
    assert np.all(again.table[:, 4] == 1)
    bad = rules.copy()
    bad[2, 2] = int(WORLD.key_ids[0])  # slot 2's value is not a value token
    bad[3, 1] = bad[0, 1]  # slot 3 repeats slot 0's key
    injected = inject(body, bad, WORLD, length=len(tokens))
    assert list(injected.table[:, 4]) == [1, 1, 0, 0]
    region = injected.tokens[: rule_region_end(injected.tokens, WORLD)]
    assert int(WORLD.anchor_ids[2]) not in region and int(WORLD.anchor_ids[3]) not in region
    assert bad[2, 2] not in region[1:]  # the unverified rule's tokens are nowhere in the rule region
    # the layout knows no rule for the dropped slots: their queries' keys are free rows, the others stay rule rows
    shift = region.size - end  # the rule region shrank by two blocks
    emitted = docs.query_pos[0] >= 0
    for slot, at in zip(docs.query_slot[0][emitted], docs.query_pos[0][emitted]):
        assert injected.layout.rule_row[0, at + 1 + shift] == (slot in (0, 1))
    with pytest.raises(InputError, match="more than length"):
        inject(body, rules, WORLD, length=10)


def test_locality_hot_reload_edits_one_token_in_place_and_keeps_the_layout():
    tokens, rules, _ = a_document(2)
    slot = 1
    old = int(rules[slot, 2])
    new = int(WORLD.value_ids[(int(np.flatnonzero(WORLD.value_ids == old)[0]) + 5) % len(WORLD.value_ids)])
    reloaded = hot_reload(tokens, rules, slot, new, WORLD)
    changed = np.flatnonzero(reloaded.tokens != tokens)
    assert list(changed) == [reloaded.first_changed]
    assert reloaded.tokens[reloaded.first_changed] == new
    assert reloaded.table[slot, 2] == new and reloaded.table[slot, 3] == rules[slot, 3] + 1
    before = toy_layout_from_tokens(tokens[None], WORLD)
    for field in ("block_id", "target_block", "rule_row", "pointer_mask"):
        assert np.array_equal(getattr(before, field), getattr(reloaded.layout, field))
    with pytest.raises(InputError, match="fails verification"):
        hot_reload(tokens, rules, slot, int(WORLD.key_ids[0]), WORLD)
    with pytest.raises(InputError, match="holds no rule"):
        hot_reload(tokens, rules[:2], 3, new, WORLD)


def test_locality_hot_reload_of_a_new_slot_re_serialises_and_rebuilds_the_group_map():
    tokens, rules, docs = a_document(1)
    table = rules[:3]  # slot 3 absent
    body = tokens[rule_region_end(tokens, WORLD) : int(docs.length[1])]
    start = inject(body, table, WORLD, length=len(tokens))
    key = int(rules[3, 1])
    grown = hot_reload(start.tokens, table, 3, int(rules[3, 2]), WORLD, key=key)
    assert grown.first_changed == rule_region_end(start.tokens, WORLD)
    assert np.array_equal(grown.tokens[: int(docs.length[1])], tokens[: int(docs.length[1])])
    assert grown.layout.rule_row.sum() >= start.layout.rule_row.sum()  # queries of slot 3 became rule rows


def test_locality_generation_after_a_reload_equals_generation_from_scratch():
    """A reload changes nothing before first_changed (cached keys and values stay valid) and
    generation continues exactly as from freshly injected tokens."""
    tokens, rules, docs = a_document(3)
    config = ModelConfig(vocab_size=WORLD.V, context=64, d_model=16, n_layers=2, n_heads=2, dtype="float64", init_std=0.3)
    params = init_params(config, 0)
    slot = int(docs.query_slot[3][docs.query_pos[3] >= 0][0])
    new = int(WORLD.value_ids[(int(rules[slot, 2]) - int(WORLD.value_ids[0]) + 3) % len(WORLD.value_ids)])
    reloaded = hot_reload(tokens, rules, slot, new, WORLD)
    body = reloaded.tokens[rule_region_end(reloaded.tokens, WORLD) : int(docs.length[3])]
    scratch = inject(body, reloaded.table, WORLD, length=len(tokens))
    assert np.array_equal(scratch.tokens, reloaded.tokens)
    before, _ = forward(params, config, tokens[None, :-1])
    after, _ = forward(params, config, reloaded.tokens[None, :-1])
    k = reloaded.first_changed
    assert np.array_equal(before[0, :k], after[0, :k]) and not np.array_equal(before[0, k:], after[0, k:])
    query = int(docs.query_pos[3][docs.query_pos[3] >= 0][0])
    prompt = reloaded.tokens[: query + 2]  # ... "? k": the model answers with a value
    cfg = LocalityConfig()

    def layout_of(window):
        return toy_layout_from_tokens(window, WORLD, cfg)

    one = generate_dialled(params, config, prompt, 3, 1.0, cfg, layout_of)
    two = generate_dialled(params, config, scratch.tokens[: query + 2], 3, 1.0, cfg, layout_of)
    assert one == two and len(one) == len(prompt) + 3


def test_locality_enforcement_uses_at_most_k_tries_and_abstains():
    outputs = iter(["bad", "bad", "good", "bad"])
    calls = []

    def generate(k):
        calls.append(k)
        return next(outputs)

    result = enforce(generate, lambda out: out == "good", max_retries=3)
    assert (result.output, result.tries, result.abstained) == ("good", 3, False) and calls == [0, 1, 2]
    abstained = [enforce(lambda k: "bad", lambda out: False, 3) for _ in range(5)]
    assert all(r.abstained and r.output is None and r.tries == 3 for r in abstained)
    assert sum(r.abstained for r in abstained) == 5
    first = enforce(lambda k: "good", lambda out: True, 3)
    assert first.tries == 1


@pytest.mark.parametrize("max_retries", [1, 2, 3, 7])
def test_locality_enforcement_makes_exactly_k_tries_when_every_check_fails(max_retries):
    calls = []

    def generate(k):
        calls.append(k)
        return f"try {k}"

    checked = []
    result = enforce(generate, lambda out: checked.append(out) or False, max_retries=max_retries)
    assert calls == list(range(max_retries))  # exactly K generator calls, tries 0 … K − 1
    assert checked == [f"try {k}" for k in range(max_retries)]  # every output was checked once
    assert (result.output, result.tries, result.abstained) == (None, max_retries, True)


@pytest.mark.parametrize("max_retries, success", [(1, 1), (3, 1), (3, 2), (3, 3), (5, 5), (7, 4)])
def test_locality_enforcement_stops_at_the_first_accepted_try(max_retries, success):
    calls = []

    def generate(k):
        calls.append(k)
        return k + 1  # the output is the try's 1-based number

    result = enforce(generate, lambda out: out >= success, max_retries=max_retries)
    assert calls == list(range(success))  # success on try k: exactly k calls
    assert (result.output, result.tries, result.abstained) == (success, success, False)
    assert result.tries == len(calls)


@pytest.mark.parametrize("max_retries", [1, 2, 5])
def test_locality_enforcement_never_accepts_a_try_past_k(max_retries):
    """Acceptable only on try K + 1 (index K): enforce must abstain after K tries, never make the extra one."""
    calls = []
    result = enforce(lambda k: calls.append(k) or k, lambda out: out == max_retries, max_retries=max_retries)
    assert calls == list(range(max_retries)) and result.abstained and result.tries == max_retries
