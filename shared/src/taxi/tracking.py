"""MLflow glue shared by the levels with a registry (extra: ``taxi-shared[tracking]``).

- ``log_trip_model``: log a raw-trip pipeline with its signature, input example and the skops types it
  needs trusted (MLflow 3 saves scikit-learn models with skops by default).
- ``RegistryModel``: a registered version loaded for serving (``taxi.serving.ServedModel``), with what
  ``/model`` should say about it: name, version, run id, lineage tags.
- alias helpers: the registry's aliases (not the deprecated stages) are how a version is released.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import skops.io
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from taxi.fast_path import fast_path_for
from taxi.model import INPUT_COLUMNS

# Modules whose types a model of ours may contain; anything else found in a model is refused.
TRUSTED_MODULE_PREFIXES = (
    "sklearn.", "numpy.", "scipy.", "taxi.", "builtins.", "collections.", "pandas.", "functools.partial",
)  # fmt: skip


class RegistryError(LookupError):
    """A registered model, version or alias that does not exist: the message says which."""


def trusted_types(model: Any = None, *, file: Path | None = None) -> list[str]:
    """The types skops must trust to load ``model`` (or the skops ``file`` it is saved in: no second dump of a
    large model); a type from an unexpected module is an error."""
    if file is None:
        return _check_trusted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    return _check_trusted(skops.io.get_untrusted_types(file=file))


def _check_trusted(types: list[str]) -> list[str]:
    unexpected = [t for t in types if not t.startswith(TRUSTED_MODULE_PREFIXES)]
    if unexpected:
        raise ValueError(f"the model contains types from unexpected modules: {', '.join(unexpected)}")
    return types


def save_pipeline(pipeline: Any, path: Path) -> Path:
    """Save a fitted pipeline with skops (no arbitrary code on load, unlike pickle)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    skops.io.dump(pipeline, path)
    return path


def load_pipeline(path: Path) -> Any:
    """Load a skops file, trusting only types from the modules our models are made of."""
    return skops.io.load(path, trusted=_check_trusted(skops.io.get_untrusted_types(file=path)))


# The model's input types, as logged in its signature and as every caller passes them.
INPUT_DTYPES = {
    "PULocationID": "int64",
    "DOLocationID": "int64",
    "trip_distance": "float64",
    "lpep_pickup_datetime": "datetime64[ns]",
    "passenger_count": "float64",  # optional: missing is NaN
}


def model_inputs(trips: pd.DataFrame) -> pd.DataFrame:
    """The trips' input columns in the signature's types (files store ids as int32, APIs give int64)."""
    return trips[INPUT_COLUMNS].astype(INPUT_DTYPES)


def input_example(trips: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    return model_inputs(trips.head(rows))


def pip_requirements() -> list[str]:
    """What loading the model needs, pinned to this environment (saves MLflow inferring it: seconds)."""
    return [f"{lib}=={version(lib)}" for lib in ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "taxi-shared")]


def log_trip_model(
    pipeline: Any, trips: pd.DataFrame, *, name: str = "model", saved: Path | None = None, **kwargs: Any
):
    """Log a fitted raw-trip pipeline to the active run; returns MLflow's ModelInfo. ``saved``: the skops file
    ``save_pipeline`` wrote it to, if any (its trusted types are read from there)."""
    example = input_example(trips)
    kwargs.setdefault("pip_requirements", pip_requirements())
    with warnings.catch_warnings():  # the hint about integer columns and missing values: ids are never missing
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        signature = infer_signature(example, np.asarray(pipeline.predict(example), dtype="float64"))
    return mlflow.sklearn.log_model(
        pipeline,
        name=name,
        signature=signature,
        input_example=example,
        skops_trusted_types=trusted_types(pipeline, file=saved),
        **kwargs,
    )


def client_for(tracking_uri: str) -> MlflowClient:
    """Point MLflow at ``tracking_uri`` (runs, registry) and return a client for it."""
    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient()


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version behind ``name@alias``, or None when the alias is not set."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def get_version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        known = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        listing = ", ".join(map(str, known)) if known else "none"
        raise RegistryError(f"model '{name}' has no version {version} (versions: {listing})") from None


class RegistryModel:
    """A registered model version, loaded through the pyfunc flavour (its signature is enforced).

    ``fast_path``: the scikit-learn pipeline inside, compiled by ``taxi.fast_path`` and checked against it
    (None when it does not compile or disagrees); services answer with it (``taxi.inference.predict_trips``),
    ``predict`` stays the pyfunc. ``describe()["serving_path"]`` says which and why."""

    def __init__(self, name: str, version: ModelVersion, alias: str | None = None):
        self.name = name
        self.version = version
        self.alias = alias
        self.pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
        self.fast_path, self.serving_path = fast_path_for(self.pyfunc.get_raw_model())

    @classmethod
    def from_alias(cls, name: str, alias: str, client: MlflowClient | None = None) -> RegistryModel:
        client = client or MlflowClient()
        version = alias_version(client, name, alias)
        if version is None:
            raise RegistryError(f"no version of '{name}' has the alias '{alias}' yet: release one first")
        return cls(name, version, alias)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pyfunc.predict(model_inputs(frame)), dtype="float64")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": str(self.version.version),
            "alias": self.alias,
            "run_id": self.version.run_id,
            "source": self.version.source,
            "tags": dict(self.version.tags),
            "serving_path": self.serving_path,
        }
