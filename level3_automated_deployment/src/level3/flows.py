"""The CD pipeline, as Prefect flows: a candidate goes from the training pipeline to production, or not.

    train + register (dvc repro) -> @candidate -> certify -> @staging -> staging smoke test
        -> @challenger + canary on live traffic -> @champion  (or: rejected / rolled back, with the reason)

The steps are the shared release machinery (``taxi.deployment.cd``, which level 4 runs on its retrained models
too); what this level gives them is a ``Release``: its folder and settings, its service app (``level3.service``,
for the staging smoke test and a canary without a running service), and the **frozen holdout** every candidate
and the champion are scored on: params.yaml ``holdout``, one month written once to ``data/holdout/`` and read
back ever after.

- ``train-candidate``: params.yaml overrides (``params={"ingest.months": 4}``: what a commit changing params.yaml
  would do) -> ``dvc repro`` -> the registered version;
- ``cd-pipeline``: that version (or ``version=7``, registered already) -> certify -> staging smoke test ->
  canary on the running service (``service_url``; ``LEVEL3_ADMIN_TOKEN`` to reload it at once), or on one run
  by the flow -> ``@champion``, or rejected / rolled back. Returns the decision record, which is logged too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from level3.service import create_app
from level3.settings import Settings, load_settings
from taxi.certification import Holdout
from taxi.deployment import cd
from taxi.deployment.certify import frozen_holdout
from taxi.pipeline.common import load_params
from taxi.settings import rooted_in


def project_settings(project: Path) -> Settings:
    """The settings, with their relative paths (and a relative sqlite tracking URI) taken in ``project``."""
    return rooted_in(load_settings(), project, ("params_file", "deploy_log", "holdout_dir"))


def release_for(
    settings: Settings, project: Path, service_url: str | None = None, via: str = "cd flow"
) -> cd.Release[Settings]:
    """What the shared CD steps need from this level: its settings and service, its frozen holdout, its records."""

    def holdout() -> Holdout:  # read when the candidate is known: the run's overrides may change params.yaml `holdout`
        return frozen_holdout(load_params(settings.params_file)["holdout"], settings.holdout_dir)

    return cd.Release(
        project=project,
        settings=settings,
        create_app=create_app,
        holdout=holdout,
        deploy_log=settings.deploy_log,
        reports_dir=settings.deploy_log.parent / "certification",
        service_url=service_url,
        via=via,
    )


@flow(name="train-candidate", log_prints=True)
def train_candidate(project_dir: str = ".", params: dict[str, Any] | None = None) -> dict[str, Any]:
    """params.yaml overrides -> dvc repro -> the registered version (reports/registered.json), with ``decided``:
    why nothing more is to be done when the pipeline was up to date and that version was decided on before."""
    project = Path(project_dir).resolve()
    return cd.train_candidate(release_for(project_settings(project), project), params)


@flow(name="cd-pipeline", log_prints=True)
def cd_pipeline(
    project_dir: str = ".",
    version: int | None = None,
    params: dict[str, Any] | None = None,
    service_url: str | None = None,
    via: str = "cd flow",
) -> dict[str, Any]:
    """Take a candidate (``version``, or train one with ``params`` overrides) through certification, staging
    and canary to ``@champion``, or reject it / roll it back. Returns the decision record (see module doc)."""
    project = Path(project_dir).resolve()
    release = release_for(project_settings(project), project, service_url=service_url, via=via)
    return cd.run_cd(release, version, params, train=lambda overrides: train_candidate(project_dir, overrides))
