"""The replay's timeline: one row per month (the model in force, its error, the drift, what the policy did), as
a table (Markdown + CSV) and a picture (PNG: monthly RMSE of the served model and the drift share, with the
alerts, retrainings and promotions marked, and the model version in force written along the top)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Month:
    month: str
    served: str  # the version(s) that answered this month's traffic: "v1", or "v1+v2" across a swap
    requests: int
    failed: int
    rmse: float | None
    drift_share: float
    quality: str  # "ok" or the failed checks
    actions: list[str] = field(default_factory=list)  # what the policy decided: retrain, alert, quarantine
    outcome: str = ""  # what came of it: "v2 promoted", "v2 rejected by no_regression", ...
    champion_after: str = ""  # the champion once this month's decision has run

    @property
    def events(self) -> str:
        return ", ".join([*self.actions, self.outcome] if self.outcome else self.actions) or "-"


def table(months: list[Month]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month": m.month,
            "served by": m.served,
            "requests (failed)": f"{m.requests} ({m.failed})",
            "RMSE": "-" if m.rmse is None else f"{m.rmse:.2f}",
            "drift share": f"{m.drift_share:.2f}",
            "quality": m.quality,
            "policy": ", ".join(m.actions) or "-",
            "outcome": m.outcome or "-",
            "champion after": m.champion_after,
        }
        for m in months
    )


def markdown(frame: pd.DataFrame) -> str:
    rows = [list(frame.columns), ["---"] * len(frame.columns), *frame.astype(str).to_numpy().tolist()]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def save(months: list[Month], folder: Path, title: str) -> dict[str, Path]:
    """timeline.md, timeline.csv and timeline.png in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = table(months)
    paths = {"md": folder / "timeline.md", "csv": folder / "timeline.csv", "png": folder / "timeline.png"}
    paths["md"].write_text(f"# {title}\n\n{markdown(frame)}\n")
    pd.DataFrame([asdict(m) for m in months]).to_csv(paths["csv"], index=False)
    plot(months, paths["png"], title)
    return paths


MARKS = {"alert": ("^", "tab:orange"), "retrain": ("o", "tab:blue"), "promoted": ("*", "tab:green"),
         "rejected": ("X", "tab:red"), "rolled back": ("X", "tab:red"), "quarantine": ("s", "tab:purple")}  # fmt: skip


def _marks(month: Month) -> list[str]:
    """The events marked above a month's point: the policy's actions, then the release's outcome."""
    return [*month.actions, *(k for k in ("promoted", "rejected", "rolled back") if k in month.outcome)]


def plot(months: list[Month], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = list(range(len(months)))
    rmse = [float("nan") if m.rmse is None else m.rmse for m in months]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[3, 1.4])
    top.plot(x, rmse, "-o", color="black", label="RMSE of the served model (min)")
    finite = [r for r in rmse if r == r]
    stacked = max((len(_marks(m)) for m in months), default=0)
    ceiling = (max(finite) if finite else 1) * (1.25 + 0.1 * stacked)  # room for a month's markers below its label
    top.set_ylim(0, ceiling)
    seen: set[str] = set()
    for i, m in enumerate(months):
        for offset, kind in enumerate(_marks(m)):
            marker, color = MARKS[kind]
            y = (rmse[i] if rmse[i] == rmse[i] else ceiling / 2) + ceiling * (0.06 + 0.07 * offset)
            top.scatter(i, y, marker=marker, color=color, s=90, zorder=3, label=None if kind in seen else kind)
            seen.add(kind)
        top.annotate(m.champion_after, (i, ceiling * 0.97), ha="center", va="top", fontsize=8, color="dimgray")
    top.set_ylabel("RMSE (minutes)")
    top.set_title(f"{title}\n(grey: the champion after each month's decision)", fontsize=10)
    top.legend(loc="lower left", fontsize=8, ncols=3)
    top.grid(alpha=0.3)
    bottom.bar(x, [m.drift_share for m in months], color="tab:gray", label="drift share of the inputs")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("drift share")
    bottom.set_xticks(x, [m.month for m in months], rotation=45, ha="right")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
