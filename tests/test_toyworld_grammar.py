"""Toy world T4: the recogniser ``grammatical`` and ``split_sentences`` (specs/toyworld.md §7)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference.config import ToyWorldConfig
from reference.data.toyworld import ToyWorld, world_from_preset
from reference.tokenizer import WordTokenizer

# One world per distinct preset world (locality_deep shares locality_sweep's, toy shares neu's).
PRESET_WORLDS = ["locality_sweep", "locality_tiny", "neurons", "vds", "msma_toy", "msma_tiny"]
N_DOCS = 2000


def other_form(world: ToyWorld) -> dict[int, int]:
    """Each verb id → the same verb (lemma, synonym) for the other subject number."""
    verbs = np.flatnonzero(world.token_kind == world.kind_names.index("verb"))
    by_key = {(world.token_lemma[v], world.token_synonym[v], world.token_number[v]): int(v) for v in verbs}
    return {int(v): by_key[(world.token_lemma[v], world.token_synonym[v], 1 - world.token_number[v])] for v in verbs}


def flipped_determiner(world: ToyWorld) -> dict[int, int]:
    """a ↔ some, this ↔ these, every ↔ many: the determiner of the same rank, other number."""
    pairs = [("a", "some"), ("this", "these"), ("every", "many")]
    out = {}
    for sg, pl in pairs:
        out[world.token_id[sg]], out[world.token_id[pl]] = world.token_id[pl], world.token_id[sg]
    return out


def mutations(world: ToyWorld, sentence: list[int], verb_flip: dict, det_flip: dict) -> list[tuple[str, list[int]]]:
    """The §7 T4 corruptions of one sentence; each must be rejected."""
    verb = next(i for i, t in enumerate(sentence) if t in verb_flip)
    out = [
        ("verb form", sentence[:verb] + [verb_flip[sentence[verb]]] + sentence[verb + 1:]),
        ("no verb", sentence[:verb] + sentence[verb + 1:]),
        ("no period", sentence[:-1]),
        ("swap first two", [sentence[1], sentence[0]] + sentence[2:]),
    ]
    for i, t in enumerate(sentence):
        if t in det_flip:
            out.append(("determiner", sentence[:i] + [det_flip[t]] + sentence[i + 1:]))
    return out


def check_generated_sentences(preset: str, n_mutated: int) -> None:
    """Every sentence of N_DOCS documents is accepted; those of the first n_mutated, corrupted, are not."""
    world = world_from_preset(preset)
    batch = world.documents(N_DOCS, 0, "heldout")
    verb_flip, det_flip = other_form(world), flipped_determiner(world)
    counts = dict.fromkeys(["verb form", "no verb", "no period", "swap first two", "determiner"], 0)
    for row in range(N_DOCS):
        sentences = world.split_sentences(batch.tokens[row])
        assert len(sentences) == batch.n_sentences[row]
        for sentence in sentences:
            assert world.grammatical(sentence), world.vocab[sentence]
            if row >= n_mutated:
                continue
            for what, bad in mutations(world, sentence.tolist(), verb_flip, det_flip):
                assert not world.grammatical(bad), (what, world.vocab[bad])
                counts[what] += 1
    assert min(counts.values()) > n_mutated  # every corruption was really tried, on most sentences


@pytest.mark.parametrize("preset", PRESET_WORLDS)
def test_t4_every_generated_sentence_is_grammatical_and_corruptions_are_not(preset):
    check_generated_sentences(preset, n_mutated=300)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESET_WORLDS)
def test_t4_corruptions_of_all_2000_documents_are_rejected(preset):
    check_generated_sentences(preset, n_mutated=N_DOCS)


ACCEPTED = [
    "the animal01 consume01s .",
    "a animal01 consume01s .",
    "some animal01s consume01 .",
    "a animal01 and a animal02 consume01 .",
    "the food01 consume01s the person01 .",  # selection is soft: not checked
    "these temper01 person02s handle00 every texture03 utensil05 .",
    "the person01 handle01s on the texture02 utensil01 .",
    "many animal00s consume02 some food01s with the temper00 person03 slowly .",
    "the animal01 and the person01s handle00 twice .",
    "a animal23 consume23s .",  # topic is not checked either
]

REJECTED = [
    "",
    "a animal01s consume01 .",  # determiner and noun disagree
    "some animal01 consume01s .",
    "the animal01 consume01 .",  # verb form: plural subject form after a singular subject
    "the animal01s consume01s .",
    "a animal01 and a animal02 consume01s .",  # NP and NP is plural
    "the animal01 consume01s",  # no period
    "the animal01 consume01s . the animal01 consume01s .",  # two sentences
    "<bos> the animal01 consume01s .",  # specials
    "the animal01 consume01s . <eos>",
    "the animal01 consume01s often often .",
    "the temper01 temper02 animal01 consume01s .",
    "the animal01 the food01 consume01s .",
    "the animal01 consume01s topic1 .",
    "<label> topic1",
    "the animal01 consume01s in .",
    "the animal01 consume01s often the food01 .",  # the adverb comes last
    "the animal01 consume01s with the food01 the food02 .",  # object after the PP
    "animal01 consume01s .",
    "the consume01s .",
    "the animal01 temper01 consume01s .",
    "the animal01 and consume01 .",
    ".",
    "the animal01 consume01s ;",
]


def test_t4_hand_written_sentences():
    world = ToyWorld()
    tok = WordTokenizer(world)
    for text in ACCEPTED:
        assert world.grammatical(tok.encode(text)), text
    for text in REJECTED:
        assert not world.grammatical(tok.encode(text)), text


def test_t4_markers_and_odd_input_are_rejected():
    world = world_from_preset("locality_sweep")
    tok = WordTokenizer(world)
    assert not world.grammatical(tok.encode("? k00 v00 ."))
    assert not world.grammatical(tok.encode("<R0> k00 v00 ;"))
    assert not world.grammatical(np.array([world.V + 5, 3]))  # out of range
    assert not world.grammatical(np.array([-1, 3]))
    assert world.grammatical(tok.encode("the animal01 consume01s .").tolist())  # lists are fine too


def regex_oracle(world: ToyWorld, ids: list[int]) -> bool:
    """An independent recogniser: the §3.1 grammar as a regular expression over word classes."""
    letter = {"determiner": "D", "adjective": "A", "noun": "N", "verb": "V", "preposition": "P",
              "adverb": "R", "conjunction": "C"}
    text = "".join(
        "." if t == world.period_id else letter.get(world.kind_names[world.token_kind[t]], "x") for t in ids
    )
    np_ = "DA?N"
    if re.fullmatch(f"({np_})(C{np_})?V({np_})?(P{np_})?R?\\.", text) is None:
        return False
    numbers = [int(world.token_number[t]) for t in ids]
    nouns = [i for i, c in enumerate(text) if c == "N"]
    # Agreement: a determiner other than `the` matches its noun; the verb matches the subject.
    for i, c in enumerate(text):
        if c == "D" and numbers[i] >= 0 and numbers[i] != numbers[next(n for n in nouns if n > i)]:
            return False
    verb = text.index("V")
    subject_number = 1 if "C" in text[:verb] else numbers[nouns[0]]
    return numbers[verb] == subject_number


@given(st.lists(st.integers(0, 370), max_size=12))
def test_t4_grammatical_agrees_with_a_regular_expression_on_random_ids(ids):
    world = ToyWorld()
    assert world.grammatical(np.array(ids, dtype=np.int64)) == regex_oracle(world, ids)


@given(data=st.data())
def test_t4_grammatical_agrees_with_the_oracle_near_real_sentences(data):
    # Random ids are almost never grammatical: also edit real sentences by one token.
    world = ToyWorld()
    batch = world.documents(5, data.draw(st.integers(0, 10**6)))
    sentence = world.split_sentences(batch.tokens[0])[0].tolist()
    assert world.grammatical(sentence) and regex_oracle(world, sentence)
    i = data.draw(st.integers(0, len(sentence) - 1))
    edit = data.draw(st.sampled_from(["replace", "delete", "insert"]))
    token = data.draw(st.integers(0, 370))
    if edit == "replace":
        sentence[i] = token
    elif edit == "delete":
        del sentence[i]
    else:
        sentence.insert(i, token)
    assert world.grammatical(sentence) == regex_oracle(world, sentence)


def test_split_sentences_keeps_sentences_only():
    world = ToyWorld(ToyWorldConfig(rules_per_doc=2, queries_per_doc=3, label_tail_prob=1.0))
    tok = WordTokenizer(world)
    text = ("<bos> <R0> k00 v01 ; <R1> k02 v03 ; the animal01 consume01s . ? k00 v01 . "
            "some person00s handle00 . <label> topic2 <eos> <pad> <pad>")
    got = [tok.decode(s) for s in world.split_sentences(tok.encode(text))]
    assert got == ["the animal01 consume01s .", "some person00s handle00 ."]
    assert world.split_sentences(tok.encode("the animal01")) == []  # no closing "."
    assert all(s.dtype == np.int64 for s in world.split_sentences(tok.encode(text)))
