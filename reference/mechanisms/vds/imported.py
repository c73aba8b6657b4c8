"""A8: VDS on an imported Hugging Face model, and the small seeded English topic set it runs on (specs/02 §3, §5.4).

*GPT-2 family* (decoder, tied, no bias): W = ``wte``, h = the post-``ln_f`` state at the last
prompt token, label token = the single token of ``" " + word``, prompt ``"text: {text}\\ntopic:"``
(v6 Table 7 layout). *BERT-family encoder without an LM head* (the all-MiniLM-L6-v2 fixture)
[reconstructed]: W := the word embeddings (BERT's MLM decoder is tied to them; the missing
MLM transform and bias are not used), prompt ``[CLS] {text} topic: [MASK] [SEP]``, readout at
``[MASK]``, WordPiece label words without prefix. A1–A6 are unchanged.

The English topic set [reconstructed] is generated here from a seed (no download): four topics
(``sports business science politics``), sentences from topic word lists and shared frames, a
share of off-topic words as noise. The spec names ``reference/data/`` for it; it lives in this
package because VDS is its only user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reference.config import ConfigError
from reference.mechanisms.vds.adapt import Representations, label_token_ids
from reference.model import run_with_cache

TOPIC_WORDS = ("sports", "business", "science", "politics")
_NOUNS = {
    "sports": ("team", "coach", "match", "league", "goal", "season", "player", "stadium", "tournament", "referee"),
    "business": ("company", "market", "profit", "investor", "bank", "shares", "revenue", "startup", "merger", "customer"),
    "science": ("researcher", "experiment", "laboratory", "theory", "molecule", "telescope", "data", "study", "cell", "physics"),
    "politics": ("senator", "election", "parliament", "minister", "vote", "campaign", "law", "president", "party", "policy"),
}
_VERBS = {
    "sports": ("won", "lost", "played", "scored", "trained"),
    "business": ("sold", "bought", "invested", "earned", "merged"),
    "science": ("measured", "discovered", "observed", "tested", "published"),
    "politics": ("passed", "debated", "elected", "vetoed", "announced"),
}
_FRAMES = ("the {n1} {v} the {n2} on {day}.", "a {n1} {v} after the {n2} {v2} again.",
           "yesterday the {n1} and the {n2} {v} quickly.", "reports say the {n1} {v} near the {n2}.")
_DAYS = ("monday", "friday", "sunday", "tuesday")


@dataclass(frozen=True)
class TextTask:
    """A labelled text task: ``texts`` (N,), ``labels`` (N,) int64, class words ``words`` (K,)."""

    name: str
    texts: tuple[str, ...]
    labels: np.ndarray
    words: tuple[str, ...]

    @property
    def K(self) -> int:
        return len(self.words)


def english_topics(per_class: int = 64, seed: int = 0, noise: float = 0.2) -> TextTask:
    """The seeded English topic set: ``per_class`` two-sentence texts per topic, in class-interleaved order.

    Each content word is the topic's with probability 1 − ``noise``, else another topic's.
    """
    if per_class < 1:
        raise ConfigError(f"vds: per_class {per_class} is not an int >= 1")
    rs = np.random.default_rng([seed, 2002])
    texts, labels = [], []
    for _ in range(per_class):
        for k in range(len(TOPIC_WORDS)):
            def pick(table: dict, k: int = k) -> str:
                source = TOPIC_WORDS[k] if rs.random() >= noise else TOPIC_WORDS[int(rs.integers(0, len(TOPIC_WORDS)))]
                words = table[source]
                return words[int(rs.integers(0, len(words)))]

            sentences = []
            for _ in range(2):
                frame = _FRAMES[int(rs.integers(0, len(_FRAMES)))]
                sentences.append(frame.format(n1=pick(_NOUNS), n2=pick(_NOUNS), v=pick(_VERBS), v2=pick(_VERBS),
                                              day=_DAYS[int(rs.integers(0, len(_DAYS)))]))
            texts.append(" ".join(sentences))
            labels.append(k)
    return TextTask("english_topic", tuple(texts), np.array(labels, np.int64), TOPIC_WORDS)


def prompts_for(family: str, texts: tuple[str, ...]) -> list[str]:
    """A8's prompts: GPT-2 ``"text: {text}\\ntopic:"``; BERT ``"{text} topic: [MASK]"`` (the tokenizer adds [CLS], [SEP])."""
    if family == "gpt2":
        return [f"text: {t}\ntopic:" for t in texts]
    return [f"{t} topic: [MASK]" for t in texts]


def label_ids_for(model: Any, words: tuple[str, ...], mode: str = "error", prefix: str = "auto") -> np.ndarray:
    """Label token ids of an imported model: ``" " + word`` for byte-level BPE (GPT-2), the bare word for WordPiece."""
    space = " " if (prefix == "auto" and model.family == "gpt2") or prefix == " " else ""

    def encode(word: str) -> list[int]:
        enc = model.tokenizer.encode(space + word, add_special_tokens=False)
        return [i for i, keep in zip(enc.ids, enc.attention_mask) if keep]

    return label_token_ids(words, encode, mode, decode=lambda i: str(model.tokenizer.id_to_token(int(i))))


def imported_head(model: Any) -> np.ndarray:
    """W (V, d), float64: the tied GPT-2 head (``wte``) or BERT's word embeddings (W := input embeddings)."""
    if model.config.tied_head or model.family == "bert":
        return np.array(model.params["embed.tok"], dtype=np.float64)
    return np.array(model.params["head.w"], dtype=np.float64).T


def imported_representations(model: Any, texts: tuple[str, ...], batch: int = 32) -> Representations:
    """A3 on an imported model: states of the head's input (GPT-2: ``final_norm``; BERT: the last block's output),
    masked mean and max over the real tokens, readout at the last real token (GPT-2) or at ``[MASK]`` (BERT)."""
    cfg = model.config
    hook = "final_norm" if cfg.final_norm else f"blocks.{cfg.n_layers - 1}.resid_post"
    prompts = prompts_for(model.family, texts)
    mask_id = model.tokenizer.token_to_id("[MASK]") if model.family != "gpt2" else None
    means, maxes, lasts = [], [], []
    for start in range(0, len(prompts), batch):
        enc = model.encode(prompts[start:start + batch])
        _, cache = run_with_cache(model.params, cfg, enc.tokens, names=[hook], **model.forward_kwargs(enc))
        H = np.asarray(cache[hook], dtype=np.float64)
        mask = enc.mask[:, :, None]
        lengths = enc.mask.sum(1)
        if mask_id is None:
            readout = lengths - 1
        else:
            hits = enc.tokens == mask_id
            if not np.all(hits.any(1)):
                raise ConfigError("vds: a prompt lost its [MASK] (truncated?): shorten the texts")
            readout = np.argmax(hits, axis=1)
        means.append(np.where(mask, H, 0.0).sum(1) / lengths[:, None])
        maxes.append(np.where(mask, H, -np.inf).max(1))
        lasts.append(H[np.arange(H.shape[0]), readout])
    return Representations(np.concatenate(means), np.concatenate(maxes), np.concatenate(lasts))
