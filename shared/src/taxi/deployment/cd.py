"""The CD pipeline: a candidate goes from the training pipeline to production, or not.

    train + register (dvc repro) -> @candidate -> certify -> @staging -> staging smoke test
        -> @challenger + canary on live traffic -> @champion  (or: rejected / rolled back, with the reason)

A level runs it from its own Prefect flows and says in a ``Release`` what differs: its folder and settings,
its service app, the holdout certification and the canary use, the running service, who triggered the run,
extra tags for the candidate:

    release = Release(project, settings, create_app, holdout=..., deploy_log=..., reports_dir=..., via="cd flow")
    registered = train_candidate(release, {"ingest.months": 4})    # in a flow: params.yaml overrides -> dvc repro
    record = run_cd(release, version=7)                            # or run_cd(release, params={...}, train=...)

- **train + register**: ``dvc repro`` of the level's pipeline, after applying the run's parameter overrides
  to params.yaml (``params={"ingest.months": 4}``: what a commit changing params.yaml would do); or an
  existing version (``version=7``) is taken as the candidate. ``dvc.lock`` and params.yaml are logged to the
  candidate's run (``lineage/``), so the version can be traced back to its data.
- **certify**: every gate of ``taxi.certification`` against ``@champion`` on the release's holdout
  (``taxi.deployment.certify``). A failure rejects the candidate: nothing else moves.
- **staging + smoke test**: ``@staging`` -> the candidate, and the level's service app, built exactly as
  production builds it but serving ``@staging``, is started in this process on a loopback port and
  smoke-tested over HTTP (health, one prediction, one refused request). Same code path as production, no
  extra process; a failure rolls back (``@staging`` removed, champion untouched).
- **canary**: without a champion (the first release) there is nothing to compare with: the candidate is
  promoted at once, and the decision says so. Otherwise ``@challenger`` -> the candidate; the running
  service (``Release.service_url``; told by ``POST /admin/reload`` when there is an admin token, else by its
  own polling) starts answering a share of traffic with it, and ``taxi.deployment.canary.run_canary``
  compares the variants live (error rate, p95 latency, prediction shift) on the holdout's trips. Without
  ``service_url`` the flow runs the level's service for the canary itself, in process. Pass: ``@champion`` ->
  the candidate (the service swaps with no failed request). Fail: ``@challenger`` removed, the champion keeps
  serving all traffic.
- once decided (promoted, first release included, or rolled back), ``@staging`` leaves the candidate too: the
  registry keeps only the live aliases (``@champion``, and ``@challenger`` while a canary runs).

Every alias move is a version tag and a line of the deployment log (``taxi.deployment.deployer``); ``run_cd``
returns the decision record, which is logged too (with the release's extra tags, which the candidate also
carries as version tags).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
import mlflow
from mlflow import MlflowClient
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from taxi.certification import Holdout
from taxi.deployment import DeploymentError
from taxi.deployment.canary import CanaryResult, run_canary
from taxi.deployment.certify import Certified, certify_version
from taxi.deployment.deployer import CANDIDATE, CHALLENGER, CHAMPION, STAGING, Deployer, DeploymentLog
from taxi.deployment.params import apply_params, canary_config, check_config
from taxi.pipeline import tools
from taxi.pipeline.common import load_params
from taxi.registry_serving import settings_holder
from taxi.service_settings import HotSwapServiceFields
from taxi.serving import serve_in_thread
from taxi.smoke import smoke_test

if TYPE_CHECKING:
    from fastapi import FastAPI

    from taxi.hotswap import ModelHolder

REGISTERED = Path("reports") / "registered.json"  # what the register stage writes (taxi.pipeline.register)
SERVICE_START_TIMEOUT = 60.0  # seconds for an in-process service to start on a busy machine

S = TypeVar("S", bound=HotSwapServiceFields)


@dataclass(frozen=True)
class Release(Generic[S]):
    """What a level's CD run works with; paths absolute (see ``taxi.settings.rooted_in``)."""

    project: Path  # the level's folder: dvc.yaml, params.yaml, reports/registered.json
    settings: S  # the level's settings: tracking_uri, model_name, params_file, poll_interval, challenger_share, ...
    create_app: Callable[[S, ModelHolder], FastAPI]  # the level's service on a holder: staging, the flow's canary
    holdout: Holdout | Callable[[], Holdout]  # certification's trips and the canary's: ready, or made when needed
    deploy_log: Path  # every alias move and decision, one JSON line each
    reports_dir: Path  # certification reports, v<N>.md / .json
    service_url: str | None = None  # the running service the canary uses (None: one run in process)
    service_token: str | None = None  # its admin token, to reload it at once (None: the settings' admin token)
    via: str = "cd flow"  # what triggered the run (recorded with every move)
    tags: Mapping[str, str] = field(default_factory=dict)  # version tags for the candidate (and its decision)

    @property
    def tracking_uri(self) -> str:
        return self.settings.tracking_uri

    @property
    def model_name(self) -> str:
        return self.settings.model_name

    @property
    def params_file(self) -> Path:
        return self.settings.params_file

    @property
    def token(self) -> str | None:
        """The running service's admin token, or None (the service is left to poll)."""
        return self.service_token or self.settings.token

    def params(self) -> dict[str, Any]:
        """params.yaml, read now."""
        return load_params(self.params_file)

    def load_holdout(self) -> Holdout:
        return self.holdout if isinstance(self.holdout, Holdout) else self.holdout()

    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri)

    def deployer(self) -> Deployer:
        return Deployer(self.client(), self.model_name, DeploymentLog(self.deploy_log), via=self.via)

    def app(self, settings: S | None = None, *, champion_alias: str = CHAMPION, challenger: bool = True) -> FastAPI:
        """The level's service for ``settings`` (default: the release's), serving ``@champion_alias`` (and
        ``@challenger`` unless ``challenger`` is False), loaded now."""
        settings = settings or self.settings
        holder = settings_holder(settings, champion_alias=champion_alias, challenger=challenger)
        return self.create_app(settings, holder)


# ---- the steps ----


@task(cache_policy=NO_CACHE)  # inputs are live objects (settings, clients): nothing to cache
def train_and_register(release: Release, overrides: dict[str, Any]) -> dict[str, Any]:
    """params.yaml overrides -> dvc repro (+ push) -> the version the register stage names."""
    project = release.project
    if overrides:
        apply_params(release.params_file, overrides)
        print("params.yaml: " + ", ".join(f"{k}={v}" for k, v in overrides.items()))
    output = tools.repro(cwd=project, echo=lambda line: None)
    for line in output.splitlines():
        if line.startswith(("train:", "evaluate:", "register:")) or "didn't change, skipping" in line:
            print(line)
    registered = json.loads((project / REGISTERED).read_text())
    if registered.get("run_id"):  # the data and code behind this version, kept with its run
        client = release.client()
        for name in ("dvc.lock", "params.yaml"):
            if (project / name).exists():
                client.log_artifact(registered["run_id"], str(project / name), "lineage")
    return registered


@task(cache_policy=NO_CACHE)
def certify_candidate(release: Release, version: str, holdout: Holdout | None = None) -> Certified:
    """The gates on ``version`` against ``@champion`` on ``holdout`` (default: the release's)."""
    mlflow.set_tracking_uri(release.tracking_uri)  # the registry facts are read through MLflow's global client
    result = certify_version(
        release.client(),
        release.model_name,
        version,
        release.params(),
        holdout=holdout if holdout is not None else release.load_holdout(),
        reports_dir=release.reports_dir,
    )
    print(result.summary())
    return result


@task(cache_policy=NO_CACHE)
def staging_smoke_test(release: Release) -> str | None:
    """Serve ``@staging`` in process and smoke-test it over HTTP; the failure, or None when it passed."""
    try:
        app = release.app(champion_alias=STAGING, challenger=False)
        with serve_in_thread(app, timeout=SERVICE_START_TIMEOUT) as url:
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
def canary_service(release: Release) -> Iterator[tuple[str, str | None]]:
    """The running service (``service_url``, with its admin token), or the level's service run here for the canary."""
    if release.service_url:
        yield release.service_url.rstrip("/"), release.token
        return
    token = secrets.token_urlsafe(16)
    local = release.settings.model_copy(update={"admin_token": SecretStr(token)})
    with serve_in_thread(release.app(local), timeout=SERVICE_START_TIMEOUT) as url:
        print(f"no running service given: the canary runs against this flow's own service on {url}")
        yield url, token


@task(cache_policy=NO_CACHE)
def canary(release: Release, deployer: Deployer, version: str, holdout: Holdout) -> CanaryResult:
    """@challenger -> version on the service, run the canary, then promote or remove the challenger."""
    settings = release.settings
    config = canary_config(release.params())
    champion = deployer.version_of(CHAMPION)
    wait = settings.poll_interval * 3 + 30
    deployer.set_alias(CHALLENGER, version, f"certified and smoke-tested: canary against champion v{champion}")
    with canary_service(release) as (url, token):
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


# ---- the pipeline ----


def earlier_decision(client: MlflowClient, name: str, version: str) -> str | None:
    """Why a version that was registered before needs no new run (it was certified or rejected), or None."""
    tags = client.get_model_version(name, version).tags
    if "certified" not in tags:
        return None
    decided = tags.get("deployment_decision", "certified" if tags["certified"] == "true" else "rejected")
    return f"nothing new: the pipeline is up to date and v{version} was decided on before ({decided})"


def train_candidate(release: Release, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """params.yaml overrides -> dvc repro -> the registered version (reports/registered.json), with ``decided``:
    why nothing more is to be done when the pipeline was up to date and that version was decided on before.
    (The body of a level's ``train-candidate`` flow.)"""
    check_config(release.params())
    registered = train_and_register(release, overrides or {})
    version = str(registered["version"])
    decided = None if registered["new"] else earlier_decision(release.client(), release.model_name, version)
    registered["decided"] = decided
    if decided:
        print(decided)
    return registered


def run_cd(
    release: Release,
    version: int | str | None = None,
    params: dict[str, Any] | None = None,
    *,
    train: Callable[[dict[str, Any] | None], dict[str, Any]] | None = None,
    why: str | None = None,
) -> dict[str, Any]:
    """Take a candidate (``version``, or one trained with ``params`` overrides by ``train``: default
    ``train_candidate``) through certification, staging and canary to ``@champion``, or reject it / roll it
    back. ``why`` the candidate is deployed is recorded with ``@candidate``. Returns the decision record (see
    module doc). (The body of a level's ``cd-pipeline`` flow.)"""
    mlflow.set_tracking_uri(release.tracking_uri)
    deployer = release.deployer()
    started = time.perf_counter()
    check_config(release.params())

    if version is None:
        registered = train(params) if train else train_candidate(release, params)
        candidate = str(registered["version"])
        if registered["decided"]:
            return _record(release, deployer, candidate, "unchanged", "register", registered["decided"], started, None)
        why = why or "registered by the training pipeline"
    elif params:
        raise DeploymentError("give a version to deploy or parameters to train a new one, not both")
    else:
        candidate, why = str(version), why or f"registered v{version}: deployment requested ({release.via})"
    champion_before = deployer.version_of(CHAMPION)
    if candidate == champion_before:
        reason = f"v{candidate} is the champion already: nothing to deploy"
        print(reason)
        return _record(release, deployer, candidate, "unchanged", "register", reason, started, champion_before)
    holdout = release.load_holdout()
    if release.tags:
        deployer.tag(candidate, release.tags)
    deployer.set_alias(CANDIDATE, candidate, why)

    certified = certify_candidate(release, candidate, holdout)
    if not certified.report.passed:
        gates = certified.report.failed_gates
        reasons = "; ".join(g.reason for g in certified.report.gates if not g.passed)  # "<gate> failed: ..."
        deployer.remove_alias(CANDIDATE, f"rejected by {', '.join(gates)}", version=candidate)
        return _record(
            release, deployer, candidate, "rejected", "certification", reasons, started, champion_before,
            failed_gates=gates, report=str(certified.report_path),
        )  # fmt: skip

    deployer.set_alias(STAGING, candidate, "certified: deploying to staging")
    deployer.remove_alias(CANDIDATE, "certified: on to @staging", version=candidate)
    failure = staging_smoke_test(release)
    if failure:
        deployer.remove_alias(STAGING, f"staging smoke test failed: {failure}", version=candidate)
        return _record(
            release, deployer, candidate, "rolled back", "staging smoke test", failure, started, champion_before,
            report=str(certified.report_path),
        )  # fmt: skip

    if champion_before is None:
        deployer.promote(candidate, "first certified version: no champion to run a canary against")
        deployer.remove_alias(STAGING, "promoted to @champion (first release): staging is done", version=candidate)
        reason = "certified and smoke-tested; the first champion (no canary: there is nothing to compare it with)"
        return _record(release, deployer, candidate, "promoted", "first release", reason, started, None,
                       report=str(certified.report_path))  # fmt: skip

    result = canary(release, deployer, candidate, holdout)
    decision = "promoted" if result.passed else "rolled back"
    done = "promoted to @champion after the canary" if result.passed else "rolled back: the canary failed"
    deployer.remove_alias(STAGING, f"{done}: staging is done", version=candidate)
    return _record(
        release, deployer, candidate, decision, "canary", result.reason, started, champion_before,
        report=str(certified.report_path), canary=result.to_dict(),
    )  # fmt: skip


def _record(
    release: Release,
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
        if release.tags:
            record["tags"] = dict(release.tags)
        skip = ("model", "version", "reason", "decision", "stage", "canary")
        summary = {k: v for k, v in record.items() if k not in skip}
        deployer.decision(version, decision, stage, reason[:2000], **summary)
    print(f"decision: v{version} {decision.upper()} at {stage}; champion is v{champion}")
    return record
