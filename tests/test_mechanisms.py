"""The mechanism template: the registry, the import rules, file sizes, hooks, and several plug-ins at once."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import proofs  # noqa: F401  (registers every theorem)
from proofs.registry import all_theorems
from reference import mechanisms
from reference.config import CORE_SECTIONS, ConfigError, ConfigSection, RunConfig
from reference.data.toyworld import PRESETS
from reference.mechanisms.locality import LocalityPlugin
from reference.model import hook_names, init_params, loss_and_grads, run_with_cache
from reference.plugins import PluginConflict, StepTerms, combine_forward_kwargs, combine_terms
from reference.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
CORE_FILES = sorted(p for p in (ROOT / "reference").rglob("*.py") if "mechanisms" not in p.relative_to(ROOT / "reference").parts)
EXPERIMENT_FILES = ("experiment.py", "cli.py")  # the only files of a mechanism that may import the trainer / reports


def imported_modules(path: Path) -> list[tuple[str, bool]]:
    """(module, inside a function) for every import of ``path``; relative imports resolved to dotted names."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, inside) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + ([base] if base else []))
                found.extend((f"{base}.{alias.name}", inside) for alias in child.names)
                found.append((base, inside))
            visit(child, inside)

    visit(tree, False)
    return found


# --------------------------------------------------------------------------- the registry


def test_registry_records_are_complete_and_consistent():
    assert mechanisms.MECHANISMS, "no mechanism registered"
    n = len(mechanisms.MECHANISMS)
    assert len({m.code for m in mechanisms.MECHANISMS}) == len({m.slug for m in mechanisms.MECHANISMS}) == n
    registered = {t.mechanism for t in all_theorems()}
    for m in mechanisms.MECHANISMS:
        assert (ROOT / "reference" / "mechanisms" / m.slug / "__init__.py").is_file()
        config = m.load("config")
        assert issubclass(config, ConfigSection) and config.SECTION == m.slug
        assert m.proofs == f"proofs.{m.slug}" and importlib.import_module(m.proofs)
        assert m.code in registered, f"{m.code}: no theorem registered by {m.proofs}"
        assert m.golden is not None and callable(m.load("golden"))  # every mechanism has golden cases
        for what in ("plugin", "cli", "demo"):
            assert getattr(m, what) is None or callable(m.load(what))
        assert mechanisms.get(m.code) is m and mechanisms.get(m.slug) is m
    with pytest.raises(KeyError, match="registered"):
        mechanisms.get("XYZ")


def test_run_config_sections_come_from_the_registry():
    sections = RunConfig.section_classes()
    assert list(sections)[: len(CORE_SECTIONS)] == list(CORE_SECTIONS)
    assert [s for s in sections if s not in CORE_SECTIONS] == [m.slug for m in mechanisms.MECHANISMS]
    run = RunConfig()
    assert set(run.to_dict()) == set(sections)
    for m in mechanisms.MECHANISMS:
        assert run.section(m.slug) == m.load("config")() == getattr(run, m.slug)
    changed = run.with_section("locality", run.locality.replace(lam=0.4))
    assert changed.locality.lam == 0.4 and RunConfig.from_dict(changed.to_dict()) == changed
    with pytest.raises(ConfigError, match="unknown section"):
        RunConfig.from_dict({"nope": {}})
    with pytest.raises(AttributeError):
        _ = run.nope


def test_the_cli_and_the_demo_loop_over_the_registry():
    from reference.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    assert all(m.slug in commands for m in mechanisms.with_cli())
    assert [m.code for m in mechanisms.with_demo()] == [m.code for m in mechanisms.MECHANISMS if m.demo]


# --------------------------------------------------------------------------- import rules and file sizes


def test_the_core_names_no_mechanism():
    """cli.py, train.py and every other core module import the registry at most, never a mechanism's package."""
    slugs = {m.slug for m in mechanisms.MECHANISMS}
    for path in CORE_FILES:
        for module, _ in imported_modules(path):
            parts = module.split(".")
            assert not (parts[:2] == ["reference", "mechanisms"] and len(parts) > 2 and parts[2] in slugs), (
                f"{path.relative_to(ROOT)} imports {module}: go through reference.mechanisms' registry"
            )
    for name in ("cli.py", "train.py", "config.py"):
        assert not any(slug in (ROOT / "reference" / name).read_text() for slug in ("LocalityConfig", "LocalityPlugin"))


@pytest.mark.parametrize("slug", [m.slug for m in mechanisms.MECHANISMS])
def test_a_mechanisms_math_imports_only_the_core(slug):
    package = ROOT / "reference" / "mechanisms" / slug
    for path in sorted(package.glob("*.py")):
        if path.name in EXPERIMENT_FILES or path.name == "__init__.py":
            continue
        for module, in_function in imported_modules(path):
            if module.startswith("reference"):
                assert not in_function, f"{path.name}: imports {module} inside a function"
                assert not module.startswith(("reference.train", "reference.report", "reference.cli")), (
                    f"{path.name} imports {module}: only experiment.py may import the trainer and the reports"
                )
                other = module.split(".")
                assert not (other[:2] == ["reference", "mechanisms"] and len(other) > 2 and other[2] != slug), (
                    f"{path.name} imports another mechanism ({module})"
                )


def test_no_source_file_passes_800_lines():
    long = {str(p.relative_to(ROOT)): n for p in [*ROOT.glob("reference/**/*.py"), *ROOT.glob("proofs/**/*.py")]
            if (n := len(p.read_text().splitlines())) > 800}
    assert not long, f"split by concern: {long}"


# --------------------------------------------------------------------------- hooks


@st.composite
def hook_configs(draw):
    from reference.config import ModelConfig

    heads = draw(st.integers(1, 3))
    return ModelConfig(
        vocab_size=draw(st.integers(2, 9)), context=draw(st.integers(1, 6)), d_model=heads * draw(st.integers(1, 3)),
        n_layers=draw(st.integers(0, 3)), n_heads=heads, norm=draw(st.sampled_from(["pre", "post"])),
        bias=draw(st.booleans()), tied_head=draw(st.booleans()), causal=draw(st.booleans()),
        embed_norm=draw(st.booleans()), final_norm=draw(st.booleans()), n_token_types=draw(st.sampled_from([0, 2])),
        dtype="float64",
    )


@given(hook_configs(), st.integers(1, 3))
def test_hook_names_are_exactly_what_run_with_cache_records(config, batch):
    tokens = np.zeros((batch, config.context), dtype=np.int64)
    _, cache = run_with_cache(init_params(config, seed=0), config, tokens)
    assert list(cache) == hook_names(config)


# --------------------------------------------------------------------------- several plug-ins


def test_combined_terms_add_up_and_conflicts_are_refused():
    bias_a, bias_b = np.full((1, 1, 2, 2), -1.0), np.full((1, 1, 2, 2), -2.0)
    a = StepTerms({"attn_bias": [bias_a, None]}, lambda acts: (1.5, {"h": np.ones(2)}), {"a": 1})
    b = StepTerms({"attn_bias": [bias_b, bias_b]}, lambda acts: (2.0, {"h": np.ones(2), "g": np.zeros(1)}), {"b": 2})
    both = combine_terms([a, b])
    assert np.array_equal(both.forward_kwargs["attn_bias"][0], bias_a + bias_b)
    assert np.array_equal(both.forward_kwargs["attn_bias"][1], bias_b)
    value, grads = both.extra_loss({})
    assert value == 3.5 and np.array_equal(grads["h"], 2 * np.ones(2)) and set(grads) == {"h", "g"}
    assert both.record == {"a": 1, "b": 2}
    assert combine_forward_kwargs([{"attn_bias": bias_a}, {"attn_bias": [bias_b, None]}])["attn_bias"][1] is bias_a
    with pytest.raises(PluginConflict, match="temperature"):
        combine_forward_kwargs([{"temperature": 2.0}, {"temperature": 2.0}])
    with pytest.raises(PluginConflict, match="'a'"):
        combine_terms([a, StepTerms(record={"a": 3})])


class ResidualPenalty:
    """A second plug-in for the test: μ · mean(resid_post²) of block 0, with its gradient."""

    def __init__(self, mu: float) -> None:
        self.mu = mu

    def step_terms(self, step, batch, generator) -> StepTerms:
        def loss(acts):
            x = acts["blocks.0.resid_post"]
            return self.mu * float(np.mean(x * x)), {"blocks.0.resid_post": (2 * self.mu / x.size) * x}

        return StepTerms(extra_loss=loss, record={"resid_mu": self.mu})

    def eval_kwargs(self, batch) -> dict:
        return {}


def test_training_with_two_plugins_adds_their_terms(tmp_path):
    preset = json.loads(json.dumps(PRESETS["locality_tiny"]))
    run = RunConfig().overridden({
        "model": {**preset["model"], "d_model": 16, "n_heads": 2, "context": 48, "dtype": "float64"},
        "toyworld": preset["toyworld"],
        "train": {"steps": 3, "batch_size": 4, "warmup": 1, "eval_every": 0, "eval_batches": 1, "log_every": 1},
        "locality": {"train_dial": "fixed", "lam": 1.0, "pointer_weight": 0.5},
    })
    dial, resid = LocalityPlugin(run.locality, run.model), ResidualPenalty(0.3)
    trainer = Trainer(run, tmp_path / "two", progress=False, plugins=[dial, resid])
    assert Trainer(run, tmp_path / "default", progress=False).plugins[0].cfg == dial.cfg  # the registry's default

    # What step 1 must compute, term by term: the dial's bias in the forward pass, then
    # cross-entropy + the dial's penalty and pointer loss + the residual penalty.
    batch = trainer.data.train_batch(0, run.train.batch_size, trainer.generator)
    terms = dial.step_terms(0, batch, np.random.default_rng(0))  # "fixed": no draw
    model, params = trainer.run.model, trainer.params
    ce, _, _ = loss_and_grads(params, model, batch.inputs, batch.targets, **terms.forward_kwargs)
    _, acts = run_with_cache(params, model, batch.inputs, **terms.forward_kwargs)
    dial_value, _ = terms.extra_loss(acts)
    resid_value, _ = resid.step_terms(0, batch, None).extra_loss(acts)
    assert resid_value > 0 and dial_value > 0

    record = trainer.train_step()
    assert record["loss"] == pytest.approx(ce + dial_value + resid_value, rel=1e-12)
    assert record["resid_mu"] == 0.3 and record["lam"] == 1.0 and "locality_penalty" in record
    # the residual penalty's gradient reached the parameters: they differ from a dial-only step
    only_dial = Trainer(run, tmp_path / "one", progress=False, plugins=[dial])
    only_dial.train_step()
    assert not np.array_equal(only_dial.params["blocks.0.mlp.w_in"], trainer.params["blocks.0.mlp.w_in"])
    trainer.train()
    lines = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [2, 3] and all("resid_mu" in r for r in lines if "loss" in r)
