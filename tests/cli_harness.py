"""Helpers of the boundary tests: ``clearform`` in-process (captured output, a hang limit), the tiny config,
and replacing a file by another kind of file.

Shared by ``test_limits.py``, ``test_fuzz_cli.py``, ``test_fuzz_hf.py`` and ``test_run_folders.py``
(``tests/`` is on ``sys.path``, as for ``gradcheck``).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import time
from pathlib import Path

from reference import cli

TINY = {
    "model": {"d_model": 8, "n_layers": 1, "n_heads": 2, "context": 24},
    "train": {"steps": 4, "batch_size": 1, "warmup": 0, "eval_every": 0, "eval_batches": 1, "checkpoint_every": 2},
}
"""A run that trains in milliseconds."""


class Hang(BaseException):
    """Raised by the alarm of :func:`deadline`: not an Exception, so the CLI's last-resort handler cannot swallow it."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise :class:`Hang` in the block once it runs past ``seconds``: a hang fails the test instead of stalling it."""

    def alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(argv: list[str], limit: float = 30.0) -> tuple[int, str, str, float]:
    """``clearform ARGV`` in-process: (exit status, stdout, stderr, seconds); argparse's exits are caught too."""
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), deadline(limit):
        try:
            status = cli.main(list(argv))
        except SystemExit as exc:  # argparse
            status = exc.code if isinstance(exc.code, int) else 2
    return status, out.getvalue(), err.getvalue(), time.perf_counter() - start


FILE_KINDS = ("directory", "fifo", "dev-zero", "dev-null", "missing")


def swap_file_kind(path: Path, kind: str) -> None:
    """Replace the regular file ``path`` by a directory, a FIFO, a link to /dev/zero or /dev/null, or nothing."""
    path.unlink()
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind in ("dev-zero", "dev-null"):
        path.symlink_to("/dev/" + kind[len("dev-"):])
    elif kind != "missing":
        raise ValueError(f"kind: {kind!r} is not one of {FILE_KINDS}")
