"""Issue 9: limits, overflow-safe metrics and argument checks (one test per class of the issue).

Every bad input ends with exit status 2 and one line on stderr, fast, before any allocation;
absurd sizes name the parameter or activation estimate; a perplexity past float64 is ``inf``
(``null`` in JSON); ``--out``, ``--until``, ``--resume --config`` and ``--force`` are checked
up front. Commands run in-process through :func:`reference.cli.main` (stdout and stderr captured);
one test passes a raw 0xff byte through a real subprocess's argv.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_harness import TINY  # noqa: E402  (tests/ is on sys.path)
from cli_harness import run_cli as _run_cli  # noqa: E402

from reference import cli
from reference.config import (
    MAX_ACTIVATION_BYTES,
    ConfigError,
    ModelConfig,
    RunConfig,
    TrainConfig,
    activation_bytes,
    check_memory,
    parameter_count,
)

HANG_SECONDS = 20


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``clearform ARGV`` in-process: (exit status, stdout, stderr)."""
    status, out, err, _ = _run_cli(list(argv), HANG_SECONDS)
    return status, out, err


def assert_bad_input(status: int, err: str, *needles: str) -> None:
    """Exit 2, exactly one line on stderr, no traceback, and each needle in it."""
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def write_config(path: Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished tiny toy-world run (4 steps)."""
    base = tmp_path_factory.mktemp("tiny")
    status, _, err = run_cli("train", "--config", write_config(base / "c.json", TINY), "--out", str(base / "run"), "--quiet")
    assert status == 0, err
    return base / "run"


@pytest.fixture(scope="module")
def byte_run(tmp_path_factory) -> Path:
    """A finished tiny byte-level run on a small UTF-8 text."""
    base = tmp_path_factory.mktemp("bytes")
    text = base / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    config = {**TINY, "data": {"source": "text", "path": str(text)}}
    status, _, err = run_cli("train", "--config", write_config(base / "c.json", config), "--out", str(base / "run"), "--quiet")
    assert status == 0, err
    return base / "run"


# --------------------------------------------------------------------------- class 4: sizes


def test_parameter_count_is_exact():
    from reference.model import param_shapes

    for model in (
        ModelConfig(),
        ModelConfig(bias=False, tied_head=False, n_token_types=2, embed_norm=True, final_norm=False, d_head=7, n_heads=3, d_mlp=33),
    ):
        assert parameter_count(model) == sum(math.prod(shape) for shape in param_shapes(model).values())


@pytest.mark.parametrize("field", ["n_layers", "d_model", "context", "d_mlp", "vocab_size"])
@pytest.mark.parametrize("value", [2**63, 2**64 + 1, 10**30])
def test_absurd_sizes_fail_in_milliseconds_with_the_estimate(tmp_path, field, value):
    overrides = {"model": {field: value, **({"n_heads": 1} if field == "d_model" else {})}}
    with pytest.raises(ConfigError, match="parameters"):
        RunConfig().overridden(overrides)
    start = time.perf_counter()
    status, _, err = run_cli("train", "--config", write_config(tmp_path / "c.json", overrides), "--out", str(tmp_path / "r"))
    assert time.perf_counter() - start < 1.0
    assert_bad_input(status, err, "parameters", "over the cap", "CLEARFORM_MAX_PARAMETERS")
    assert not (tmp_path / "r").exists()  # nothing created for a bad config


def test_hugging_face_sized_n_layer_fails_fast():
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"^model: .* parameters .* over the cap"):
        ModelConfig(n_layers=10**7, d_model=768, n_heads=12, vocab_size=50257, context=1024)
    assert time.perf_counter() - start < 0.1


@pytest.mark.parametrize(
    "section, field, value, needle",
    [
        ("model", "n_layers", 1025, "model.n_layers: 1025 is not an int in [0, 1024]"),
        ("model", "n_heads", 2000, "model.n_heads: 2000 is not an int in [1, 1024]"),
        ("train", "steps", 10**9 + 1, "train.steps: 1000000001 is not an int in [1, 1000000000]"),
        ("train", "steps", 2**63, "train.steps"),
        ("train", "batch_size", 2**16 + 1, "train.batch_size: 65537 is not an int in [1, 65536]"),
        ("train", "eval_batches", 10**4 + 1, "train.eval_batches: 10001 is not an int in [1, 10000]"),
        ("train", "eval_batches", 10**4, "held-out sequences, over 262144"),
        ("train", "seed", 2**63, "train.seed"),
        ("toyworld", "world_seed", -1, "toyworld.world_seed"),
    ],
)
def test_each_int_field_has_an_upper_bound(tmp_path, section, field, value, needle):
    overrides = {section: {field: value}}
    if field == "eval_batches" and value == 10**4:
        overrides["train"]["batch_size"] = 64
    if field == "n_heads":
        overrides["model"]["d_head"] = 1  # so that the heads need not divide d_model
    with pytest.raises(ConfigError) as caught:  # the config layer itself, first: a missing bound fails here at once
        RunConfig().overridden(overrides)
    assert needle in str(caught.value)
    start = time.perf_counter()
    status, _, err = run_cli("train", "--config", write_config(tmp_path / "c.json", overrides), "--out", str(tmp_path / "r"))
    assert time.perf_counter() - start < 1.0
    assert_bad_input(status, err, needle)


def test_parameter_cap_override(monkeypatch):
    monkeypatch.setenv("CLEARFORM_MAX_PARAMETERS", "1000")
    with pytest.raises(ConfigError, match="over the cap of 1000"):
        ModelConfig()
    monkeypatch.setenv("CLEARFORM_MAX_PARAMETERS", str(10**12))
    assert ModelConfig(n_layers=1024, d_model=1024, n_heads=8).n_layers == 1024  # 1.3e10 parameters, allowed now
    monkeypatch.setenv("CLEARFORM_MAX_PARAMETERS", "lots")
    with pytest.raises(ConfigError, match="CLEARFORM_MAX_PARAMETERS: 'lots' is not a positive int"):
        ModelConfig()


def test_activation_cap_and_its_override(tmp_path, monkeypatch):
    model = ModelConfig(context=4096, d_model=512, n_heads=8)
    assert activation_bytes(model, 64) > MAX_ACTIVATION_BYTES
    with pytest.raises(ConfigError, match=r"^train.batch_size: 64 sequences .* bytes of activations .* CLEARFORM_MAX_ACTIVATION"):
        check_memory(model, 64)
    check_memory(model, 1)
    overrides = {"model": {"context": 4096, "d_model": 512, "n_heads": 8}, "train": {"batch_size": 64}}
    status, _, err = run_cli("train", "--config", write_config(tmp_path / "c.json", overrides), "--out", str(tmp_path / "r"))
    assert_bad_input(status, err, "activations")
    monkeypatch.setenv("CLEARFORM_MAX_ACTIVATION_BYTES", str(2**50))
    check_memory(model, 64)


def test_values_in_messages_are_cut_and_one_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"model": {"a\nb": 1}})
    assert "\n" not in str(caught.value) and "model.'a\\nb': unknown key" in str(caught.value)
    huge = "x" * 50_000_000
    for data in ({"model": {"norm": huge}}, {"model": {huge: 1}}, {huge: {}}, {"model": {"d_model": [[[[[[huge]]]]]]}}):
        with pytest.raises(ConfigError) as caught:
            RunConfig.from_dict(data)
        assert len(str(caught.value)) < 400 and "\n" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        ModelConfig(d_mlp=10**5000)  # too long for repr(): described by its size
    assert "digits" in str(caught.value) and len(str(caught.value)) < 400
    config = write_config(tmp_path / "c.json", {"model": {"a\nb": 1, "gelu": "y" * 500_000}})
    status, _, err = run_cli("train", "--config", config, "--out", str(tmp_path / "r"))
    assert_bad_input(status, err, "unknown key")
    assert len(err) < 500


def test_data_path_with_a_nul_byte_is_refused():
    with pytest.raises(ConfigError, match="data.path: .* no NUL byte"):
        RunConfig.from_dict({"data": {"source": "text", "path": "a\0b"}})


# --------------------------------------------------------------------------- class 3 (config side): the --config reader


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 10_000 + b"]" * 10_000, "nested"),
        (b'{"train": {"steps": 1' + b"0" * 4400 + b"}}", "digits"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must hold a JSON object"),
        (b" " * (2**20 + 1), "over the limit"),
    ],
)
def test_config_file_contents(tmp_path, content, needle):
    path = tmp_path / "c.json"
    path.write_bytes(content)
    status, _, err = run_cli("train", "--config", str(path), "--out", str(tmp_path / "r"))
    assert_bad_input(status, err, "--config", needle)


@pytest.mark.parametrize("kind", ["nul", "dev_zero", "directory", "missing"])
def test_config_file_paths(tmp_path, kind):
    path = {"nul": "a\0b.json", "dev_zero": "/dev/zero", "directory": str(tmp_path), "missing": str(tmp_path / "none.json")}[kind]
    start = time.perf_counter()
    status, _, err = run_cli("train", "--config", path, "--out", str(tmp_path / "r"))
    assert time.perf_counter() - start < 2.0
    assert_bad_input(status, err, "--config")


# --------------------------------------------------------------------------- class 5: overflow


def test_loss_above_709_nats_gives_infinite_perplexity():
    from reference.evaluation import evaluate, json_safe, perplexity
    from reference.model import init_params
    from reference.train import make_data, prepare_run

    assert perplexity(709.0) == pytest.approx(math.exp(709.0)) and perplexity(709.8) == math.inf and perplexity(1e6) == math.inf
    run = prepare_run(RunConfig.from_dict({**TINY, "model": {**TINY["model"], "dtype": "float64"}}))
    params = init_params(run.model, seed=0)
    params["embed.tok"] = params["embed.tok"] * 1e5  # the tied head turns these into logits of ~1e4
    result = evaluate(params, run, make_data(run).val_batches(1, 1))
    assert math.isfinite(result["val_loss"]) and result["val_loss"] > 709.78
    assert result["val_perplexity"] == math.inf
    text = json.dumps(json_safe(result), allow_nan=False)
    assert json.loads(text)["val_perplexity"] is None


def test_eval_json_stays_strict_json_when_perplexity_overflows(tiny_run, monkeypatch):
    import reference.evaluation as evaluation

    real = evaluation.evaluate

    def huge_loss(*args, **kwargs):
        result = real(*args, **kwargs)
        return {**result, "val_loss": 800.0, "val_perplexity": evaluation.perplexity(800.0)}

    monkeypatch.setattr(evaluation, "evaluate", huge_loss)
    status, out, err = run_cli("eval", "--run", str(tiny_run), "--batches", "1", "--json")
    assert status == 0, err

    def refuse(literal: str) -> None:
        raise AssertionError(f"non-standard JSON literal {literal}")

    record = json.loads(out, parse_constant=refuse)
    assert record["val_perplexity"] is None and record["val_loss"] == 800.0
    status, out, err = run_cli("eval", "--run", str(tiny_run), "--batches", "1")
    assert status == 0 and "inf" in out


# --------------------------------------------------------------------------- class 9: arguments


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--temperature", "nan"], "--temperature"),
        (["--temperature", "inf"], "--temperature"),
        (["--temperature", "-inf"], "--temperature"),
        (["--temperature", "-1"], "--temperature"),
        (["--temperature", "1e-320"], "--temperature"),
        (["--top-k", "-1"], "--top-k"),
        (["--top-k", "-1000"], "--top-k"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**63)], "--seed"),
        (["--tokens", "-1"], "--tokens"),
        (["--tokens", str(10**12)], "--tokens"),
        (["--tokens", "abc"], "--tokens"),
    ],
)
def test_generate_arguments(tiny_run, args, needle):
    status, _, err = run_cli("generate", "--run", str(tiny_run), *args)
    assert_bad_input(status, err, needle)


def test_generate_top_k_zero_means_off_and_greedy_works(tiny_run):
    off = run_cli("generate", "--run", str(tiny_run), "--tokens", "5", "--top-k", "0", "--seed", "3")
    default = run_cli("generate", "--run", str(tiny_run), "--tokens", "5", "--seed", "3")
    assert off[0] == 0 and off[1] == default[1]
    assert run_cli("generate", "--run", str(tiny_run), "--tokens", "5", "--temperature", "0")[0] == 0


def test_generate_any_prompt_bytes_on_a_byte_model(byte_run):
    status, out, err = run_cli("generate", "--run", str(byte_run), "--prompt", "caf\udcff\udcfe x", "--tokens", "8")
    assert status == 0, err
    assert out  # decoded with errors="replace": printing never crashes
    # the real thing: a 0xff byte in argv, through a subprocess
    argv = [sys.executable, "-m", "reference.cli", "generate", "--run", str(byte_run), "--prompt", b"\xff\xfe", "--tokens", "4"]
    result = subprocess.run(argv, capture_output=True, timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr


def test_prompt_bytes_round_trips_argv_bytes():
    assert cli.prompt_bytes(os.fsdecode(b"a\xff\xfe")) == b"a\xff\xfe"
    assert list(cli.prompt_bytes("\udcff")) == [0xFF]


@pytest.mark.parametrize("batches", ["0", "-1", str(10**4 + 1), str(10**40)])
def test_eval_batches_bounded(tiny_run, batches):
    start = time.perf_counter()
    status, _, err = run_cli("eval", "--run", str(tiny_run), "--batches", batches)
    assert time.perf_counter() - start < 1.0
    assert_bad_input(status, err, "--batches")


@pytest.mark.parametrize("until", ["-1", "0", str(10**9 + 1)])
def test_until_must_be_a_step(tmp_path, until):
    config = write_config(tmp_path / "c.json", TINY)
    status, _, err = run_cli("train", "--config", config, "--out", str(tmp_path / "r"), "--until", until)
    assert_bad_input(status, err, "--until")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("kind", ["file", "under_file", "proc", "proc_itself", "nul", "empty"])
def test_out_checked_up_front(tmp_path, kind):
    (tmp_path / "f").write_text("x")
    out = {
        "file": str(tmp_path / "f"), "under_file": str(tmp_path / "f" / "run"), "proc": "/proc/x", "nul": "a\0b", "empty": "",
        "proc_itself": "/proc",  # exists and is a folder, but not even root can write there: the write probe catches it
    }[kind]
    status, _, err = run_cli("train", "--config", write_config(tmp_path / "c.json", TINY), "--out", out, "--quiet")
    assert_bad_input(status, err, "--out")
    assert (tmp_path / "f").read_text() == "x"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        status, _, err = run_cli("train", "--config", write_config(tmp_path / "c.json", TINY), "--out", str(locked / "r"))
    finally:
        locked.chmod(0o755)
    assert_bad_input(status, err, "--out")


def test_used_folder_needs_resume_or_force(tiny_run, tmp_path):
    before = (tiny_run / "metrics.jsonl").read_bytes()
    status, _, err = run_cli("train", "--config", write_config(tmp_path / "c.json", TINY), "--out", str(tiny_run))
    assert_bad_input(status, err, "already holds a run")
    status, _, err = run_cli("train", "--out", str(tiny_run), "--resume", "--force")
    assert_bad_input(status, err, "pick one")
    assert (tiny_run / "metrics.jsonl").read_bytes() == before


def test_resume_with_config_must_match_the_run(tmp_path):
    config = write_config(tmp_path / "c.json", TINY)
    out = str(tmp_path / "r")
    assert run_cli("train", "--config", config, "--out", out, "--until", "2", "--quiet")[0] == 0
    metrics = (tmp_path / "r" / "metrics.jsonl").read_bytes()
    other = write_config(tmp_path / "other.json", {**TINY, "train": {**TINY["train"], "steps": 5}})
    status, _, err = run_cli("train", "--config", other, "--out", out, "--resume", "--quiet")
    assert_bad_input(status, err, "--config: differs", "train.steps (given 5, the run has 4)")
    status, _, err = run_cli("train", "--preset", "locality_tiny", "--out", out, "--resume", "--quiet")
    assert_bad_input(status, err, "--preset: differs")
    assert (tmp_path / "r" / "metrics.jsonl").read_bytes() == metrics  # refused before anything was touched
    status, out_text, err = run_cli("train", "--config", config, "--out", out, "--resume", "--quiet")
    assert status == 0, err
    assert "step 4 of 4" in out_text


def test_force_removes_the_old_run_before_anything_else(tmp_path, monkeypatch):
    from reference.train import Trainer, TrainingDiverged

    out = tmp_path / "r"
    assert run_cli("train", "--config", write_config(tmp_path / "c.json", TINY), "--out", str(out), "--quiet")[0] == 0
    assert (out / "checkpoint").is_dir()
    (out / "checkpoint.old").mkdir()
    (out / "notes.txt").write_text("mine")

    def diverge_at_step_1(self, until=None):
        raise TrainingDiverged("step 1: loss is nan; stopped before updating")

    monkeypatch.setattr(Trainer, "train", diverge_at_step_1)
    new = write_config(tmp_path / "new.json", {**TINY, "train": {**TINY["train"], "seed": 7}})
    status, _, err = run_cli("train", "--config", new, "--out", str(out), "--force", "--quiet")
    assert status == 3 and len(err.strip().splitlines()) == 1
    for name in ("checkpoint", "checkpoint.old", "checkpoint.tmp", "model.safetensors", "config.json"):
        assert not (out / name).exists(), name
    assert (out / "metrics.jsonl").read_text() == "" and (out / "notes.txt").read_text() == "mine"
    monkeypatch.undo()
    status, _, err = run_cli("train", "--out", str(out), "--resume", "--quiet")
    assert_bad_input(status, err, "checkpoint")  # the old run cannot be picked up


# --------------------------------------------------------------------------- exit statuses


def test_argparse_errors_are_one_line():
    for argv in (
        ["generate"], ["train", "--out"], ["nope"], [], ["eval", "--run", "x", "--batches", "1" * 5000],
        ["train", "--out", "x", "--until=--"], ["generate", "--run", "x", "--temperature=--"],  # argparse drops a "--" value
    ):
        status, _, err = run_cli(*argv)
        assert_bad_input(status, err)
        assert len(err) <= cli.MAX_MESSAGE + 1
    status, _, err = run_cli("train", "--out", "x", "--preset=--")  # without the parser's guard: [] reaches the command
    assert_bad_input(status, err, "argument --preset: expected a value, got '--'")


def test_an_unexpected_exception_is_one_line_exit_70(monkeypatch, tmp_path):
    def broken(args):
        raise KeyError("a\nbug")

    monkeypatch.setattr(cli, "cmd_eval", broken)
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["eval"].set_defaults(func=broken)
    status, _, err = run_cli("eval", "--run", str(tmp_path))
    assert status == cli.EXIT_INTERNAL == 70
    assert len(err.strip().splitlines()) == 1 and "internal error" in err and "KeyError" in err


def test_an_os_error_is_one_line_exit_2(monkeypatch, tmp_path):
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)

    def full_disk(args):
        raise OSError(28, "No space left on device\n(really)", "/some/file\nname")

    parser._subparsers._group_actions[0].choices["eval"].set_defaults(func=full_disk)
    status, _, err = run_cli("eval", "--run", str(tmp_path))
    assert_bad_input(status, err, "No space left on device")


def test_train_config_bounds_are_documented():
    doc = TrainConfig.__doc__ or ""
    assert "10⁹" in doc and "2¹⁶" in doc and "10⁴" in doc
    assert np.iinfo(np.int64).max == 2**63 - 1  # MAX_SEED is an int64
