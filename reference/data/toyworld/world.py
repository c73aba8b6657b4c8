"""The ``ToyWorld`` class: one config's world, its documents, recogniser and tasks (specs/toyworld.md §4). [reconstructed]"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np

from reference.config import ConfigError, ToyWorldConfig, check_choice, check_int
from reference.data.toyworld.batch import ToyBatch, ToyTask, _assemble, _prompt
from reference.data.toyworld.documents import _draw_document
from reference.data.toyworld.grammar import _parse_sentence
from reference.data.toyworld.vocabulary import (
    AND_ID,
    BOS_ID,
    EOS_ID,
    KIND_NAMES,
    LABEL_MARKER_ID,
    PAD_ID,
    PERIOD_ID,
    QUESTION_ID,
    SEMICOLON_ID,
    SPAN_KIND_NAMES,
    SPLITS,
    TASKS,
    THE_ID,
    _build_world,
)

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
