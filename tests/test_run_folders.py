"""Run folders are tamper-evident and crash-safe: every edit is refused, every crash point recovers.

Two layers are tested: the SHA-256 seals (an edit clearform did not make is refused), and,
behind them, the field-by-field validation of ``state.json`` (a sealed but wrong state —
a bug, or a seal recomputed by hand — is refused too). The crash-point test interrupts a
checkpoint after every single file operation and checks that eval, generate and resume
still work and that the resumed run ends bit-identical to a straight one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_harness import FILE_KINDS, swap_file_kind  # noqa: E402  (tests/ is on sys.path)
from safetensors.numpy import load_file, save_file

from reference import checkpoint
from reference.checkpoint import CheckpointError, _sealed, load_checkpoint, load_weights
from reference.cli import main
from reference.config import RunConfig
from reference.train import Trainer

TINY = {
    "model": {"d_model": 8, "n_layers": 1, "n_heads": 2, "context": 24},
    "train": {"steps": 6, "batch_size": 2, "warmup": 1, "eval_every": 3, "eval_batches": 1, "checkpoint_every": 2,
              "log_every": 1},
}


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight") / "run"
    Trainer(RunConfig().overridden(TINY), out, progress=False).train()
    return out


@pytest.fixture
def run_copy(straight, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(straight, out)
    return out


def exit_and_stderr(args, capsys) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    return code, err


def edit_json(path: Path, change, reseal: bool = False) -> None:
    record = json.loads(path.read_text())
    change(record)
    if reseal:
        record = _sealed({k: v for k, v in record.items() if k != "sha256"})
    path.write_text(json.dumps(record))


def reseal_state(folder: Path, change) -> None:
    """Change state.json's record, refresh the file hashes it lists, and seal it again (as a buggy writer would)."""
    path = folder / "state.json"
    record = {k: v for k, v in json.loads(path.read_text()).items() if k != "sha256"}
    change(record)
    if isinstance(record.get("files"), dict):
        record["files"] = {name: checkpoint._sha256((folder / name).read_bytes()) for name in record["files"]}
    path.write_text(json.dumps(_sealed(record)))


# --------------------------------------------------------------------------- tampering (class 1)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r["run"]["model"].__setitem__("n_heads", 4),
        lambda r: r["run"]["model"].__setitem__("gelu", "erf"),
        lambda r: r["run"]["model"].__setitem__("norm", "post"),
        lambda r: r["run"]["model"].__setitem__("causal", False),
        lambda r: r["run"]["model"].__setitem__("ln_eps", 1e-3),
        lambda r: r.pop("weights_sha256"),
        lambda r: r.pop("sha256"),
    ],
    ids=["n_heads", "gelu", "norm", "causal", "ln_eps", "no weights hash", "no seal"],
)
def test_an_edited_config_json_is_refused_by_eval_and_generate(run_copy, change, capsys):
    edit_json(run_copy / "config.json", change)
    for args in (["eval", "--run", str(run_copy)], ["generate", "--run", str(run_copy), "--tokens", "2"]):
        code, err = exit_and_stderr(args, capsys)
        assert code == 2 and "config.json" in err


def test_flipped_weights_are_refused(run_copy, capsys):
    data = bytearray((run_copy / "model.safetensors").read_bytes())
    data[-3] ^= 0x40
    (run_copy / "model.safetensors").write_bytes(bytes(data))
    code, err = exit_and_stderr(["eval", "--run", str(run_copy)], capsys)
    assert code == 2 and "SHA-256" in err


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.__setitem__("files", {}),
        lambda r: r["state"].__setitem__("step", 1000),
        lambda r: r["state"]["optimizer"].__setitem__("beta1", 5),
        lambda r: r["state"]["optimizer"].__setitem__("eps", -1),
        lambda r: r["state"]["optimizer"].__setitem__("groups", []),
    ],
    ids=["files emptied", "step past steps", "beta1 5", "eps -1", "no groups"],
)
@pytest.mark.parametrize("reseal", [False, True], ids=["edited", "edited and resealed"])
def test_an_edited_state_json_is_refused_by_resume(run_copy, change, reseal, capsys):
    folder = run_copy / "checkpoint"
    if reseal:
        reseal_state(folder, change)
    else:
        edit_json(folder / "state.json", change)
    code, err = exit_and_stderr(["train", "--out", str(run_copy), "--resume", "--quiet"], capsys)
    assert code == 2 and "state.json" in err


# --------------------------------------------------------------------------- malformed state (class 2)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.__setitem__("files", ["model.safetensors"]),
        lambda r: r.__setitem__("files", None),
        lambda r: r["state"].pop("rng"),
        lambda r: r["state"]["rng"].__setitem__("bit_generator", "MT19937"),
        lambda r: r["state"].__setitem__("step", "abc"),
        lambda r: r["state"].__setitem__("step", None),
        lambda r: r["state"]["optimizer"].__setitem__("groups", "all"),
        lambda r: r["state"]["optimizer"]["steps"].__setitem__("embed.tok", 99),
    ],
    ids=["files a list", "files null", "rng missing", "rng MT19937", "step abc", "step null", "groups a string",
         "a parameter's step past the run's"],
)
def test_a_malformed_sealed_state_is_refused_in_one_line(run_copy, change, capsys):
    reseal_state(run_copy / "checkpoint", change)
    code, err = exit_and_stderr(["train", "--out", str(run_copy), "--resume", "--quiet"], capsys)
    assert code == 2 and "state.json" in err


@pytest.mark.parametrize(
    "change",
    [
        lambda m: {**m, "m.embed.tok": m["m.embed.tok"].T.copy()},
        lambda m: {**m, "m.embed.tok": m["m.embed.tok"].ravel().copy()},
        lambda m: {**{k: v for k, v in m.items() if k != "v.embed.tok"}, "v.embed.other": m["v.embed.tok"]},
        lambda m: {**m, "m.embed.tok": m["m.embed.tok"].astype(np.int32)},
        lambda m: {**m, "v.embed.tok": -np.abs(m["v.embed.tok"]) - 1.0},
    ],
    ids=["transposed", "flattened", "renamed", "int32", "negative second moment"],
)
def test_wrong_optimizer_moments_are_refused(run_copy, change, capsys):
    folder = run_copy / "checkpoint"
    save_file(change(load_file(folder / "optimizer.safetensors")), folder / "optimizer.safetensors")
    reseal_state(folder, lambda r: None)
    code, err = exit_and_stderr(["train", "--out", str(run_copy), "--resume", "--quiet"], capsys)
    assert code == 2 and ("moment" in err or "optimizer" in err)


def test_a_non_json_metrics_line_is_refused_on_resume(run_copy, capsys):
    with open(run_copy / "metrics.jsonl", "a") as handle:
        handle.write("not json\n")
    code, err = exit_and_stderr(["train", "--out", str(run_copy), "--resume", "--quiet"], capsys)
    assert code == 2 and "metrics.jsonl" in err


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_a_directory_in_place_of_a_file_is_refused(run_copy, name, capsys):
    (run_copy / name).unlink()
    (run_copy / name).mkdir()
    code, err = exit_and_stderr(["eval", "--run", str(run_copy)], capsys)
    assert code == 2 and name in err


# --------------------------------------------------------------------------- crash points (class 7)


class Crash(BaseException):
    """A simulated kill: not an Exception, so nothing in clearform catches it."""


def checkpoint_operations(tmp_path: Path) -> list[tuple[str, str]]:
    """The file operations of one trainer checkpoint (checkpoint/ then the top-level pair), in order."""
    seen: list[tuple[str, str]] = []
    trainer = Trainer(RunConfig().overridden(TINY), tmp_path / "count", progress=False)
    trainer.train(until=2)
    checkpoint.FILE_OPERATION_HOOK = lambda op, path: seen.append((op, Path(path).name))
    try:
        trainer.checkpoint()
    finally:
        checkpoint.FILE_OPERATION_HOOK = None
    return seen


def test_every_crash_point_of_a_checkpoint_recovers_bit_identically(straight, tmp_path, capsys):
    operations = checkpoint_operations(tmp_path)
    assert len(operations) >= 12 and ("rename", "checkpoint") in operations  # the swap is among them
    final = load_checkpoint(straight)[0]
    metrics = (straight / "metrics.jsonl").read_bytes()
    for k in range(len(operations)):
        out = tmp_path / f"crash{k}"
        trainer = Trainer(RunConfig().overridden(TINY), out, progress=False)
        trainer.train(until=2)
        count = iter(range(10**6))

        def crash_at_k(op, path, k=k, count=count):
            if next(count) == k:
                raise Crash(f"{op} {path}")

        checkpoint.FILE_OPERATION_HOOK = crash_at_k
        try:
            with pytest.raises(Crash):
                trainer.train(until=4)  # the crash hits the checkpoint written at step 4
        finally:
            checkpoint.FILE_OPERATION_HOOK = None
        # the newest complete copy is the one used: step 4 once its state.json was in place, else step 2
        sealed = operations.index(("rename", "state.json"))
        assert load_checkpoint(out)[3]["step"] == (4 if k >= sealed else 2), (k, operations[k])
        for args in (["eval", "--run", str(out), "--json"], ["generate", "--run", str(out), "--tokens", "3"]):
            code, err = exit_and_stderr(args, capsys)
            assert code == 0, (k, operations[k], err)
        code, err = exit_and_stderr(["train", "--out", str(out), "--resume", "--quiet"], capsys)
        assert code == 0, (k, operations[k], err)
        resumed = load_checkpoint(out)[0]
        assert all(np.array_equal(resumed[name], final[name]) for name in final), (k, operations[k])
        assert (out / "metrics.jsonl").read_bytes() == metrics, (k, operations[k])
        assert not (out / "checkpoint.tmp").exists() and not (out / "checkpoint.old").exists()


def test_an_interrupted_weights_commit_is_finished_on_load(run_copy):
    """Crash between the two renames of save_weights: new weights, old config, new config pending."""
    params, run = load_weights(run_copy)
    changed = {k: v + 1 for k, v in params.items()}
    count = iter(range(100))

    def stop_after_first_rename(op, path):
        if op == "rename" and next(count) == 0:
            raise Crash(path)

    checkpoint.FILE_OPERATION_HOOK = stop_after_first_rename
    try:
        with pytest.raises(Crash):
            checkpoint.save_weights(run_copy, changed, run)
    finally:
        checkpoint.FILE_OPERATION_HOOK = None
    assert (run_copy / "config.json.tmp").exists()
    loaded, _ = load_weights(run_copy)
    assert all(np.array_equal(loaded[k], changed[k]) for k in changed)
    assert not (run_copy / "config.json.tmp").exists()


def test_a_lone_old_copy_is_recovered_and_a_partial_tmp_ignored(run_copy):
    """Only checkpoint.old and a half-written checkpoint.tmp left: the old copy is verified and moved into place."""
    (run_copy / "checkpoint").rename(run_copy / "checkpoint.old")
    shutil.copytree(run_copy / "checkpoint.old", run_copy / "checkpoint.tmp")
    (run_copy / "checkpoint.tmp" / "state.json").unlink()
    state = load_checkpoint(run_copy)[3]
    assert state["step"] == 6 and (run_copy / "checkpoint").is_dir() and not (run_copy / "checkpoint.old").exists()


def test_a_damaged_checkpoint_in_place_is_never_skipped_for_an_older_copy(run_copy):
    shutil.copytree(run_copy / "checkpoint", run_copy / "checkpoint.old")
    edit_json(run_copy / "checkpoint" / "state.json", lambda r: r["state"].__setitem__("step", 3))
    with pytest.raises(CheckpointError, match="seal"):
        load_checkpoint(run_copy)


# --------------------------------------------------------------------------- JSON readers of a run (class 3)

BAD_JSON = {
    "invalid UTF-8": b'{"format": "\xff\xfe"}',
    "10,000-deep nesting": b"[" * 10_000 + b"]" * 10_000,
    "a 4,301-digit integer": b'{"version": ' + b"9" * 4301 + b"}",
    "NaN": b'{"version": NaN}',
    "empty": b"",
}


@pytest.mark.parametrize("content", list(BAD_JSON.values()), ids=list(BAD_JSON))
@pytest.mark.parametrize("target", ["config.json", "checkpoint/config.json", "checkpoint/state.json"])
def test_bad_json_in_a_run_folder_is_one_line_exit_2(run_copy, target, content, capsys):
    (run_copy / target).write_bytes(content)
    args = ["eval", "--run", str(run_copy)] if target == "config.json" else ["train", "--out", str(run_copy), "--resume", "--quiet"]
    code, err = exit_and_stderr(args, capsys)
    assert code == 2 and Path(target).name in err


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "directory"])
def test_a_special_file_in_place_of_config_json_does_not_hang(run_copy, special, capsys):
    import os

    target = run_copy / "config.json"
    target.unlink()
    if special == "fifo":
        os.mkfifo(target)
    elif special == "directory":
        target.mkdir()
    else:
        target.symlink_to(special)
    code, err = exit_and_stderr(["eval", "--run", str(run_copy)], capsys)
    assert code == 2 and "config.json" in err


# --------------------------------------------------------------------------- divergence messages (class 8)


def test_a_divergence_names_only_a_checkpoint_that_exists(tmp_path):
    from reference.train import TrainingDiverged

    trainer = Trainer(RunConfig().overridden(TINY), tmp_path / "nan", progress=False)
    trainer.params["embed.tok"][:] = np.nan
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet"):
        trainer.train_step()
    trainer = Trainer(RunConfig().overridden(TINY), tmp_path / "later", progress=False)
    trainer.train(until=2)
    trainer.params["embed.tok"][:] = np.nan
    with pytest.raises(TrainingDiverged, match=str(tmp_path / "later" / "checkpoint")):
        trainer.train_step()


# --------------------------------------------------------------------------- fuzzing (Hypothesis)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Every file that defines the model or the run (metrics.jsonl is a log, not covered by the seals).
SEALED_FILES = ("config.json", "model.safetensors", "checkpoint/config.json", "checkpoint/model.safetensors",
                "checkpoint/optimizer.safetensors", "checkpoint/state.json")


@st.composite
def mutations(draw):
    target = draw(st.sampled_from(SEALED_FILES))
    kinds = ["flip", "truncate", "append", "swap", "edit", "edit", "edit", *FILE_KINDS]
    kind = draw(st.sampled_from(kinds))  # three "edit"s: the seal's own case is drawn most
    return target, kind, draw(st.integers(0, 2**31)), draw(st.integers(0, 7)), draw(st.binary(min_size=1, max_size=16))


def _leaves(value, path=()):
    """Paths (tuples of keys / indices) to every leaf of a JSON value."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def mutate(folder: Path, target: str, kind: str, where: int, bit: int, extra: bytes) -> None:
    path = folder / target
    if kind in FILE_KINDS:  # the file replaced by another kind of file, or gone
        swap_file_kind(path, kind)
        return
    data = bytearray(path.read_bytes())
    if kind == "flip":
        data[where % len(data)] ^= 1 << bit
    elif kind == "truncate":
        data = data[: where % len(data)]
    elif kind == "append":
        data += extra
    elif kind == "edit" and target.endswith(".json"):  # a valid JSON edit of one leaf value, not resealed
        record = json.loads(data)
        leaves = list(_leaves(record))
        keys = leaves[where % len(leaves)]
        parent = record
        for key in keys[:-1]:
            parent = parent[key]
        value = parent[keys[-1]]
        parent[keys[-1]] = (not value) if isinstance(value, bool) else value + 1 if isinstance(value, (int, float)) \
            else (value + "x") if isinstance(value, str) else [value] if value is not None else 0
        data = bytearray(json.dumps(record, indent=2).encode())
    elif kind == "edit":
        data[where % len(data)] ^= 1 << bit
    else:  # swap with the same file of the other copy (top level <-> checkpoint/), when they differ
        twin = target.replace("checkpoint/", "") if target.startswith("checkpoint/") else f"checkpoint/{target}"
        other = folder / twin
        data = bytearray(other.read_bytes() if other.exists() else path.read_bytes())
        if data == path.read_bytes():  # identical copies (the last step): swapping is no edit; flip a byte instead
            data[where % len(data)] ^= 1 << bit
    path.write_bytes(bytes(data))


@given(mutations())
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_no_edited_run_file_is_ever_accepted(straight, tmp_path_factory, mutation):
    """A byte flip, a truncation, appended bytes, a file swapped between copies or for a directory, FIFO,
    /dev/zero or nothing, an unsealed JSON edit: eval (top level) or resume
    (checkpoint/) exits 2 with one line; never 0 on an edited file, never a traceback or a hang."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(straight, out)
    target, *rest = mutation
    mutate(out, target, *rest)
    args = ["eval", "--run", str(out)] if "/" not in target else ["train", "--out", str(out), "--resume", "--quiet"]
    result = subprocess.run([sys.executable, "-m", "reference.cli", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, (mutation, result.returncode, result.stderr[-300:])
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_sigkill_during_training_leaves_a_run_that_resumes_bit_identically(tmp_path):
    """Real kills (SIGKILL of a `clearform train` subprocess at several moments), not simulated ones."""
    import signal
    import subprocess
    import sys
    import time

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**TINY, "train": {**TINY["train"], "steps": 400, "checkpoint_every": 1}}))
    straight_run = tmp_path / "straight"
    subprocess.run([sys.executable, "-m", "reference.cli", "train", "--config", str(config), "--out", str(straight_run),
                    "--quiet"], check=True, capture_output=True, timeout=300)
    final = load_checkpoint(straight_run)[0]
    resumed_runs = 0
    for delay in (1.5, 2.2, 3.1):
        out = tmp_path / f"killed{delay}"
        proc = subprocess.Popen([sys.executable, "-m", "reference.cli", "train", "--config", str(config), "--out", str(out),
                                 "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if not alive:
            continue  # it had already finished: no kill happened
        if not (out / "checkpoint").exists() and not (out / "checkpoint.tmp").exists():
            continue  # killed before the first checkpoint: nothing to resume (the next delay is later)
        done = subprocess.run([sys.executable, "-m", "reference.cli", "train", "--out", str(out), "--resume", "--quiet"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (delay, done.stderr)
        resumed = load_checkpoint(out)[0]
        assert all(np.array_equal(resumed[name], final[name]) for name in final), delay
        assert (out / "metrics.jsonl").read_bytes() == (straight_run / "metrics.jsonl").read_bytes(), delay
        resumed_runs += 1
    assert resumed_runs >= 2  # the kills landed mid-training, not before the first checkpoint
