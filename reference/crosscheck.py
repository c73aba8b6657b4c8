"""Cross-checking clearform against Hugging Face transformers, layer by layer.

The same checkpoint directory is run twice: imported into clearform
(:func:`reference.hf.import_hf`, NumPy) and loaded by transformers
(PyTorch). Every activation that both expose is compared, so a mismatch
points at the first layer where the two disagree, not only at the logits.

The hook table (:func:`hook_table`) pairs our hook names with Hugging Face's
outputs. Two kinds of HF source exist:

* ``output``: a field of the model output with ``output_hidden_states=True``
  and ``output_attentions=True`` (eager attention): ``hidden_states[i]``,
  ``attentions[i]`` (B, H, T, T), ``logits`` (GPT-2 only);
* ``module``: the output of a named submodule of the base model, captured
  with a forward hook (first element when it returns a tuple).

GPT-2 (L blocks)::

    hidden_states[i]      blocks.{i}.resid_pre      i < L
    attentions[i]         blocks.{i}.attn.pattern
    h.{i}.attn            blocks.{i}.attn_out
    h.{i}.mlp.act         blocks.{i}.mlp.post
    h.{i}.mlp             blocks.{i}.mlp_out
    hidden_states[L]      final_norm                (HF's last entry is after ln_f)
    logits                logits

BERT (L blocks)::

    hidden_states[0]                  blocks.0.resid_pre   (embedding sum after its LayerNorm)
    attentions[i]                     blocks.{i}.attn.pattern
    encoder.layer.{i}.attention       blocks.{i}.resid_mid (LN(x + attn(x)))
    encoder.layer.{i}.intermediate    blocks.{i}.mlp.post
    hidden_states[i + 1]              blocks.{i}.resid_post

Only real (unpadded) query positions are compared. The measures of one pair,
with ours = a and Hugging Face's = b over those positions:

    max_abs = max |a − b|
    max_rel = max |a − b| / max |b|                  [reconstructed]

(relative to the tensor's largest entry, not elementwise, so entries near
zero do not turn rounding noise into a huge ratio). A pair passes when
``max_abs ≤ atol + rtol · max |b|``.

torch and transformers are optional (the ``test`` extra installs them);
without them :func:`crosscheck` raises :class:`MissingDependency` with the
install command.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reference.backend import rng
from reference.checkpoint import CheckpointError
from reference.config import InputError, ModelConfig, check_choice
from reference.hf import import_hf
from reference.model import run_with_cache
from reference.pretrained import TOKENIZER_FILE, TextBatch, encode_texts, hf_hidden_state_names, load_tokenizer

INSTALL_TORCH = "pip install 'clearform[test]'  (or: pip install torch==2.13.0 transformers)"

# [reconstructed] Default tolerances: float32 rounding over a few layers stays
# well inside 1e-4 absolute on LayerNorm-scaled activations; float64 inside 1e-9.
DEFAULT_TOLERANCES = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-12)}

# [reconstructed] Sentences used when the checkpoint has a tokenizer and no --text is given.
SAMPLE_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Researchers compare every layer, not only the logits.",
    "A short one.",
)


class MissingDependency(RuntimeError):
    """torch / transformers are not installed; the message says how to install them."""


# --------------------------------------------------------------------------- the hook table


@dataclass(frozen=True)
class HookPair:
    """One activation both implementations expose.

    hf: Hugging Face's name (``hidden_states[2]``, ``attentions[0]``,
    ``logits``, or a module path such as ``h.0.mlp.act``); ours: the
    clearform hook name; source: "output" or "module" (see the module doc).
    """

    hf: str
    ours: str
    source: str


def hook_table(family: str, n_layers: int) -> list[HookPair]:
    """Every (HF, clearform) pair of a model, in forward order."""
    hidden = hf_hidden_state_names(family, n_layers)
    pairs: list[HookPair] = []
    if family == "gpt2":
        for i in range(n_layers):
            pairs += [
                HookPair(f"hidden_states[{i}]", hidden[i], "output"),
                HookPair(f"attentions[{i}]", f"blocks.{i}.attn.pattern", "output"),
                HookPair(f"h.{i}.attn", f"blocks.{i}.attn_out", "module"),
                HookPair(f"h.{i}.mlp.act", f"blocks.{i}.mlp.post", "module"),
                HookPair(f"h.{i}.mlp", f"blocks.{i}.mlp_out", "module"),
            ]
        pairs += [HookPair(f"hidden_states[{n_layers}]", hidden[n_layers], "output"), HookPair("logits", "logits", "output")]
    else:
        pairs.append(HookPair("hidden_states[0]", hidden[0], "output"))
        for i in range(n_layers):
            pairs += [
                HookPair(f"attentions[{i}]", f"blocks.{i}.attn.pattern", "output"),
                HookPair(f"encoder.layer.{i}.attention", f"blocks.{i}.resid_mid", "module"),
                HookPair(f"encoder.layer.{i}.intermediate", f"blocks.{i}.mlp.post", "module"),
                HookPair(f"hidden_states[{i + 1}]", hidden[i + 1], "output"),
            ]
    return pairs


def format_hook_table(family: str, n_layers: int) -> str:
    """The table as aligned text (used by ``clearform crosscheck --table``)."""
    pairs = hook_table(family, n_layers)
    width = max(len(p.hf) for p in pairs)
    return "\n".join(f"{p.hf.ljust(width)}  <->  {p.ours}" for p in pairs)


# --------------------------------------------------------------------------- inputs


def random_batch(config: ModelConfig, seed: int = 0, batch: int = 2, length: int | None = None) -> TextBatch:
    """Drawn token ids (B, T) for checkpoints without a tokenizer.

    [reconstructed] With B ≥ 2 and T ≥ 2 the last row is padded from its
    middle on, so the padding path (attention mask / bias) is exercised too.
    Token types are drawn for models that have them.
    """
    length = min(16, config.context) if length is None else length
    if not 1 <= length <= config.context or batch < 1:
        raise InputError(f"length: {length} is not in [1, {config.context}] (the model's context), or batch {batch} < 1")
    generator = rng(seed)
    tokens = generator.integers(0, config.vocab_size, size=(batch, length), dtype=np.int64)
    types = generator.integers(0, max(config.n_token_types, 1), size=(batch, length), dtype=np.int64)
    mask = np.ones((batch, length), dtype=bool)
    if batch >= 2 and length >= 2:
        mask[-1, (length + 1) // 2 :] = False
    return TextBatch(tokens=tokens, token_types=types, mask=mask)


def make_batch(directory: Path, config: ModelConfig, texts: Sequence[str] | None, seed: int = 0) -> TextBatch:
    """``texts`` through the checkpoint's tokenizer; without texts, the sample sentences when it
    has a usable tokenizer, else drawn ids."""
    if texts:
        return encode_texts(load_tokenizer(directory), texts, config.context)
    if (directory / TOKENIZER_FILE).is_file():
        with contextlib.suppress(CheckpointError):  # tokenizers not installed: fall back to drawn ids
            return encode_texts(load_tokenizer(directory), SAMPLE_TEXTS, config.context)
    return random_batch(config, seed)


# --------------------------------------------------------------------------- the two sides


def clearform_activations(
    params: dict, config: ModelConfig, batch: TextBatch, pairs: Sequence[HookPair]
) -> dict[str, np.ndarray]:
    """Our activations of ``pairs`` on ``batch``: {clearform hook name: array}."""
    kwargs: dict[str, Any] = {"attn_bias": batch.attn_bias(config.dtype)}
    if config.n_token_types:
        kwargs["token_types"] = batch.token_types
    _, cache = run_with_cache(params, config, batch.tokens, names=[p.ours for p in pairs], **kwargs)
    return {name: np.asarray(value) for name, value in cache.items()}


def require_transformers() -> tuple[Any, Any]:
    """(torch, transformers), or MissingDependency with the install command."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        missing = exc.name or "torch"
        raise MissingDependency(
            f"comparing with Hugging Face needs torch and transformers ({missing} is missing): {INSTALL_TORCH}"
        ) from None
    return torch, transformers


@contextlib.contextmanager
def _quiet_transformers(transformers: Any) -> Iterator[None]:
    """Silence transformers' load reports (unused pooler weights ...) and progress bars for the duration."""
    logging = transformers.utils.logging
    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def load_hf_model(directory: Path, family: str, dtype: str) -> Any:
    """The checkpoint in transformers (eager attention, eval mode, ``dtype``)."""
    torch, transformers = require_transformers()
    if family == "gpt2":
        cls, kwargs = transformers.GPT2LMHeadModel, {}
    else:
        cls, kwargs = transformers.BertModel, {"add_pooling_layer": False}
    with _quiet_transformers(transformers):
        try:
            model = cls.from_pretrained(str(directory), attn_implementation="eager", **kwargs)
        except Exception as exc:  # transformers raises many types; one line is what the user needs
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckpointError(f"{directory}: transformers could not load it ({first_line})") from None
    return model.to(torch.float64 if dtype == "float64" else torch.float32).eval()


def hf_activations(model: Any, family: str, batch: TextBatch, pairs: Sequence[HookPair]) -> dict[str, np.ndarray]:
    """Hugging Face's activations of ``pairs`` on ``batch``: {HF name: array}.

    Module rows whose submodule this transformers version does not have are
    left out (the comparison then reports them as missing).
    """
    torch, _ = require_transformers()
    captured: dict[str, np.ndarray] = {}
    modules = dict(model.base_model.named_modules())

    def recorder(name: str):
        def record(_module: Any, _inputs: Any, output: Any) -> None:
            value = output[0] if isinstance(output, (tuple, list)) else output
            captured[name] = value.detach().cpu().numpy()
        return record

    handles = [modules[p.hf].register_forward_hook(recorder(p.hf)) for p in pairs if p.source == "module" and p.hf in modules]
    inputs = {"input_ids": torch.from_numpy(batch.tokens), "attention_mask": torch.from_numpy(batch.mask.astype(np.int64))}
    if family == "bert":
        inputs["token_type_ids"] = torch.from_numpy(batch.token_types)
    else:
        inputs["use_cache"] = False
    try:
        with torch.no_grad():
            out = model(**inputs, output_hidden_states=True, output_attentions=True)
    finally:
        for handle in handles:
            handle.remove()
    for i, value in enumerate(out.hidden_states):
        captured[f"hidden_states[{i}]"] = value.numpy()
    for i, value in enumerate(out.attentions or ()):
        if value is not None:
            captured[f"attentions[{i}]"] = value.numpy()
    if getattr(out, "logits", None) is not None:
        captured["logits"] = out.logits.numpy()
    return captured


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class LayerDiff:
    """One row of a comparison: the pair, its shape, the measures, and whether it passed."""

    hf: str
    ours: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    scale: float
    ok: bool


def _real_queries(value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep real query positions: (B, T, ...) -> (N, ...); attention (B, H, T, T) -> (N, H, T)."""
    if value.ndim == 4 and value.shape[2] == value.shape[3] == mask.shape[1]:
        value = value.transpose(0, 2, 1, 3)  # (B, T_query, H, T_key)
    return value[mask]


def compare(
    ours: dict[str, np.ndarray],
    theirs: dict[str, np.ndarray],
    pairs: Sequence[HookPair],
    mask: np.ndarray,
    atol: float,
    rtol: float,
) -> list[LayerDiff]:
    """One :class:`LayerDiff` per pair; a pair missing on either side, or of another shape, fails with NaN measures."""
    rows = []
    for pair in pairs:
        a, b = ours.get(pair.ours), theirs.get(pair.hf)
        if a is None or b is None or a.shape != b.shape:
            shape = tuple(a.shape if a is not None else b.shape if b is not None else ())
            rows.append(LayerDiff(pair.hf, pair.ours, shape, float("nan"), float("nan"), float("nan"), False))
            continue
        a64 = _real_queries(a, mask).astype(np.float64)
        b64 = _real_queries(b, mask).astype(np.float64)
        max_abs = float(np.max(np.abs(a64 - b64))) if a64.size else 0.0
        scale = float(np.max(np.abs(b64))) if b64.size else 0.0
        max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        rows.append(LayerDiff(pair.hf, pair.ours, tuple(a.shape), max_abs, max_rel, scale, max_abs <= atol + rtol * scale))
    return rows


@dataclass
class CrosscheckReport:
    """The outcome of :func:`crosscheck`: every compared pair and the tolerance used."""

    directory: str
    family: str
    dtype: str
    config: ModelConfig
    tokens_shape: tuple[int, int]
    n_real: int
    atol: float
    rtol: float
    rows: list[LayerDiff]
    ignored: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row.ok for row in self.rows)

    def failures(self) -> list[LayerDiff]:
        return [row for row in self.rows if not row.ok]

    def worst(self) -> float:
        """The largest max_abs over all rows (NaN if any row could not be compared)."""
        values = [row.max_abs for row in self.rows]
        return float("nan") if any(np.isnan(values)) else max(values, default=0.0)

    def format(self) -> str:
        """A human-readable table, one row per pair."""
        c = self.config
        b, t = self.tokens_shape
        lines = [
            f"{self.directory}: {self.family}, {c.n_layers} layers, d_model {c.d_model}, {c.n_heads} heads, "
            f"vocab {c.vocab_size}; {self.dtype}; {b} x {t} tokens ({self.n_real} real)",
        ]
        if self.ignored:
            more = " ..." if len(self.ignored) > 4 else ""
            lines.append(f"ignored tensors ({len(self.ignored)}): {', '.join(self.ignored[:4])}{more}")
        w_hf = max([len("hugging face")] + [len(r.hf) for r in self.rows])
        w_us = max([len("clearform")] + [len(r.ours) for r in self.rows])
        lines.append(f"{'hugging face'.ljust(w_hf)}  {'clearform'.ljust(w_us)}  {'max |diff|':>10}  {'relative':>10}")
        for r in self.rows:
            status = "ok" if r.ok else ("MISSING" if np.isnan(r.max_abs) else "FAIL")
            lines.append(f"{r.hf.ljust(w_hf)}  {r.ours.ljust(w_us)}  {r.max_abs:10.3e}  {r.max_rel:10.3e}  {status}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"{verdict}: {len(self.rows) - len(self.failures())} of {len(self.rows)} within "
            f"max|diff| <= {self.atol:g} + {self.rtol:g} * max|hf|; worst max|diff| {self.worst():.3e}"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "directory": self.directory, "family": self.family, "dtype": self.dtype, "passed": self.passed,
            "tokens_shape": list(self.tokens_shape), "n_real": self.n_real, "atol": self.atol, "rtol": self.rtol,
            "rows": [asdict(r) | {"shape": list(r.shape)} for r in self.rows], "ignored": self.ignored,
        }


def crosscheck(
    directory: str | os.PathLike,
    texts: Sequence[str] | None = None,
    *,
    dtype: str = "float32",
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    batch: TextBatch | None = None,
) -> CrosscheckReport:
    """Run a Hugging Face GPT-2 / BERT directory in clearform and in transformers; compare every layer.

    Inputs: ``batch`` if given, else ``texts`` through the directory's
    tokenizer.json, else the sample sentences (with a tokenizer) or drawn ids
    (``seed``). Tolerances default to :data:`DEFAULT_TOLERANCES` of ``dtype``.

    The checkpoint is imported (and so validated) before torch is needed:
    CheckpointError for a bad checkpoint, MissingDependency without torch.
    """
    check_choice("crosscheck", "dtype", dtype, ("float32", "float64"))
    directory = Path(directory)
    params, config, info = import_hf(directory, dtype)
    default_atol, default_rtol = DEFAULT_TOLERANCES[dtype]
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    if batch is None:
        batch = make_batch(directory, config, texts, seed)
    pairs = hook_table(info["family"], config.n_layers)
    ours = clearform_activations(params, config, batch, pairs)
    model = load_hf_model(directory, info["family"], dtype)
    theirs = hf_activations(model, info["family"], batch, pairs)
    return CrosscheckReport(
        directory=str(directory), family=info["family"], dtype=dtype, config=config,
        tokens_shape=tuple(batch.tokens.shape), n_real=int(batch.mask.sum()), atol=atol, rtol=rtol,
        rows=compare(ours, theirs, pairs, batch.mask, atol, rtol), ignored=info["ignored"],
    )
