"""The platform around the pipeline is down, for real: an MLflow tracking server nothing answers at (a free
loopback port), a DVC remote that cannot take the data (a path through a file; an http remote at a dead port),
a Prefect server at PREFECT_API_URL that is not there. Each is one line naming it, nothing is left half done,
and the local results stay as they were."""

import http.server
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import typer
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic_settings import BaseSettings, SettingsConfigDict
from typer.testing import CliRunner

from taxi.pipeline import StageError, stage_cli
from taxi.pipeline.common import months_of, tracking_errors, unreachable
from taxi.pipeline.evaluate import evaluate
from taxi.pipeline.ingest import ingest
from taxi.pipeline.prefect_server import PrefectServerError, serve
from taxi.pipeline.prepare import Split, prepare
from taxi.pipeline.register import register
from taxi.pipeline.scratch import one_stage_project
from taxi.pipeline.tampering import tampered_model
from taxi.pipeline.tools import ToolError, push_to_remote, repro, tool, tool_env
from taxi.pipeline.train import train
from taxi.pipeline.validate import validate
from taxi.smoke import free_port

TRAIN = dict(model="hist_gradient_boosting", learning_rate=0.1, max_iter=15, max_leaf_nodes=15,
             min_samples_leaf=20, l2_regularization=0.0, random_state=0)  # fmt: skip
SMALL = {
    "ingest": dict(source="synthetic", tlc_base_url="unused", first_month="2024-03", months=2,
                   scenario="stationary", rows=600, seed=7),
    "prepare": {"test_months": 1},
    "train": TRAIN,
}  # fmt: skip


def dead_uri() -> str:
    return f"http://127.0.0.1:{free_port()}"  # free: nothing listens there


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Data prepared, a model trained and evaluated in a sqlite store: what register gets from DVC."""
    root = tmp_path_factory.mktemp("faults")
    store = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # a sqlite store keeps its artifacts in ./mlruns
        ingest(SMALL["ingest"], root / "raw", root / "downloads")
        validate(root / "raw", root / "validated", root / "reports" / "validation.json", months_of(SMALL["ingest"]))
        prepare(root / "validated", root / "prepared", Split.of(SMALL))
        run, model = root / "models" / "train_run.json", root / "models" / "model.skops"
        train(root / "prepared" / "train.parquet", model, run, SMALL, tracking_uri=store, experiment="faults")
        evaluate(model, run, root / "prepared" / "test.parquet", root / "reports", tracking_uri=store)
        yield root, store


# ---- the MLflow tracking server ----


def test_train_stops_before_its_work_when_the_tracking_server_does_not_answer(trained, tmp_path):
    root, _ = trained
    uri = dead_uri()
    started = time.monotonic()
    with pytest.raises(StageError) as caught:
        train(root / "prepared" / "train.parquet", tmp_path / "model.skops", tmp_path / "run.json", SMALL,
              tracking_uri=uri, experiment="faults")  # fmt: skip
    assert time.monotonic() - started < 20  # not MLflow's minutes of retries
    message = str(caught.value)
    assert f"the MLflow tracking server at {uri} is not reachable" in message and "\n" not in message
    assert not (tmp_path / "model.skops").exists() and not (tmp_path / "run.json").exists()  # nothing half done


def test_register_with_the_server_down_registers_nothing_and_registers_fully_once_it_is_back(trained, tmp_path):
    root, store = trained
    run, metrics, out = root / "models" / "train_run.json", root / "reports" / "metrics.json", tmp_path / "reg.json"
    uri = dead_uri()
    with pytest.raises(StageError, match=f"tracking server at {uri} is not reachable"):
        register(run, metrics, out, model_name="faulty", tracking_uri=uri)
    assert not out.exists()
    client = MlflowClient(store)  # the store behind the server: nothing registered, not even the model's name
    assert client.search_registered_models("name = 'faulty'") == []

    registered = register(run, metrics, out, model_name="faulty", tracking_uri=store)  # the server is back
    assert registered["version"] == 1 and registered["new"] and json.loads(out.read_text()) == registered
    version = client.get_model_version("faulty", "1")
    assert {"rmse", "mae", "data_md5", "params_hash", "git_commit", "train_months"} <= set(version.tags)
    assert float(version.tags["rmse"]) == pytest.approx(json.loads(metrics.read_text())["rmse"], abs=1e-4)
    assert "rmse" in client.get_run(version.run_id).data.metrics  # evaluate's metrics are on the run


class LevelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEVELX_")
    tracking_uri: str
    experiment: str = "faults"
    model_name: str = "faulty"
    params_file: Path


def test_a_stage_command_names_the_server_and_the_setting_in_one_line(trained, tmp_path):
    root, _ = trained
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(SMALL))
    uri = dead_uri()
    app = typer.Typer()
    app.add_typer(stage_cli(lambda: LevelSettings(tracking_uri=uri, params_file=tmp_path / "params.yaml")), name="s")
    model, run = tmp_path / "model.skops", tmp_path / "run.json"
    args = ["s", "train", "--data", str(root / "prepared" / "train.parquet"), "--model", str(model), "--run", str(run)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 1 and done.stdout == ""
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"train: the MLflow tracking server at {uri} is not reachable")
    assert "set LEVELX_TRACKING_URI" in line
    assert not model.exists()


def test_an_mlflow_failure_inside_a_stage_is_one_line_naming_the_store():
    with pytest.raises(StageError) as caught, tracking_errors("http://tracking.example:5000"):
        raise MlflowException("API request to http://tracking.example:5000/api failed\nwith a long story")
    assert str(caught.value) == "MLflow at http://tracking.example:5000 failed: API request to " \
        "http://tracking.example:5000/api failed"  # fmt: skip


def test_unreachable_tells_a_dead_port_from_a_server_answering_any_status():
    assert "refused" in unreachable(dead_uri() + "/health").lower()

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert unreachable(f"http://127.0.0.1:{server.server_address[1]}/health") is None
    finally:
        server.shutdown()
        server.server_close()


# ---- the DVC remote ----


def _dvc(project: Path, *args: str) -> None:
    subprocess.run([tool("dvc"), *args], cwd=project, env=tool_env(), check=True, capture_output=True, timeout=120)


@pytest.mark.parametrize("kind", ["local path through a file"])  # http at a dead port: level 2's test_schedule_faults
def test_a_push_to_an_unavailable_remote_fails_in_one_line_and_keeps_the_local_results(tmp_path, kind):
    if kind.startswith("local"):
        (tmp_path / "blocker").write_text("a file where the remote's folder should be")
        url = str(tmp_path / "blocker" / "remote")
    else:
        url = dead_uri() + "/remote"
    toy_project = one_stage_project(tmp_path / "project", env=tool_env(), remote=url)
    with pytest.raises(ToolError) as caught:
        repro(cwd=toy_project, echo=lambda line: None)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"dvc push to the DVC remote 'store' ({url}) failed: ")
    assert ("Not a directory" if kind.startswith("local") else "Cannot connect") in message
    assert "run `dvc push`" in message

    lock = yaml.safe_load((toy_project / "dvc.lock").read_text())  # repro's results, all kept
    md5 = lock["stages"]["make"]["outs"][0]["md5"]
    assert (toy_project / "out.txt").read_text() == "trips\n"
    assert (toy_project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).exists()

    _dvc(toy_project, "remote", "modify", "store", "url", str(tmp_path / "remote"))  # the remote is back
    assert push_to_remote(toy_project) == "store"
    assert (tmp_path / "remote" / "files" / "md5" / md5[:2] / md5[2:]).exists()


# ---- the Prefect server ----


def test_serve_refuses_a_prefect_server_that_does_not_answer_before_serving_anything(monkeypatch, tmp_path):
    api_url = dead_uri() + "/api"
    monkeypatch.setenv("PREFECT_API_URL", api_url)
    handler = signal.getsignal(signal.SIGINT)

    def deployments():
        raise AssertionError("nothing is served")

    with pytest.raises(PrefectServerError) as caught:
        serve(deployments, "faults", free_port(), tmp_path / ".prefect", echo=lambda line: None)
    assert str(caught.value).startswith(f"the Prefect server at {api_url} (PREFECT_API_URL) is not reachable")
    assert signal.getsignal(signal.SIGINT) is handler
    assert not (tmp_path / ".prefect").exists()  # no local server was started instead


# ---- the tampering the levels' tests use (taxi.pipeline.tampering) is real ----


def test_the_planted_payload_runs_when_mlflow_alone_loads_the_model(tmp_path):
    """The control for every level's tampered-model test: unchecked, MLflow trusts what the MLmodel lists."""
    import mlflow

    tampered = tampered_model(tmp_path, "control", "production", "untrusted type planted")
    mlflow.set_tracking_uri(tampered.tracking_uri)
    mlflow.pyfunc.load_model(f"models:/control/{tampered.version}")
    assert tampered.marker.read_text() == "executed"
