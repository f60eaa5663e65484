"""The monitoring history: a local Evidently workspace with one project, its dashboard and every window's reports.

    workspace, project = monitoring_project(Path("evidently_workspace"), "trip-duration monitoring")
    add_window(workspace, project.id, "2024-08", snapshots)     # replaces that window's earlier reports
    # `evidently ui --workspace evidently_workspace` (make monitor-ui) shows them; runs added later appear too

The dashboard (drift share, RMSE and MAE, predictions per window, the distance-unit signal) is written whole
each time, with ``save_dashboard``: building it panel by panel with ``add_panel(tab=...)`` is not idempotent
(0.7.23 adds a panel's id twice to a named tab that exists already).

Each window gets one snapshot per report (``drift``, ``quality``, ``performance`` when there is feedback), tagged
with the window and the report name and carrying ``metadata["window"]``; monitoring a window again replaces
its snapshots, so the workspace holds one of each per window.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from uuid import UUID

from evidently.core.report import Snapshot
from evidently.sdk.models import DashboardModel, DashboardTabModel, PanelMetric
from evidently.sdk.panels import counter_panel, line_plot_panel, text_panel
from evidently.ui.workspace import Project, Workspace

DESCRIPTION = "Level 4: data drift, data quality and model performance of the served model, one window at a time"


def dashboard() -> DashboardModel:
    """The project's dashboard: one tab, the panels a person on call looks at first."""
    panels = [
        text_panel("Trip duration in production", description="one point per monitored window (make monitor)"),
        counter_panel(
            "Predictions monitored",
            [PanelMetric(legend="predictions", metric="RowCount", tags=["quality"])],
            size="half",
            aggregation="sum",
        ),
        counter_panel(  # not the last drift share: Evidently's UI (0.7.23) shows a counter of 0 as "no value"
            "Model error, last window with feedback (RMSE, minutes)",
            [PanelMetric(legend="RMSE", metric="RMSE")],
            size="half",
            aggregation="last",
        ),
        line_plot_panel(
            "Data drift: share of drifted columns",
            [PanelMetric(legend="drift share", metric="DriftedColumnsCount", metric_labels={"value_type": "share"})],
            size="half",
        ),
        line_plot_panel(
            "Model error on trips with feedback (minutes)",
            [
                PanelMetric(legend="RMSE", metric="RMSE"),
                PanelMetric(legend="MAE", metric="MAE", metric_labels={"value_type": "mean"}),
            ],
            size="half",
        ),
        line_plot_panel(
            "Predictions per window",
            [PanelMetric(legend="predictions", metric="RowCount", tags=["quality"])],
            size="half",
        ),
        line_plot_panel(
            "Distance unit signal: median distance / usual distance of the zone pair (1 = miles as in training)",
            [PanelMetric(legend="median ratio", metric="MedianValue", metric_labels={"column": "distance_vs_usual"})],
            size="half",
        ),
    ]
    tab = DashboardTabModel(title="Monitoring", panels=[p.id for p in panels])
    return DashboardModel(tabs=[tab], panels=panels)


# One Workspace object per folder and process (making one takes ~1.5 s: the replay monitors a window a month), and
# which window each snapshot is of (reading a snapshot back parses all of it: add_window reads each one once).
_WORKSPACES: dict[Path, Workspace] = {}
_WINDOW_OF: dict[tuple[Path, str], dict[str, str | None]] = {}


def monitoring_project(folder: Path, name: str) -> tuple[Workspace, Project]:
    """The workspace in ``folder`` and its project ``name`` (created, with its dashboard, if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    workspace = _WORKSPACES.get(folder.resolve())
    if workspace is None:
        workspace = _WORKSPACES[folder.resolve()] = Workspace.create(str(folder))
    found = workspace.search_project(name)
    project = found[0] if found else workspace.create_project(name, description=DESCRIPTION)
    workspace.save_dashboard(project.id, dashboard())
    return workspace, project


def window_runs(workspace: Workspace, project_id: UUID) -> dict[str, list[str]]:
    """Window label -> the names of the reports the workspace holds for it (read back through Evidently)."""
    windows: dict[str, list[str]] = {}
    for snapshot_id in workspace.list_runs(project_id):
        run = workspace.get_run(project_id, snapshot_id)
        if run is not None:
            windows.setdefault(str(run.metadata.get("window")), []).append(str(run.metadata.get("report")))
    return windows


def add_window(workspace: Workspace, project_id: UUID, window: str, snapshots: Mapping[str, Snapshot]) -> int:
    """Add the window's snapshots (replacing any it had); returns how many were added."""
    windows = _windows_of_runs(workspace, project_id)
    for snapshot_id, of in list(windows.items()):
        if of == window:
            workspace.delete_run(project_id, snapshot_id)
            del windows[snapshot_id]
    for report, snapshot in snapshots.items():
        added = workspace.add_run(project_id, snapshot, name=f"{window} {report}")
        windows[str(added.id)] = window
    return len(snapshots)


def _windows_of_runs(workspace: Workspace, project_id: UUID) -> dict[str, str | None]:
    """Snapshot id -> its window, for the project's snapshots now (those not seen before in this process are read)."""
    known = _WINDOW_OF.setdefault((Path(str(workspace.path)).resolve(), str(project_id)), {})
    ids = {str(i) for i in workspace.list_runs(project_id)}
    for gone in set(known) - ids:  # deleted by another process
        del known[gone]
    for snapshot_id in ids - set(known):
        run = workspace.get_run(project_id, snapshot_id)
        known[snapshot_id] = None if run is None else run.metadata.get("window")
    return known
