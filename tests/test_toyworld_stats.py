"""Toy world: statistics (T5), what each mechanism needs (T6), VDS tasks, speed (T8).

specs/toyworld.md §7. Rates are checked within 4 standard errors of the spec's values on a
fixed sample, so a wrong draw order or a wrong probability shows up as a failure.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import pytest

from reference.config import ToyWorldConfig
from reference.data.toyworld import (
    ADJECTIVE_PREFERENCE,
    OBJECT_PREFERENCE,
    SUBJECT_PREFERENCE,
    ToyWorld,
    world_from_preset,
)

# Every option on, and a context no document can fill (2 + 16 + 16 + 2 + 8·17 = 172): rates
# are then those of the draws, not of the documents that happened to fit.
STATS = ToyWorldConfig(
    context=192, n_synonyms=3, label_tail_prob=0.3, label_noise=0.3, rules_per_doc=4, queries_per_doc=4
)
N_STATS = 5000


def assert_rate(hits: int | float, trials: int, p: float, what: str) -> None:
    """|hits/trials − p| ≤ 4 standard errors of a binomial rate."""
    assert trials > 0, what
    se = np.sqrt(p * (1 - p) / trials)
    rate = hits / trials
    assert abs(rate - p) <= 4 * se, f"{what}: {rate:.4f} vs {p} (4 se = {4 * se:.4f}, n = {trials})"


class NP(NamedTuple):
    det: int
    adj: int | None
    noun: int


class Parse(NamedTuple):
    subjects: list[NP]
    verb: int
    obj: NP | None
    prep: int | None
    pp: NP | None
    adv: int | None


def parse(world: ToyWorld, s: list[int]) -> Parse:
    """Roles of a grammatical sentence (the test's own reading of §3.1)."""
    kind = [world.kind_names[k] for k in world.token_kind[s]]
    i = 0

    def noun_phrase() -> NP:
        nonlocal i
        det, adj = s[i], None
        i += 1
        if kind[i] == "adjective":
            adj, i = s[i], i + 1
        i += 1
        return NP(det, adj, s[i - 1])

    subjects = [noun_phrase()]
    if kind[i] == "conjunction":
        i += 1
        subjects.append(noun_phrase())
    verb = s[i]
    i += 1
    obj = noun_phrase() if kind[i] == "determiner" else None
    prep = pp = adv = None
    if kind[i] == "preposition":
        prep, i = s[i], i + 1
        pp = noun_phrase()
    if kind[i] == "adverb":
        adv, i = s[i], i + 1
    assert s[i] == world.period_id and i == len(s) - 1
    return Parse(subjects, verb, obj, prep, pp, adv)


def parsed_sentences(world: ToyWorld, batch, n_rows: int | None = None) -> list[tuple[int, Parse, int]]:
    """(document topic, parse, length) of every emitted sentence of the first n_rows documents."""
    out = []
    for row in range(len(batch.tokens) if n_rows is None else n_rows):
        for sentence in world.split_sentences(batch.tokens[row]):
            out.append((int(batch.doc_topic[row]), parse(world, sentence.tolist()), len(sentence)))
    return out


@pytest.fixture(scope="module")
def stats():
    world = ToyWorld(STATS)
    batch = world.documents(N_STATS, 0, "heldout")
    return world, batch, parsed_sentences(world, batch)


# --------------------------------------------------------------------------- T5 statistics


def test_t5_sample_is_complete(stats):
    world, batch, sentences = stats
    np.testing.assert_array_equal(batch.n_sentences, batch.n_planned)  # nothing cut: unbiased rates
    assert (batch.query_pos >= 0).all() and len(sentences) == batch.n_sentences.sum()
    lo, hi = STATS.sentences_per_doc
    for n in range(lo, hi + 1):
        assert_rate((batch.n_planned == n).sum(), N_STATS, 1 / (hi - lo + 1), f"{n} sentences")


def test_t5_topics_are_uniform_and_govern_content_words(stats):
    world, batch, _ = stats
    for t in range(STATS.n_topics):
        assert_rate((batch.doc_topic == t).sum(), N_STATS, 1 / STATS.n_topics, f"topic {t}")
    content = batch.valid & (world.token_lemma[batch.tokens] >= 0)
    on_topic = content & (world.token_topic[batch.tokens] == batch.doc_topic[:, None])
    assert_rate(on_topic.sum(), content.sum(), STATS.topic_word_prob, "on-topic share")
    for letter in range(3):
        assert_rate((world.token_synonym[batch.tokens][content] == letter).sum(), content.sum(), 1 / 3,
                    f"synonym {letter}")


def test_t5_selection_preferences_per_slot(stats):
    world, _, sentences = stats
    category = world.token_category
    p = STATS.selection_prob
    verb_cat = [int(category[s.verb]) for _, s, _ in sentences]
    subjects = [(v, np_) for v, (_, s, _) in zip(verb_cat, sentences) for np_ in s.subjects]
    assert_rate(sum(category[n.noun] == SUBJECT_PREFERENCE[v] for v, n in subjects), len(subjects), p, "subject")
    objects = [(v, s.obj) for v, (_, s, _) in zip(verb_cat, sentences) if s.obj]
    assert_rate(sum(category[n.noun] == OBJECT_PREFERENCE[v] for v, n in objects), len(objects), p, "object")
    nps = [n for _, s, _ in sentences for n in s.subjects + [s.obj, s.pp] if n]
    with_adj = [n for n in nps if n.adj is not None]
    assert_rate(sum(category[n.adj] == ADJECTIVE_PREFERENCE[category[n.noun]] for n in with_adj), len(with_adj), p,
                "adjective")
    pps = [s.pp for _, s, _ in sentences if s.pp]
    for c in range(4):
        assert_rate(sum(category[n.noun] == c for n in pps), len(pps), 1 / 4, f"PP noun category {c}")
    for v in (4, 5):
        assert_rate(verb_cat.count(v), len(verb_cat), 1 / 2, f"verb category {v}")


def test_t5_structure_rates(stats):
    world, _, sentences = stats
    parses = [s for _, s, _ in sentences]
    n = len(parses)
    assert_rate(sum(len(s.subjects) == 2 for s in parses), n, STATS.coord_prob, "coordination")
    assert_rate(sum(s.obj is not None for s in parses), n, STATS.object_prob, "object")
    assert_rate(sum(s.pp is not None for s in parses), n, STATS.pp_prob, "PP")
    assert_rate(sum(s.adv is not None for s in parses), n, STATS.adv_prob, "adverb")
    nps = [np_ for s in parses for np_ in s.subjects + [s.obj, s.pp] if np_]
    assert_rate(sum(world.token_number[np_.noun] == 1 for np_ in nps), len(nps), STATS.plural_prob, "plural")
    assert_rate(sum(np_.adj is not None for np_ in nps), len(nps), STATS.adj_prob, "adjective")
    assert_rate(sum(np_.det == world.the_id for np_ in nps), len(nps), 1 / 4, "the")
    preps = [s.prep for s in parses if s.prep is not None]
    advs = [s.adv for s in parses if s.adv is not None]
    for k in range(6):
        assert_rate(sum(p == 14 + k for p in preps), len(preps), 1 / 6, f"preposition {k}")
        assert_rate(sum(a == 21 + k for a in advs), len(advs), 1 / 6, f"adverb {k}")


def test_t5_mean_sentence_length_is_the_closed_form(stats):
    _, _, sentences = stats
    c = STATS
    e_np = 2 + c.adj_prob
    e_s = e_np + c.coord_prob * (1 + e_np)
    closed_form = e_s + 1 + c.object_prob * e_np + c.pp_prob * (1 + e_np) + c.adv_prob + 1
    assert closed_form == pytest.approx(7.265)
    lengths = np.array([n for _, _, n in sentences])
    assert lengths.min() >= 4 and lengths.max() <= 17
    assert abs(lengths.mean() - closed_form) <= 4 * lengths.std() / np.sqrt(len(lengths))


def test_t5_tail_noise_and_default_value_rates(stats):
    world, batch, _ = stats
    tail = batch.label_pos >= 0
    assert_rate(tail.sum(), N_STATS, STATS.label_tail_prob, "tail")
    assert_rate((~batch.label_true[tail]).sum(), tail.sum(), STATS.label_noise, "noise")
    noisy_words = batch.label_token[tail & ~batch.label_true]
    noisy_topics = world.token_topic[noisy_words]
    assert (noisy_topics != batch.doc_topic[tail & ~batch.label_true]).all()  # noise names another topic
    keys, values = batch.rules[:, :, 1], batch.rules[:, :, 2]
    default = world.key_default[keys - world.key_ids[0]]
    assert_rate((values == default).sum(), values.size, STATS.rule_default_prob, "default value")
    # Other values are uniform over the n_values − 1 non-defaults (index o, in id order).
    value_index, default_index = values - world.value_ids[0], default - world.value_ids[0]
    other = (value_index - (value_index > default_index))[values != default]
    for o in range(STATS.n_values - 1):
        assert_rate((other == o).sum(), len(other), 1 / (STATS.n_values - 1), f"other value {o}")
    assert_rate((keys == world.key_ids[0]).sum(), keys.size, 1 / STATS.n_keys, "key k00")
    for slot in range(STATS.rules_per_doc):
        assert_rate((batch.query_slot == slot).sum(), batch.query_slot.size, 1 / STATS.rules_per_doc, f"slot {slot}")


@pytest.mark.parametrize("config", [STATS, ToyWorldConfig(), ToyWorldConfig(rules_per_doc=2, queries_per_doc=6,
                                                                               label_tail_prob=0.5, context=48)])
def test_t5_bigram_zeros(config):
    world = ToyWorld(config)
    batch = world.documents(1000, 1)
    first, second = batch.tokens[:, :-1], batch.tokens[:, 1:]
    after_period = second[first == world.period_id]
    allowed = np.flatnonzero(world.token_kind == world.kind_names.index("determiner")).tolist()
    allowed += [world.question_id, world.label_marker_id, world.eos_id]
    assert np.isin(after_period, allowed).all()
    assert np.isin(second[first == world.question_id], world.key_ids).all()
    assert (second[first == world.eos_id] == world.pad_id).all()
    assert (second[first == world.pad_id] == world.pad_id).all()


# --------------------------------------------------------------------------- T6 needs


def test_t6_neu_corpus_holds_every_content_token_and_preferences_peak():
    world = world_from_preset("neurons")
    batch = world.documents(2400, 10_000, "heldout")  # NEU's corpus: heldout, seed + 10,000
    n_docs = int(np.searchsorted(np.cumsum(batch.length), 100_000)) + 1  # first 100,000 valid positions
    tokens = batch.tokens[:n_docs][batch.valid[:n_docs]]
    assert len(tokens) >= 100_000
    counts = np.bincount(tokens, minlength=world.V)
    content = np.flatnonzero(world.token_category >= 0)
    assert len(content) == 336 and counts[content].min() >= 5
    assert (world.token_category[world.is_special] == -1).all()
    # Verb category × subject category: the preferred cell is each row's peak.
    table = np.zeros((8, 8), int)
    for _, s, _ in parsed_sentences(world, batch, n_docs):
        for subject in s.subjects:
            table[world.token_category[s.verb], world.token_category[subject.noun]] += 1
    for verb, noun in SUBJECT_PREFERENCE.items():
        assert table[verb].argmax() == noun and table[verb, noun] > 2 * np.sort(table[verb])[-2]


@pytest.mark.parametrize("preset", ["locality_sweep", "locality_tiny"])
def test_t6_loc_presets_have_enough_rule_rows(preset):
    batch = world_from_preset(preset).documents(1000, 0)
    assert batch.rule_row.sum(axis=1).mean() >= 3.5


@pytest.mark.parametrize("n", [2000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_t6_vds_unseen_words_never_follow_the_marker(n):
    world = world_from_preset("vds")
    batch = world.documents(n, 0)
    after_marker = batch.tokens[:, 1:][batch.tokens[:, :-1] == world.label_marker_id]
    assert len(after_marker) > 0.25 * n  # ~30 % of the documents carry a tail
    assert not np.isin(after_marker, world.unseen_label_words).any()
    assert np.isin(after_marker, world.label_word).all()


def test_t6_msma_keeps_every_planned_sentence_mostly():
    world = world_from_preset("msma_toy")
    batch = world.documents(2000, 1, "heldout")
    assert (batch.n_sentences == batch.n_planned).mean() >= 0.90
    # n_planned is the sentence count of the same document in a world with room for everything.
    roomy = ToyWorld(world.config.replace(context=200)).documents(2000, 1, "heldout")
    np.testing.assert_array_equal(roomy.n_sentences, batch.n_planned)


def test_t6_default_documents_match_the_spec_figures():
    batch = ToyWorld().documents(4000, 0)
    assert batch.length.mean() == pytest.approx(44.5, abs=0.7)
    assert (batch.n_sentences == batch.n_planned).mean() == pytest.approx(0.95, abs=0.015)
    tiny = world_from_preset("locality_tiny").documents(2000, 0)
    assert (tiny.query_pos >= 0).sum(axis=1).mean() == pytest.approx(3.9, abs=0.1)


# --------------------------------------------------------------------------- VDS tasks


def check_prompts(world: ToyWorld, task, context: int) -> None:
    batch = world.documents(int(task.doc_index.max()) + 1, 20_000, "heldout")
    for i, doc in enumerate(task.doc_index):
        end = batch.label_pos[doc] if batch.label_pos[doc] >= 0 else batch.length[doc] - 1
        expected = np.append(batch.tokens[doc, :end], world.label_marker_id)[-context:]
        n = task.prompt_len[i]
        np.testing.assert_array_equal(task.prompts[i, :n], expected)
        assert (task.prompts[i, n:] == world.pad_id).all() and task.prompts[i, n - 1] == world.label_marker_id
        assert task.doc_topic[i] == batch.doc_topic[doc]


def test_vds_topic_task_pools():
    world = world_from_preset("vds")
    task = world.task("topic", per_class=20)
    assert task.K == 8 and task.prompts.shape == (160, 64)
    np.testing.assert_array_equal(np.bincount(task.labels), np.full(8, 20))
    np.testing.assert_array_equal(task.labels, task.doc_topic)
    np.testing.assert_array_equal(task.verbaliser, world.label_word)
    # Kept while the class has fewer than per_class, in index order.
    topics = world.documents(int(task.doc_index.max()) + 1, 20_000, "heldout").doc_topic
    seen = np.zeros(8, int)
    expected = []
    for doc, t in enumerate(topics):
        if seen[t] < 20:
            seen[t] += 1
            expected.append(doc)
    np.testing.assert_array_equal(task.doc_index, expected)
    check_prompts(world, task, 64)


def test_vds_default_pool_sizes():
    world = world_from_preset("vds")
    task = world.task("topic")
    assert task.prompts.shape == (8 * 512, 64) and (np.bincount(task.labels) == 512).all()
    rest = world.task("topic_vs_rest")
    assert rest.K == 2 and rest.prompts.shape == (1024, 64)
    np.testing.assert_array_equal(rest.doc_index, np.arange(1024))
    np.testing.assert_array_equal(rest.labels, (rest.doc_topic != 0).astype(int))
    np.testing.assert_array_equal(rest.verbaliser, world.label_word[:2])
    assert_rate((rest.labels == 0).sum(), 1024, 1 / 8, "topic 0 share")  # natural 1 : n_topics − 1


def test_vds_unseen_task_and_left_truncation():
    world = world_from_preset("vds")
    unseen = world.task("topic_unseen", per_class=8)
    np.testing.assert_array_equal(unseen.verbaliser, world.unseen_label_words)
    check_prompts(world, unseen, 64)
    short = world.task("topic_unseen", per_class=8, context=12)
    assert short.prompts.shape == (64, 12) and (short.prompt_len <= 12).all()
    np.testing.assert_array_equal(short.doc_index, unseen.doc_index)
    check_prompts(world, short, 12)
    assert (short.prompt_len == 12).all()  # every document is longer than 12 tokens


# --------------------------------------------------------------------------- T8 speed


def test_t8_ten_thousand_documents_in_ten_seconds_of_one_core():
    start = time.process_time()  # CPU time of this process: robust to other load on the machine
    world = ToyWorld(ToyWorldConfig(world_seed=123))  # a fresh world: its build is part of the cost
    batch = world.documents(10_000, 0)
    elapsed = time.process_time() - start
    assert batch.tokens.shape == (10_000, 64)
    assert elapsed <= 10.0, f"{elapsed:.1f} s of CPU for 10,000 documents"
