"""Fuzzing the ``clearform`` command line (issue 9): random configs and random arguments.

Hypothesis draws ``--config`` files (random JSON: wrong types, out-of-range numbers, unknown keys,
nested junk, unicode, huge strings, deep nesting, invalid UTF-8) and argument lists for
``train``, ``eval``, ``generate``, ``proofs`` and ``locality sweep`` (negative, NaN, huge,
non-numeric, empty, NUL bytes). Every example runs in-process through :func:`reference.cli.main`
and must: exit with a documented status (0, 1, 2, 3), exactly 2 for invalid input; print at most
one line on stderr, never a traceback; finish within :data:`TIME_LIMIT`. Valid draws are kept
tiny (``--until 1``, a few tokens, one or two evaluation batches).

Each argument strategy draws ``(text, valid)`` pairs, so the expected status is known without
asking the code under test; for configs the oracle is the config layer itself
(:func:`expected_for_config`), which is tested on its own in ``test_limits.py``. The example
count is the active Hypothesis profile's (``dev`` 20, ``ci`` 40, ``thorough`` 400).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cli_harness import TINY, run_cli  # noqa: E402  (tests/ is on sys.path)
from hypothesis import event, given
from hypothesis import strategies as st

from reference import cli
from reference.config import ConfigError, check_memory

TIME_LIMIT = 30.0
"""Seconds one example may take (a valid one trains one step of a tiny model; most take milliseconds)."""
DOCUMENTED = {0, 1, 2, 3}


def check_outcome(result: tuple[int, str, str, float], expected: set[int], argv: list[str]) -> None:
    status, _, err, seconds = result
    event(f"exit status {status}")
    shown = cli._one_line(repr(argv), 300)
    assert "Traceback" not in err, (shown, err)
    assert len(err.strip().splitlines()) <= 1, (shown, err)
    assert status in DOCUMENTED, (shown, status, err)
    assert status in expected, (shown, status, err)
    assert seconds < TIME_LIMIT, (shown, seconds)


@pytest.fixture(scope="module")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="clearform-fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def runs(workdir) -> dict[str, Path]:
    """Two finished tiny runs: ``toy`` (toy world) and ``bytes`` (byte tokenizer)."""
    text = workdir / "text.txt"
    text.write_text("a small text for a byte model, with some unicode: é ü ✓. " * 20)
    made = {}
    for name, extra in (("toy", {}), ("bytes", {"data": {"source": "text", "path": str(text)}})):
        config = workdir / f"{name}.json"
        config.write_text(json.dumps({**TINY, **extra}))
        status, _, err, _ = run_cli(["train", "--config", str(config), "--out", str(workdir / name), "--quiet"])
        assert status == 0, err
        made[name] = workdir / name
    return made


def fresh_dir(workdir: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=workdir))


# --------------------------------------------------------------------------- config files

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([2**63, 10**30, -1, 0, 2**64]),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12), st.sampled_from(["\n", "a\nb", "\0", "x" * 200_000]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
TINY_FIELDS = {
    "model": {
        "d_model": [8, 16], "n_heads": [1, 2], "n_layers": [0, 1], "context": [24, 32], "d_mlp": [None, 8], "d_head": [None, 4],
        "norm": ["pre", "post"], "bias": [True, False], "tied_head": [True, False], "causal": [True, False],
        "gelu": ["tanh", "erf"], "ln_eps": [1e-5], "embed_norm": [True, False], "final_norm": [True, False],
        "n_token_types": [0, 2], "init_std": [0.02], "dtype": ["float32", "float64"], "vocab_size": [371, 5],
    },
    "train": {
        "steps": [1, 2, 10**9], "batch_size": [1, 2], "lr": [1e-3, 0.1], "min_lr_ratio": [0.1], "warmup": [0, 1],
        "weight_decay": [0.0, 0.1], "beta1": [0.9], "beta2": [0.99], "adam_eps": [1e-8], "grad_clip": [0.0, 1.0],
        "eval_every": [0, 1], "eval_batches": [1], "checkpoint_every": [0, 1], "log_every": [1], "seed": [0, 2**63 - 1],
    },
    "toyworld": {"world_seed": [0, 3], "n_topics": [4, 8], "lemmas_per_topic": [1, 3], "label_noise": [0.0, 0.5]},
    "data": {"source": ["toyworld"], "heldout_fraction": [0.1]},
    "locality": {"lam": [0.0, 0.5], "train_dial": ["fixed", "dropout"]},
}


def section(fields: dict[str, list]) -> st.SearchStrategy:
    """A section's overrides: known keys with tiny valid values or junk, and unknown (unicode) keys."""
    keys = st.lists(st.one_of(st.sampled_from(sorted(fields)), st.sampled_from(sorted(fields)), st.text(max_size=8)), max_size=4)

    def values(names: list[str]) -> st.SearchStrategy:
        return st.fixed_dictionaries(
            {k: st.one_of(st.sampled_from(fields[k]), st.sampled_from(fields[k]), JUNK) if k in fields else JUNK for k in names}
        )

    return keys.flatmap(values)


SECTIONS = st.fixed_dictionaries({}, optional={name: st.one_of(section(fields), JUNK) for name, fields in TINY_FIELDS.items()})
VALID_SECTIONS = st.fixed_dictionaries(
    {},
    optional={
        name: st.dictionaries(st.sampled_from(sorted(fields)), st.none(), max_size=5).flatmap(
            lambda keys, fields=fields: st.fixed_dictionaries({k: st.sampled_from(fields[k]) for k in keys})
        )
        for name, fields in TINY_FIELDS.items()
    },
)
"""Known keys with tiny valid values only: these mostly train (one step), exercising odd but valid configs."""
JSON_JUNK = st.recursive(
    JUNK, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)


def nested(depth: int) -> str:
    return '{"model": {"d_model": ' + "[" * depth + "1" + "]" * depth + "}}"


CONFIG_BYTES = st.one_of(
    VALID_SECTIONS.map(lambda c: json.dumps(c).encode()),
    VALID_SECTIONS.map(lambda c: json.dumps(c).encode()),
    SECTIONS.map(lambda c: json.dumps(c).encode()),
    SECTIONS.map(lambda c: json.dumps(c).encode()),
    st.tuples(SECTIONS, st.dictionaries(st.text(max_size=8), JSON_JUNK, max_size=2)).map(
        lambda t: json.dumps({**t[1], **t[0]}).encode()
    ),
    JSON_JUNK.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 100).map(lambda n: nested(n).encode()),
    st.integers(1, 20_000).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=40),
    st.sampled_from([b"\xff\xfe{}", b'{"train": {"steps": NaN}}', b'{"model": {"d_model": 1e400}}', b'{"a": 1, "a": 2}', b""]),
)


def expected_for_config(path: Path) -> set[int]:
    """{2} when the config layer refuses the file, else {0, 3} (a valid tiny run trains, or diverges)."""
    from reference.train import prepare_run

    try:
        run = cli.load_config_file(str(path))
        check_memory(run.model, run.train.batch_size)
        prepare_run(run)
    except ConfigError:
        return {2}
    return {0, 3}


@given(content=CONFIG_BYTES)
def test_fuzzed_config_files(workdir, content):
    folder = fresh_dir(workdir)
    try:
        path = folder / "config.json"
        path.write_bytes(content)
        argv = ["train", "--config", str(path), "--out", str(folder / "run"), "--until", "1", "--quiet"]
        result = run_cli(argv, TIME_LIMIT)
        check_outcome(result, expected_for_config(path), argv)
        if result[0] == 0:
            assert (folder / "run" / "checkpoint").is_dir()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(
    "content",
    [
        b"\xff{}", b"[" * 50_000 + b"]" * 50_000, json.dumps({"model": {"a\nb": 1}}).encode(),
        b'{"train": {"steps": ' + b"9" * 5000 + b"}}",
    ],
)
def test_config_files_in_a_real_process(tmp_path, content):
    path = tmp_path / "c.json"
    path.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-m", "reference.cli", "train", "--config", str(path), "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


# --------------------------------------------------------------------------- argument values: (text, valid) pairs


BAD_TEXT = st.sampled_from(["", "abc", "nan", "1e400", "\0", "1\0", "0x10", "1.5", " ", "\n", "9" * 5000, "--", "-"])


def int_arg(lo: int, hi: int, valid_hi: int | None = None) -> st.SearchStrategy:
    """An int argument in [lo, hi]: valid draws in [lo, valid_hi] (kept cheap), invalid ones outside or not ints."""
    valid = st.integers(lo, hi if valid_hi is None else valid_hi).map(lambda n: (str(n), True))
    out_of_range = st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1), st.sampled_from([-(10**40), 10**40]))
    return st.one_of(valid, out_of_range.map(lambda n: (str(n), False)), BAD_TEXT.map(lambda t: (t, False)))


TEMPERATURE = st.one_of(
    st.floats(0.05, 5.0).map(lambda x: (repr(x), True)),
    st.just(("0", True)),
    st.sampled_from(["nan", "inf", "-inf", "-1", "1e-320", "-0.5", "1e400"]).map(lambda t: (t, False)),
    BAD_TEXT.filter(lambda t: t.strip() not in ("1.5", "nan", "1e400")).map(lambda t: (t, False)),
)


def bad_path(workdir: Path, *, for_output: bool = False) -> st.SearchStrategy:
    """Paths that are not a usable run folder: a file, under a file, on /proc, empty, with NUL; and, to read
    from (``for_output`` False), a missing folder or a relative name that does not exist."""
    afile = workdir / "a-file"
    afile.write_text("x")
    paths = [str(afile), str(afile / "below"), "/proc/x", "", "a\0b"]
    return st.sampled_from(paths if for_output else [*paths, str(workdir / "missing"), "\n"])


@given(data=st.data())
def test_fuzzed_generate(runs, workdir, data):
    which = data.draw(st.sampled_from(["toy", "bytes"]))
    run, run_ok = data.draw(st.one_of(st.just((str(runs[which]), True)), bad_path(workdir).map(lambda p: (p, False))))
    options = {
        "--tokens": int_arg(0, cli.MAX_GENERATE_TOKENS, valid_hi=12),
        "--temperature": TEMPERATURE,
        "--top-k": int_arg(0, 2**24, valid_hi=400),
        "--seed": int_arg(0, 2**63 - 1),
    }
    argv, valid = ["generate", "--run", run], run_ok
    for flag in data.draw(st.lists(st.sampled_from(sorted(options)), unique=True)):
        text, ok = data.draw(options[flag])
        argv += [f"{flag}={text}"]
        valid = valid and ok
    prompt_known = True
    if data.draw(st.booleans()):
        if which == "bytes":  # any characters, lone surrogates (argv bytes that are not UTF-8) too
            prompt = data.draw(st.text(max_size=30) | st.just("\udcff\udcfe\0"))
        else:
            prompt = data.draw(st.lists(st.sampled_from(["<bos>", "a", "this", "every", ".", "some"]), max_size=6).map(" ".join))
            if data.draw(st.booleans()):
                prompt += data.draw(st.text(max_size=10))
                prompt_known = False
        argv += [f"--prompt={prompt}"]
    expected = {0, 2} if valid and not prompt_known else ({0} if valid else {2})
    check_outcome(run_cli(argv, TIME_LIMIT), expected, argv)


@given(data=st.data())
def test_fuzzed_eval(runs, workdir, data):
    run, run_ok = data.draw(st.one_of(st.just((str(runs["toy"]), True)), bad_path(workdir).map(lambda p: (p, False))))
    batches, ok = data.draw(int_arg(1, 10**4, valid_hi=2))
    argv = ["eval", "--run", run, "--batches", batches] + (["--json"] if data.draw(st.booleans()) else [])
    result = run_cli(argv, TIME_LIMIT)
    check_outcome(result, {0} if run_ok and ok else {2}, argv)
    if result[0] == 0 and "--json" in argv:
        json.loads(result[1], parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))


@given(data=st.data())
def test_fuzzed_train_arguments(runs, workdir, data):
    folder = fresh_dir(workdir)
    try:
        config = folder / "c.json"
        config.write_text(json.dumps({**TINY, "model": {**TINY["model"], "context": 40}}))  # 40: fits locality_tiny too
        out, out_ok = data.draw(
            st.one_of(st.just((str(folder / "run"), True)), bad_path(workdir, for_output=True).map(lambda p: (p, False)))
        )
        argv, valid = ["train", "--out", out, "--quiet"], out_ok
        if data.draw(st.booleans()):
            until, ok = data.draw(int_arg(1, 10**9, valid_hi=2))
            argv += [f"--until={until}"]
            valid = valid and ok
        else:
            argv += ["--until", "1"]
        choice = data.draw(st.sampled_from(["config", "missing", "dir", "nul", "none"]))
        argv += {"config": ["--config", str(config)], "missing": ["--config", str(folder / "none.json")],
                 "dir": ["--config", str(folder)], "nul": ["--config", "c\0.json"], "none": []}[choice]
        valid = valid and choice in ("config", "none")
        preset = data.draw(st.one_of(st.none(), st.just("locality_tiny"), st.text(max_size=10)))
        if preset is not None:
            argv += ["--preset", preset]
            valid = valid and preset == "locality_tiny"
        resume, force = data.draw(st.booleans()), data.draw(st.booleans())
        argv += ["--resume"] * resume + ["--force"] * force
        valid = valid and not resume  # a fresh folder holds no checkpoint to resume
        check_outcome(run_cli(argv, TIME_LIMIT), {0, 3} if valid else {2}, argv)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@given(data=st.data())
def test_fuzzed_proofs_arguments(data):
    examples, examples_ok = data.draw(int_arg(1, cli.MAX_EXAMPLES, valid_hi=3))
    mechanism = data.draw(st.one_of(st.none(), st.just("CORE"), st.text(max_size=8).filter(lambda t: t not in ("CORE", "LOC"))))
    mechanism_ok = mechanism in (None, "CORE")
    if examples_ok and mechanism_ok:  # every draw is invalid somewhere: a valid one would run the whole catalogue
        examples, examples_ok = "-1", False
    argv = ["proofs", f"--examples={examples}"] + ([f"--mechanism={mechanism}"] if mechanism is not None else [])
    check_outcome(run_cli(argv, TIME_LIMIT), {2}, argv)


@given(data=st.data())
def test_fuzzed_locality_sweep_arguments(workdir, data):
    lam_bad = st.sampled_from(["nan", "inf", "-0.5", "1.5", "abc", ""])
    invalid = {
        "--lambdas": st.lists(lam_bad, min_size=1, max_size=3),
        "--seeds": st.lists(st.sampled_from(["-1", "abc", "1.5", ""]), min_size=1, max_size=2),
        "--steps": st.sampled_from(["0", "-5", "abc", "nan"]).map(lambda t: [t]),
        "--eval-docs": st.sampled_from(["0", "-1", "x"]).map(lambda t: [t]),
        "--mode": st.text(max_size=6).filter(lambda t: t not in ("redial", "retrain", "both")).map(lambda t: [t]),
        "--preset": st.text(max_size=6).map(lambda t: [t + "?"]),
        "--schedule-power": st.sampled_from(["abc", "nan", ""]).map(lambda t: [t]),
        "--text": st.just([str(workdir / "no-such.txt")]),
    }
    valid = {
        "--lambdas": st.lists(st.sampled_from(["0", "0.5", "1"]), min_size=1, max_size=3),
        "--seeds": st.lists(st.sampled_from(["0", "1"]), min_size=1, max_size=2),
        "--steps": st.sampled_from(["1", str(10**30)]).map(lambda t: [t]),
        "--eval-docs": st.just(["4"]),
    }
    bad = data.draw(st.lists(st.sampled_from(sorted(invalid)), min_size=1, max_size=3, unique=True))
    good = data.draw(st.lists(st.sampled_from(sorted(set(valid) - set(bad))), max_size=2, unique=True))
    argv = ["locality", "sweep", "--out", str(workdir / "sweep"), "--quiet"]
    for flag in bad:
        argv += [flag, *data.draw(invalid[flag])]
    for flag in good:
        argv += [flag, *data.draw(valid[flag])]
    check_outcome(run_cli(argv, TIME_LIMIT), {2}, argv)
