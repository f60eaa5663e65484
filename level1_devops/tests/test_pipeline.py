"""Ingest -> train -> handoff, and the service's refusal to start on the wrong model file."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from level1.handoff import NoModelError, handoff
from level1.image import ImageError, stage_context
from level1.ingest import ingest
from level1.service import ModelFileError, load_model_file
from level1.train import TrainingDataError, sha256_of, train
from taxi.generator import generate_month
from taxi.loader import write_parquet


def test_ingest_is_idempotent(tmp_path, settings_for):
    settings = settings_for(tmp_path, rows=500)
    first = ingest(settings, echo=lambda *_: None)
    assert first.ingested == ["2024-01", "2024-02"]
    before = {p.name: p.stat().st_mtime_ns for p in settings.raw_dir.glob("*.parquet")}
    second = ingest(settings, echo=lambda *_: None)
    assert second.skipped == ["2024-01", "2024-02"] and not second.ingested
    assert {p.name: p.stat().st_mtime_ns for p in settings.raw_dir.glob("*.parquet")} == before


def test_a_corrupt_month_is_fetched_again(tmp_path, settings_for):
    settings = settings_for(tmp_path, rows=500)
    ingest(settings, echo=lambda *_: None)
    (settings.raw_dir / "green_tripdata_2024-02.parquet").write_text("half a file")
    again = ingest(settings, echo=lambda *_: None)
    assert again.ingested == ["2024-02"] and again.skipped == ["2024-01"]


def test_a_month_failing_validation_is_not_used_and_the_reason_is_kept(tmp_path, settings_for):
    source = tmp_path / "tlc"
    write_parquet(generate_month("2024-01", rows=300), source / "green_tripdata_2024-01.parquet")
    broken = generate_month("2024-02", rows=300).drop(columns=["DOLocationID"])
    write_parquet(broken, source / "green_tripdata_2024-02.parquet")
    settings = settings_for(tmp_path, source="tlc", tlc_base_url=str(source))
    messages: list[str] = []
    result = ingest(settings, echo=messages.append)
    assert result.ingested == ["2024-01"] and list(result.rejected) == ["2024-02"]
    assert not (settings.raw_dir / "green_tripdata_2024-02.parquet").exists()
    reason = (settings.raw_dir / "rejected" / "green_tripdata_2024-02.parquet.reason.txt").read_text()
    assert "column 'DOLocationID': required column is missing" in reason
    assert any("REJECTED" in m for m in messages)


def test_train_writes_model_and_metadata(trained):
    metadata = json.loads(trained.model_path.with_suffix(".json").read_text())
    assert metadata["sha256"] == sha256_of(trained.model_path)
    assert metadata["train_months"] == ["2024-01"] and metadata["test_month"] == "2024-02"
    assert 1 < metadata["metrics"]["rmse"] < 10  # the generator has real-data noise: ~5-6 min on full months
    assert {"scikit-learn", "pandas", "numpy", "python"} <= set(metadata["library_versions"])
    assert "PULocationID" in metadata["features"]
    assert (trained.model_dir / "model.pkl").read_bytes() == trained.model_path.read_bytes()  # handed off


def test_service_refuses_a_model_that_is_not_the_one_handed_off(trained, tmp_path):
    shutil.copytree(trained.handoff_dir, tmp_path / "handoff")
    model = tmp_path / "handoff" / "model.pkl"
    model.write_bytes(model.read_bytes() + b"tampered")
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_model_file(model)
    with pytest.raises(ModelFileError, match="not found"):
        load_model_file(tmp_path / "nowhere" / "model.pkl")


def test_serve_command_exits_with_a_clear_message(trained, tmp_path):
    shutil.copytree(trained.handoff_dir, tmp_path / "handoff")
    (tmp_path / "handoff" / "model.pkl").write_bytes(b"not the model")
    env = {**os.environ, "LEVEL1_MODEL_PATH": str(tmp_path / "handoff" / "model.pkl")}
    done = subprocess.run(
        [sys.executable, "-m", "level1.cli", "serve", "--port", "8799"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot start" in done.stderr and "SHA-256" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_invalid_month_is_never_left_in_raw(tmp_path, settings_for):
    source = tmp_path / "tlc"
    for month in ("2024-01", "2024-02"):
        write_parquet(generate_month(month, rows=300), source / f"green_tripdata_{month}.parquet")
    settings = settings_for(tmp_path, source="tlc", tlc_base_url=str(source))
    ingest(settings, echo=lambda *_: None)
    (settings.raw_dir / "green_tripdata_2024-02.parquet").write_text("corrupted on disk")
    broken = generate_month("2024-02", rows=300).drop(columns=["DOLocationID"])
    write_parquet(broken, source / "green_tripdata_2024-02.parquet")  # and the source is now broken too
    result = ingest(settings, echo=lambda *_: None)
    assert list(result.rejected) == ["2024-02"]
    assert sorted(p.name for p in settings.raw_dir.glob("*.parquet")) == ["green_tripdata_2024-01.parquet"]
    with pytest.raises(TrainingDataError, match="need at least 2 ingested months"):
        train(settings)


def test_corrupt_metadata_is_refused_clearly(trained, tmp_path):
    shutil.copytree(trained.handoff_dir, tmp_path / "handoff")
    (tmp_path / "handoff" / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model_file(tmp_path / "handoff" / "model.pkl")


@pytest.mark.parametrize(("name", "value"), [("LEVEL1_FIRST_MONTH", "2024-13"), ("LEVEL1_MONTHS", "0")])
def test_invalid_settings_are_one_clear_line(tmp_path, name, value):
    done = subprocess.run(
        [sys.executable, "-m", "level1.cli", "ingest"],
        env={**os.environ, name: value}, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"invalid setting: {name}" in done.stderr and "Traceback" not in done.stderr


def _cli(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "level1.cli", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.parametrize(("flag", "code"), [((), 1), (("--allow-partial",), 0)])
def test_a_rejected_month_fails_ingest_unless_partial_is_allowed(tmp_path, flag, code):
    source = tmp_path / "tlc"
    write_parquet(generate_month("2024-01", rows=300), source / "green_tripdata_2024-01.parquet")
    broken = generate_month("2024-02", rows=300).drop(columns=["DOLocationID"])
    write_parquet(broken, source / "green_tripdata_2024-02.parquet")
    env = {"LEVEL1_SOURCE": "tlc", "LEVEL1_TLC_BASE_URL": str(source), "LEVEL1_MONTHS": "2"}
    done = _cli(tmp_path, "ingest", *flag, **env)
    assert done.returncode == code, done.stdout + done.stderr
    assert "done: 1 ingested, 0 already there, 1 rejected" in done.stdout  # the summary is printed either way
    assert ("2024-02 rejected" in done.stderr and "--allow-partial" in done.stderr) == (code == 1)
    assert (tmp_path / "data" / "raw" / "green_tripdata_2024-01.parquet").exists()


def test_missing_inputs_raise_named_errors(tmp_path, settings_for):
    settings = settings_for(tmp_path)
    with pytest.raises(TrainingDataError, match="found 0"):
        train(settings)
    with pytest.raises(NoModelError, match="run `make train` first"):
        handoff(settings)
    with pytest.raises(ImageError, match="run `make train handoff` first"):
        stage_context(tmp_path / "context", settings.handoff_dir)


def test_commands_turn_named_errors_into_one_line(tmp_path):
    for command, message in [("train", "cannot train: need at least 2"), ("handoff", "cannot hand off: no model")]:
        done = _cli(tmp_path, command)
        assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr
