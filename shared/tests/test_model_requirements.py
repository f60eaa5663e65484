"""A registered model's pinned requirements against this environment: MLflow's own check is suppressed (it first
maps every installed package to its modules, a second per process); ``taxi.tracking`` compares the pins itself and
says which differ when it loads the model. Real MLflow on sqlite in a temporary folder."""

from __future__ import annotations

import logging
from importlib.metadata import version
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from taxi.generator import generate_month
from taxi.model import build_trip_pipeline, prepare_trips
from taxi.tracking import load_checked_model, log_trip_model, requirement_mismatches

NAME = "trip-duration"


def test_pins_this_environment_does_not_meet_are_named(tmp_path: Path):
    (tmp_path / "requirements.txt").write_text(
        f"mlflow=={version('mlflow')}\nscikit-learn==0.0.1  # a comment\n-c constraints.txt\n"
        "no-such-package-here==1.0\npandas>=1\n"
    )
    assert requirement_mismatches(tmp_path) == [
        f"scikit-learn==0.0.1 (here {version('scikit-learn')})",
        "no-such-package-here==1.0 (here not installed)",
    ]
    assert requirement_mismatches(tmp_path / "elsewhere") == []  # no requirements.txt: nothing to compare


def test_a_model_pinned_to_other_versions_loads_and_the_log_names_them(tmp_path: Path, caplog):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("requirements")
    trips = generate_month("2024-01", rows=1500, seed=3)
    X, y = prepare_trips(trips)
    pipeline = build_trip_pipeline({"max_iter": 10}).fit(X, y)
    with mlflow.start_run():
        info = log_trip_model(pipeline, trips)
    mlflow.register_model(info.model_uri, NAME)
    with caplog.at_level(logging.WARNING, logger="taxi.tracking"):
        load_checked_model(NAME, 1)
    assert not [r for r in caplog.records if "was saved with" in r.getMessage()]  # the pins are this environment's

    stored = Path(MlflowClient().get_model_version_download_uri(NAME, "1").removeprefix("file://"))
    pins = stored / "requirements.txt"
    pins.write_text(pins.read_text().replace(f"scikit-learn=={version('scikit-learn')}", "scikit-learn==1.0.2"))
    with caplog.at_level(logging.WARNING, logger="taxi.tracking"):
        model = load_checked_model(NAME, 1)
    assert model.predict(X.head(3)).shape == (3,)  # loads all the same
    said = [r.getMessage() for r in caplog.records if "was saved with" in r.getMessage()]
    assert said == [f"model '{NAME}' v1 was saved with scikit-learn==1.0.2 (here {version('scikit-learn')})"], said
