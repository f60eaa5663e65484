"""results.png: single-row latency (p50 bars, p99 whiskers, c=1 and c=8) and 1000-row throughput per path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from benchmark.report import BATCH_ROWS_PER_S, HTTP_P50_MS, IN_PROCESS_MS, PathResult, fmt_ms

C1, C8, BATCH = "#1f77b4", "#ff7f0e", "#2ca02c"


def write_chart(results: Sequence[PathResult], path: Path, title: str) -> Path:
    measured = [r for r in results if r.c1 or r.c8 or r.batch]
    names = [r.name for r in measured][::-1]  # first path on top
    rows = measured[::-1]
    height = 0.38
    fig, (latency, throughput) = plt.subplots(
        1, 2, figsize=(14, 0.55 * len(rows) + 2.2), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    ys = range(len(rows))
    for offset, attr, color, label in ((height / 2, "c1", C1, "c=1"), (-height / 2, "c8", C8, "c=8")):
        for y, r in zip(ys, rows, strict=True):
            s = getattr(r, attr)
            if s is None:
                continue
            latency.barh(y + offset, s.p50_ms, height, color=color, label=label)
            latency.plot([s.p50_ms, s.p99_ms], [y + offset] * 2, color="black", linewidth=1)
            latency.plot([s.p99_ms], [y + offset], marker="|", color="black", markersize=8)
            end = max(s.p50_ms, s.p99_ms)
            latency.annotate(f" {fmt_ms(s.p50_ms)} / {fmt_ms(s.p99_ms)}", (end, y + offset), va="center", fontsize=7)
            label = None  # one legend entry per series
    _goal(latency, IN_PROCESS_MS, "1 ms")
    _goal(latency, HTTP_P50_MS, "3 ms")
    latency.set_xscale("log")
    latency.set_xlabel(
        "single-row latency, ms (log scale): bar p50, whisker to p99, labels p50 / p99\n"
        "goals (dashed): in-process p50 1 ms, HTTP p50 3 ms"
    )
    latency.legend(loc="lower right", fontsize=8)
    for y, r in zip(ys, rows, strict=True):
        if r.batch is not None:
            throughput.barh(y, r.batch.rows_per_s, 0.6, color=BATCH)
            throughput.annotate(f" {r.batch.rows_per_s:,.0f}", (r.batch.rows_per_s, y), va="center", fontsize=7)
    _goal(throughput, BATCH_ROWS_PER_S, "100k")
    throughput.set_xscale("log")
    throughput.set_xlabel("1000 rows per call: rows/s (log scale)\ngoal (dashed): 100k rows/s over HTTP")
    latency.set_yticks(list(ys), names)
    for ax in (latency, throughput):
        ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^4, 3x10^4, ...: labels that ran into each other
        ax.grid(axis="x", which="major", alpha=0.3)
        ax.margins(x=0.15)
    fig.suptitle(title, fontsize=10, y=0.995)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _goal(ax: plt.Axes, x: float, label: str) -> None:
    """A dashed goal line, labelled just above the plot (clear of the bars)."""
    ax.axvline(x, color="grey", linestyle="--", linewidth=1)
    ax.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 3), textcoords="offset points",
                ha="center", va="bottom", fontsize=7, color="dimgrey")  # fmt: skip
