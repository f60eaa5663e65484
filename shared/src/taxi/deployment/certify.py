"""Certifying a registered version: the registry glue around the shared gates (``taxi.certification``).

    result = certify_version(client, "trip-duration", 7, params, holdout_dir=Path("data/holdout"))
    result = certify_version(client, "trip-duration", 7, params, holdout=Holdout(X, y, "logged May trips"))
    result.report.passed, result.report.failed_gates, result.report.to_markdown()

What the gates cannot see for themselves comes from the registry as ``CandidateFacts``: the logged signature,
whether the skops artifact needs only trusted types, its size. The candidate is loaded exactly as the service
loads it (``taxi.tracking.RegistryModel``: pyfunc, signature enforced); the champion is ``@champion``, if any.
Both are scored on the same holdout, so "better than the champion" always means "on the same trips" (the
report records the holdout's fingerprint). Either the caller hands in a ready ``Holdout`` (trips with their
true durations, e.g. logged predictions joined with feedback), or ``holdout_dir`` names where the **frozen
holdout** lives: one month (params.yaml ``holdout``) written once to that folder and read back for every
candidate.

The report is logged to the candidate's MLflow run (``certification/certification.json`` + ``.md``), copied to
``reports/certification/v<N>.md``, and summarised in version tags ``certified``, ``failed_gates``,
``certified_at``, ``holdout_fingerprint``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import skops.io
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from taxi.certification import CandidateFacts, CertificationReport, Holdout, certify, parse_gate_config
from taxi.loader import load_month, write_parquet
from taxi.tracking import TRUSTED_MODULE_PREFIXES, RegistryModel, alias_version, get_version

CHAMPION = "champion"


@dataclass(frozen=True)
class Certified:
    """The outcome of certifying one version: the report, and where it was recorded."""

    name: str
    version: str
    report: CertificationReport
    champion: str | None
    report_path: Path

    def summary(self) -> str:
        """One line per gate: the verdict, then each gate's reason."""
        verdict = "CERTIFIED" if self.report.passed else f"REJECTED by {', '.join(self.report.failed_gates)}"
        against = f"champion v{self.champion}" if self.champion else "no champion yet"
        lines = [f"{self.name} v{self.version}: {verdict} (against {against}; holdout {self._holdout()})"]
        lines += [f"  {'pass' if g.passed else 'FAIL'}  {g.name:<13} {g.reason}" for g in self.report.gates]
        return "\n".join(lines)

    def _holdout(self) -> str:
        h = self.report.holdout
        return f"{h.get('label')}, {h.get('trips')} trips"


def frozen_holdout(params: Mapping[str, Any], directory: Path) -> Holdout:
    """The holdout month of params.yaml ``holdout`` (month, source, rows, seed): written to ``directory`` the
    first time, read back ever after, so every candidate and champion is scored on the same trips."""
    month, source = str(params["month"]), str(params.get("source", "synthetic"))
    rows, seed = int(params.get("rows", 6000)), int(params.get("seed", 7))
    name = f"{month}_{source}.parquet" if source == "tlc" else f"{month}_{source}_{rows}rows_seed{seed}.parquet"
    path = directory / name
    if not path.exists():
        where = {"base_url": str(params["tlc_base_url"])} if params.get("tlc_base_url") else {}
        frame = load_month(month, source=source, rows=rows, seed=seed, cache_dir=directory / "downloads", **where)
        write_parquet(frame, path)
    return Holdout.from_trips(pd.read_parquet(path), label=f"{month} ({source})")


def registry_facts(name: str, version: str | int) -> CandidateFacts:
    """Signature inputs, trusted-types verdict and artifact size of a registered version, from its MLmodel."""
    uri = f"models:/{name}/{version}"
    info = mlflow.models.get_model_info(uri)
    signature = None
    if info.signature is not None and info.signature.inputs is not None:
        signature = [(str(c.name), _type_name(c.type)) for c in info.signature.inputs.inputs]
    flavor = info.flavors.get("sklearn", {})
    local = Path(mlflow.artifacts.download_artifacts(uri))
    artifact = local / flavor.get("pickled_model", "model.skops")
    size = artifact.stat().st_size if artifact.exists() else sum(p.stat().st_size for p in local.rglob("*"))
    if flavor.get("serialization_format") != "skops":
        fmt = flavor.get("serialization_format", "no scikit-learn flavour")
        return CandidateFacts(
            signature_inputs=signature,
            untrusted_types_ok=False,
            untrusted_types=[f"{fmt} (not skops: loading it can run arbitrary code)"],
            artifact_bytes=size,
        )
    untrusted = [t for t in skops.io.get_untrusted_types(file=artifact) if not t.startswith(TRUSTED_MODULE_PREFIXES)]
    return CandidateFacts(
        signature_inputs=signature, untrusted_types_ok=not untrusted, untrusted_types=untrusted, artifact_bytes=size
    )


def _type_name(column_type: Any) -> str:
    return str(getattr(column_type, "name", column_type))


class _Unloadable:
    """Stands in for a candidate that cannot be loaded: every gate that calls it fails with the load error."""

    def __init__(self, error: Exception):
        self.error = f"{type(error).__name__}: {error}"[:500]

    def predict(self, trips: pd.DataFrame) -> Any:
        raise RuntimeError(f"the candidate cannot be loaded: {self.error}")


def _load(name: str, version: ModelVersion) -> RegistryModel | _Unloadable:
    try:
        return RegistryModel(name, version)
    except Exception as exc:  # untrusted types, a missing artifact, a broken flavour: a rejection, not a crash
        return _Unloadable(exc)


def certify_version(
    client: MlflowClient,
    name: str,
    version: str | int,
    params: Mapping[str, Any],
    *,
    holdout_dir: Path | None = None,
    holdout: Holdout | None = None,
    reports_dir: Path = Path("reports/certification"),
) -> Certified:
    """Run every gate on ``name`` v``version`` against ``@champion`` on a holdout; record the report.

    ``params`` is params.yaml: its ``certification`` section holds the thresholds. The holdout is ``holdout``
    when given, else the frozen holdout of params.yaml ``holdout`` kept in ``holdout_dir`` (give one of the two).
    An unknown version raises ``taxi.tracking.RegistryError``; bad thresholds ``GateConfigError``.
    """
    if (holdout is None) == (holdout_dir is None):
        raise ValueError("certify_version takes one of holdout (ready trips) or holdout_dir (the frozen holdout)")
    candidate_version = get_version(client, name, version)
    config = parse_gate_config(params.get("certification"), "params.yaml [certification]")
    if holdout_dir is not None:
        holdout = frozen_holdout(params["holdout"], holdout_dir)
    champion_version = alias_version(client, name, CHAMPION)
    if champion_version is not None and champion_version.version == candidate_version.version:
        champion_version = None  # re-certifying the champion: compare with nothing rather than with itself
    champion = RegistryModel(name, champion_version) if champion_version else None
    report = certify(
        _load(name, candidate_version),
        champion,
        holdout,
        config,
        facts=_facts_or_unknown(name, candidate_version.version),
        candidate_label=f"{name} v{candidate_version.version}",
        champion_label=f"{name} v{champion_version.version}" if champion_version else None,
    )
    path = record(client, name, candidate_version, report, reports_dir)
    return Certified(
        name, str(candidate_version.version), report, str(champion_version.version) if champion_version else None, path
    )


def _facts_or_unknown(name: str, version: str) -> CandidateFacts:
    try:
        return registry_facts(name, version)
    except Exception:  # no MLmodel to read: facts unknown, which fails the schema gate (require_registry_facts)
        return CandidateFacts()


def record(
    client: MlflowClient, name: str, version: ModelVersion, report: CertificationReport, reports_dir: Path
) -> Path:
    """Log the report to the version's run, write it to ``reports_dir``, and tag the version with its verdict."""
    markdown = report.to_markdown()
    if version.run_id:
        client.log_text(version.run_id, report.to_json(), "certification/certification.json")
        client.log_text(version.run_id, markdown, "certification/certification.md")
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"v{version.version}.md"
    path.write_text(markdown)
    (reports_dir / f"v{version.version}.json").write_text(report.to_json())
    tags = {
        **report.summary_tags(),
        "certified_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "holdout_fingerprint": str(report.holdout.get("fingerprint")),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version.version, key, value)
    return path


def stored_report(client: MlflowClient, name: str, version: str | int) -> CertificationReport | None:
    """The certification report logged to a version's run, or None if it was never certified."""
    found = get_version(client, name, version)
    if not found.run_id or "certified" not in found.tags:
        return None
    text = mlflow.artifacts.load_text(f"runs:/{found.run_id}/certification/certification.json")
    return CertificationReport.from_json(text)
