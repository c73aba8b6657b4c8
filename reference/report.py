"""Output shared by every command: tables, checks, HTML pages, and the report of a run.

* :func:`render_table` — one table renderer for the terminal, Markdown and HTML;
* :func:`mean_sd` and :func:`mean_sd_cell` — the "mean ± sd over seeds" cell;
* :func:`render_checks` — a list of pass / FAIL / n/a checks in the same three forms;
* :func:`page` — the one HTML page shell;
* :func:`write_report` — ``report.html`` + ``loss.png`` of a run folder. Mechanisms add
  their own parts as :class:`Section` objects (a title, an HTML fragment, the PNGs it shows).

Experiments use these and write no page shells or table layouts of their own.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = ("text", "markdown", "html")


def mean_sd(values: Sequence[Any]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof 1; 0 for one value) of the values that are not None.

    (None, None) when every value is None: a metric that does not apply stays null.
    """
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None
    mean = float(np.mean(present))
    return mean, float(np.std(present, ddof=1)) if len(present) > 1 else 0.0


def mean_sd_cell(mean: float | None, sd: float | None, spec: str = "{:.3f}") -> str:
    """``"2.392 ± 0.261"``, or ``"null"`` when the mean is None."""
    if mean is None:
        return "null"
    return f"{spec.format(mean)} ± {'null' if sd is None else spec.format(sd)}"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "text", *, align: str | None = None) -> str:
    """A table as aligned text, a Markdown table or an HTML ``<table>`` fragment.

    Cells are printed with ``str``; HTML cells are escaped. ``align`` (text only) gives
    one of ``<`` or ``>`` per column (default: all left).
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt: {fmt!r} is not one of {FORMATS}")
    cells = [[str(c) for c in row] for row in rows]
    if fmt == "html":
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
        return f"<table><tr>{head}</tr>{body}</table>"
    if fmt == "markdown":
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
    align = align or "<" * len(headers)
    widths = [max(len(h), *(len(row[k]) for row in cells)) if cells else len(h) for k, h in enumerate(headers)]
    line = "  ".join(f"{h:{a}{w}}" for h, a, w in zip(headers, align, widths)).rstrip()
    out = [line, "-" * len(line)]
    out += ["  ".join(f"{c:{a}{w}}" for c, a, w in zip(row, align, widths)).rstrip() for row in cells]
    return "\n".join(out)


VERDICTS = {True: "pass", False: "FAIL", None: "n/a"}


def render_checks(checks: Sequence[dict], fmt: str = "text") -> str:
    """Checks ``{id, passed (True | False | None), text}`` as ``[ok  ] E1: …`` lines, a Markdown list or HTML."""
    if fmt == "text":
        flags = {True: "ok  ", False: "FAIL", None: "n/a "}
        return "\n".join(f"[{flags[c['passed']]}] {c['id']}: {c['text']}" for c in checks)
    if fmt == "markdown":
        return "\n".join(f"- {c['id']}: {VERDICTS[c['passed']]} — {c['text']}" for c in checks)
    items = "".join(f"<li>{html.escape(c['id'])}: {VERDICTS[c['passed']]} — {html.escape(c['text'])}</li>" for c in checks)
    return f"<ul>{items}</ul>"


STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
    "pre{background:#f6f6f6;padding:1em;overflow:auto}"
)


def page(title: str, body: str) -> str:
    """A whole HTML page around ``body`` (trusted HTML made by clearform), with the shared style."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


@dataclass
class Section:
    """One part of the report: ``body`` is trusted HTML made by clearform itself."""

    title: str
    body: str
    images: list[str] = field(default_factory=list)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` in order."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_losses(records: list[dict], path: Path) -> None:
    """Training loss, validation loss and the unigram baseline against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    unigram = next((r["unigram_loss"] for r in records if "unigram_loss" in r), None)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        ax.plot(*zip(*train), label="training loss", color="#4C72B0", linewidth=1.2)
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss", color="#DD8452")
    if unigram is not None:
        ax.axhline(unigram, linestyle="--", color="gray", label=f"unigram baseline ({unigram:.3f})")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(run_dir: str | Path, title: str = "clearform run", sections: list[Section] | None = None) -> Path:
    """Write ``run_dir/report.html`` (and ``loss.png``); returns the HTML path."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    plot_losses(records, run_dir / "loss.png")
    last_eval = next((r for r in reversed(records) if "val_loss" in r), {})
    summary = [(k, f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in last_eval.items()]
    if "val_loss" in last_eval and "unigram_loss" in last_eval:
        gain = 1.0 - last_eval["val_loss"] / last_eval["unigram_loss"]
        summary.append(("below unigram", f"{100 * gain:.1f} %"))
    config_path = run_dir / "config.json"
    config_text = config_path.read_text() if config_path.exists() else "{}"
    parts = [
        Section("Final evaluation", render_table(("metric", "value"), summary, "html")),
        Section("Loss", '<img src="loss.png" alt="loss curves">', ["loss.png"]),
        *(sections or []),
        Section("Configuration", f"<pre>{html.escape(config_text)}</pre>"),
    ]
    body = "".join(f"<section><h2>{html.escape(s.title)}</h2>{s.body}</section>" for s in parts)
    out = run_dir / "report.html"
    out.write_text(page(title, body))
    return out
