"""Traceability: from a model version back to its data and code, and forward to every deployment decision.

    level3 trace 7

    version -> MLflow run -> params -> data hash -> dvc.lock (logged with the run) -> git commit
            -> certification report -> each deployment event (the deployment log)

Everything is read from where it was recorded when it happened: the registry (version tags, aliases), the
version's run (params, tags, the ``lineage/dvc.lock`` and ``certification/`` artifacts the CD flow logged),
and the deployment log. Nothing is recomputed, so the trace shows what was decided, on what evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from taxi.deployment.certify import stored_report
from taxi.deployment.deployer import DeploymentLog
from taxi.tracking import get_version


def _lock_stages(run_id: str) -> dict[str, Any] | None:
    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/lineage/dvc.lock")
    except (MlflowException, OSError):
        return None
    return (yaml.safe_load(text) or {}).get("stages", {})


def _hashes(entries: list[dict[str, Any]] | None) -> list[str]:
    return [f"{e['path']} md5 {str(e.get('md5', '?'))[:12]}" for e in entries or []]


def trace(client: MlflowClient, name: str, version: str | int, log: DeploymentLog) -> list[str]:
    """The chain for ``name`` v``version``, as lines to print. Unknown version: taxi.tracking.RegistryError."""
    v = get_version(client, name, version)
    tags = dict(v.tags)
    aliases = [a for a, n in client.get_registered_model(name).aliases.items() if str(n) == str(v.version)]
    lines = [
        f"{name} version {v.version}  (aliases now: {', '.join('@' + a for a in aliases) or 'none'})",
        f"  registered {_time(v.creation_timestamp)}  source {v.source}",
    ]
    if not v.run_id:
        return [*lines, "  no MLflow run: registered without one, so there is no lineage to follow"]
    run = client.get_run(v.run_id)
    tags = {**run.data.tags, **tags}  # lineage: the register stage copies the run's tags to the version
    experiment = client.get_experiment(run.info.experiment_id)
    lines += [
        f"-> run      {run.info.run_id}  ({run.info.run_name}, experiment '{experiment.name}', {run.info.status}, "
        f"started {_time(run.info.start_time)})",
        "-> params   " + (_params(run.data.params, "train.") or "(none logged)"),
        f"-> data     md5 {tags.get('data_md5', '?')} (training data), months {tags.get('train_months', '?')}, "
        f"source {tags.get('data_source', '?')}; params hash {tags.get('params_hash', '?')}",
    ]
    if _params(run.data.params, "ingest."):
        lines.insert(-1, "            " + _params(run.data.params, "ingest."))
    stages = _lock_stages(v.run_id)
    if stages is None:
        lines.append("-> dvc.lock not logged with this run (registered outside the CD flow)")
    else:
        train = stages.get("train", {})
        md5s = {d.get("path"): d.get("md5") for d in train.get("deps", [])}
        data = next((p for p, m in md5s.items() if m == tags.get("data_md5")), None)
        check = f"matches the version's data md5 ({data})" if data else "does NOT match the version's data md5"
        lines += [f"-> dvc.lock (lineage/dvc.lock of the run): stage train {check}"]
        for stage in ("ingest", "prepare", "train"):
            if stage in stages:
                outs = _hashes(stages[stage].get("outs"))
                lines.append(f"            {stage:<8} outs: {'; '.join(outs) or '-'}")
        lines.append("            `dvc checkout` with this dvc.lock (and `dvc pull`) restores exactly this data")
    lines.append(f"-> git      commit {tags.get('git_commit', '?')}  (`git checkout` it for the code)")
    report = stored_report(client, name, v.version)
    if report is None:
        lines.append("-> certification: none recorded")
    else:
        verdict = "CERTIFIED" if report.passed else f"REJECTED by {', '.join(report.failed_gates)}"
        lines.append(
            f"-> certification {verdict} at {tags.get('certified_at', '?')} against {report.champion or 'no champion'}"
            f" (holdout {report.holdout.get('label')}, fingerprint {report.holdout.get('fingerprint')}); "
            f"report: runs:/{v.run_id}/certification/certification.md"
        )
        lines += [f"     {'pass' if g.passed else 'FAIL'}  {g.name:<13} {g.reason}" for g in report.gates]
    events = log.events(name, v.version)
    lines.append(f"-> deployment events ({log.path}): {len(events) or 'none'}")
    lines += [f"     {e.describe()}" for e in events]
    return lines


def _params(params: dict[str, str], prefix: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k.startswith(prefix))


def _time(millis: int | None) -> str:
    if not millis:
        return "?"
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")
