"""The grammaticality recogniser of one §3.1 sentence, and the model-context check (§5). [reconstructed]"""

from __future__ import annotations

from reference.config import ConfigError, ToyWorldConfig
from reference.data.toyworld.vocabulary import K_ADJ, K_ADV, K_CONJ, K_DET, K_NOUN, K_PREP, K_VERB, PERIOD_ID


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
