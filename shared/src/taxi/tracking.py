"""MLflow glue shared by the levels with a registry (extra: ``taxi-shared[tracking]``).

- ``log_trip_model``: log a raw-trip pipeline with its signature, input example and the skops types it
  needs trusted (MLflow 3 saves scikit-learn models with skops by default).
- ``RegistryModel``: a registered version loaded for serving (``taxi.serving.ServedModel``), with what
  ``/model`` should say about it: name, version, run id, lineage tags.
- alias helpers: the registry's aliases (not the deprecated stages) are how a version is released.

**Failures are named.** A registry that does not answer (connection refused, a timeout, a server error) is a
``RegistryUnreachable`` naming the tracking URI, never mistaken for "no such alias" (which would look like
"nothing released", or to a gate like "no champion to compare with"). A registered version whose artifact is
corrupt, truncated, not skops, or holds a type from a module our models are not made of is refused before it
is deserialised: ``ModelArtifactError`` says which and why.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# skops before MLflow: importing skops.io looks up every numpy and scipy ufunc in the modules loaded so far,
# seconds slower with MLflow's ~1,000 modules loaded first (this module is the one the stages and services get
# skops from: they import it before MLflow).
import skops.io  # isort: split

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from taxi.fast_path import fast_path_for
from taxi.model import INPUT_COLUMNS

_logger = logging.getLogger(__name__)

# Modules whose types a model of ours may contain; anything else found in a model is refused.
TRUSTED_MODULE_PREFIXES = (
    "sklearn.", "numpy.", "scipy.", "taxi.", "builtins.", "collections.", "pandas.", "functools.partial",
)  # fmt: skip


class RegistryError(LookupError):
    """A registered model, version or alias that does not exist, or a registry that cannot say: the message says
    which."""


class RegistryUnreachable(RegistryError):
    """The tracking server / registry did not answer (refused, timed out, a server error): the message names its
    URI. A ``RegistryError`` too, so every command that reports one reports this as one line."""


class ModelArtifactError(RuntimeError):
    """A registered version whose model artifact was refused: it cannot be downloaded or read (corrupt,
    truncated), is not skops, or holds types from modules our models are not made of."""


# MLflow's error codes for "no such model, version or alias" (anything else is the registry failing to answer).
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def is_not_found(exc: MlflowException) -> bool:
    """Whether MLflow said the thing asked for does not exist (rather than failing to answer)."""
    return exc.error_code in NOT_FOUND_CODES


def registry_uri(client: MlflowClient | None = None) -> str:
    """The registry's URI (a client's, else the current one), any password in it hidden."""
    uri = getattr(client, "_registry_uri", None) or mlflow.get_registry_uri()
    return _hide_password(str(uri))


def unreachable(exc: BaseException, client: MlflowClient | None = None) -> RegistryUnreachable:
    """``exc`` (a failed registry call) as one line naming the registry and the cause."""
    return RegistryUnreachable(f"the MLflow registry at {registry_uri(client)} cannot be reached ({_cause(exc)})")


CAUSES = (
    ("Connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("Name or service not known", "unknown host"),
    ("No route to host", "no route to host"),
)


def _cause(exc: BaseException) -> str:
    """The root cause of a failed call, short: "connection refused", "timed out", or the error's first line."""
    seen: BaseException | None = exc
    chain = []
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(e) for e in chain)
    for marker, short in CAUSES:
        if marker in text:
            return short
    root = chain[-1]
    first = (str(root).strip().splitlines() or [""])[0]
    return f"{type(root).__name__}: {first}"[:200]


def _hide_password(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        userinfo, _, host = rest.partition("@")
        return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"
    return uri


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
    environment_log = logging.getLogger("mlflow.utils.environment")
    environment_log.addFilter(_without_pip_version_warning)
    try:
        return mlflow.sklearn.log_model(
            pipeline,
            name=name,
            signature=signature,
            input_example=example,
            skops_trusted_types=trusted_types(pipeline, file=saved),
            **kwargs,
        )
    finally:
        environment_log.removeFilter(_without_pip_version_warning)


def _without_pip_version_warning(record: logging.LogRecord) -> bool:
    """uv's environments have no pip, so MLflow lists pip in the model's conda.yaml without a version and says so
    as a WARNING in every training's output. Nothing of ours uses conda.yaml (requirements.txt has the pins)."""
    return "Failed to resolve installed pip version" not in record.getMessage()


def client_for(tracking_uri: str) -> MlflowClient:
    """Point MLflow at ``tracking_uri`` (runs, registry) and return a client for it."""
    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient()


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version behind ``name@alias``, or None when the alias (or the model) does not exist; a registry that
    does not answer raises ``RegistryUnreachable`` (an outage is not "nothing released")."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if is_not_found(exc):
            return None
        raise unreachable(exc, client) from None


def get_version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if not is_not_found(exc):
            raise unreachable(exc, client) from None
        try:
            known = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        except MlflowException as again:
            raise unreachable(again, client) from None
        listing = ", ".join(map(str, known)) if known else "none"
        raise RegistryError(f"model '{name}' has no version {version} (versions: {listing})") from None


def check_model_artifact(model_dir: Path) -> None:
    """Refuse (``ValueError``, saying why) a downloaded model folder that is not a skops scikit-learn model made
    only of types from ``TRUSTED_MODULE_PREFIXES``. MLflow trusts the types the model's own MLmodel lists, so a
    tampered artifact could list anything; this reads the types from the model file itself. A file that is not a
    readable skops archive (truncated, overwritten) fails here too, before anything is deserialised."""
    from mlflow.models import Model

    try:
        flavor = Model.load(model_dir / "MLmodel").flavors.get("sklearn")
    except Exception as exc:
        raise ValueError(f"its MLmodel cannot be read ({type(exc).__name__}: {exc})") from None
    if flavor is None:
        raise ValueError("it has no scikit-learn flavour")
    if flavor.get("serialization_format") != "skops":
        raise ValueError(f"it is saved as {flavor.get('serialization_format')}, not skops: loading it can run code")
    path = model_dir / str(flavor.get("pickled_model", "model.skops"))
    try:
        types = skops.io.get_untrusted_types(file=path)
    except Exception as exc:
        raise ValueError(f"its model file is corrupt ({type(exc).__name__}: {exc})") from None
    _check_trusted(sorted({*types, *(flavor.get("skops_trusted_types") or [])}))


def load_checked_model(name: str, version: str | int) -> Any:
    """Registered model ``name`` at ``version`` as a pyfunc, after ``check_model_artifact`` passed on the
    downloaded artifact; raises ``ModelArtifactError`` (why it was refused), or ``RegistryUnreachable``."""
    refused = f"model '{name}' v{version} refused:"
    with tempfile.TemporaryDirectory(prefix="taxi-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=tmp))
        except MlflowException as exc:
            if is_not_found(exc):
                raise ModelArtifactError(f"{refused} its artifact cannot be found ({_cause(exc)})") from None
            raise unreachable(exc) from None
        except OSError as exc:
            raise ModelArtifactError(f"{refused} its artifact cannot be downloaded ({_cause(exc)})") from None
        try:
            check_model_artifact(local)
        except ValueError as exc:
            raise ModelArtifactError(f"{refused} {exc}") from None
        mismatches = requirement_mismatches(local)
        if mismatches:
            _logger.warning("model '%s' v%s was saved with %s", name, version, "; ".join(mismatches))
        try:  # MLflow's own requirements check, suppressed, first maps every installed package: a second a process
            return mlflow.pyfunc.load_model(str(local), suppress_warnings=True)
        except Exception as exc:
            raise ModelArtifactError(f"{refused} it does not load ({type(exc).__name__}: {exc})"[:500]) from None


def requirement_mismatches(model_dir: Path) -> list[str]:
    """The pinned requirements of a downloaded model (``requirements.txt``: ``name==version``) that this environment
    does not meet, e.g. ``scikit-learn==1.7.2 (here 1.9.1)``: a model may load, yet predict differently, with other
    versions of the libraries it was made with."""
    path = model_dir / "requirements.txt"
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        name, sep, wanted = (part.strip() for part in line.split("#", 1)[0].partition("=="))
        if not sep or not name or name.startswith("-"):
            continue
        try:
            here = version(name.split("[", 1)[0])
        except PackageNotFoundError:
            here = "not installed"
        if here != wanted:
            found.append(f"{name}=={wanted} (here {here})")
    return found


class RegistryModel:
    """A registered model version, loaded through the pyfunc flavour (its signature is enforced) once its artifact
    passed ``check_model_artifact`` (else ``ModelArtifactError``: ``load_checked_model``).

    ``fast_path``: the scikit-learn pipeline inside, compiled by ``taxi.fast_path`` and checked against it
    (None when it does not compile or disagrees); services answer with it (``taxi.inference.predict_trips``),
    ``predict`` stays the pyfunc. ``describe()["serving_path"]`` says which and why."""

    def __init__(self, name: str, version: ModelVersion, alias: str | None = None):
        self.name = name
        self.version = version
        self.alias = alias
        self.pyfunc = load_checked_model(name, version.version)
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
