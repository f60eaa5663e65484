"""The DVC pipeline end to end: a run registers a version with its lineage; a re-run is a no-op;
changing one training param re-runs train -> evaluate (-> register) only. Tests run in file order."""

import json

import yaml

from taxi.pipeline.common import md5_of, params_hash

ALL_STAGES = ("ingest", "validate", "prepare", "train", "evaluate", "register")


def _ran(output: str) -> set[str]:
    return {s for s in ALL_STAGES if f"Running stage '{s}'" in output}


def test_first_run_runs_every_stage_and_registers_version_1(project):
    assert _ran(project.first_output) == set(ALL_STAGES)
    registered = json.loads((project.dir / "reports" / "registered.json").read_text())
    assert registered["version"] == 1
    metrics = json.loads((project.dir / "reports" / "metrics.json").read_text())
    assert 1.5 < metrics["rmse"] < 10  # the generator has real-data noise: ~5-6 min on full months
    slices = json.loads((project.dir / "reports" / "slices.json").read_text())
    assert {"Manhattan", "Brooklyn", "Queens"} <= set(slices)
    assert (project.dir / "reports" / "residuals.png").stat().st_size > 10_000
    lock = yaml.safe_load((project.dir / "dvc.lock").read_text())
    assert set(lock["stages"]) == set(ALL_STAGES)


def test_a_second_repro_is_a_no_op(project):
    model = project.dir / "models" / "model.skops"
    before = model.stat().st_mtime_ns
    output = project.repro()
    assert _ran(output) == set()
    assert "Data and pipelines are up to date" in output
    assert model.stat().st_mtime_ns == before
    assert len(project.client().search_model_versions("name = 'trip-duration'")) == 1


def test_metrics_and_plots_are_declared_for_dvc(project):
    shown = json.loads(project.run("dvc", "metrics", "show", "--json").stdout)
    assert "rmse" in json.dumps(shown)
    plots = project.run("dvc", "plots", "show", "--json").stdout
    assert "predictions.csv" in plots and "residuals.png" in plots


def test_changing_one_train_param_reruns_train_and_evaluate_only(project):
    from level2.flows import set_param

    set_param(project.dir / "params.yaml", "train.learning_rate", 0.2)
    output = project.repro()
    assert _ran(output) == {"train", "evaluate", "register"}
    assert json.loads((project.dir / "reports" / "registered.json").read_text())["version"] == 2


def test_registered_version_carries_its_lineage(project):
    client = project.client()
    registered = json.loads((project.dir / "reports" / "registered.json").read_text())
    version = client.get_model_version("trip-duration", str(registered["version"]))
    lock = yaml.safe_load((project.dir / "dvc.lock").read_text())
    train_data = next(d for d in lock["stages"]["train"]["deps"] if d["path"] == "data/prepared/train.parquet")
    assert version.tags["data_md5"] == train_data["md5"] == md5_of(project.dir / "data" / "prepared" / "train.parquet")
    params = yaml.safe_load((project.dir / "params.yaml").read_text())
    assert version.tags["params_hash"] == params_hash(params["train"])
    head = project.run("git", "rev-parse", "HEAD").stdout.strip()
    assert version.tags["git_commit"].startswith(head)
    run = client.get_run(version.run_id)
    assert run.data.params["train.learning_rate"] == str(params["train"]["learning_rate"])
    assert "rmse_Manhattan" in run.data.metrics
    assert "evaluation/residuals.png" in [a.path for a in client.list_artifacts(version.run_id, "evaluation")]
    model_info = json.loads((project.dir / "models" / "train_run.json").read_text())
    logged = client.get_logged_model(model_info["model_id"])
    assert logged is not None
