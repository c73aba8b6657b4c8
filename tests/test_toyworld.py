"""Toy world: determinism (T1), the one rule (T2), fields ⇔ tokens (T3), errors (T7), presets.

specs/toyworld.md §7. Statistics, needs and speed are in test_toyworld_stats.py; the grammar
recogniser in test_toyworld_grammar.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.config import ConfigError, ModelConfig, RunConfig, ToyWorldConfig
from reference.data.toyworld import (
    PRESETS,
    ToyBatch,
    ToyWorld,
    check_model_context,
    preset_config,
    vocab_size,
    world_from_preset,
)

REPO = Path(__file__).resolve().parents[1]

# Every option on at once, with anchors repeated and several templates (fillers).
RICH = ToyWorldConfig(
    context=72, sentences_per_doc=(2, 6), n_synonyms=2, label_tail_prob=0.5, rules_per_doc=3,
    queries_per_doc=5, n_keys=12, n_values=9, anchor_copies=2, rule_templates=3,
)
LOC_FIELDS = ("rules_per_doc", "queries_per_doc", "n_keys", "n_values", "anchor_copies", "rule_templates",
              "rule_default_prob")
VDS_FIELDS = ("label_tail_prob", "label_noise")

WORLD_FIELDS = (
    "V", "vocab", "is_special", "is_word", "is_sentence_end", "token_kind", "token_number", "token_category",
    "category_names", "category_parent", "parent_names", "token_topic", "token_lemma", "token_synonym",
    "label_word", "unseen_label_words", "key_ids", "value_ids", "anchor_ids", "filler_ids", "key_default",
)
BATCH_FIELDS = tuple(f.name for f in dataclasses.fields(ToyBatch) if f.name != "anchor_copies")


def row_fields(batch: ToyBatch, row: int) -> dict[str, np.ndarray]:
    return {name: getattr(batch, name)[row] for name in BATCH_FIELDS}


def batch_digest(batch: ToyBatch) -> str:
    digest = hashlib.sha256()
    for name in BATCH_FIELDS:
        array = np.ascontiguousarray(getattr(batch, name))
        digest.update(name.encode() + str(array.shape).encode() + str(array.dtype).encode() + array.tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- T1 determinism


@given(
    config=st.sampled_from([ToyWorldConfig(), RICH, preset_config("locality_tiny"), preset_config("msma_tiny")]),
    n=st.integers(0, 5),
    start=st.integers(0, 10**6),
    data_seed=st.integers(0, 2**40),
    split=st.sampled_from(["train", "heldout"]),
)
def test_t1_a_document_depends_only_on_its_index(config, n, start, data_seed, split):
    world = ToyWorld(config)
    batch = world.documents(n, data_seed, split, start)
    assert batch.tokens.shape == (n, config.context)
    assert batch.doc_index.tolist() == list(range(start, start + n))
    # Another batching of the same indices: one at a time, and inside a wider batch.
    wider = world.documents(n + 2, data_seed, split, max(0, start - 1))
    offset = start - max(0, start - 1)
    for k in range(n):
        alone = world.documents(1, data_seed, split, start + k)
        for name, value in row_fields(batch, k).items():
            np.testing.assert_array_equal(value, getattr(alone, name)[0], err_msg=name)
            np.testing.assert_array_equal(value, getattr(wider, name)[k + offset], err_msg=name)
    # A fresh (uncached) world of an equal config gives the same documents.
    again = ToyWorld(ToyWorldConfig.from_dict(config.to_dict())).documents(n, data_seed, split, start)
    assert batch_digest(again) == batch_digest(batch)


def test_t1_same_documents_in_another_process():
    # A new interpreter with another hash seed: nothing may depend on set/dict order or state.
    code = (
        "from reference.config import ToyWorldConfig\n"
        "from reference.data.toyworld import ToyWorld\n"
        "import sys; sys.path.insert(0, 'tests')\n"
        "from test_toyworld import RICH, batch_digest\n"
        "print(batch_digest(ToyWorld(RICH).documents(20, 7, 'heldout', 5)))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == batch_digest(ToyWorld(RICH).documents(20, 7, "heldout", 5))


@pytest.mark.parametrize("config", [ToyWorldConfig(), RICH])
def test_t1_another_seed_or_split_changes_the_documents(config):
    world = ToyWorld(config)
    base = world.documents(100, 3, "train").tokens
    for other in (world.documents(100, 4, "train").tokens, world.documents(100, 3, "heldout").tokens):
        changed = np.any(base != other, axis=1).sum()
        assert changed >= 99


def test_t1_world_seed_changes_only_key_defaults_and_unseen_words():
    world = ToyWorld(RICH)
    other = ToyWorld(RICH.replace(world_seed=1))
    for name in WORLD_FIELDS:
        same = np.array_equal(np.asarray(getattr(world, name)), np.asarray(getattr(other, name)))
        assert same == (name not in ("key_default", "unseen_label_words")), name
    assert dict(world.token_id) == dict(other.token_id)


# --------------------------------------------------------------------------- T2 the one rule


def test_t2_default_world_has_no_rule_query_or_label_token():
    world = ToyWorld()
    batch = world.documents(500, 0)
    forbidden = [world.semicolon_id, world.question_id, world.label_marker_id, *world.label_word.tolist()]
    assert not np.isin(batch.tokens, forbidden).any()
    assert world.V == 371 and batch.tokens.max() < world.V
    assert set(np.unique(batch.span_kind).tolist()) <= {0, 2, 5, 6}
    assert batch.rules.shape == (500, 0, 5) and batch.query_pos.shape == (500, 0)
    assert (batch.label_pos == -1).all() and not batch.rule_row.any()


def _base_of(config: ToyWorldConfig) -> ToyWorldConfig:
    """The same world with the LOC, VDS and MSA options at their defaults."""
    defaults = ToyWorldConfig()
    return config.replace(**{f: getattr(defaults, f) for f in LOC_FIELDS + VDS_FIELDS + ("n_synonyms",)})


@pytest.mark.parametrize(
    "config,crowded",
    [(preset_config("locality_sweep"), False), (preset_config("locality_tiny"), True), (preset_config("vds"), True),
     (RICH.replace(n_synonyms=1), True)],
    ids=["locality_sweep", "locality_tiny", "vds", "rich"],
)
def test_t2_options_move_no_id_and_keep_topics_and_sentence_prefixes(config, crowded):
    world, base = ToyWorld(config), ToyWorld(_base_of(config))
    assert world.V >= base.V
    for name in WORLD_FIELDS:
        value = getattr(world, name)
        if isinstance(value, np.ndarray) and value.shape == (world.V,):
            np.testing.assert_array_equal(value[: base.V], getattr(base, name), err_msg=name)
    np.testing.assert_array_equal(world.label_word, base.label_word)
    a, b = world.documents(300, 11, "heldout"), base.documents(300, 11, "heldout")
    np.testing.assert_array_equal(a.doc_topic, b.doc_topic)
    np.testing.assert_array_equal(a.n_planned, b.n_planned)
    fewer = 0
    for row in range(300):
        mine = [s.tolist() for s in world.split_sentences(a.tokens[row])]
        theirs = [s.tolist() for s in base.split_sentences(b.tokens[row])]
        assert len(mine) == a.n_sentences[row] and mine == theirs[: len(mine)]
        fewer += len(mine) < len(theirs)
    # Where rules or tails take room, some documents keep fewer sentences: the prefix test bites.
    assert (fewer > 0) == crowded


def _to_base_ids(world: ToyWorld, base: ToyWorld) -> np.ndarray:
    """Map each id of a synonym world to the base id of its (lemma, form); others unchanged."""
    form = lambda w: np.maximum(w.token_number, 0)  # noqa: E731  (adjectives have one form)
    base_id = {(lem, f): i for i, (lem, f) in enumerate(zip(base.token_lemma.tolist(), form(base).tolist()))}
    mapping = np.arange(world.V)
    for i, (lem, f) in enumerate(zip(world.token_lemma.tolist(), form(world).tolist())):
        if lem >= 0:
            mapping[i] = base_id[(lem, f)]
    return mapping


def test_t2_three_synonyms_mapped_to_lemma_and_form_give_the_base_stream():
    world = world_from_preset("msma_toy")
    base = ToyWorld(_base_of(world.config))
    mapping = _to_base_ids(world, base)
    a, b = world.documents(400, 5), base.documents(400, 5)
    assert len(np.unique(world.token_synonym[a.tokens][a.tokens >= 35])) == 3  # the synonyms really vary
    np.testing.assert_array_equal(mapping[a.tokens], b.tokens)
    for name in BATCH_FIELDS:
        if name != "tokens":
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# --------------------------------------------------------------------------- T3 fields ⇔ tokens


def segments(world: ToyWorld, tokens: np.ndarray, length: int) -> list[tuple[int, int, int]]:
    """(start, end, span kind) of each span of one document, read from its tokens alone."""
    t = tokens[:length].tolist()
    starts = [
        i for i in range(length)
        if i == 0 or t[i - 1] in (world.bos_id, world.semicolon_id, world.period_id)
        or t[i] in (world.label_marker_id, world.eos_id)
    ]
    kind_of_first = {world.bos_id: 0, world.question_id: 3, world.label_marker_id: 4, world.eos_id: 5}
    out = []
    for start, end in zip(starts, starts[1:] + [length]):
        first = t[start]
        kind = 1 if first in world.anchor_ids else kind_of_first.get(first, 2)
        out.append((start, end, kind))
    return out


def reference_layout(world: ToyWorld, tokens: np.ndarray, length: np.ndarray, rules: np.ndarray) -> dict:
    """LOC's A1 (specs/00 §3) on tokens and the rule table, written independently of the generator."""
    B, T = tokens.shape
    out = {
        "span_kind": np.full((B, T), 6, np.int8), "sentence_id": np.full((B, T), -1), "block_id": np.zeros((B, T), int),
        "target_block": np.full((B, T), -1), "rule_row": np.zeros((B, T), bool), "value_pos": np.full((B, T), -1),
        "rule_start": np.zeros(rules.shape[:2], int), "rule_template": np.zeros(rules.shape[:2], int),
        "value": np.zeros((B, T, T), bool), "anchor": np.zeros((B, T, T), bool), "block": np.zeros((B, T, T), bool),
    }
    fillers = world.filler_ids.tolist()
    for b in range(B):
        spans = segments(world, tokens[b], int(length[b]))
        block_of_slot, n_sentences = {}, 0
        for block, (start, end, kind) in enumerate(spans):
            out["span_kind"][b, start:end] = kind
            out["block_id"][b, start:] = block  # padding stays in the last (closing) block
            if kind == 2:
                out["sentence_id"][b, start:end] = n_sentences
                n_sentences += 1
            if kind == 1:
                slot = world.anchor_ids.tolist().index(tokens[b, start])
                block_of_slot[slot] = (block, start, end)
                out["rule_start"][b, slot] = start
                used = [fillers.index(t) + 1 for t in tokens[b, start:end] if t in fillers]
                out["rule_template"][b, slot] = used[0] if used else 0
        rule_of_key = {int(key): (int(slot), int(value)) for slot, key, value, _, _ in rules[b]}
        for start, _, kind in spans:
            if kind != 3 or int(tokens[b, start + 1]) not in rule_of_key:
                continue
            i = start + 1
            slot, value = rule_of_key[int(tokens[b, i])]
            block, lo, hi = block_of_slot[slot]
            where = np.arange(lo, hi)
            value_at = where[tokens[b, lo:hi] == value]
            assert len(value_at) == 1
            out["rule_row"][b, i] = True
            out["target_block"][b, i] = block
            out["value_pos"][b, i] = value_at[0]
            out["value"][b, i, value_at[0]] = True
            out["anchor"][b, i, where[tokens[b, lo:hi] == world.anchor_ids[slot]]] = True
            out["block"][b, i, lo:hi] = True
    return out


def check_fields_match_tokens(world: ToyWorld, batch: ToyBatch) -> None:
    cfg = world.config
    B, T = batch.tokens.shape
    tokens, length = batch.tokens, batch.length
    positions = np.arange(T)
    assert T == cfg.context and (length <= T).all() and (length >= 3).all()
    assert (tokens[:, 0] == world.bos_id).all()
    assert (tokens[np.arange(B), length - 1] == world.eos_id).all()
    np.testing.assert_array_equal(batch.valid, positions < length[:, None])
    assert (tokens[~batch.valid] == world.pad_id).all()
    inside = batch.valid & (positions > 0) & (positions < length[:, None] - 1)
    assert not world.is_special[tokens[inside]].any()  # specials only at the ends
    assert tokens.max() < world.V and tokens.min() >= 0

    ref = reference_layout(world, tokens, length, batch.rules)
    for name in ("span_kind", "sentence_id", "block_id", "target_block", "rule_row", "value_pos", "rule_start",
                 "rule_template"):
        np.testing.assert_array_equal(getattr(batch, name), ref[name], err_msg=name)
    for kind in ("value", "anchor", "block"):
        np.testing.assert_array_equal(batch.pointer_mask(kind), ref[kind], err_msg=kind)
    np.testing.assert_array_equal(batch.sentence_end, (tokens == world.period_id) & (batch.span_kind == 2))
    np.testing.assert_array_equal(batch.n_sentences, batch.sentence_id.max(axis=1) + 1)
    assert (batch.n_sentences >= 1).all() and (batch.n_sentences <= batch.n_planned).all()
    lo, hi = cfg.sentences_per_doc
    assert ((batch.n_planned >= lo) & (batch.n_planned <= hi)).all()

    # Blocks: contiguous, ordered, covering, starting at <bos>.
    assert (batch.block_id[:, 0] == 0).all()
    assert np.isin(np.diff(batch.block_id, axis=1), (0, 1)).all()

    # Rule rows: the next token is the rule's value; T(i) lies in the target block, before i.
    b, i = np.nonzero(batch.rule_row)
    np.testing.assert_array_equal(tokens[b, i + 1], tokens[b, batch.value_pos[b, i]])
    for kind in ("value", "anchor", "block"):
        bb, ii, jj = np.nonzero(batch.pointer_mask(kind))
        assert (batch.block_id[bb, jj] == batch.target_block[bb, ii]).all() and (jj < ii).all()
        assert np.array_equal(np.unique(np.stack([bb, ii]), axis=1), np.unique(np.stack([b, i]), axis=1))
    assert (batch.pointer_mask("anchor").sum(axis=2)[batch.rule_row] == cfg.anchor_copies).all()

    # The rule table, blocks and queries.
    S = cfg.rules_per_doc
    assert batch.rules.shape == (B, S, 5)
    np.testing.assert_array_equal(batch.rules[:, :, 0], np.broadcast_to(np.arange(S), (B, S)))
    assert (batch.rules[:, :, 3] == 0).all() and (batch.rules[:, :, 4] == 1).all()
    assert np.isin(batch.rules[:, :, 1], world.key_ids).all() and np.isin(batch.rules[:, :, 2], world.value_ids).all()
    for row in range(B):
        assert len(set(batch.rules[row, :, 1].tolist())) == S  # keys distinct per document
    np.testing.assert_array_equal(batch.rule_block, batch.block_id[np.arange(B)[:, None], batch.rule_start])
    assert batch.query_slot.shape == batch.query_pos.shape == (B, cfg.queries_per_doc)
    for row in range(B):
        asked = np.flatnonzero(tokens[row] == world.question_id)
        emitted = batch.query_pos[row][batch.query_pos[row] >= 0]
        np.testing.assert_array_equal(np.sort(emitted), asked)
        for q in np.flatnonzero(batch.query_pos[row] >= 0):
            p, slot = batch.query_pos[row, q], batch.query_slot[row, q]
            assert tokens[row, p + 1] == batch.rules[row, slot, 1] and tokens[row, p + 2] == batch.rules[row, slot, 2]
    assert batch.rule_row.sum() == (batch.query_pos >= 0).sum()  # one rule row per emitted query

    # Tails: label_true ⇔ the tail names the topic.
    has_tail = batch.label_pos >= 0
    rows = np.flatnonzero(has_tail)
    assert (tokens[rows, batch.label_pos[rows]] == world.label_marker_id).all()
    np.testing.assert_array_equal(tokens[rows, batch.label_pos[rows] + 1], batch.label_token[rows])
    np.testing.assert_array_equal(batch.label_true, has_tail & (batch.label_token == world.label_word[batch.doc_topic]))
    assert (batch.label_token[~has_tail] == -1).all()
    np.testing.assert_array_equal((tokens == world.label_marker_id).sum(axis=1), has_tail.astype(int))
    if cfg.label_tail_prob == 0:
        assert not has_tail.any()


@pytest.mark.parametrize("name", ["neurons", "locality_sweep", "locality_tiny", "vds", "msma_tiny"])
def test_t3_preset_fields_match_tokens(name):
    world = world_from_preset(name)
    check_fields_match_tokens(world, world.documents(120, 0, "heldout", 3))


def test_t3_rich_world_fields_match_tokens():
    world = ToyWorld(RICH)
    batch = world.documents(200, 1)
    check_fields_match_tokens(world, batch)
    # The rich world exercises what the presets do not: fillers, repeated anchors, cut queries, tails.
    assert (batch.rule_template > 0).any() and (batch.query_pos == -1).any() and (batch.label_pos >= 0).any()


@st.composite
def world_configs(draw) -> ToyWorldConfig:
    """Valid configs, small vocabularies, every option range touched."""
    prob = st.sampled_from([0.0, 1.0, 0.5]) | st.floats(0.0, 1.0)
    S = draw(st.integers(0, 5))
    Q = draw(st.integers(0, 7)) if S else 0
    r, M = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    tail = draw(prob)
    lo = draw(st.integers(1, 6))
    minimum = 2 + S * (r + 3 + (M > 1)) + 2 * (tail > 0) + 17
    return ToyWorldConfig(
        world_seed=draw(st.integers(0, 50)), context=draw(st.integers(minimum, minimum + 80)),
        n_topics=draw(st.integers(4, 20)), lemmas_per_topic=draw(st.integers(1, 3)),
        n_synonyms=draw(st.integers(1, 3)), sentences_per_doc=(lo, draw(st.integers(lo, 9))),
        topic_word_prob=draw(prob), selection_prob=draw(prob), plural_prob=draw(prob), adj_prob=draw(prob),
        coord_prob=draw(prob), object_prob=draw(prob), pp_prob=draw(prob), adv_prob=draw(prob),
        label_tail_prob=tail, label_noise=draw(prob), rules_per_doc=S, queries_per_doc=Q,
        n_keys=draw(st.integers(max(S, 1), 40)), n_values=draw(st.integers(2, 40)), anchor_copies=r,
        rule_templates=M, rule_default_prob=draw(prob),
    )


@given(config=world_configs(), data_seed=st.integers(0, 1000))
def test_t3_any_valid_config_gives_consistent_fields(config, data_seed):
    world = ToyWorld(config)
    assert world.V == vocab_size(config)
    batch = world.documents(8, data_seed)
    check_fields_match_tokens(world, batch)
    for row in range(8):
        for sentence in world.split_sentences(batch.tokens[row]):
            assert world.grammatical(sentence)


def test_t3_empty_batch_has_the_right_shapes():
    batch = ToyWorld(RICH).documents(0, 0)
    assert batch.tokens.shape == (0, 72) and batch.rules.shape == (0, 3, 5) and batch.query_pos.shape == (0, 5)
    assert batch.pointer_mask("block").shape == (0, 72, 72)


# --------------------------------------------------------------------------- world fields


def test_world_vocabulary_layout_and_surfaces():
    world = ToyWorld()
    assert world.vocab[:7].tolist() == ["<pad>", "<bos>", "<eos>", ".", ";", "?", "<label>"]
    assert world.vocab[7:27].tolist() == ("a this every some these many the in on with near under behind and "
                                          "often never today again slowly twice").split()
    assert world.vocab[27:35].tolist() == [f"topic{t}" for t in range(8)]
    assert len(set(world.vocab.tolist())) == world.V
    assert world.token_id["animal07"] == world.token_id["animal07s"] - 1  # form is the last of the id order
    for surface, number in [("animal07", 0), ("animal07s", 1), ("consume03s", 0), ("consume03", 1), ("temper05", -1)]:
        assert world.token_number[world.token_id[surface]] == number
    assert ToyWorld(ToyWorldConfig(n_synonyms=3)).token_id["food05bs"] > 0
    # Lemma j has topic ⌊j / lemmas_per_topic⌋; categories cut across topics.
    i = world.token_id["food05"]
    assert world.token_topic[i] == 1 and world.token_lemma[i] == 2 * 24 + 5 and world.token_category[i] == 2
    assert world.category_names[world.category_parent == 1].tolist() == ["consume", "handle"]
    assert world.parent_names.tolist() == ["noun", "verb", "adjective"]
    content = world.token_lemma >= 0
    assert content.sum() == 336 and (world.token_category[content] >= 0).all()
    assert (world.token_category[~content] == -1).all() and (world.token_synonym[content] == 0).all()
    assert world.is_word.sum() == 20 + 8 + 336 and world.is_special.sum() == 3 and world.is_sentence_end.sum() == 1
    assert world.kind_names[world.token_kind[world.token_id["the"]]] == "determiner"
    assert world.token_number[world.token_id["the"]] == -1 and world.token_number[world.token_id["some"]] == 1
    np.testing.assert_array_equal(world.token_topic[world.label_word], np.arange(8))


def test_world_loc_section_and_verbalisers():
    world = world_from_preset("locality_sweep")
    assert world.vocab[371:].tolist() == (
        [f"<R{s}>" for s in range(4)] + [f"k{k:02d}" for k in range(32)] + [f"v{v:02d}" for v in range(32)]
    )
    assert np.isin(world.key_default, world.value_ids).all() and world.key_default.shape == (32,)
    assert len(np.unique(world.key_default)) > 1
    rich = ToyWorld(RICH)
    assert rich.vocab[rich.filler_ids].tolist() == ["<f1>", "<f2>"]
    unseen = world.unseen_label_words
    assert len(set(unseen.tolist())) == 8 and ((unseen >= 7) & (unseen < 27)).all()
    assert not np.isin(unseen, world.label_word).any()
    with pytest.raises(ValueError):
        world.token_kind[0] = 3  # cached worlds are read-only


def test_world_is_cached_pure_and_picklable():
    a, b = ToyWorld(RICH), ToyWorld(RICH.replace())
    assert a.vocab is b.vocab  # built once
    assert a.config == b.config
    c = pickle.loads(pickle.dumps(a))
    assert c.config == a.config and batch_digest(c.documents(5, 1)) == batch_digest(a.documents(5, 1))


# --------------------------------------------------------------------------- presets (§6)

EXPECTED_V = {"locality_sweep": 439, "locality_tiny": 439, "locality_deep": 439, "neurons": 371, "vds": 371, "ddc": 371,
              "msma_toy": 1043, "msma_tiny": 1043}


@pytest.mark.parametrize("name", sorted(EXPECTED_V))
def test_presets_are_valid_run_configs_with_the_worlds_vocabulary(name):
    preset = PRESETS[name]
    run = RunConfig.from_dict(preset)
    assert world_from_preset(name).V == EXPECTED_V[name] == run.model.vocab_size
    assert run.model.context == run.toyworld.context
    check_model_context(run.toyworld, run.model.context)
    assert isinstance(ModelConfig.from_dict(preset["model"]), ModelConfig)


def test_preset_table_values():
    m = {name: PRESETS[name]["model"] for name in PRESETS}
    assert (m["locality_sweep"]["n_layers"], m["locality_sweep"]["d_model"], m["locality_sweep"]["context"]) == (2, 64, 128)
    assert m["locality_deep"]["n_layers"] == 4 and m["locality_tiny"]["d_model"] == 32
    assert m["neurons"]["d_mlp"] == m["vds"]["d_mlp"] == 256 and m["msma_toy"]["d_mlp"] == 128
    assert (m["msma_tiny"]["n_layers"], m["msma_tiny"]["d_model"], m["msma_tiny"]["n_heads"]) == (3, 16, 2)
    assert (m["ddc"]["n_heads"], m["ddc"]["d_head"]) == (1, 8)
    steps = {name: PRESETS[name]["train"]["steps"] for name in PRESETS}
    assert steps == {"locality_sweep": 800, "locality_tiny": 150, "locality_deep": 800, "neurons": 600, "vds": 600, "ddc": 3000,
                     "msma_toy": 600, "msma_tiny": 150}
    assert preset_config("locality_tiny").sentences_per_doc == (2, 4)
    assert preset_config("vds").label_tail_prob == 0.3 and preset_config("neurons") == ToyWorldConfig()


def test_msma_tiny_documents_are_prefixes_of_msma_toy():
    tiny, toy = world_from_preset("msma_tiny").documents(200, 2), world_from_preset("msma_toy").documents(200, 2)
    for row in range(200):
        body = tiny.length[row] - 1  # all but <eos>
        np.testing.assert_array_equal(tiny.tokens[row, :body], toy.tokens[row, :body])
    assert (tiny.n_sentences <= toy.n_sentences).all() and (tiny.n_sentences < toy.n_sentences).any()


# --------------------------------------------------------------------------- T7 errors

BAD_VALUES = [
    ("world_seed", -1), ("world_seed", True), ("world_seed", 1.0),
    ("n_topics", 2), ("n_topics", 21), ("n_topics", True), ("n_topics", "8"),
    ("lemmas_per_topic", 0), ("lemmas_per_topic", 17), ("n_synonyms", 0), ("n_synonyms", 27),
    ("sentences_per_doc", (0, 3)), ("sentences_per_doc", (5, 4)), ("sentences_per_doc", (1, 65)),
    ("sentences_per_doc", (4,)), ("sentences_per_doc", (True, 3)), ("sentences_per_doc", [4, 8]),
    ("rules_per_doc", -1), ("rules_per_doc", 17), ("queries_per_doc", 65), ("queries_per_doc", -1),
    ("n_keys", 0), ("n_keys", 1000), ("n_values", 1), ("n_values", 1000), ("anchor_copies", 0),
    ("anchor_copies", 17), ("rule_templates", 0), ("rule_templates", 9), ("context", 0), ("context", 18),
    ("context", True),
] + [
    (name, bad) for name in ToyWorldConfig.PROBABILITIES for bad in (-0.1, 1.5, math.nan, math.inf, True, "0.5")
]


@pytest.mark.parametrize("field,value", BAD_VALUES)
def test_t7_each_invalid_value_is_one_config_error_line_naming_the_field(field, value):
    with pytest.raises(ConfigError) as info:
        ToyWorldConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"toyworld.{field}: ") and "\n" not in message
    assert repr(value) in message


def test_t7_messages_of_the_spec():
    with pytest.raises(ConfigError, match=r"^toyworld\.n_topics: 2 is not an int in \[4, 20\]$"):
        ToyWorldConfig(n_topics=2)
    loc = dict(rules_per_doc=4, queries_per_doc=4)
    with pytest.raises(ConfigError, match=r"^toyworld\.context: 30 is below 35 \(2 \+ rule region 16 \+ longest "
                                          r"sentence 17\)$"):
        ToyWorldConfig(context=30, **loc)
    ToyWorldConfig(context=35, **loc)  # the bound itself is accepted
    with_tail = r"^toyworld\.context: 36 is below 37 \(2 \+ rule region 16 \+ tail 2 \+ longest sentence 17\)$"
    with pytest.raises(ConfigError, match=with_tail):
        ToyWorldConfig(context=36, label_tail_prob=0.1, **loc)
    with pytest.raises(ConfigError, match=r"^toyworld\.context: 38 is below 39"):
        ToyWorldConfig(context=38, rule_templates=2, **loc)  # a filler per block in the worst case
    with pytest.raises(ConfigError, match=r"^toyworld\.queries_per_doc: 2 needs rules_per_doc > 0$"):
        ToyWorldConfig(queries_per_doc=2)
    with pytest.raises(ConfigError, match=r"^toyworld\.rules_per_doc: 5 is not an int in \[0, 4\]$"):
        ToyWorldConfig(rules_per_doc=5, n_keys=4)
    with pytest.raises(ConfigError, match=r"^toyworld\.colour: unknown key"):
        ToyWorldConfig.from_dict({"colour": 1})
    assert ToyWorldConfig.from_dict({"sentences_per_doc": [2, 4]}).sentences_per_doc == (2, 4)


@pytest.mark.parametrize(
    "call,argument",
    [
        (lambda w: w.documents(-1, 0), "documents.n"),
        (lambda w: w.documents(1.5, 0), "documents.n"),
        (lambda w: w.documents(1, -1), "documents.data_seed"),
        (lambda w: w.documents(1, 0, start=-2), "documents.start"),
        (lambda w: w.documents(1, 0, split="test"), "documents.split"),
        (lambda w: w.documents(1, 0).pointer_mask("key"), "pointer_mask.kind"),
        (lambda w: w.task("sentiment"), "task.name"),
        (lambda w: w.task("topic", per_class=0), "task.per_class"),
        (lambda w: w.task("topic_vs_rest", n=-3), "task.n"),
        (lambda w: w.task("topic", data_seed=-1), "task.data_seed"),
        (lambda w: world_from_preset("huge"), "preset.name"),
        (lambda w: ToyWorld({"n_topics": 8}), "toyworld"),
        (lambda w: check_model_context(w.config, 32), "toyworld.context"),
    ],
)
def test_t7_runtime_errors_name_the_argument(call, argument):
    with pytest.raises(ConfigError) as info:
        call(ToyWorld())
    assert str(info.value).startswith(f"{argument}: ") and "\n" not in str(info.value)


# --------------------------------------------------------------------------- §3.3 read literally


class LiteralStream:
    """The spec's u(), pick, bern with one ``random()`` call per draw (no chunking)."""

    def __init__(self, key):
        self.rng = np.random.default_rng(key)

    def pick(self, n):
        return math.floor(self.rng.random() * n)

    def bern(self, p):
        return self.rng.random() < p


def literal_document(world: ToyWorld, split: int, data_seed: int, i: int) -> list[str]:
    """Document i as surface strings, following §3.2–3.3 line by line with names, not id arithmetic."""
    c = world.config
    m, T = c.lemmas_per_topic, c.n_topics
    subj, obj = {"consume": "animal", "handle": "person"}, {"consume": "food", "handle": "utensil"}
    adj_pref = {"person": "temper", "animal": "temper", "food": "texture", "utensil": "texture"}
    s0 = LiteralStream([c.world_seed, 1, split, data_seed, i, 0])
    t = s0.pick(T)
    lo, hi = c.sentences_per_doc
    n = lo + s0.pick(hi - lo + 1)
    tail, noisy = s0.bern(c.label_tail_prob), s0.bern(c.label_noise)
    other = (t + 1 + s0.pick(T - 1)) % T

    def lemma(s, cat, plural_s):
        if s.bern(c.topic_word_prob):
            j = t * m + s.pick(m)
        else:
            j = [x for x in range(T * m) if x // m != t][s.pick((T - 1) * m)]
        syn = s.pick(c.n_synonyms)
        return f"{cat}{j:02d}{'abcdefghijklmnopqrstuvwxyz'[syn] if c.n_synonyms > 1 else ''}{'s' if plural_s else ''}"

    def noun_phrase(s, pref, out):
        nouns = ["person", "animal", "food", "utensil"]
        if pref is None:
            cat = nouns[s.pick(4)]
        else:
            cat = pref if s.bern(c.selection_prob) else [x for x in nouns if x != pref][s.pick(3)]
        pl = s.bern(c.plural_prob)
        out.append((["some", "these", "many", "the"] if pl else ["a", "this", "every", "the"])[s.pick(4)])
        if s.bern(c.adj_prob):
            a = adj_pref[cat] if s.bern(c.selection_prob) else ({"temper", "texture"} - {adj_pref[cat]}).pop()
            out.append(lemma(s, a, False))
        out.append(lemma(s, cat, pl))
        return pl

    s1 = LiteralStream([c.world_seed, 1, split, data_seed, i, 1])
    sentences = []
    for _ in range(n):
        out = []
        vc = ("consume", "handle")[s1.pick(2)]
        co = s1.bern(c.coord_prob)
        pl = noun_phrase(s1, subj[vc], out)
        if co:
            out.append("and")
            noun_phrase(s1, subj[vc], out)
            pl = True
        out.append(lemma(s1, vc, not pl))
        if s1.bern(c.object_prob):
            noun_phrase(s1, obj[vc], out)
        if s1.bern(c.pp_prob):
            out.append(["in", "on", "with", "near", "under", "behind"][s1.pick(6)])
            noun_phrase(s1, None, out)
        if s1.bern(c.adv_prob):
            out.append(["often", "never", "today", "again", "slowly", "twice"][s1.pick(6)])
        sentences.append(out + ["."])

    rule_blocks, rules = [], []
    if c.rules_per_doc:
        s2 = LiteralStream([c.world_seed, 1, split, data_seed, i, 2])
        unused = [f"k{k:02d}" for k in range(c.n_keys)]
        for slot in range(c.rules_per_doc):
            key = unused.pop(s2.pick(c.n_keys - slot))
            d = s2.bern(c.rule_default_prob)
            o = s2.pick(c.n_values - 1)
            default = str(world.vocab[world.key_default[int(key[1:])]])
            value = default if d else [f"v{v:02d}" for v in range(c.n_values) if f"v{v:02d}" != default][o]
            template = s2.pick(c.rule_templates)
            filler = [f"<f{template}>"] if template >= 1 else []
            rule_blocks.append([f"<R{slot}>"] * c.anchor_copies + filler + [key, value, ";"])
            rules.append((key, value))
    queries = []
    if c.queries_per_doc:
        s3 = LiteralStream([c.world_seed, 1, split, data_seed, i, 3])
        queries = [(s3.pick(c.rules_per_doc), 1 + s3.pick(n)) for _ in range(c.queries_per_doc)]

    spans = []
    for k, sentence in enumerate(sentences):
        spans.append(sentence)
        spans += [["?", *rules[slot], "."] for slot, after in queries if after == k + 1]
    words = ["<bos>"] + [w for block in rule_blocks for w in block]
    budget = c.context - 2 - (len(words) - 1) - 2 * tail
    for span in spans:
        if len(span) > budget:
            break
        budget -= len(span)
        words += span
    if tail:
        words += ["<label>", f"topic{other if noisy else t}"]
    return words + ["<eos>"]


@pytest.mark.parametrize("config", [ToyWorldConfig(), RICH, preset_config("locality_tiny"), preset_config("msma_toy"),
                                    ToyWorldConfig(n_topics=5, lemmas_per_topic=40 // 5, sentences_per_doc=(1, 3))])
def test_draw_order_is_the_spec_read_literally(config):
    world = ToyWorld(config)
    for split, name in ((0, "train"), (1, "heldout")):
        batch = world.documents(15, 2**33 + 5, name, 100)
        for row in range(15):
            expected = literal_document(world, split, 2**33 + 5, 100 + row)
            assert world.vocab[batch.tokens[row, : batch.length[row]]].tolist() == expected


def test_world_draws_are_the_spec_read_literally():
    world = ToyWorld(RICH.replace(world_seed=77))
    s = LiteralStream([77, 0, 1])
    assert world.vocab[world.key_default].tolist() == [f"v{s.pick(RICH.n_values):02d}" for _ in range(RICH.n_keys)]
    s = LiteralStream([77, 0, 2])
    unused = "a this every some these many the in on with near under behind and often never today again slowly twice"
    unused = unused.split()
    assert world.vocab[world.unseen_label_words].tolist() == [unused.pop(s.pick(20 - j)) for j in range(8)]
