"""Text metrics on generated toy-world text (specs/04-msma.md §5.8). [reconstructed]

Word tokens are the world's lexical tokens (``is_word``: no punctuation, no specials); a
continuation ends at its first ``<eos>`` or ``<pad>``. Each metric's scale is the one the
companion paper says it moves most [companion]:

* local (lexical): ``ttr`` (types/tokens, undefined below 5 words), ``mattr`` (window 25),
  corpus-level ``distinct_1``, ``distinct_2``;
* intermediate (sentence structure): the continuation's sentences are the complete sentences of
  prompt + continuation whose end token was generated; ``sentence_count``,
  ``mean_sentence_length`` (words), ``grammatical_rate`` (share accepted by the world's recogniser);
* global (discourse): ``topic_coherence`` (share of the continuation's topical words in the
  prompt document's topic), ``topic_purity`` (largest topic share), ``sentence_cosine`` (mean
  TF-IDF cosine of consecutive continuation sentences, idf = ln((1 + D)/(1 + df)) + 1).

A ratio with an empty denominator is undefined (None) and its pair is dropped by the statistics.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

PER_TEXT = ("ttr", "mattr", "sentence_count", "mean_sentence_length", "grammatical_rate", "topic_coherence",
            "topic_purity", "sentence_cosine")
TARGET_METRIC = {"local": "ttr", "intermediate": "grammatical_rate", "global": "topic_coherence"}
"""The metric each scale's noise is predicted to move (H5, S5) and the direction: ttr up, the others down."""
PREDICTED_SIGN = {"local": +1, "intermediate": -1, "global": -1}


def truncate(continuation: Any, world: Any) -> list[int]:
    """The continuation up to (not including) its first ``<eos>`` or ``<pad>``."""
    out = []
    for t in np.asarray(continuation).tolist():
        if t in (world.eos_id, world.pad_id):
            break
        out.append(int(t))
    return out


def words_of(tokens: list[int], world: Any) -> list[int]:
    return [t for t in tokens if 0 <= t < world.V and world.is_word[t]]


def ttr(words: list[int]) -> float | None:
    return len(set(words)) / len(words) if len(words) >= 5 else None


def mattr(words: list[int], window: int = 25) -> float | None:
    """Moving-average TTR over windows of ``window`` words (plain TTR when shorter; None below 5 words)."""
    if len(words) < 5:
        return None
    if len(words) <= window:
        return len(set(words)) / len(words)
    return float(np.mean([len(set(words[i:i + window])) / window for i in range(len(words) - window + 1)]))


def continuation_sentences(prompt: list[int], cont: list[int], world: Any) -> list[list[int]]:
    """Complete sentences of prompt + continuation (after ``<bos>``, ``.`` or ``;``) whose closing ``.`` was generated."""
    seq = [t for t in prompt] + cont
    out, start = [], 0
    for i, t in enumerate(seq):
        if t in (world.bos_id, world.semicolon_id) or (t == world.period_id and i < len(prompt)):
            start = i + 1
        elif t == world.period_id:
            out.append(seq[start:i + 1])
            start = i + 1
    return out


def tfidf_cosines(sentences: list[list[int]], idf: dict[int, float], world: Any) -> float | None:
    """Mean TF-IDF cosine of consecutive sentences (None with fewer than two)."""
    if len(sentences) < 2:
        return None
    vecs = []
    for s in sentences:
        c = Counter(words_of(s, world))
        vecs.append({w: n * idf.get(w, 1.0) for w, n in c.items()})
    sims = []
    for a, b in zip(vecs, vecs[1:]):
        na, nb = math.sqrt(sum(v * v for v in a.values())), math.sqrt(sum(v * v for v in b.values()))
        if na > 0 and nb > 0:
            sims.append(sum(v * b.get(w, 0.0) for w, v in a.items()) / (na * nb))
    return float(np.mean(sims)) if sims else None


def idf_table(documents: np.ndarray, world: Any) -> dict[int, float]:
    """idf = ln((1 + D)/(1 + df)) + 1 over the word tokens of D documents."""
    df: Counter = Counter()
    for doc in documents:
        df.update(set(words_of(np.asarray(doc).tolist(), world)))
    n = len(documents)
    return {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}


def text_metrics(prompt: Any, continuation: Any, doc_topic: int, world: Any, idf: dict[int, float]) -> dict[str, Any]:
    """The per-text metrics of one (prompt, continuation) pair; None where undefined."""
    prompt = [int(t) for t in np.asarray(prompt).tolist()]
    cont = truncate(continuation, world)
    words = words_of(cont, world)
    sentences = continuation_sentences(prompt, cont, world)
    lengths = [len(words_of(s, world)) for s in sentences]
    topics = [int(world.token_topic[w]) for w in words if world.token_topic[w] >= 0]
    counts = Counter(topics)
    return {
        "ttr": ttr(words), "mattr": mattr(words),
        "sentence_count": float(len(sentences)),
        "mean_sentence_length": float(np.mean(lengths)) if lengths else None,
        "grammatical_rate": float(np.mean([world.grammatical(np.array(s)) for s in sentences])) if sentences else None,
        "topic_coherence": counts[int(doc_topic)] / len(topics) if topics else None,
        "topic_purity": max(counts.values()) / len(topics) if topics else None,
        "sentence_cosine": tfidf_cosines(sentences, idf, world),
        "_words": words,
    }


def corpus_distinct(all_words: list[list[int]]) -> dict[str, float | None]:
    """Corpus-level distinct-1 and distinct-2: distinct n-grams over all n-grams of all continuations."""
    uni = [w for ws in all_words for w in ws]
    bi = [(a, b) for ws in all_words for a, b in zip(ws, ws[1:])]
    return {"distinct_1": len(set(uni)) / len(uni) if uni else None, "distinct_2": len(set(bi)) / len(bi) if bi else None}
