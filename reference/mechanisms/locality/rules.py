"""A8 — rules: verification, injection, hot reloading, dual enforcement (spec §2.5, §2.6). [reconstructed]"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference.config import InputError, ModelConfig, check_int
from reference.mechanisms.locality.config import LocalityConfig
from reference.mechanisms.locality.dial import dial_kwargs
from reference.mechanisms.locality.layout import Layout, toy_layout_from_tokens
from reference.metrics import entropy
from reference.model import generate

RULE_FIELDS = ("slot", "key", "value", "version", "verified")
"""Columns of a rule table: an (S, 5) int array per document, like ``ToyBatch.rules[b]``."""


def verify_rule(rule: Sequence[int], accepted: Sequence[Sequence[int]], world: Any) -> str | None:
    """The external checker of A8 (toy world): None when ``rule`` may be injected, else why not. [reconstructed]

    A rule (slot, key, value, …) passes when its slot exists, its key is a key token,
    its value a value token, and no rule already accepted holds its slot or its key.
    """
    slot, key, value = (int(v) for v in rule[:3])
    n_slots = len(world.anchor_ids)
    if not 0 <= slot < n_slots:
        return f"slot {slot} does not exist (the world has slots 0 … {n_slots - 1})"
    if key not in set(world.key_ids.tolist()):
        return f"token {key} is not a key"
    if value not in set(world.value_ids.tolist()):
        return f"token {value} is not a value"
    for other in accepted:
        if int(other[0]) == slot:
            return f"slot {slot} already holds a rule"
        if int(other[1]) == key:
            return f"key {world.vocab[key]} is already active in slot {int(other[0])}"
    return None


def serialise_rules(table: Any, world: Any, anchor_copies: int | None = None) -> list[int]:
    """The rule region's tokens: per verified rule, by slot, ``<Rs>^r k v ;`` (template 0). [reconstructed §2.5]"""
    r = world.config.anchor_copies if anchor_copies is None else anchor_copies
    rows = sorted((tuple(int(v) for v in row) for row in np.asarray(table).reshape(-1, 5) if row[4]), key=lambda x: x[0])
    out: list[int] = []
    for slot, key, value, _, _ in rows:
        out += [int(world.anchor_ids[slot])] * r + [key, value, world.semicolon_id]
    return out


def rule_region_end(tokens: Any, world: Any) -> int:
    """The position just after the rule region: ``<bos>``, then blocks that open with an anchor."""
    ids = np.asarray(tokens).tolist()
    anchors = set(world.anchor_ids.tolist())
    i = 1
    while i < len(ids) and ids[i] in anchors:
        while i < len(ids) and ids[i] != world.semicolon_id:
            i += 1
        i += 1
    return min(i, len(ids))


@dataclass(frozen=True, eq=False)
class Injection:
    """What :func:`inject` and :func:`hot_reload` return: tokens (T,), the rule table with its
    ``verified`` column filled, the rebuilt layout (1, T), and for a reload the first changed position."""

    tokens: np.ndarray
    table: np.ndarray
    layout: Layout
    first_changed: int = 0


def inject(
    body: Sequence[int], table: Any, world: Any, *, length: int | None = None, cfg: LocalityConfig | None = None
) -> Injection:
    """A8 inject: verify each rule, serialise the verified ones into the rule region, rebuild the layout. [reconstructed]

    body: the document after its rule region (sentences and query spans, ``<eos>``);
    table (S, 5): (slot, key, value, version, verified). Rules are checked in slot order
    against those already accepted (:func:`verify_rule`); a rule that fails is never
    injected and comes back with verified = 0. length: pad with ``<pad>`` to this length
    (InputError if the document does not fit).
    """
    table = np.array(table, dtype=np.int64).reshape(-1, 5)
    checked = table.copy()
    accepted: list[np.ndarray] = []
    for index in np.argsort(table[:, 0], kind="stable"):
        ok = verify_rule(table[index], accepted, world) is None
        checked[index, 4] = int(ok)
        if ok:
            accepted.append(table[index])
    tokens = [world.bos_id] + serialise_rules(checked, world) + [int(v) for v in body]
    if length is not None:
        if len(tokens) > length:
            raise InputError(f"inject: the document needs {len(tokens)} positions, more than length {length}")
        tokens += [world.pad_id] * (length - len(tokens))
    array = np.asarray(tokens, dtype=np.int64)
    return Injection(array, checked, toy_layout_from_tokens(array[None], world, cfg))


def hot_reload(
    tokens: Any,
    table: Any,
    slot: int,
    value: int,
    world: Any,
    *,
    key: int | None = None,
    cfg: LocalityConfig | None = None,
) -> Injection:
    """A8 hot reload: set rule ``slot`` to ``value`` (and ``key``) at run time. [reconstructed §2.6]

    The new rule is verified first (InputError, nothing changed, if it fails); its
    ``version`` is bumped. The rule region is re-serialised: an edit of the same length
    (a value or key swap) changes exactly the edited token in place and keeps the layout;
    a new slot changes the length (trailing padding absorbs it, else InputError). The
    layout is rebuilt from the new tokens (A1), so the bias and penalty use the new
    group map at once, with no parameter change. ``first_changed`` is the first position
    that differs: cached keys and values before it stay valid.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.ndim != 1:
        raise InputError(f"hot_reload: tokens must be one document (1-D), got shape {tokens.shape}")
    rows = np.array(table, dtype=np.int64).reshape(-1, 5)
    live = [row for row in rows if row[4] and row[0] != slot]
    current = [row for row in rows if row[4] and row[0] == slot]
    if current:
        old = current[0]
        new = np.array([slot, old[1] if key is None else key, value, old[3] + 1, 1], np.int64)
    elif key is None:
        raise InputError(f"hot_reload: slot {slot} holds no rule; give key= to add one")
    else:
        new = np.array([slot, key, value, 0, 1], np.int64)
    reason = verify_rule(new, live, world)
    if reason is not None:
        raise InputError(
            f"hot_reload: the rule (slot {slot}, key {int(new[1])}, value {int(new[2])}) fails verification: {reason}; "
            "nothing was changed"
        )
    new_table = np.array([row for row in rows if row[0] != slot] + [new], np.int64)
    new_table = new_table[np.argsort(new_table[:, 0], kind="stable")]
    body = tokens[rule_region_end(tokens, world):].tolist()
    fresh = [world.bos_id] + serialise_rules(new_table, world) + body
    extra = len(fresh) - len(tokens)
    if extra > 0:  # a longer region: take the room from trailing padding
        if extra > len(body) or any(v != world.pad_id for v in fresh[-extra:]):
            raise InputError(f"hot_reload: the new rule needs {extra} more positions than the document has free")
        fresh = fresh[: len(tokens)]
    fresh += [world.pad_id] * (len(tokens) - len(fresh))
    array = np.asarray(fresh, dtype=np.int64)
    changed = np.flatnonzero(array != tokens)
    first = int(changed[0]) if changed.size else len(tokens)
    return Injection(array, new_table, toy_layout_from_tokens(array[None], world, cfg), first)


@dataclass(frozen=True)
class Enforcement:
    """Outcome of :func:`enforce`: the accepted output (None when it abstained) and the tries used."""

    output: Any
    tries: int
    abstained: bool


def enforce(generate: Callable[[int], Any], check: Callable[[Any], bool], max_retries: int = 3) -> Enforcement:
    """A8 dual enforcement: accept the first output the external check passes, at most K tries, else abstain.

    generate(k) produces try k (0-based); check(output) -> bool. LOC-T8 gives the
    probability that a violation gets through. [reconstructed §2.6]
    """
    check_int("locality", "max_retries", max_retries, 1)
    for k in range(max_retries):
        output = generate(k)
        if check(output):
            return Enforcement(output, k + 1, False)
    return Enforcement(None, max_retries, True)


def template_entropy_bits(templates: Any) -> float:
    """Syntactic entropy of the rule formats in use: H of the empirical template distribution, bits. [reconstructed §2.5]

    templates: template indices (e.g. ``ToyBatch.rule_template``). One template gives
    0 bits; M templates drawn uniformly give log₂ M (RULE's ablation).
    """
    counts = np.bincount(np.asarray(templates, dtype=np.int64).ravel())
    return float(entropy(counts[counts > 0] / counts.sum(), base=2)) if counts.sum() else 0.0


def anchor_surprisal_bits(tokens: Any, valid: Any, anchor_id: int) -> float:
    """−log₂ P_unigram(anchor) over the valid tokens of a corpus (∞ if it never occurs). [reconstructed §2.5]"""
    tokens, valid = np.asarray(tokens), np.asarray(valid, dtype=bool)
    count, total = int(((tokens == anchor_id) & valid).sum()), int(valid.sum())
    return math.inf if count == 0 else -math.log2(count / total)


def generate_dialled(
    params: dict,
    config: ModelConfig,
    prompt: Sequence[int],
    n_new: int,
    lam: float,
    cfg: LocalityConfig,
    layout_of: Callable[[np.ndarray], Layout],
    *,
    stop_id: int | None = None,
) -> list[int]:
    """Greedy generation with the dial at λ: λ is a runtime argument, the parameters never change.

    ``layout_of(tokens (1, T)) -> Layout`` rebuilds the group map from the tokens so far at
    every step (A1; for the toy world :func:`toy_layout_from_tokens`), so a hot-reloaded
    rule is used at once. Returns prompt + new ids. :func:`reference.model.generate` does
    the decoding; this only supplies the dial's forward arguments of each step.
    """
    dtype = np.dtype(config.dtype)

    def dialled(window: Any) -> dict:
        return dial_kwargs(layout_of(window), lam, cfg, config.n_layers, dtype=dtype, tokens=window)

    return generate(params, config, [int(v) for v in prompt], n_new, temperature=0.0, stop_id=stop_id, forward_kwargs=dialled)
