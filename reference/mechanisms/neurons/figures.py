"""The NEU figures (spec §6.3): activation histograms by category, zone associations, next-layer enrichment.

Matplotlib with the Agg backend, imported when a figure is drawn. Every figure is a pure function of
neurons.json's content (plus ā over V_elig for the histograms), so it can be redrawn from a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pick_neurons(neurons: list[dict], rows: list[dict], layer: int) -> list[int]:
    """Six neurons of a layer: the 3 smallest zone-0 p-values (ties: larger association, smaller id), then 25/50/75%."""
    zero = [r for r in rows if r["layer"] == layer and r["zone"] == 0 and r["p_value"] is not None]
    best = sorted(zero, key=lambda r: (r["p_value"], -(r["association"] or 0.0), r["neuron"]))[:3]
    ids = sorted(n["neuron"] for n in neurons if n["layer"] == layer)
    chosen = [r["neuron"] for r in best]
    for q in (0.25, 0.5, 0.75):
        rest = [j for j in ids if j not in chosen]
        if rest:  # the id at this quantile of the sorted ids, or the next one not yet shown
            at = ids[min(len(ids) - 1, int(q * len(ids)))]
            chosen.append(next((j for j in rest if j >= at), rest[-1]))
    return chosen[:6]


def histograms(path: Path, layer: int, chosen: list[int], abar: np.ndarray, column_of: dict[int, int], cats: np.ndarray,
               names: list[str], boundaries: dict[int, list[float]]) -> None:
    """2×3 stacked histograms of ā over V_elig (30 bins) coloured by category; dashed zone bounds, solid core threshold.

    boundaries[j] = [threshold of zone 1, …, of zone Z−1, core minimum].
    """
    plt = _plt()
    k = len(names)
    if k <= 20:
        order = list(range(k))
    else:  # the 19 largest categories, the rest grey "other"
        sizes = np.bincount(cats, minlength=k)
        order = list(np.argsort(-sizes, kind="stable")[:19])
    cmap = plt.get_cmap("tab10" if len(order) <= 10 else "tab20")
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, j in zip(axes.ravel(), chosen):
        a = abar[:, column_of[j]]
        bins = np.linspace(a.min(), a.max() if a.max() > a.min() else a.min() + 1.0, 31)
        groups = [a[cats == c] for c in order]
        labels = [names[c] for c in order]
        colors = [cmap(i) for i in range(len(order))]
        if k > 20:
            groups.append(a[~np.isin(cats, order)])
            labels.append("other")
            colors.append((0.6, 0.6, 0.6, 1.0))
        ax.hist(groups, bins=bins, stacked=True, color=colors, label=labels)
        bounds = boundaries.get(j, [])
        for b in bounds[:-1]:
            ax.axvline(b, color="k", linestyle="--", linewidth=0.8)
        if bounds:
            ax.axvline(bounds[-1], color="k", linewidth=1.2)
        ax.set_title(f"block {layer}, neuron {j}", fontsize=9)
        ax.set_xlabel("mean activation ā")
    for ax in axes.ravel()[len(chosen):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(10, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def zone_plot(path: Path, layers: list[dict]) -> None:
    """Mean association per zone with its 95% CI, and mean zone-match V / NMI / ARI, per layer."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for s in layers:
        zs = [z for z in s["zones"] if z["mean_association"] is not None]
        if not zs:
            continue
        x = [z["zone"] for z in zs]
        y = [z["mean_association"] for z in zs]
        lo = [y_ - (z["ci_low"] if z["ci_low"] is not None else y_) for y_, z in zip(y, zs)]
        hi = [(z["ci_high"] if z["ci_high"] is not None else y_) - y_ for y_, z in zip(y, zs)]
        left.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=f"layer {s['layer']}")
        for key, style in (("mean_cramers_v", "-"), ("mean_nmi", "--"), ("mean_ari", ":")):
            right.plot(x, [z[key] for z in zs], style, marker=".", label=f"{key[5:]} L{s['layer']}")
    zones = sorted({z["zone"] for s in layers for z in s["zones"]})
    for ax in (left, right):
        ax.set_xticks(zones)
    left.axhline(0, color="grey", linewidth=0.8)
    left.set_xlabel("zone (0 = highest activation)")
    left.set_ylabel("mean association A_z (95% CI)")
    left.legend(fontsize=8)
    right.set_xlabel("zone")
    right.set_ylabel("mean zone-match statistic")
    right.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def next_plot(path: Path, summaries: list[dict[str, Any]]) -> None:
    """Mean enrichment per zone, precursors vs controls, one line pair per layer pair."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for s in summaries:
        for role, style in (("precursor", "-o"), ("control", "--s")):
            values = s[f"mean_enrichment_{role}"]
            x = [i for i, v in enumerate(values) if v is not None]
            ax.plot(x, [values[i] for i in x], style, label=f"{role}s {s['layer_from']}→{s['layer_to']}")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("zone of the block-ℓ neuron (0 = highest)")
    ax.set_ylabel("mean enrichment of the target's core tokens")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
