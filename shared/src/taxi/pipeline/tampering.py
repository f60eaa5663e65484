"""A registered model whose artifact is tampered with in the artifact store, for the tests that prove a level's
service refuses it (levels 2-4: each loads ``models:/<name>@<alias>`` its own way; one helper, no copies).

    @pytest.mark.parametrize("kind", TAMPERINGS)                        # a byte flipped / an untrusted type planted
    def test_a_tampered_model_is_refused(tmp_path, kind):
        tampered = tampered_model(tmp_path, "trip-duration", "production", kind)   # registered, then tampered with
        error = refusal(lambda: create_app(Settings(tracking_uri=tampered.tracking_uri)), tampered)
        assert f"v{tampered.version} refused" in str(error)

The parts: ``register_small_model``, ``model_folder`` (a version's MLmodel + model.skops on disk), ``flip_byte``,
``plant_payload``.

``plant_payload`` rewrites the model file so that it holds an instance of a class from a module our models are
not made of, whose ``__setstate__`` (what skops calls to rebuild it) writes ``marker``, and lists that type in
the MLmodel's ``skops_trusted_types`` too, as an attacker with write access to the store would: MLflow alone
then loads it. The test asserts the service refused it and that ``marker`` was never written.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAYLOAD_MODULE = "tampered_payload"
PAYLOAD_SOURCE = '''"""Not a model part: what an attacker adds to a model file. Rebuilding it writes a marker file."""
from pathlib import Path


class Payload:
    def __setstate__(self, state):
        Path(state["marker"]).write_text("executed")
'''


def register_small_model(tracking_uri: str, name: str, *, artifacts: Path, alias: str, rows: int = 800) -> str:
    """Fit the raw-trip pipeline on ``rows`` generated trips, log it with its signature and trusted types (as the
    train stage does) to an experiment whose artifacts are in ``artifacts``, register it as a new version of
    ``name`` with ``alias``; returns the version."""
    import mlflow
    from mlflow import MlflowClient

    from taxi.generator import generate_month
    from taxi.model import build_trip_pipeline, prepare_trips
    from taxi.tracking import log_trip_model

    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.get_experiment_by_name("tampering")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment("tampering", artifact_location=artifacts.resolve().as_uri())
    )
    trips, y = prepare_trips(generate_month("2024-01", rows=rows))
    pipeline = build_trip_pipeline({"max_iter": 10, "random_state": 0}).fit(trips, y)
    with mlflow.start_run(experiment_id=experiment_id):
        info = log_trip_model(pipeline, trips)
    version = mlflow.register_model(info.model_uri, name).version
    MlflowClient(tracking_uri).set_registered_model_alias(name, alias, version)
    return str(version)


def model_folder(tracking_uri: str, name: str, version: str) -> Path:
    """The folder of a registered version's model in a local (file) artifact store: MLmodel, model.skops..."""
    from urllib.parse import unquote, urlparse

    from mlflow import MlflowClient

    location = MlflowClient(tracking_uri).get_model_version_download_uri(name, version)
    return Path(unquote(urlparse(location).path)) if location.startswith("file:") else Path(location)


def flip_byte(path: Path) -> None:
    """Change one byte in the middle of ``path`` (its other bytes, its size and its name unchanged)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def plant_payload(folder: Path, workdir: Path) -> Path:
    """Rewrite ``folder``'s model.skops with a ``tampered_payload.Payload`` attached to the pipeline and list
    every type it holds as trusted in ``folder``/MLmodel (see module doc). The payload's module is written to
    ``workdir`` and importable while the test runs (so a refusal is not an ImportError). Returns the marker
    file the payload would write if it were ever rebuilt."""
    import skops.io
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{PAYLOAD_MODULE}.py").write_text(PAYLOAD_SOURCE)
    if str(workdir) not in sys.path:
        sys.path.insert(0, str(workdir))
    sys.modules.pop(PAYLOAD_MODULE, None)
    payload_class: Any = __import__(PAYLOAD_MODULE).Payload
    marker = workdir / "executed.txt"

    model_file = folder / "model.skops"
    pipeline = skops.io.load(model_file, trusted=skops.io.get_untrusted_types(file=model_file))
    payload = payload_class.__new__(payload_class)
    payload.marker = str(marker)  # skops saves __dict__ and hands it to __setstate__ on load
    pipeline.steps[-1][1].payload = payload
    skops.io.dump(pipeline, model_file)
    meta = yaml.safe_load((folder / "MLmodel").read_text())
    meta["flavors"]["sklearn"]["skops_trusted_types"] = skops.io.get_untrusted_types(file=model_file)
    (folder / "MLmodel").write_text(yaml.safe_dump(meta))
    return marker


TAMPERINGS = ("one byte flipped", "untrusted type planted")


@dataclass(frozen=True)
class Tampered:
    tracking_uri: str
    name: str
    version: str
    marker: Path  # written if the planted payload ever runs (never, for "one byte flipped")


def tampered_model(tmp: Path, name: str, alias: str, kind: str) -> Tampered:
    """A sqlite registry in ``tmp`` whose ``name@alias`` is a version tampered with as ``kind`` (TAMPERINGS)."""
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    version = register_small_model(uri, name, artifacts=tmp / "artifacts", alias=alias)
    folder = model_folder(uri, name, version)
    if kind == "one byte flipped":
        flip_byte(folder / "model.skops")
        marker = tmp / "payload" / "executed.txt"
    elif kind == "untrusted type planted":
        marker = plant_payload(folder, tmp / "payload")
    else:
        raise ValueError(f"unknown tampering {kind!r}: one of {', '.join(TAMPERINGS)}")
    return Tampered(uri, name, version, marker)


def refusal(load: Callable[[], Any], tampered: Tampered) -> Exception:
    """What ``load()`` (a level's way to load the tampered model: its service's create_app...) raised; an
    AssertionError when it loaded the model, or when the payload ran."""
    try:
        load()
    except Exception as exc:
        error = exc
    else:
        raise AssertionError(f"the tampered model {tampered.name} v{tampered.version} was loaded")
    if tampered.marker.exists():
        raise AssertionError(f"the payload planted in {tampered.name} v{tampered.version} ran while it was refused")
    return error
