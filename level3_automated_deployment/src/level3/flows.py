"""The CD pipeline, as a Prefect flow: a candidate goes from the training pipeline to production, or not.

    train + register (dvc repro) -> @candidate -> certify -> @staging -> staging smoke test
        -> @challenger + canary on live traffic -> @champion  (or: rejected / rolled back, with the reason)

- **train + register**: ``dvc repro`` of this level's pipeline, after applying the run's parameter overrides
  to params.yaml (``params={"ingest.months": 4}``: what a commit changing params.yaml would do); or an
  existing version (``version=7``) is taken as the candidate. ``dvc.lock`` and params.yaml are logged to the
  candidate's run (``lineage/``), so the version can be traced back to its data.
- **certify**: every gate of ``taxi.certification`` against ``@champion`` on the frozen holdout
  (``level3.certify``). A failure rejects the candidate: nothing else moves.
- **staging + smoke test**: ``@staging`` -> the candidate, and the service app, built exactly as production
  builds it but serving ``@staging``, is started in this process on a loopback port and smoke-tested over
  HTTP (health, one prediction, one refused request). Same code path as production, no extra process; a
  failure rolls back (``@staging`` removed, champion untouched).
- **canary**: without a champion (the first release) there is nothing to compare with: the candidate is
  promoted at once, and the decision says so. Otherwise ``@challenger`` -> the candidate; the running
  service (``service_url``; told by ``POST /admin/reload`` when ``LEVEL3_ADMIN_TOKEN`` is set, else by its
  own polling) starts answering a share of traffic with it, and ``level3.canary.run_canary`` compares the
  variants live (error rate, p95 latency, prediction shift). Without ``service_url`` the flow runs the
  service for the canary itself, in process. Pass: ``@champion`` -> the candidate (the service swaps with no
  failed request). Fail: ``@challenger`` removed, the champion keeps serving all traffic.
- once decided (promoted, first release included, or rolled back), ``@staging`` leaves the candidate too: the
  registry keeps only the live aliases (``@champion``, and ``@challenger`` while a canary runs).

Every alias move is a version tag and a line of the deployment log (``level3.deploy``); the flow returns the
decision record, which is logged too.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from pathlib import Path
from typing import Any

import httpx
import mlflow
from mlflow import MlflowClient
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr, ValidationError
from ruamel.yaml import YAML

from level3.canary import CanaryConfig, CanaryResult, run_canary
from level3.certify import Certified, certify_version, frozen_holdout
from level3.deploy import CANDIDATE, CHALLENGER, CHAMPION, STAGING, Deployer, DeploymentLog
from level3.service import create_app, holder_for, running
from level3.settings import Settings, load_settings
from taxi.certification import GateConfigError, Holdout, parse_gate_config
from taxi.pipeline import tools
from taxi.pipeline.common import load_params
from taxi.settings import rooted_in
from taxi.smoke import smoke_test


class DeploymentError(RuntimeError):
    """A step of the CD pipeline could not run (not a rejection: the pipeline itself failed)."""


# ---- settings and parameters, relative to the project folder ----


def project_settings(project: Path) -> Settings:
    """The settings, with their relative paths (and a relative sqlite tracking URI) taken in ``project``."""
    return rooted_in(load_settings(), project, ("params_file", "deploy_log", "holdout_dir"))


def apply_params(params_file: Path, overrides: dict[str, Any]) -> None:
    """Write ``{"group.key": value}`` overrides into params.yaml, keeping its comments (as a commit would)."""
    yaml = YAML()
    document = yaml.load(params_file.read_text())
    for dotted, value in overrides.items():
        *groups, key = dotted.split(".")
        try:
            node = reduce(lambda mapping, group: mapping[group], groups, document)
        except (KeyError, TypeError):
            raise DeploymentError(f"params.yaml has no group '{'.'.join(groups)}' (override {dotted})") from None
        if key not in node:
            raise DeploymentError(f"params.yaml has no parameter '{dotted}': only existing ones can be overridden")
        node[key] = value
    with params_file.open("w") as f:
        yaml.dump(document, f)


def canary_config(params: dict[str, Any]) -> CanaryConfig:
    """params.yaml ``canary`` as a ``CanaryConfig``; a wrong key or value is a DeploymentError naming it."""
    try:
        return CanaryConfig(**(params.get("canary") or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'canary'}: {e['msg']}" for e in exc.errors())
        raise DeploymentError(f"params.yaml [canary]: {problems}") from None


def check_config(params: dict[str, Any]) -> None:
    """Fail before training, not after, when the certification or canary thresholds are wrong."""
    try:
        parse_gate_config(params.get("certification"), "params.yaml [certification]")
    except GateConfigError as exc:
        raise DeploymentError(str(exc)) from None
    canary_config(params)


# ---- the steps ----


@task(cache_policy=NO_CACHE)  # inputs are live objects (settings, clients): nothing to cache
def train_and_register(project: Path, settings: Settings, overrides: dict[str, Any]) -> dict[str, Any]:
    """params.yaml overrides -> dvc repro (+ push) -> the version the register stage names."""
    if overrides:
        apply_params(settings.params_file, overrides)
        print("params.yaml: " + ", ".join(f"{k}={v}" for k, v in overrides.items()))
    output = tools.repro(cwd=project, echo=lambda line: None)
    for line in output.splitlines():
        if line.startswith(("train:", "evaluate:", "register:")) or "didn't change, skipping" in line:
            print(line)
    registered = json.loads((project / "reports" / "registered.json").read_text())
    if registered.get("run_id"):  # the data and code behind this version, kept with its run
        client = MlflowClient(settings.tracking_uri)
        for name in ("dvc.lock", "params.yaml"):
            if (project / name).exists():
                client.log_artifact(registered["run_id"], str(project / name), "lineage")
    return registered


@task(cache_policy=NO_CACHE)
def certify_candidate(settings: Settings, version: str) -> Certified:
    client = MlflowClient(settings.tracking_uri)
    result = certify_version(
        client,
        settings.model_name,
        version,
        load_params(settings.params_file),
        holdout_dir=settings.holdout_dir,
        reports_dir=settings.deploy_log.parent / "certification",
    )
    print(result.summary())
    return result


@task(cache_policy=NO_CACHE)
def staging_smoke_test(settings: Settings) -> str | None:
    """Serve ``@staging`` in process and smoke-test it over HTTP; the failure, or None when it passed."""
    try:
        app = create_app(settings, holder_for(settings, champion_alias=STAGING, challenger=False))
        with running(app) as url:
            smoke_test(url, echo=print)
    except Exception as exc:  # staging that cannot start, load or answer: a failed smoke test, whatever the cause
        return f"{type(exc).__name__}: {exc}"[:1000]
    return None


def served_versions(url: str) -> dict[str, str | None]:
    body = httpx.get(f"{url}/model", timeout=10).json()
    return dict(body.get("hot_swap", {}).get("serving", {}))


def wait_until_serving(
    url: str, token: str | None, want: dict[str, str | None], timeout: float
) -> dict[str, str | None]:
    """Ask the service to reload (admin token) or let it poll, until ``/model`` serves ``want``."""
    if token:
        response = httpx.post(f"{url}/admin/reload", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        if response.status_code != 200:
            print(f"POST /admin/reload answered {response.status_code}: {response.text[:200]}; waiting for a poll")
    deadline = time.monotonic() + timeout
    serving: dict[str, str | None] = {}
    while time.monotonic() < deadline:
        serving = served_versions(url)
        if all(serving.get(k) == v for k, v in want.items()):
            return serving
        time.sleep(0.2)
    raise DeploymentError(f"{url} still serves {serving} after {timeout:.0f} s; wanted {want}")


@contextmanager
def canary_service(settings: Settings, service_url: str | None) -> Iterator[tuple[str, str | None]]:
    """The running service (``service_url``, with the configured admin token), or one run here for the canary."""
    if service_url:
        yield service_url.rstrip("/"), settings.token
        return
    token = secrets.token_urlsafe(16)
    local = settings.model_copy(update={"admin_token": SecretStr(token)})
    with running(create_app(local, holder_for(local))) as url:
        print(f"no running service given: the canary runs against this flow's own service on {url}")
        yield url, token


@task(cache_policy=NO_CACHE)
def canary(
    settings: Settings, deployer: Deployer, version: str, holdout: Holdout, service_url: str | None
) -> CanaryResult:
    """@challenger -> version on the service, run the canary, then promote or remove the challenger."""
    config = canary_config(load_params(settings.params_file))
    champion = deployer.version_of(CHAMPION)
    wait = settings.poll_interval * 3 + 30
    deployer.set_alias(CHALLENGER, version, f"certified and smoke-tested: canary against champion v{champion}")
    with canary_service(settings, service_url) as (url, token):
        try:
            wait_until_serving(url, token, {"champion": champion, "challenger": version}, wait)
            print(f"the service at {url} now answers {settings.challenger_share:.0%} of traffic with v{version}")
            result = run_canary(url, holdout.X, config)
        except (DeploymentError, httpx.HTTPError) as exc:  # the service never served the challenger
            result = CanaryResult(False, f"the canary could not run: {exc}", {})
        print(result.to_text())
        if result.passed:
            deployer.promote(version, f"canary passed: {result.reason}")
            after, done = {"champion": version, "challenger": None}, f"promoted: the service swapped to v{version}"
        else:
            deployer.remove_alias(CHALLENGER, f"canary failed: {result.reason}", version=version)
            after, done = {"champion": champion, "challenger": None}, f"rolled back: only v{champion} serves"
        try:
            wait_until_serving(url, token, after, wait)
            print(done)
        except (DeploymentError, httpx.HTTPError) as exc:  # the aliases are right; the service will follow
            print(f"{done.split(':')[0]} in the registry, but the service has not followed yet: {exc}")
    return result


# ---- the flows ----


def earlier_decision(client: MlflowClient, name: str, version: str) -> str | None:
    """Why a version that was registered before needs no new run (it was certified or rejected), or None."""
    tags = client.get_model_version(name, version).tags
    if "certified" not in tags:
        return None
    decided = tags.get("deployment_decision", "certified" if tags["certified"] == "true" else "rejected")
    return f"nothing new: the pipeline is up to date and v{version} was decided on before ({decided})"


@flow(name="train-candidate", log_prints=True)
def train_candidate(project_dir: str = ".", params: dict[str, Any] | None = None) -> dict[str, Any]:
    """params.yaml overrides -> dvc repro -> the registered version (reports/registered.json), with ``decided``:
    why nothing more is to be done when the pipeline was up to date and that version was decided on before."""
    project = Path(project_dir).resolve()
    settings = project_settings(project)
    check_config(load_params(settings.params_file))
    registered = train_and_register(project, settings, params or {})
    version = str(registered["version"])
    client = MlflowClient(settings.tracking_uri)
    registered["decided"] = None if registered["new"] else earlier_decision(client, settings.model_name, version)
    if registered["decided"]:
        print(registered["decided"])
    return registered


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
    settings = project_settings(project)
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    deployer = Deployer(client, settings.model_name, DeploymentLog(settings.deploy_log), via=via)
    started = time.perf_counter()
    check_config(load_params(settings.params_file))

    if version is None:
        registered = train_candidate(project_dir, params)
        candidate = str(registered["version"])
        if registered["decided"]:
            return _record(deployer, candidate, "unchanged", "register", registered["decided"], started, None)
        why = "registered by the training pipeline"
    elif params:
        raise DeploymentError("give a version to deploy or parameters to train a new one, not both")
    else:
        candidate, why = str(version), f"registered v{version}: deployment requested ({via})"
    champion_before = deployer.version_of(CHAMPION)
    if candidate == champion_before:
        reason = f"v{candidate} is the champion already: nothing to deploy"
        print(reason)
        return _record(deployer, candidate, "unchanged", "register", reason, started, champion_before)
    deployer.set_alias(CANDIDATE, candidate, why)

    certified = certify_candidate(settings, candidate)
    if not certified.report.passed:
        gates = certified.report.failed_gates
        reasons = "; ".join(g.reason for g in certified.report.gates if not g.passed)  # "<gate> failed: ..."
        deployer.remove_alias(CANDIDATE, f"rejected by {', '.join(gates)}", version=candidate)
        return _record(
            deployer, candidate, "rejected", "certification", reasons, started, champion_before,
            failed_gates=gates, report=str(certified.report_path),
        )  # fmt: skip

    deployer.set_alias(STAGING, candidate, "certified: deploying to staging")
    deployer.remove_alias(CANDIDATE, "certified: on to @staging", version=candidate)
    failure = staging_smoke_test(settings)
    if failure:
        deployer.remove_alias(STAGING, f"staging smoke test failed: {failure}", version=candidate)
        return _record(
            deployer, candidate, "rolled back", "staging smoke test", failure, started, champion_before,
            report=str(certified.report_path),
        )  # fmt: skip

    if champion_before is None:
        deployer.promote(candidate, "first certified version: no champion to run a canary against")
        deployer.remove_alias(STAGING, "promoted to @champion (first release): staging is done", version=candidate)
        reason = "certified and smoke-tested; the first champion (no canary: there is nothing to compare it with)"
        return _record(deployer, candidate, "promoted", "first release", reason, started, None,
                       report=str(certified.report_path))  # fmt: skip

    holdout = frozen_holdout(load_params(settings.params_file)["holdout"], settings.holdout_dir)
    result = canary(settings, deployer, candidate, holdout, service_url)
    decision = "promoted" if result.passed else "rolled back"
    done = "promoted to @champion after the canary" if result.passed else "rolled back: the canary failed"
    deployer.remove_alias(STAGING, f"{done}: staging is done", version=candidate)
    return _record(
        deployer, candidate, decision, "canary", result.reason, started, champion_before,
        report=str(certified.report_path), canary=result.to_dict(),
    )  # fmt: skip


def _record(
    deployer: Deployer,
    version: str,
    decision: str,
    stage: str,
    reason: str,
    started: float,
    champion_before: str | None,
    **details: Any,
) -> dict[str, Any]:
    champion = deployer.version_of(CHAMPION)
    record = {
        "model": deployer.name,
        "version": version,
        "decision": decision,
        "stage": stage,
        "reason": reason,
        "champion_before": champion_before,
        "champion": champion,
        "seconds": round(time.perf_counter() - started, 1),
        **details,
    }
    if decision != "unchanged":
        skip = ("model", "version", "reason", "decision", "stage", "canary")
        summary = {k: v for k, v in record.items() if k not in skip}
        deployer.decision(version, decision, stage, reason[:2000], **summary)
    print(f"decision: v{version} {decision.upper()} at {stage}; champion is v{champion}")
    return record
