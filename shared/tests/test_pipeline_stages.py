"""Each pipeline stage (taxi.pipeline) as a plain function, without DVC: small generated data in a temporary
folder, a real sqlite MLflow there too; and the stage commands a level mounts (stage_cli). Level 2's
tests/test_pipeline.py runs the same stages through `dvc repro`."""

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from taxi.pipeline import StageError, stage_cli
from taxi.pipeline.common import load_params, months_of
from taxi.pipeline.evaluate import evaluate
from taxi.pipeline.ingest import ingest
from taxi.pipeline.prepare import Split, prepare, split_months
from taxi.pipeline.register import register
from taxi.pipeline.train import train
from taxi.pipeline.validate import validate
from taxi.settings import SettingsError
from taxi.validation import DataValidationError

# a small params.yaml (the levels' own have the same groups, with full-size months)
PARAMS = {
    "ingest": {
        "source": "synthetic", "tlc_base_url": "https://d37ci6vzurychx.cloudfront.net/trip-data",
        "first_month": "2024-01", "months": 3, "scenario": "stationary", "rows": 800, "seed": 42,
    },
    "prepare": {"test_months": 1},
    "train": {
        "model": "hist_gradient_boosting", "learning_rate": 0.1, "max_iter": 20, "max_leaf_nodes": 31,
        "min_samples_leaf": 20, "l2_regularization": 0.0, "random_state": 42,
    },
}  # fmt: skip
MONTHS = months_of(PARAMS["ingest"])


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """The six stages in order, each given the paths dvc.yaml gives it (run inside the temporary folder, as
    DVC runs them inside the level's: MLflow keeps a sqlite store's artifacts in ./mlruns)."""
    root = tmp_path_factory.mktemp("stages")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        yield _run_stages(root, uri)


def _run_stages(root: Path, uri: str):
    ingest(PARAMS["ingest"], root / "raw", root / "downloads")
    validate(root / "raw", root / "validated", root / "reports" / "validation.json", MONTHS)
    prepare(root / "validated", root / "prepared", Split.of(PARAMS))
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


def test_test_days_hold_out_the_newest_days_and_train_on_every_month(stages, tmp_path):
    """Level 4's split: the last 7 days of the last month test, everything before them trains."""
    root, _, _ = stages
    split = Split.of({**PARAMS, "prepare": {"test_days": 7}})
    assert split.train_months == MONTHS and str(split.cutoff) == "2024-03-25 00:00:00"
    assert split.describe("train") == "2024-01, 2024-02, 2024-03 before 2024-03-25"
    written = prepare(root / "validated", tmp_path, split)
    train, test = (pd.read_parquet(written[name]) for name in ("train", "test"))
    pickup = "lpep_pickup_datetime"
    assert train[pickup].max() < split.cutoff <= test[pickup].min()
    assert set(MONTHS) <= set(train[pickup].dt.strftime("%Y-%m"))  # (+ the odd stray pickup real files have)


@pytest.mark.parametrize(
    ("prepare_params", "message"),
    [
        ({}, "exactly one of test_months"),
        ({"test_months": 1, "test_days": 7}, "exactly one of test_months"),
        ({"test_days": 0}, "test_days must be between 1 and 20"),
        ({"test_days": 31}, "test_days must be between 1 and 20"),
    ],
)
def test_a_split_needs_one_valid_rule(prepare_params, message):
    with pytest.raises(StageError, match=message):
        Split.of({**PARAMS, "prepare": prepare_params})


def test_excluded_months_are_left_out_and_must_be_among_the_months():
    """Level 4 quarantines a month with a broken feed: the pipeline never reads it."""
    ingest_params = {**PARAMS["ingest"], "exclude_months": ["2024-02"]}
    assert months_of(ingest_params) == ["2024-01", "2024-03"]
    with pytest.raises(StageError, match=r"2024-07 not among the months 2024-01\.\.2024-03"):
        months_of({**ingest_params, "exclude_months": ["2024-07"]})
    with pytest.raises(StageError, match="excludes every month"):
        months_of({**ingest_params, "exclude_months": MONTHS})


def test_missing_params_file_is_a_stage_error(tmp_path):
    with pytest.raises(StageError, match="not found"):
        load_params(tmp_path / "params.yaml")


@dataclass
class FakeSettings:
    """A level's settings as the stage commands see them (taxi.pipeline.PipelineSettings)."""

    tracking_uri: str
    params_file: Path
    experiment: str = "unit"
    model_name: str = "unit-model"


def _app(settings: FakeSettings) -> typer.Typer:
    app = typer.Typer()
    app.add_typer(stage_cli(lambda: settings), name="stage")  # as a level's CLI mounts them
    return app


def test_stage_cli_has_the_six_stage_commands_with_their_path_options():
    app = typer.main.get_command(_app(FakeSettings("sqlite://", Path("params.yaml"))))
    stage = app.commands["stage"]
    options = {name: sorted(p.name for p in command.params) for name, command in stage.commands.items()}
    assert options == {
        "ingest": ["downloads", "out"],
        "validate": ["out", "raw", "report"],
        "prepare": ["out", "validated"],
        "train": ["data", "model", "run"],
        "evaluate": ["data", "model", "reports", "run"],
        "register": ["metrics", "out", "run"],
    }


def test_a_stage_command_runs_its_stage_with_the_level_settings(stages, tmp_path):
    root, uri, _ = stages
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    app = _app(FakeSettings(uri, tmp_path / "params.yaml"))
    run, metrics = root / "models" / "train_run.json", root / "reports" / "metrics.json"
    out = tmp_path / "registered.json"
    args = ["stage", "register", "--run", str(run), "--metrics", str(metrics), "--out", str(out)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "already unit-model version 1" in done.stdout
    assert json.loads(out.read_text())["name"] == "unit-model"


def test_the_stage_command_turns_a_stage_error_into_one_line(stages, tmp_path):
    root, uri, _ = stages
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**PARAMS, "prepare": {"test_months": 5}}))
    app = _app(FakeSettings(uri, tmp_path / "params.yaml"))
    done = CliRunner().invoke(
        app, ["stage", "prepare", "--validated", str(root / "validated"), "--out", str(tmp_path / "out")]
    )
    assert done.exit_code == 1
    assert done.stderr.strip() == "prepare: test_months must be between 1 and 2; got 5"
    assert done.stdout == ""  # nothing but the one line, no traceback


def test_missing_params_or_bad_settings_are_one_line_too(tmp_path):
    missing = _app(FakeSettings("sqlite://", tmp_path / "params.yaml"))
    raw, downloads = str(tmp_path / "raw"), str(tmp_path / "downloads")
    done = CliRunner().invoke(missing, ["stage", "ingest", "--out", raw, "--downloads", downloads])
    assert done.exit_code == 1 and "params.yaml not found" in done.stderr

    def broken() -> FakeSettings:
        raise SettingsError("invalid setting: LEVELN_TRACKING_URI: Field required")

    app = typer.Typer()
    app.add_typer(stage_cli(broken), name="stage")
    done = CliRunner().invoke(app, ["stage", "ingest", "--out", raw, "--downloads", downloads])
    assert done.exit_code == 1 and done.stderr.strip() == "invalid setting: LEVELN_TRACKING_URI: Field required"


def test_the_data_stages_and_the_request_model_import_no_ml_or_tracking_library():
    """DVC starts a fresh process per stage: ingest, validate and prepare (and a level's settings, which read
    taxi.trip) must not pay seconds importing scikit-learn, MLflow or matplotlib they do not use."""
    import subprocess
    import sys

    code = (
        "import sys, taxi.trip, taxi.pipeline, taxi.pipeline.ingest, taxi.pipeline.validate, taxi.pipeline.prepare\n"
        "print(sorted(m for m in ('sklearn', 'mlflow', 'matplotlib', 'skops', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_input_columns_live_in_the_schema_and_the_model_reexports_them():
    import taxi.model
    import taxi.schema
    import taxi.trip

    assert taxi.model.INPUT_COLUMNS is taxi.schema.INPUT_COLUMNS
    assert list(taxi.trip.Trip.model_fields) == taxi.schema.INPUT_COLUMNS
