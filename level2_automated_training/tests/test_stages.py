"""Each stage as a plain function, without DVC: small generated data in a temporary folder, a real sqlite
MLflow there too. (test_pipeline.py runs the same stages through `dvc repro`.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from level2.stages.common import StageError, load_params, months_of
from level2.stages.evaluate import evaluate
from level2.stages.ingest import ingest
from level2.stages.prepare import prepare, split_months
from level2.stages.register import register
from level2.stages.train import train
from level2.stages.validate import validate
from taxi.validation import DataValidationError

LEVEL = Path(__file__).resolve().parent.parent
PARAMS = yaml.safe_load((LEVEL / "params.yaml").read_text())
PARAMS["ingest"] |= {"rows": 800, "months": 3}
PARAMS["train"] |= {"max_iter": 20}
MONTHS = months_of(PARAMS["ingest"])


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """The six stages in order, each given the paths dvc.yaml gives it."""
    root = tmp_path_factory.mktemp("stages")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ingest(PARAMS["ingest"], root / "raw", root / "downloads")
    validate(root / "raw", root / "validated", root / "reports" / "validation.json", MONTHS)
    prepare(root / "validated", root / "prepared", MONTHS, PARAMS["prepare"]["test_months"])
    run, model = root / "models" / "train_run.json", root / "models" / "model.skops"
    train(root / "prepared" / "train.parquet", model, run, PARAMS, tracking_uri=uri, experiment="unit")
    evaluate(model, run, root / "prepared" / "test.parquet", root / "reports", tracking_uri=uri)
    first = register(run, root / "reports" / "metrics.json", root / "reports" / "registered.json",
                     model_name="unit-model", tracking_uri=uri)  # fmt: skip
    return root, uri, first


def test_each_stage_writes_the_outputs_it_is_given(stages):
    root, _, _ = stages
    assert sorted(p.name for p in (root / "raw").iterdir()) == [f"green_tripdata_{m}.parquet" for m in MONTHS]
    assert sorted(json.loads((root / "reports" / "validation.json").read_text())) == MONTHS
    assert {p.name for p in (root / "prepared").iterdir()} == {"train.parquet", "test.parquet"}
    assert {"metrics.json", "slices.json", "predictions.csv", "residuals.png"} <= {
        p.name for p in (root / "reports").iterdir()
    }
    record = json.loads((root / "models" / "train_run.json").read_text())
    assert record["train_months"] == ",".join(MONTHS[:-1]) and record["data_source"] == "synthetic/stationary"


def test_train_and_evaluate_log_one_run_and_register_adds_a_version(stages):
    root, uri, first = stages
    client = MlflowClient(uri)
    run = client.get_run(first["run_id"])
    assert run.data.params["train.max_iter"] == "20" and "rmse" in run.data.metrics
    assert first["version"] == 1 and first["new"] is True
    version = client.get_model_version("unit-model", "1")
    assert version.tags["rmse"] == f"{json.loads((root / 'reports' / 'metrics.json').read_text())['rmse']:.4f}"


def test_register_does_not_register_the_same_training_run_twice(stages):
    root, uri, first = stages
    again = register(root / "models" / "train_run.json", root / "reports" / "metrics.json", root / "registered.json",
                     model_name="unit-model", tracking_uri=uri)  # fmt: skip
    assert again["version"] == first["version"] and again["new"] is False
    assert len(MlflowClient(uri).search_model_versions("name = 'unit-model'")) == 1


def test_a_broken_month_stops_validate(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / f"green_tripdata_{MONTHS[0]}.parquet").write_text("not parquet")
    with pytest.raises(DataValidationError):
        validate(raw, tmp_path / "validated", tmp_path / "validation.json", MONTHS[:1])


@pytest.mark.parametrize("test_months", [0, 3])
def test_prepare_refuses_a_split_without_training_or_test_months(test_months):
    with pytest.raises(StageError, match="test_months must be between 1 and 2"):
        split_months(MONTHS, test_months)


def test_missing_params_file_is_a_stage_error(tmp_path):
    with pytest.raises(StageError, match="not found"):
        load_params(tmp_path / "params.yaml")


def test_the_stage_command_turns_a_stage_error_into_one_line(stages, tmp_path):
    root, _, _ = stages
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**PARAMS, "prepare": {"test_months": 5}}))
    command = ["stage", "prepare", "--validated", str(root / "validated"), "--out", "out"]
    done = subprocess.run(
        [sys.executable, "-m", "level2.cli", *command],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "prepare: test_months must be between 1 and 2; got 5" in done.stderr and "Traceback" not in done.stderr
