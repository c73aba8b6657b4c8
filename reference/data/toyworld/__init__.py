"""The toy world: a seeded synthetic language with ground truth (specs/toyworld.md). [reconstructed]

Everything in this package is [reconstructed]: it is the project's own corpus, not a paper's.

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
    world_from_preset("locality_sweep")                 # the world of a §6 preset

Shapes: B documents, T = ``config.context`` positions, S = ``rules_per_doc``,
Q = ``queries_per_doc``, V = vocabulary size.

The package, one file per part of the spec (each module names its sections)::

    vocabulary.py   fixed vocabulary and lexicon (§2), ``vocab_size``, the world's tables (§2, §4)
    streams.py      the seeded streams u(), pick(n), bern(p) (§3.3)
    sentences.py    drawing one sentence of the regular grammar (§3.1, §3.3)
    documents.py    one document: its draws, rules, queries and layout (§3.2, §3.3)
    batch.py        ``ToyBatch`` (§4), assembling a batch, ``ToyTask`` (VDS tasks)
    world.py        the ``ToyWorld`` class (§4)
    grammar.py      the recogniser of one §3.1 sentence, ``check_model_context`` (§5)
    presets.py      ``PRESETS``, ``preset_config``, ``world_from_preset`` (§6)

Every public name of these files is re-exported here: import from ``reference.data.toyworld``.

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

from reference.data.toyworld.batch import ToyBatch, ToyTask, pointer_mask
from reference.data.toyworld.grammar import check_model_context
from reference.data.toyworld.presets import PRESETS, preset_config, world_from_preset
from reference.data.toyworld.vocabulary import (
    ADJECTIVE_PREFERENCE,
    ADVERB_IDS,
    ADVERBS,
    AND_ID,
    ANIMAL,
    BOS_ID,
    CATEGORY_NAMES,
    CATEGORY_PARENT,
    CONSUME,
    DETERMINER_CHOICES,
    DETERMINERS_PL,
    DETERMINERS_SG,
    EOS_ID,
    FOOD,
    FORMS_PER_LEMMA,
    FUNCTION_WORD_IDS,
    FUNCTION_WORD_KIND,
    FUNCTION_WORDS,
    HANDLE,
    K_ADJ,
    K_ADV,
    K_ANCHOR,
    K_CONJ,
    K_DET,
    K_FILLER,
    K_KEY,
    K_LABEL,
    K_NOUN,
    K_PREP,
    K_PUNCT,
    K_SPECIAL,
    K_VALUE,
    K_VERB,
    KIND_NAMES,
    LABEL_MARKER_ID,
    N_FIXED,
    N_FORMS,
    OBJECT_PREFERENCE,
    PAD_ID,
    PARENT_KIND,
    PARENT_NAMES,
    PERIOD_ID,
    PERSON,
    POINTER_KINDS,
    PREPOSITION_IDS,
    PREPOSITIONS,
    PUNCTUATION,
    QUESTION_ID,
    SEMICOLON_ID,
    SPAN_BOS,
    SPAN_EOS,
    SPAN_KIND_NAMES,
    SPAN_PAD,
    SPAN_QUERY,
    SPAN_RULE,
    SPAN_SENTENCE,
    SPAN_TAIL,
    SPECIALS,
    SPLITS,
    SUBJECT_PREFERENCE,
    SYNONYM_LETTERS,
    TASKS,
    TEMPER,
    TEXTURE,
    THE_ID,
    UTENSIL,
    VERB_CATEGORIES,
    vocab_size,
)
from reference.data.toyworld.world import ToyWorld

__all__ = [
    "ADJECTIVE_PREFERENCE",
    "ADVERBS",
    "ADVERB_IDS",
    "AND_ID",
    "ANIMAL",
    "BOS_ID",
    "CATEGORY_NAMES",
    "CATEGORY_PARENT",
    "CONSUME",
    "DETERMINERS_PL",
    "DETERMINERS_SG",
    "DETERMINER_CHOICES",
    "EOS_ID",
    "FOOD",
    "FORMS_PER_LEMMA",
    "FUNCTION_WORDS",
    "FUNCTION_WORD_IDS",
    "FUNCTION_WORD_KIND",
    "HANDLE",
    "KIND_NAMES",
    "K_ADJ",
    "K_ADV",
    "K_ANCHOR",
    "K_CONJ",
    "K_DET",
    "K_FILLER",
    "K_KEY",
    "K_LABEL",
    "K_NOUN",
    "K_PREP",
    "K_PUNCT",
    "K_SPECIAL",
    "K_VALUE",
    "K_VERB",
    "LABEL_MARKER_ID",
    "N_FIXED",
    "N_FORMS",
    "OBJECT_PREFERENCE",
    "PAD_ID",
    "PARENT_KIND",
    "PARENT_NAMES",
    "PERIOD_ID",
    "PERSON",
    "POINTER_KINDS",
    "PREPOSITIONS",
    "PREPOSITION_IDS",
    "PRESETS",
    "PUNCTUATION",
    "QUESTION_ID",
    "SEMICOLON_ID",
    "SPAN_BOS",
    "SPAN_EOS",
    "SPAN_KIND_NAMES",
    "SPAN_PAD",
    "SPAN_QUERY",
    "SPAN_RULE",
    "SPAN_SENTENCE",
    "SPAN_TAIL",
    "SPECIALS",
    "SPLITS",
    "SUBJECT_PREFERENCE",
    "SYNONYM_LETTERS",
    "TASKS",
    "TEMPER",
    "TEXTURE",
    "THE_ID",
    "ToyBatch",
    "ToyTask",
    "pointer_mask",
    "ToyWorld",
    "UTENSIL",
    "VERB_CATEGORIES",
    "check_model_context",
    "preset_config",
    "vocab_size",
    "world_from_preset",
]
