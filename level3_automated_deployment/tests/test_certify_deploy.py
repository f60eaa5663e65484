"""Certification of registered versions with this level's thresholds, promotion and trace, on a real sqlite MLflow
registry (rollback and certification on a given holdout: shared/tests/test_deployment_release.py)."""

from __future__ import annotations

import mlflow
import pytest

from level3.trace import trace
from taxi.deployment.certify import certify_version, stored_report
from taxi.deployment.deployer import CHAMPION, Deployer, DeploymentLog, PromotionRefused
from taxi.pipeline.common import load_params
from taxi.tracking import alias_version


def _certify(lab, name: str, version: str):
    settings = lab.settings_for(name)
    return certify_version(
        lab.client, name, version, load_params(settings.params_file), holdout_dir=settings.holdout_dir,
        reports_dir=lab.dir / "reports" / name,
    )  # fmt: skip


def _deployer(lab, name: str) -> Deployer:
    return Deployer(lab.client, name, DeploymentLog(lab.settings_for(name).deploy_log), via="tests")


def test_good_candidate_is_promoted_and_each_bad_one_is_rejected_by_its_gate(lab):
    name = "certification"
    deployer = _deployer(lab, name)
    good = lab.register("good", name)
    first = _certify(lab, name, good)
    assert first.report.passed, first.summary()
    assert first.champion is None and first.report.gate("no_regression").reason == "no champion yet"
    deployer.promote(good, "first champion")
    assert str(alias_version(lab.client, name, CHAMPION).version) == good

    expected = {
        "km": {"no_regression"},  # kilometres from one vendor: worse than the champion on the same holdout
        "shuffled": {"quality", "no_regression"},  # learned nothing
        "wrong_signature": {"schema"},  # the logged inputs are not the API's trip schema
    }
    for kind, gates in expected.items():
        version = lab.register(kind, name)
        result = _certify(lab, name, version)
        assert not result.report.passed, f"{kind}: {result.summary()}"
        assert gates <= set(result.report.failed_gates), f"{kind}: {result.summary()}"
        assert result.champion == good
        tags = lab.client.get_model_version(name, version).tags
        assert tags["certified"] == "false" and set(tags["failed_gates"].split(",")) >= gates
        with pytest.raises(PromotionRefused, match=f"version {version} is not certified"):
            deployer.promote(version, "should not happen")
        assert str(alias_version(lab.client, name, CHAMPION).version) == good, f"{kind} moved the champion"

    km = lab.client.get_model_version(name, "2")
    report = stored_report(lab.client, name, km.version)
    assert report is not None and report.failed_gates == ["no_regression"]
    assert report.gate("no_regression").figures["relative_change"] > 0.1  # +17-19 % on the same holdout
    markdown = mlflow.artifacts.load_text(f"runs:/{km.run_id}/certification/certification.md")
    assert "REJECTED (failed: no_regression)" in markdown
    assert (lab.dir / "reports" / name / "v2.md").read_text() == markdown


def test_trace_prints_the_chain_from_version_to_deployments(lab):
    name = "trace"
    deployer = _deployer(lab, name)
    version = lab.register("km", name)
    _certify(lab, name, version)
    deployer.set_alias("candidate", version, "registered")
    deployer.decision(version, "rejected", "certification", "no_regression failed: RMSE +19%")
    run_id = lab.client.get_model_version(name, version).run_id
    text = "\n".join(trace(lab.client, name, version, deployer.log))
    for expected in (
        f"{name} version {version}",
        f"-> run      {run_id}",
        "train.max_iter=60",
        "md5 md5-of-km",
        "dvc.lock not logged",  # registered outside the CD flow (the flow test covers a logged one)
        "commit abc123",
        "-> certification CERTIFIED",  # no champion to regress against in this registry
        "@candidate -> v1",
        "v1 rejected at certification  by ",
        "via tests: no_regression failed: RMSE +19%",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
