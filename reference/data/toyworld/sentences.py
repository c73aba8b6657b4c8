"""Drawing one sentence of the toy world's regular grammar (specs/toyworld.md §3.1, §3.3). [reconstructed]"""

from __future__ import annotations

from reference.data.toyworld.streams import _skip, _Stream
from reference.data.toyworld.vocabulary import (
    ADJECTIVE_PREFERENCE,
    ADVERB_IDS,
    AND_ID,
    DETERMINER_CHOICES,
    OBJECT_PREFERENCE,
    PERIOD_ID,
    PREPOSITION_IDS,
    SUBJECT_PREFERENCE,
    TEMPER,
    TEXTURE,
    VERB_CATEGORIES,
    _Lexicon,
)

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
