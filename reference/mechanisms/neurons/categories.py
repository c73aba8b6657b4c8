"""The categorical segmentation: lexicon, frames, category files, clustering (spec §2.4, §6.1). [reconstructed]

* :data:`LEXICON_TSV` — the built-in English lexicon, 8 categories × 24 words (``word<TAB>category``
  lines), each one WordPiece token of the uncased all-MiniLM-L6-v2 vocabulary; kept in this module
  (not a data file) so it ships with the package; its SHA-256 goes into ``meta``.
* :data:`FRAMES` — the 12 carrier sentences of the MiniLM corpus (``{w}`` = the lexicon word).
* :func:`parse_category_file` / :func:`categories_from_words` — ``word<TAB>category`` text to a
  (V,) category array through a tokenizer's single-token ids, with the §2.4 errors.
* :func:`cluster_categories` — the figure-1 reading [paper-fig1]: hierarchical clustering of unit
  embeddings (SciPy, lazily imported, extra ``analysis``).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable

import numpy as np

from reference.config import ConfigError
from reference.io import read_bytes

_LEXICON = {
    "animal": "dog cat horse cow pig sheep goat mouse rabbit wolf fox bear lion tiger deer monkey elephant snake frog duck "
              "eagle owl whale shark",
    "colour": "red blue green yellow black white brown pink purple lavender grey olive silver gold violet crimson scarlet "
              "ivory beige maroon turquoise navy amber indigo",
    "number": "one two three four five six seven eight nine ten eleven twelve thirteen fifteen twenty thirty forty fifty "
              "sixty seventy eighty ninety hundred thousand",
    "body": "head hand foot arm leg eye ear nose mouth finger toe knee elbow shoulder neck chest wrist heart lung liver skin "
            "tooth tongue lip",
    "food": "bread cheese butter rice soup meat beef egg apple banana cake pie salad pasta pizza sugar salt honey milk coffee "
            "tea chocolate potato tomato",
    "job": "doctor teacher farmer lawyer nurse soldier pilot driver baker chef painter singer writer engineer priest judge "
           "sailor miner clerk tailor banker dancer actor poet",
    "country": "france germany spain italy china japan india russia brazil canada mexico egypt greece austria poland sweden "
               "norway ireland portugal kenya peru chile cuba iran",
    "clothing": "shirt coat hat shoe boot dress skirt jacket sock glove scarf belt blouse suit sweater vest cap helmet apron "
                "gown robe uniform jeans cloak",
}
LEXICON_TSV = "".join(f"{w}\t{cat}\n" for cat, words in _LEXICON.items() for w in words.split())
"""The built-in lexicon (spec §2.4) as the text of a category file: 192 lines, categories in this order."""

FRAMES = (
    "the word {w} appears here .", "she said {w} twice .", "he wrote {w} on the board .",
    "we talked about {w} today .", "i read about {w} in a book .", "they asked about {w} again .",
    "{w} is on the list .", "the next item is {w} .", "you can look up {w} later .",
    "my notes mention {w} once .", "nobody expected {w} there .", "think of {w} for a moment .",
)
"""The 12 frames of the MiniLM corpus (spec §6.1): 192 words × 12 frames = 2,304 sentences."""
FRAMES_TEXT = "".join(f + "\n" for f in FRAMES)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_category_file(text: str, lowercase: bool = False) -> list[tuple[int, str, str]]:
    """``word<TAB>category`` lines -> [(line number, word, category)]; ``#`` comments and blank lines skipped."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ConfigError(f"neurons.category_file: line {number}: expected 'word<TAB>category', got {stripped[:60]!r}")
        word = parts[0].strip()
        out.append((number, word.lower() if lowercase else word, parts[1].strip()))
    return out


def categories_from_words(entries: list[tuple[int, str, str]], single_id: Callable[[str], int | None], vocab_size: int
                          ) -> tuple[np.ndarray, list[str], dict]:
    """(V,) category ids (−1 = none), category names (ids by first appearance), a record of dropped words.

    ``single_id(word)`` is the one token id of ``word`` without special tokens, or None (the word is
    dropped, with one warning listing the count and the first 10). ConfigError (with line numbers)
    on a duplicate word or two words on one id with different categories.
    """
    cats = np.full(vocab_size, -1, np.int64)
    names: list[str] = []
    seen_word: dict[str, int] = {}
    seen_id: dict[int, tuple[int, str]] = {}
    dropped = []
    for number, word, cat in entries:
        if word in seen_word:
            raise ConfigError(f"neurons.category_file: line {number}: duplicate word {word!r} (first on line {seen_word[word]})")
        seen_word[word] = number
        tid = single_id(word)
        if tid is None:
            dropped.append(word)
            continue
        if cat not in names:
            names.append(cat)
        if tid in seen_id and seen_id[tid][1] != cat:
            raise ConfigError(f"neurons.category_file: lines {seen_id[tid][0]} and {number}: {word!r} shares token id {tid} "
                              f"with a word of category {seen_id[tid][1]!r}, not {cat!r}")
        seen_id[tid] = (number, cat)
        cats[tid] = names.index(cat)
    if dropped:
        warnings.warn(f"neurons.category_file: {len(dropped)} word(s) are not one token and were dropped: "
                      f"{', '.join(dropped[:10])}", stacklevel=2)
    return cats, names, {"dropped": len(dropped), "dropped_first": dropped[:10]}


def cluster_categories(unit: np.ndarray, n_clusters: int, linkage: str = "ward") -> np.ndarray:
    """Hierarchical clusters of unit rows (N, d) in row order -> (N,) labels renumbered by first occurrence.

    ``linkage="ward"``: Euclidean Ward (monotone in cosine for unit vectors); ``"average"``: cosine
    metric. ``fcluster(…, t=n_clusters, criterion="maxclust")``. [paper-fig1, reconstructed]
    """
    try:
        from scipy.cluster.hierarchy import fcluster
        from scipy.cluster.hierarchy import linkage as scipy_linkage
    except ImportError:  # pragma: no cover - scipy is a core dependency today
        raise ConfigError("neurons.categories: 'cluster' needs SciPy: pip install 'clearform[analysis]'") from None
    if unit.shape[0] < 2:
        return np.zeros(unit.shape[0], np.int64)
    if linkage == "ward":
        tree = scipy_linkage(unit, method="ward")
    else:
        tree = scipy_linkage(unit, method="average", metric="cosine")
    raw = fcluster(tree, t=n_clusters, criterion="maxclust")
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse].astype(np.int64)


def read_text_file(path: str, max_bytes: int = 64 * 2**20) -> str:
    """A UTF-8 file as text (bounded; ConfigError on ``category_file`` when unreadable)."""
    data = read_bytes(path, error=ConfigError, max_bytes=max_bytes, what="neurons.category_file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"neurons.category_file: {path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


def resolve_source(categories: str, has_truth: bool, has_file: bool, pretrained: bool) -> str:
    """``categories="auto"`` → "truth" (toy world), "file" (a category file, or MiniLM's lexicon); else ConfigError."""
    if categories != "auto":
        if categories == "truth" and not has_truth:
            raise ConfigError("neurons.categories: 'truth' needs a toy-world model (use 'file' or 'cluster')")
        if categories == "file" and not (has_file or pretrained):
            raise ConfigError("neurons.categories: 'file' needs --category-file (or --pretrained minilm's lexicon)")
        return categories
    if has_file or pretrained:
        return "file"
    if has_truth:
        return "truth"
    raise ConfigError("neurons.categories: no category source for this model: give --category-file (categories 'file') "
                      "or ask for 'cluster'")
