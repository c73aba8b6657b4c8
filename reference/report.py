"""An HTML report of a run, with PNG plots next to it.

``write_report(run_dir)`` reads ``metrics.jsonl`` and writes ``loss.png`` and
``report.html``. Mechanisms add their own parts as :class:`Section` objects
(a title, an HTML fragment, and the PNG files it shows).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path


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


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


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
        Section("Final evaluation", _table(summary)),
        Section("Loss", '<img src="loss.png" alt="loss curves">', ["loss.png"]),
        *(sections or []),
        Section("Configuration", f"<pre>{html.escape(config_text)}</pre>"),
    ]
    body = "".join(f"<section><h2>{html.escape(s.title)}</h2>{s.body}</section>" for s in parts)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    out = run_dir / "report.html"
    out.write_text(page)
    return out
