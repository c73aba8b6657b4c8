"""The toy world's fixed vocabulary, lexicon and tables (specs/toyworld.md §2, §4). [reconstructed]

Ids 0 … 26 (specials, punctuation, function words) are the same in every world; the rest of a
world's vocabulary, its key defaults and verbalisers are built once per config by
``_build_world`` (cached).
"""

from __future__ import annotations

import functools
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from reference.config import ToyWorldConfig
from reference.data.toyworld.streams import _Stream

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
