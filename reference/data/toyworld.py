"""The toy world: a seeded synthetic language with ground truth (specs/toyworld.md). [reconstructed]

Everything in this module is [reconstructed]: it is the project's own corpus, not a paper's.

A **world** (vocabulary, lexicon, key defaults, verbalisers) is a pure function of a
:class:`~reference.config.ToyWorldConfig`; a **document** is a pure function of (world, split,
data seed, index). Documents come from a regular grammar with agreement, soft selectional
preferences and a document topic that governs word choice; optional key/value rule blocks and
query spans (LOC), label tails (VDS) and synonyms (MSA) are switched on by config options whose
defaults leave every other corpus unchanged (the spec's "one rule", §1).

Main entry points::

    world = ToyWorld(ToyWorldConfig())             # V = 371 ids, cached per config
    batch = world.documents(16, data_seed=0)       # ToyBatch; batch.tokens is (16, 64) int64
    world.grammatical(batch.tokens[0, 1:9])        # recogniser of one §3.1 sentence
    world.split_sentences(batch.tokens[0])         # list of 1-D sentences
    world.task("topic")                            # ToyTask for VDS
    world_from_preset("loc_sweep")                 # the world of a §6 preset

Shapes: B documents, T = ``config.context`` positions, S = ``rules_per_doc``,
Q = ``queries_per_doc``, V = vocabulary size.

Decisions where the spec is silent [reconstructed]:

* The span budget ``context − 2 − |rule region| − 2·[tail]`` counts the tail of *this* document
  (its drawn ``tail``), so a document without a tail keeps exactly the base world's sentences.
* Lemma, key and value numbers are written with at least two digits (``{:02d}``): ``animal07``,
  ``k05``, and ``person105`` once a category has more than 100 lemmas.
* Without rules (S = 0) the LOC section is absent: ``key_ids``, ``value_ids``, ``key_default``
  … are empty and the key-default stream is not drawn. Streams 2 and 3 of a document hold no
  draw then and are not seeded (same documents, less time).
* ``value_pos`` of a rule row is the value inside the rule block (the pointer target), not the
  query's own value token (the next token, equal to it).
* ``query_slot`` / ``query_pos`` follow draw order q = 0 … Q−1, not emission order.
* ``token_kind`` names word classes and sections (``kind_names``); ``token_number`` of a verb is
  its subject's number (its form).
* Padding belongs to the closing block, has ``span_kind`` 6 and ``sentence_id`` −1.
* ``ToyBatch`` adds ``n_planned`` (sentences drawn) and ``anchor_copies`` to the §4 fields.
* ``task(..., context=)`` gives the smaller context that left-truncates prompts.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from reference.config import ConfigError, ToyWorldConfig, check_choice, check_int

# --------------------------------------------------------------------------- fixed vocabulary (§2)

SPECIALS = ("<pad>", "<bos>", "<eos>")
PUNCTUATION = (".", ";", "?", "<label>")
DETERMINERS_SG = ("a", "this", "every")
DETERMINERS_PL = ("some", "these", "many")
PREPOSITIONS = ("in", "on", "with", "near", "under", "behind")
ADVERBS = ("often", "never", "today", "again", "slowly", "twice")
FUNCTION_WORDS = DETERMINERS_SG + DETERMINERS_PL + ("the",) + PREPOSITIONS + ("and",) + ADVERBS

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
PERIOD_ID, SEMICOLON_ID, QUESTION_ID, LABEL_MARKER_ID = 3, 4, 5, 6
FUNCTION_WORD_IDS = tuple(range(7, 7 + len(FUNCTION_WORDS)))  # 7 … 26
THE_ID = 7 + FUNCTION_WORDS.index("the")
AND_ID = 7 + FUNCTION_WORDS.index("and")
PREPOSITION_IDS = tuple(7 + FUNCTION_WORDS.index(w) for w in PREPOSITIONS)
ADVERB_IDS = tuple(7 + FUNCTION_WORDS.index(w) for w in ADVERBS)
# DET's draw is pick(4) over (a this every the) for singular, (some these many the) for plural.
DETERMINER_CHOICES = (
    tuple(7 + FUNCTION_WORDS.index(w) for w in DETERMINERS_SG + ("the",)),
    tuple(7 + FUNCTION_WORDS.index(w) for w in DETERMINERS_PL + ("the",)),
)
N_FIXED = 7 + len(FUNCTION_WORDS)  # ids 0 … 26 are the same in every world

# --------------------------------------------------------------------------- lexicon (§2)

CATEGORY_NAMES = ("person", "animal", "food", "utensil", "consume", "handle", "temper", "texture")
PARENT_NAMES = ("noun", "verb", "adjective")
CATEGORY_PARENT = (0, 0, 0, 0, 1, 1, 2, 2)
PERSON, ANIMAL, FOOD, UTENSIL, CONSUME, HANDLE, TEMPER, TEXTURE = range(8)
VERB_CATEGORIES = (CONSUME, HANDLE)
# Forms per (lemma, synonym): number for nouns, subject number for verbs, one for adjectives.
N_FORMS = (2, 2, 2, 2, 2, 2, 1, 1)
FORMS_PER_LEMMA = sum(N_FORMS)  # 14: hence V's 14·L·n_synonyms content tokens
# Soft preferences: each noun category has its own (verb, adjective) profile (NEU's siblings).
SUBJECT_PREFERENCE = {CONSUME: ANIMAL, HANDLE: PERSON}
OBJECT_PREFERENCE = {CONSUME: FOOD, HANDLE: UTENSIL}
ADJECTIVE_PREFERENCE = {PERSON: TEMPER, ANIMAL: TEMPER, FOOD: TEXTURE, UTENSIL: TEXTURE}
SYNONYM_LETTERS = "abcdefghijklmnopqrstuvwxyz"

# token_kind codes: word classes, and the non-word sections. [reconstructed]
KIND_NAMES = (
    "special", "punctuation", "determiner", "preposition", "conjunction", "adverb", "label",
    "noun", "verb", "adjective", "anchor", "filler", "key", "value",
)
(K_SPECIAL, K_PUNCT, K_DET, K_PREP, K_CONJ, K_ADV, K_LABEL,
 K_NOUN, K_VERB, K_ADJ, K_ANCHOR, K_FILLER, K_KEY, K_VALUE) = range(len(KIND_NAMES))
PARENT_KIND = (K_NOUN, K_VERB, K_ADJ)
FUNCTION_WORD_KIND = {
    **{w: K_DET for w in DETERMINERS_SG + DETERMINERS_PL + ("the",)},
    **{w: K_PREP for w in PREPOSITIONS},
    "and": K_CONJ,
    **{w: K_ADV for w in ADVERBS},
}

# span_kind codes of a document position (§4).
SPAN_BOS, SPAN_RULE, SPAN_SENTENCE, SPAN_QUERY, SPAN_TAIL, SPAN_EOS, SPAN_PAD = range(7)
SPAN_KIND_NAMES = ("bos", "rule", "sentence", "query", "tail", "eos", "pad")

SPLITS = {"train": 0, "heldout": 1}
POINTER_KINDS = ("value", "anchor", "block")
TASKS = ("topic", "topic_unseen", "topic_vs_rest")


def vocab_size(config: ToyWorldConfig) -> int:
    """V = 27 + n_topics + 14·L·n_syn (+ S + M − 1 + n_keys + n_values when S > 0). [reconstructed]"""
    n_lemmas = config.n_topics * config.lemmas_per_topic
    size = N_FIXED + config.n_topics + FORMS_PER_LEMMA * n_lemmas * config.n_synonyms
    if config.rules_per_doc > 0:
        size += config.rules_per_doc + config.rule_templates - 1 + config.n_keys + config.n_values
    return size


# --------------------------------------------------------------------------- the seeded streams (§3.3)


class _Stream:
    """One seeded stream: the spec's u(), pick(n) = ⌊u()·n⌋ and bern(p) = u() < p. [reconstructed]

    ``key`` seeds ``np.random.default_rng(key)``. Doubles are fetched in chunks, because
    ``random(n)`` yields the same numbers as n calls of ``random()`` and one NumPy call per draw
    would dominate generation time; the chunk sizes never change a draw.
    """

    __slots__ = ("u",)

    def __init__(self, key: list[int], expected_draws: int = 16) -> None:
        rng = np.random.default_rng(key)
        first = rng.random(expected_draws).tolist()
        more = itertools.chain.from_iterable(iter(lambda: rng.random(64).tolist(), None))  # endless
        # u() is the next double: a bound C method, the cheapest call Python has.
        self.u = itertools.chain(first, more).__next__

    def pick(self, n: int) -> int:
        return int(self.u() * n)  # u ≥ 0, so int() is the floor

    def bern(self, p: float) -> bool:
        return self.u() < p


def _skip(r: int, excluded: int) -> int:
    """The r-th element of 0, 1, 2, … once ``excluded`` is left out (lists in id order)."""
    return r if r < excluded else r + 1


# --------------------------------------------------------------------------- building a world (§2, §4)


class _Lexicon(NamedTuple):
    """What drawing a sentence needs, unpacked once per world (the hot loop reads it)."""

    content_base: tuple[int, ...]  # first id of each category's content block
    n_topics: int
    lemmas_per_topic: int
    n_synonyms: int
    topic_word_prob: float
    selection_prob: float
    plural_prob: float
    adj_prob: float
    coord_prob: float
    object_prob: float
    pp_prob: float
    adv_prob: float

    def content_id(self, category: int, lemma: int, synonym: int, form: int) -> int:
        """Ids run category → lemma → synonym → form (§2)."""
        return self.content_base[category] + (lemma * self.n_synonyms + synonym) * N_FORMS[category] + form


def _content_surface(category: int, lemma: int, synonym: int, form: int, n_synonyms: int) -> str:
    """``animal07``, ``animal07s`` (plural), ``food05bs``, ``consume03s`` (singular subject)."""
    letter = SYNONYM_LETTERS[synonym] if n_synonyms > 1 else ""
    parent = CATEGORY_PARENT[category]
    plural_s = (parent == 0 and form == 1) or (parent == 1 and form == 0)
    return f"{CATEGORY_NAMES[category]}{lemma:02d}{letter}{'s' if plural_s else ''}"


def _vocabulary_rows(config: ToyWorldConfig) -> list[tuple[str, int, int, int, int, int, int]]:
    """One row per id: (surface, kind, number, category, topic, lemma, synonym)."""
    rows = [(s, K_SPECIAL, -1, -1, -1, -1, -1) for s in SPECIALS]
    rows += [(s, K_PUNCT, -1, -1, -1, -1, -1) for s in PUNCTUATION]
    for word in FUNCTION_WORDS:
        number = 0 if word in DETERMINERS_SG else 1 if word in DETERMINERS_PL else -1
        rows.append((word, FUNCTION_WORD_KIND[word], number, -1, -1, -1, -1))
    rows += [(f"topic{t}", K_LABEL, -1, -1, t, -1, -1) for t in range(config.n_topics)]
    n_lemmas = config.n_topics * config.lemmas_per_topic
    for category in range(len(CATEGORY_NAMES)):
        kind = PARENT_KIND[CATEGORY_PARENT[category]]
        for lemma in range(n_lemmas):
            topic = lemma // config.lemmas_per_topic
            for synonym in range(config.n_synonyms):
                for form in range(N_FORMS[category]):
                    number = form if kind in (K_NOUN, K_VERB) else -1
                    surface = _content_surface(category, lemma, synonym, form, config.n_synonyms)
                    rows.append((surface, kind, number, category, topic, category * n_lemmas + lemma, synonym))
    if config.rules_per_doc > 0:
        rows += [(f"<R{s}>", K_ANCHOR, -1, -1, -1, -1, -1) for s in range(config.rules_per_doc)]
        rows += [(f"<f{m}>", K_FILLER, -1, -1, -1, -1, -1) for m in range(1, config.rule_templates)]
        rows += [(f"k{k:02d}", K_KEY, -1, -1, -1, -1, -1) for k in range(config.n_keys)]
        rows += [(f"v{v:02d}", K_VALUE, -1, -1, -1, -1, -1) for v in range(config.n_values)]
    return rows


def _key_defaults(config: ToyWorldConfig, value_ids: np.ndarray) -> np.ndarray:
    """Stream [world_seed, 0, 1]: per key, the pick(n_values)-th value. (n_keys,) value ids."""
    if config.rules_per_doc == 0:
        return np.zeros(0, np.int64)  # no LOC section, no keys
    stream = _Stream([config.world_seed, 0, 1], config.n_keys)
    return np.array([value_ids[stream.pick(config.n_values)] for _ in range(config.n_keys)], np.int64)


def _unseen_label_words(config: ToyWorldConfig) -> np.ndarray:
    """Stream [world_seed, 0, 2]: for topic j, the pick(20 − j)-th unused function word."""
    stream = _Stream([config.world_seed, 0, 2], config.n_topics)
    unused = list(FUNCTION_WORD_IDS)
    return np.array([unused.pop(stream.pick(len(FUNCTION_WORD_IDS) - j)) for j in range(config.n_topics)], np.int64)


def _readonly(array: np.ndarray) -> np.ndarray:
    # Worlds are cached and shared: a caller writing into one would corrupt every later user.
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=64)
def _build_world(config: ToyWorldConfig) -> dict[str, Any]:
    """Every world field, computed once per config (a world is a pure function of its config)."""
    rows = _vocabulary_rows(config)
    surfaces, kind, number, category, topic, lemma, synonym = (list(col) for col in zip(*rows))
    kind_arr = np.array(kind, np.int8)
    ids_of = lambda k: np.flatnonzero(kind_arr == k).astype(np.int64)  # noqa: E731
    value_ids = ids_of(K_VALUE)
    n_lemmas = config.n_topics * config.lemmas_per_topic
    content_base = tuple(
        N_FIXED + config.n_topics + sum(N_FORMS[:c]) * n_lemmas * config.n_synonyms for c in range(len(N_FORMS))
    )
    fields: dict[str, Any] = {
        "V": len(rows),
        "vocab": np.array(surfaces, dtype=str),
        "token_id": MappingProxyType({s: i for i, s in enumerate(surfaces)}),
        "is_special": kind_arr == K_SPECIAL,
        "is_word": np.isin(kind_arr, (K_DET, K_PREP, K_CONJ, K_ADV, K_LABEL, K_NOUN, K_VERB, K_ADJ)),
        "is_sentence_end": np.arange(len(rows)) == PERIOD_ID,
        "token_kind": kind_arr,
        "token_number": np.array(number, np.int64),
        "token_category": np.array(category, np.int64),
        "category_names": np.array(CATEGORY_NAMES, dtype=str),
        "category_parent": np.array(CATEGORY_PARENT, np.int64),
        "parent_names": np.array(PARENT_NAMES, dtype=str),
        "token_topic": np.array(topic, np.int64),
        "token_lemma": np.array(lemma, np.int64),
        "token_synonym": np.array(synonym, np.int64),
        "label_word": ids_of(K_LABEL),
        "unseen_label_words": _unseen_label_words(config),
        "key_ids": ids_of(K_KEY),
        "value_ids": value_ids,
        "anchor_ids": ids_of(K_ANCHOR),
        "filler_ids": ids_of(K_FILLER),
        "key_default": _key_defaults(config, value_ids),
    }
    for value in fields.values():
        if isinstance(value, np.ndarray):
            _readonly(value)
    fields["_lexicon"] = _Lexicon(
        content_base, config.n_topics, config.lemmas_per_topic, config.n_synonyms,
        config.topic_word_prob, config.selection_prob, config.plural_prob, config.adj_prob,
        config.coord_prob, config.object_prob, config.pp_prob, config.adv_prob,
    )
    # Plain lists for the pure-Python recogniser (indexing a list is ~10× faster than an array).
    fields["_kind_list"] = kind
    fields["_number_list"] = number
    return fields


# --------------------------------------------------------------------------- drawing sentences (§3.1, §3.3)


def _draw_lemma(s: _Stream, lex: _Lexicon, topic: int, category: int, form: int) -> int:
    """LEMMA(c): on-topic with probability topic_word_prob, else a uniform other-topic lemma."""
    m = lex.lemmas_per_topic
    if s.bern(lex.topic_word_prob):
        lemma = topic * m + s.pick(m)
    else:
        r = s.pick((lex.n_topics - 1) * m)
        lemma = r if r < topic * m else r + m  # skip the topic's own m lemmas
    synonym = s.pick(lex.n_synonyms)  # drawn even for one synonym: keeps every stream aligned (T2)
    return lex.content_id(category, lemma, synonym, form)


def _draw_np(s: _Stream, lex: _Lexicon, topic: int, preferred: int | None, out: list[int]) -> int:
    """NP → DET [ADJ] N, appended to ``out``; returns its number (0 sg, 1 pl).

    ``preferred`` None is NP(any): a uniform noun category (PP nouns).
    """
    if preferred is None:
        category = s.pick(4)
    elif s.bern(lex.selection_prob):
        category = preferred
    else:
        category = _skip(s.pick(3), preferred)  # the pick(3)-th other noun category
    plural = int(s.bern(lex.plural_prob))
    out.append(DETERMINER_CHOICES[plural][s.pick(4)])
    if s.bern(lex.adj_prob):
        liked = ADJECTIVE_PREFERENCE[category]
        adjective = liked if s.bern(lex.selection_prob) else TEMPER + TEXTURE - liked  # the other one
        out.append(_draw_lemma(s, lex, topic, adjective, 0))
    out.append(_draw_lemma(s, lex, topic, category, plural))
    return plural


def _draw_sentence(s: _Stream, lex: _Lexicon, topic: int) -> list[int]:
    """S → SUBJ V [NP] [P NP] [ADV] . in draw order (the verb's category before its subject)."""
    out: list[int] = []
    verb = VERB_CATEGORIES[s.pick(2)]
    coordinated = s.bern(lex.coord_prob)
    number = _draw_np(s, lex, topic, SUBJECT_PREFERENCE[verb], out)
    if coordinated:
        out.append(AND_ID)
        _draw_np(s, lex, topic, SUBJECT_PREFERENCE[verb], out)
        number = 1  # "NP and NP" is plural
    out.append(_draw_lemma(s, lex, topic, verb, number))
    if s.bern(lex.object_prob):
        _draw_np(s, lex, topic, OBJECT_PREFERENCE[verb], out)
    if s.bern(lex.pp_prob):
        out.append(PREPOSITION_IDS[s.pick(6)])
        _draw_np(s, lex, topic, None, out)
    if s.bern(lex.adv_prob):
        out.append(ADVERB_IDS[s.pick(6)])
    out.append(PERIOD_ID)
    return out


# --------------------------------------------------------------------------- one document (§3.2, §3.3)


class _Rule(NamedTuple):
    key: int
    value: int
    template: int


class _Doc(NamedTuple):
    """One document as Python lists, before the batch is filled vectorised."""

    tokens: list[int]  # through <eos>
    span_kind: list[int]
    block: list[int]
    sentence: list[int]
    topic: int
    n_planned: int
    n_sentences: int
    rules: list[_Rule]
    rule_start: list[int]
    query_slot: list[int]
    query_pos: list[int]
    label_pos: int
    label_token: int
    label_true: bool


def _draw_rules(s: _Stream, world: ToyWorld) -> list[_Rule]:
    """Stream s=2: per slot a fresh key, its default or another value, a template."""
    cfg = world.config
    unused = list(range(cfg.n_keys))
    rules = []
    for slot in range(cfg.rules_per_doc):
        key = unused.pop(s.pick(cfg.n_keys - slot))
        use_default = s.bern(cfg.rule_default_prob)
        other = s.pick(cfg.n_values - 1)
        default = int(world.key_default[key]) - int(world.value_ids[0])
        value = default if use_default else _skip(other, default)
        template = s.pick(cfg.rule_templates)
        rules.append(_Rule(int(world.key_ids[key]), int(world.value_ids[value]), template))
    return rules


def _draw_queries(s: _Stream, n_rules: int, n_queries: int, n_planned: int) -> list[tuple[int, int]]:
    """Stream s=3: per query (slot, after); it follows sentence ``after`` (1-based)."""
    return [(s.pick(n_rules), 1 + s.pick(n_planned)) for _ in range(n_queries)]


def _draw_document(world: ToyWorld, split_code: int, data_seed: int, index: int) -> _Doc:
    """Draw and lay out document ``index`` of (split, data seed). [reconstructed §3.2–3.3]"""
    cfg = world.config
    key = [cfg.world_seed, 1, split_code, data_seed, index]
    head = _Stream(key + [0], 5)
    topic = head.pick(cfg.n_topics)
    lo, hi = cfg.sentences_per_doc
    n_planned = lo + head.pick(hi - lo + 1)
    has_tail = head.bern(cfg.label_tail_prob)
    noisy = head.bern(cfg.label_noise)
    other_topic = (topic + 1 + head.pick(cfg.n_topics - 1)) % cfg.n_topics

    body = _Stream(key + [1], 32 * n_planned)
    sentences = [_draw_sentence(body, world._lexicon, topic) for _ in range(n_planned)]
    # Streams 2 and 3 hold no draw without rules; skipping them saves their seeding time.
    rules = _draw_rules(_Stream(key + [2], 4 * cfg.rules_per_doc), world) if cfg.rules_per_doc else []
    queries = (
        _draw_queries(_Stream(key + [3], 2 * cfg.queries_per_doc), cfg.rules_per_doc, cfg.queries_per_doc, n_planned)
        if cfg.queries_per_doc
        else []
    )
    return _lay_out(world, topic, sentences, rules, queries, has_tail, noisy, other_topic)


def _lay_out(
    world: ToyWorld,
    topic: int,
    sentences: list[list[int]],
    rules: list[_Rule],
    queries: list[tuple[int, int]],
    has_tail: bool,
    noisy: bool,
    other_topic: int,
) -> _Doc:
    """<bos> | rule blocks | sentences and query spans while they fit | [tail] | <eos>."""
    cfg = world.config
    tokens, span_kind, block, sentence = [BOS_ID], [SPAN_BOS], [0], [-1]

    def emit(span: list[int], kind: int, sentence_id: int = -1) -> None:
        n_blocks = block[-1] + 1  # every span is a new block, numbered in order
        tokens.extend(span)
        span_kind.extend([kind] * len(span))
        block.extend([n_blocks] * len(span))
        sentence.extend([sentence_id] * len(span))

    rule_start = []
    for slot, rule in enumerate(rules):
        rule_start.append(len(tokens))
        filler = [int(world.filler_ids[rule.template - 1])] if rule.template >= 1 else []
        emit([int(world.anchor_ids[slot])] * cfg.anchor_copies + filler + [rule.key, rule.value, SEMICOLON_ID], SPAN_RULE)

    # The planned spans: each sentence, then the queries placed after it (ties in query order).
    spans: list[tuple[str, int]] = []
    for k in range(len(sentences)):
        spans.append(("sentence", k))
        spans += [("query", q) for q, (_, after) in enumerate(queries) if after == k + 1]

    budget = cfg.context - 2 - (len(tokens) - 1) - 2 * has_tail
    used, n_sentences = 0, 0
    query_pos = [-1] * len(queries)
    for what, k in spans:
        if what == "sentence":
            span = sentences[k]
        else:
            rule = rules[queries[k][0]]
            span = [QUESTION_ID, rule.key, rule.value, PERIOD_ID]
        if used + len(span) > budget:
            break  # the first span that does not fit ends the document: no sentence is cut
        used += len(span)
        if what == "sentence":
            emit(span, SPAN_SENTENCE, n_sentences)
            n_sentences += 1
        else:
            query_pos[k] = len(tokens)
            emit(span, SPAN_QUERY)

    label_pos, label_token = -1, -1
    if has_tail:
        label_pos = len(tokens)
        label_token = int(world.label_word[other_topic if noisy else topic])
        emit([LABEL_MARKER_ID, label_token], SPAN_TAIL)
    emit([EOS_ID], SPAN_EOS)
    return _Doc(
        tokens, span_kind, block, sentence, topic, len(sentences), n_sentences, rules, rule_start,
        [slot for slot, _ in queries], query_pos, label_pos, label_token, has_tail and not noisy,
    )


# --------------------------------------------------------------------------- batches


@dataclass(frozen=True, eq=False)
class ToyBatch:
    """Documents start … start+B−1 of one (world, split, data seed). [reconstructed §4]

    Fields (B documents, T = context, S = rules_per_doc, Q = queries_per_doc; int64 unless said):

    * ``tokens`` (B,T): ids, ``<pad>``-filled; ``valid`` (B,T) bool: not padding.
    * ``length`` (B,): positions through ``<eos>``; ``doc_index`` (B,); ``doc_topic`` (B,);
      ``n_sentences`` (B,): sentences emitted; ``n_planned`` (B,): sentences planned (drawn
      ``n``; emitted ≤ planned when the context is full) — an addition to §4, [reconstructed].
    * ``span_kind`` (B,T) int8: 0 bos, 1 rule, 2 sentence, 3 query, 4 tail, 5 eos, 6 pad.
    * ``sentence_id`` (B,T): index of the sentence holding the position, −1 outside sentences;
      ``sentence_end`` (B,T) bool: the ``.`` closing a sentence (not a query's).
    * ``block_id`` (B,T): 0 ``<bos>``, then each rule block, each sentence and query span, the
      tail, and last the closing block (``<eos>`` and all padding).
    * ``rule_row`` (B,T) bool: the key position of each emitted query span (it predicts the
      value); ``target_block`` (B,T): the block of that key's rule on rule rows, −1 elsewhere;
      ``value_pos`` (B,T): the position of that rule's value token, −1 elsewhere.
    * ``rules`` (B,S,5): (slot, key id, value id, version 0, verified 1); ``rule_block``,
      ``rule_start`` (position of the first anchor), ``rule_template`` (B,S).
    * ``query_slot`` (B,Q): the slot each query names (draw order); ``query_pos`` (B,Q): the
      position of its ``?``, −1 if it did not fit.
    * ``label_pos`` (B,): position of ``<label>``, −1 without a tail; ``label_token`` (B,): the
      word after it, −1 without a tail; ``label_true`` (B,) bool: that word is
      ``label_word[doc_topic]``.
    * ``anchor_copies``: r, used by ``pointer_mask("anchor")``.
    """

    tokens: np.ndarray
    valid: np.ndarray
    length: np.ndarray
    doc_index: np.ndarray
    doc_topic: np.ndarray
    n_sentences: np.ndarray
    n_planned: np.ndarray
    span_kind: np.ndarray
    sentence_id: np.ndarray
    sentence_end: np.ndarray
    block_id: np.ndarray
    target_block: np.ndarray
    rule_row: np.ndarray
    value_pos: np.ndarray
    rules: np.ndarray
    rule_block: np.ndarray
    rule_start: np.ndarray
    rule_template: np.ndarray
    query_slot: np.ndarray
    query_pos: np.ndarray
    label_pos: np.ndarray
    label_token: np.ndarray
    label_true: np.ndarray
    anchor_copies: int

    def pointer_mask(self, kind: str = "value") -> np.ndarray:
        """T(i) of every rule row as a (B,T,T) bool mask; rows off rule rows are all False.

        ``"value"``: the rule's value position; ``"anchor"``: its r anchor positions;
        ``"block"``: every position of the rule's block (``target_block``).
        """
        check_choice("pointer_mask", "kind", kind, POINTER_KINDS)
        in_block = self.rule_row[:, :, None] & (self.block_id[:, None, :] == self.target_block[:, :, None])
        if kind == "block":
            return in_block
        if kind == "anchor":
            # A rule block opens with its r anchors: the first r positions of the target block.
            first = np.argmax(in_block, axis=2)[:, :, None]
            positions = np.arange(self.tokens.shape[1])
            return in_block & (positions < first + self.anchor_copies)
        b, i = np.nonzero(self.rule_row)
        mask = np.zeros(in_block.shape, dtype=bool)
        mask[b, i, self.value_pos[b, i]] = True
        return mask


def _fill(rows: np.ndarray, cols: np.ndarray, values: list[int], shape: tuple[int, int], fill: int, dtype) -> np.ndarray:
    out = np.full(shape, fill, dtype=dtype)
    out[rows, cols] = values
    return out


def _assemble(world: ToyWorld, docs: list[_Doc], start: int) -> ToyBatch:
    """Fill the batch arrays from the per-document lists in a few vectorised steps."""
    cfg = world.config
    B, T, S, Q = len(docs), cfg.context, cfg.rules_per_doc, cfg.queries_per_doc
    length = np.array([len(d.tokens) for d in docs], np.int64)
    rows = np.repeat(np.arange(B), length)
    cols = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    flat = lambda name: list(itertools.chain.from_iterable(getattr(d, name) for d in docs))  # noqa: E731

    tokens = _fill(rows, cols, flat("tokens"), (B, T), PAD_ID, np.int64)
    span_kind = _fill(rows, cols, flat("span_kind"), (B, T), SPAN_PAD, np.int8)
    sentence_id = _fill(rows, cols, flat("sentence"), (B, T), -1, np.int64)
    closing_block = np.array([d.block[-1] for d in docs], np.int64).reshape(B, 1)
    block_id = _fill(rows, cols, flat("block"), (B, T), -1, np.int64)
    block_id = np.where(block_id < 0, closing_block, block_id)  # padding joins the <eos> block
    valid = np.arange(T) < length[:, None]

    rule_start = np.array([d.rule_start for d in docs], np.int64).reshape(B, S)
    rule_template = np.array([[r.template for r in d.rules] for d in docs], np.int64).reshape(B, S)
    rules = np.zeros((B, S, 5), np.int64)
    rules[:, :, 0] = np.arange(S)
    rules[:, :, 1] = np.array([[r.key for r in d.rules] for d in docs], np.int64).reshape(B, S)
    rules[:, :, 2] = np.array([[r.value for r in d.rules] for d in docs], np.int64).reshape(B, S)
    rules[:, :, 4] = 1  # version 0, verified 1: the generator only writes valid rules
    rule_block = np.broadcast_to(1 + np.arange(S, dtype=np.int64), (B, S)).copy()  # block 0 is <bos>
    query_slot = np.array([d.query_slot for d in docs], np.int64).reshape(B, Q)
    query_pos = np.array([d.query_pos for d in docs], np.int64).reshape(B, Q)

    # Rule rows: the key right after each emitted query's "?".
    b, q = np.nonzero(query_pos >= 0)
    key_pos = query_pos[b, q] + 1
    slot = query_slot[b, q]
    has_filler = (rule_template[b, slot] >= 1).astype(np.int64)
    rule_row = np.zeros((B, T), bool)
    rule_row[b, key_pos] = True
    target_block = np.full((B, T), -1, np.int64)
    target_block[b, key_pos] = rule_block[b, slot]
    value_pos = np.full((B, T), -1, np.int64)
    value_pos[b, key_pos] = rule_start[b, slot] + cfg.anchor_copies + has_filler + 1

    return ToyBatch(
        tokens=tokens,
        valid=valid,
        length=length,
        doc_index=np.arange(start, start + B, dtype=np.int64),
        doc_topic=np.array([d.topic for d in docs], np.int64),
        n_sentences=np.array([d.n_sentences for d in docs], np.int64),
        n_planned=np.array([d.n_planned for d in docs], np.int64),
        span_kind=span_kind,
        sentence_id=sentence_id,
        sentence_end=(tokens == PERIOD_ID) & (span_kind == SPAN_SENTENCE),
        block_id=block_id,
        target_block=target_block,
        rule_row=rule_row,
        value_pos=value_pos,
        rules=rules,
        rule_block=rule_block,
        rule_start=rule_start,
        rule_template=rule_template,
        query_slot=query_slot,
        query_pos=query_pos,
        label_pos=np.array([d.label_pos for d in docs], np.int64),
        label_token=np.array([d.label_token for d in docs], np.int64),
        label_true=np.array([d.label_true for d in docs], bool),
        anchor_copies=cfg.anchor_copies,
    )


# --------------------------------------------------------------------------- tasks (VDS)


@dataclass(frozen=True, eq=False)
class ToyTask:
    """A VDS classification task on held-out documents. [reconstructed §4]

    ``prompts`` (N,T) int64, ``<pad>``-filled: each document before its ``<label>`` (or its
    ``<eos>``), then ``<label>``; the readout position is ``prompt_len − 1``. ``labels``,
    ``doc_topic``, ``doc_index``, ``prompt_len`` (N,) int64; ``verbaliser`` (K,) int64: the
    token whose logit scores each class.
    """

    name: str
    K: int
    verbaliser: np.ndarray
    prompts: np.ndarray
    prompt_len: np.ndarray
    labels: np.ndarray
    doc_topic: np.ndarray
    doc_index: np.ndarray


def _prompt(batch: ToyBatch, row: int, context: int) -> list[int]:
    """The document before its tail (or <eos>), then <label>; left-truncated to ``context``."""
    end = int(batch.label_pos[row]) if batch.label_pos[row] >= 0 else int(batch.length[row]) - 1
    prompt = batch.tokens[row, :end].tolist() + [LABEL_MARKER_ID]
    return prompt[-context:]


# --------------------------------------------------------------------------- the world


class ToyWorld:
    """A toy world: vocabulary, lexicon, key defaults and verbalisers of one config. [reconstructed]

    ``ToyWorld(config)`` is a pure function of ``config`` (cached: building the same world twice
    is free and its arrays are read-only). Fields (V = vocabulary size; §4 of the spec):

    * ``vocab`` (V,) str, ``token_id`` dict str → id; ``pad_id``, ``bos_id``, ``eos_id``,
      ``period_id``, ``semicolon_id``, ``question_id``, ``label_marker_id``, ``the_id``, ``and_id``.
    * ``is_special`` (V,) bool: ``<pad> <bos> <eos>``; ``is_word`` (V,) bool: function, label and
      content words; ``is_sentence_end`` (V,) bool: ``.``.
    * ``token_kind`` (V,) int8: index into ``kind_names``; ``token_number`` (V,) int64: 0 sg,
      1 pl for nouns, verbs (the subject's number) and determiners other than ``the``, else −1.
    * ``token_category`` (V,) int64: category of a content token, else −1; ``category_names``
      (8,) str; ``category_parent`` (8,) int64 into ``parent_names`` (3,) str (word classes).
    * ``token_topic`` (V,) int64: topic of a content lemma or label word, −1 neutral;
      ``token_lemma`` (V,) int64 (0 … 8L−1), ``token_synonym`` (V,) int64; −1 off content.
    * ``label_word`` (n_topics,) int64: verbaliser of ``topic``; ``unseen_label_words``
      (n_topics,) int64: function words, verbaliser of ``topic_unseen``.
    * ``key_ids`` (n_keys,), ``value_ids`` (n_values,), ``anchor_ids`` (S,), ``filler_ids``
      (M−1,), ``key_default`` (n_keys,) value ids: the LOC section (empty when S = 0).
    """

    V: int
    vocab: np.ndarray
    token_id: MappingProxyType[str, int]
    is_special: np.ndarray
    is_word: np.ndarray
    is_sentence_end: np.ndarray
    token_kind: np.ndarray
    token_number: np.ndarray
    token_category: np.ndarray
    category_names: np.ndarray
    category_parent: np.ndarray
    parent_names: np.ndarray
    token_topic: np.ndarray
    token_lemma: np.ndarray
    token_synonym: np.ndarray
    label_word: np.ndarray
    unseen_label_words: np.ndarray
    key_ids: np.ndarray
    value_ids: np.ndarray
    anchor_ids: np.ndarray
    filler_ids: np.ndarray
    key_default: np.ndarray

    kind_names = KIND_NAMES
    span_kind_names = SPAN_KIND_NAMES
    pad_id, bos_id, eos_id = PAD_ID, BOS_ID, EOS_ID
    period_id, semicolon_id, question_id, label_marker_id = PERIOD_ID, SEMICOLON_ID, QUESTION_ID, LABEL_MARKER_ID
    the_id, and_id = THE_ID, AND_ID

    def __init__(self, config: ToyWorldConfig | None = None) -> None:
        if config is None:
            config = ToyWorldConfig()
        if not isinstance(config, ToyWorldConfig):
            raise ConfigError(f"toyworld: expected a ToyWorldConfig, got {type(config).__name__}")
        self.config = config
        self.__dict__.update(_build_world(config))

    def __repr__(self) -> str:
        return f"ToyWorld(V={self.V}, config={self.config!r})"

    def __reduce__(self):
        # Pickle the config only: the world is rebuilt from it (e.g. in a worker process).
        return (ToyWorld, (self.config,))

    # ------------------------------------------------------------------- documents

    def documents(self, n: int, data_seed: int, split: str = "train", start: int = 0) -> ToyBatch:
        """Documents ``start … start+n−1`` of (split, data_seed) as a :class:`ToyBatch`, B = n.

        Each document depends only on (world, split, data seed, index), never on n or start.
        """
        check_int("documents", "n", n, 0)
        check_int("documents", "data_seed", data_seed, 0)
        check_int("documents", "start", start, 0)
        check_choice("documents", "split", split, tuple(SPLITS))
        code = SPLITS[split]
        docs = [_draw_document(self, code, data_seed, index) for index in range(start, start + n)]
        return _assemble(self, docs, start)

    # ------------------------------------------------------------------- the grammar

    def grammatical(self, tokens: Any) -> bool:
        """True iff the 1-D ids are exactly one §3.1 sentence with its ``.``. [reconstructed]

        Checks the grammar and agreement (determiner and noun number, ``the`` fits both; the verb's
        form is the subject's number; ``NP and NP`` is plural). Selection and topic are not
        checked. Specials, markers, out-of-range ids, empty or non-1-D input give False.
        """
        array = np.asarray(tokens)
        if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
            return False
        ids = array.tolist()
        if min(ids) < 0 or max(ids) >= self.V:
            return False
        kinds = [self._kind_list[t] for t in ids]
        numbers = [self._number_list[t] for t in ids]
        return _parse_sentence(ids, kinds, numbers)

    def split_sentences(self, tokens: Any) -> list[np.ndarray]:
        """Sentences of a 1-D id sequence, as 1-D int64 arrays. [reconstructed]

        Drops specials, cuts after each ``.`` and ``;``, and keeps the segments that end in ``.``
        and do not start with ``?`` (so rule blocks, query spans and tails are left out).
        """
        segments, current = [], []
        for t in np.asarray(tokens).reshape(-1).tolist():
            if 0 <= t < self.V and self.is_special[t]:
                continue
            current.append(t)
            if t in (PERIOD_ID, SEMICOLON_ID):
                segments.append(current)
                current = []
        return [np.array(s, np.int64) for s in segments if s[-1] == PERIOD_ID and s[0] != QUESTION_ID]

    # ------------------------------------------------------------------- tasks

    def task(
        self, name: str, data_seed: int = 20_000, per_class: int = 512, n: int = 1024, context: int | None = None
    ) -> ToyTask:
        """A VDS task on held-out documents of ``data_seed``, in index order. [reconstructed]

        ``topic`` / ``topic_unseen``: K = n_topics, a document is kept while its topic has fewer
        than ``per_class`` documents (N = K·per_class); verbalisers ``label_word`` /
        ``unseen_label_words``. ``topic_vs_rest``: the first ``n`` documents, label 0 for topic 0
        else 1, verbaliser (``label_word[0]``, ``label_word[1]``). ``context`` (default the
        world's) sets the prompt width T; longer prompts keep their last T tokens.
        """
        check_choice("task", "name", name, TASKS)
        check_int("task", "data_seed", data_seed, 0)
        check_int("task", "per_class", per_class, 1)
        check_int("task", "n", n, 1)
        context = self.config.context if context is None else context
        check_int("task", "context", context, 1)
        if name == "topic_vs_rest":
            batch = self.documents(n, data_seed, "heldout")
            kept = [(batch, row) for row in range(n)]
            labels = [int(batch.doc_topic[row] != 0) for row in range(n)]
            K, verbaliser = 2, self.label_word[:2]
        else:
            K = self.config.n_topics
            verbaliser = self.label_word if name == "topic" else self.unseen_label_words
            kept, labels = self._balanced(data_seed, per_class)
        prompts = [_prompt(b, row, context) for b, row in kept]
        out = np.full((len(prompts), context), PAD_ID, np.int64)
        for i, p in enumerate(prompts):
            out[i, : len(p)] = p
        return ToyTask(
            name=name,
            K=K,
            verbaliser=np.array(verbaliser, np.int64),
            prompts=out,
            prompt_len=np.array([len(p) for p in prompts], np.int64),
            labels=np.array(labels, np.int64),
            doc_topic=np.array([b.doc_topic[row] for b, row in kept], np.int64),
            doc_index=np.array([b.doc_index[row] for b, row in kept], np.int64),
        )

    def _balanced(self, data_seed: int, per_class: int) -> tuple[list[tuple[ToyBatch, int]], list[int]]:
        """Held-out documents in index order, each kept while its topic has < per_class."""
        counts = [0] * self.config.n_topics
        kept, labels = [], []
        start, chunk = 0, max(256, per_class * self.config.n_topics // 4)  # chunking never changes a result
        while min(counts) < per_class:
            batch = self.documents(chunk, data_seed, "heldout", start)
            for row, topic in enumerate(batch.doc_topic.tolist()):
                if counts[topic] < per_class:
                    counts[topic] += 1
                    kept.append((batch, row))
                    labels.append(topic)
            start += chunk
        return kept, labels


def _parse_np(kinds: list[int], numbers: list[int], i: int) -> tuple[int, int] | None:
    """NP → DET [ADJ] N starting at i: (index after it, its number), or None."""
    n = len(kinds)
    if i >= n or kinds[i] != K_DET:
        return None
    det_number = numbers[i]
    i += 1
    if i < n and kinds[i] == K_ADJ:
        i += 1
    if i >= n or kinds[i] != K_NOUN:
        return None
    if det_number not in (-1, numbers[i]):  # `the` (−1) fits both numbers
        return None
    return i + 1, numbers[i]


def _parse_sentence(ids: list[int], kinds: list[int], numbers: list[int]) -> bool:
    """S → SUBJ V [NP] [P NP] [ADV] . with SUBJ → NP | NP and NP; agreement checked."""
    subject = _parse_np(kinds, numbers, 0)
    if subject is None:
        return False
    i, number = subject
    if i < len(ids) and kinds[i] == K_CONJ:
        second = _parse_np(kinds, numbers, i + 1)
        if second is None:
            return False
        i, number = second[0], 1
    if i >= len(ids) or kinds[i] != K_VERB or numbers[i] != number:
        return False
    i += 1
    if i < len(ids) and kinds[i] == K_DET:
        obj = _parse_np(kinds, numbers, i)
        if obj is None:
            return False
        i = obj[0]
    if i < len(ids) and kinds[i] == K_PREP:
        pp = _parse_np(kinds, numbers, i + 1)
        if pp is None:
            return False
        i = pp[0]
    if i < len(ids) and kinds[i] == K_ADV:
        i += 1
    return i == len(ids) - 1 and ids[i] == PERIOD_ID


def check_model_context(config: ToyWorldConfig, model_context: int) -> None:
    """Raise ConfigError when the world's context exceeds the model's (§5, run time)."""
    if config.context > model_context:
        raise ConfigError(
            f"toyworld.context: {config.context} is above model.context {model_context} "
            "(documents would not fit the model)"
        )


# --------------------------------------------------------------------------- presets (§6)


def _preset(layers: int, d_model: int, heads: int, d_mlp: int | None, context: int, steps: int, **world) -> dict:
    """One §6 preset as section overrides; the model's vocab_size is the world's V."""
    toyworld = {"context": context, **world}
    model = {
        "vocab_size": vocab_size(ToyWorldConfig.from_dict(toyworld)),
        "context": context,
        "n_layers": layers,
        "d_model": d_model,
        "n_heads": heads,
        "d_mlp": d_mlp,
    }
    return {"model": model, "train": {"steps": steps}, "toyworld": toyworld}


_LOC_WORLD = {
    "rules_per_doc": 4, "queries_per_doc": 4, "n_keys": 32, "n_values": 32,
    "anchor_copies": 1, "rule_templates": 1, "rule_default_prob": 0.5,
}

# §6: section overrides {"model": …, "train": {"steps": …}, "toyworld": …}; d_mlp None = 4d.
# `toy` (DDC) starts with 1 head of width 8 and grows to 4; its DDCL prototypes (K = 8) and
# growth belong to DDC's own config (specs/03 §5.1), not to these three sections.
PRESETS: dict[str, dict] = {
    "loc_sweep": _preset(2, 64, 4, None, 128, 800, **_LOC_WORLD),
    "loc_tiny": _preset(2, 32, 4, None, 64, 150, **_LOC_WORLD, sentences_per_doc=(2, 4)),
    "loc_deep": _preset(4, 64, 4, None, 128, 800, **_LOC_WORLD),
    "neu": _preset(2, 64, 4, 256, 64, 600),
    "vds": _preset(2, 64, 4, 256, 64, 600, label_tail_prob=0.3, label_noise=0.3),
    "toy": _preset(2, 32, 1, None, 64, 3000),
    "msma_toy": _preset(6, 32, 4, 128, 64, 600, n_synonyms=3),
    "msma_tiny": _preset(3, 16, 2, None, 32, 150, n_synonyms=3),
}
PRESETS["toy"]["model"]["d_head"] = 8  # d_k 8: the head width kept while heads grow 1 → 4


def preset_config(name: str) -> ToyWorldConfig:
    """The ToyWorldConfig of a §6 preset."""
    check_choice("preset", "name", name, tuple(PRESETS))
    return ToyWorldConfig.from_dict(PRESETS[name]["toyworld"])


def world_from_preset(name: str) -> ToyWorld:
    """The (cached) world of a §6 preset, e.g. ``world_from_preset("loc_sweep").V == 439``."""
    return ToyWorld(preset_config(name))
