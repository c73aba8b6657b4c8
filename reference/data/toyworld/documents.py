"""One toy-world document: its draws, rules, queries and layout (specs/toyworld.md §3.2, §3.3). [reconstructed]"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from reference.data.toyworld.sentences import _draw_sentence
from reference.data.toyworld.streams import _skip, _Stream
from reference.data.toyworld.vocabulary import (
    BOS_ID,
    EOS_ID,
    LABEL_MARKER_ID,
    PERIOD_ID,
    QUESTION_ID,
    SEMICOLON_ID,
    SPAN_BOS,
    SPAN_EOS,
    SPAN_QUERY,
    SPAN_RULE,
    SPAN_SENTENCE,
    SPAN_TAIL,
)

if TYPE_CHECKING:
    from reference.data.toyworld.world import ToyWorld

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
