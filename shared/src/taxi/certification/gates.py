"""The certification gates that need no behavioural probing: schema, quality, no_regression, operational.

Each gate returns a ``GateResult`` (name, passed, a reason a human can act on, the figures it decided on).
A model is anything with ``predict(trips) -> array`` taking raw trips with ``taxi.model.INPUT_COLUMNS`` (a
``build_trip_pipeline`` pipeline, or the registry's pyfunc wrapper). What only the registry knows (signature,
skops types, artifact size) comes in as plain data, ``CandidateFacts``, filled by the caller: this module
imports no MLOps tool.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from taxi.certification.config import NoRegressionConfig, OperationalConfig, QualityConfig, SchemaConfig
from taxi.model import INPUT_COLUMNS, prepare_trips
from taxi.trip import Trip, trips_to_frame

# The API's trip schema as a model signature spells it (MLflow column types). The trip frame every API builds
# (``taxi.trip.trips_to_frame``) has these columns in these dtypes; passenger_count is optional (NaN = missing).
EXPECTED_INPUT_TYPES: dict[str, str] = {
    "PULocationID": "long",
    "DOLocationID": "long",
    "trip_distance": "double",
    "lpep_pickup_datetime": "datetime",
    "passenger_count": "double",
}
# The pandas dtypes of the same columns: what a signature written with numpy names may say instead.
API_DTYPES: dict[str, str] = {
    "PULocationID": "int64",
    "DOLocationID": "int64",
    "trip_distance": "float64",
    "lpep_pickup_datetime": "datetime64[ns]",
    "passenger_count": "float64",
}
_TYPE_ALIASES = {"int64": "long", "float64": "double", "datetime64[ns]": "datetime", "datetime64[us]": "datetime"}

GATE_NAMES = ("schema", "quality", "no_regression", "behaviour", "operational")


@runtime_checkable
class Predictor(Protocol):
    """What the gates certify: a model that predicts minutes for raw trips (``INPUT_COLUMNS``)."""

    def predict(self, trips: pd.DataFrame) -> Any: ...


class GateResult(BaseModel):
    """One gate's verdict: ``reason`` says why in one line, ``figures`` hold what it decided on (JSON-safe)."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    reason: str
    figures: dict[str, Any] = Field(default_factory=dict)


class CandidateFacts(BaseModel):
    """What only the registry knows about a candidate, as plain data (the level-3 glue fills it; None = unknown).

    - ``signature_inputs``: the logged signature's inputs as (column name, type) pairs, e.g.
      ``[(c.name, c.type.name) for c in model_info.signature.inputs.inputs]`` (MLflow type names such as
      ``long``, or numpy dtype names such as ``int64``);
    - ``untrusted_types_ok``: whether loading the artifact needs only trusted types (``taxi.tracking``'s
      check), with ``untrusted_types`` naming the offending ones when not;
    - ``artifact_bytes``: size of the model artifact on disk.
    """

    model_config = ConfigDict(frozen=True)

    signature_inputs: list[tuple[str, str]] | None = None
    untrusted_types_ok: bool | None = None
    untrusted_types: list[str] = Field(default_factory=list)
    artifact_bytes: int | None = Field(None, ge=0)


@dataclass(frozen=True, eq=False)
class Holdout:
    """The frozen holdout every model is scored on: raw trips ``X`` (``INPUT_COLUMNS``), true minutes ``y``."""

    X: pd.DataFrame
    y: pd.Series
    label: str = "holdout"

    def __post_init__(self) -> None:
        missing = [c for c in INPUT_COLUMNS if c not in self.X.columns]
        if missing:
            raise ValueError(f"holdout '{self.label}' lacks input column(s): {', '.join(missing)}")
        if len(self.X) != len(self.y):
            raise ValueError(f"holdout '{self.label}': {len(self.X)} trips but {len(self.y)} durations")
        if len(self.X) == 0:
            raise ValueError(f"holdout '{self.label}' is empty")

    @classmethod
    def from_trips(cls, trips: pd.DataFrame, label: str = "holdout") -> Holdout:
        """A holdout from a raw TLC month: the served trips (``taxi.model.prepare_trips``) and their durations."""
        X, y = prepare_trips(trips)
        return cls(X.reset_index(drop=True), y.reset_index(drop=True), label)

    @property
    def fingerprint(self) -> str:
        """A content hash (sha256 prefix) of trips and durations: the same fingerprint = the same holdout."""
        frame = self.X[INPUT_COLUMNS].astype(API_DTYPES).assign(_y=self.y.to_numpy(dtype="float64"))
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {"label": self.label, "trips": len(self.X), "fingerprint": self.fingerprint}


def api_frame(trips: pd.DataFrame) -> pd.DataFrame:
    """``trips``' input columns in the API's dtypes (what a served model receives)."""
    return trips[INPUT_COLUMNS].astype(API_DTYPES)


def example_trips() -> pd.DataFrame:
    """A few ordinary trips built through the API's own request model (``taxi.trip.Trip``)."""
    rows = [
        Trip(PULocationID=74, DOLocationID=42, trip_distance=1.8, lpep_pickup_datetime="2024-03-05T08:15:00"),
        Trip(
            PULocationID=7,
            DOLocationID=129,
            trip_distance=3.2,
            lpep_pickup_datetime="2024-03-06T18:40:00",
            passenger_count=2,
        ),
        Trip(PULocationID=181, DOLocationID=65, trip_distance=2.0, lpep_pickup_datetime="2024-03-09T12:00:00"),
    ]
    return trips_to_frame(rows)


def predictions(model: Predictor, trips: pd.DataFrame) -> np.ndarray:
    """``model.predict(trips)`` as a float array, checked to hold one value per trip."""
    values = np.asarray(model.predict(trips), dtype="float64").reshape(-1)
    if len(values) != len(trips):
        raise ValueError(f"predict returned {len(values)} values for {len(trips)} trips")
    return values


def schema_gate(model: Predictor, facts: CandidateFacts, config: SchemaConfig) -> GateResult:
    """The candidate takes the API's trip schema and is made of trusted types only.

    Sub-checks (each in the figures): ``signature`` (logged inputs = ``EXPECTED_INPUT_TYPES``, names and
    types), ``trusted_types``, ``input_columns`` (a scikit-learn model's ``feature_names_in_`` =
    ``INPUT_COLUMNS``), ``probe`` (predicting a few API trips gives one finite number each). Missing facts
    fail only with ``require_registry_facts``.
    """
    checks: dict[str, dict[str, Any]] = {}

    if facts.signature_inputs is None:
        checks["signature"] = _unknown("no signature given", config.require_registry_facts)
    else:
        checks["signature"] = _check_signature(facts.signature_inputs)

    if facts.untrusted_types_ok is None:
        checks["trusted_types"] = _unknown("no trusted-types verdict given", config.require_registry_facts)
    elif facts.untrusted_types_ok:
        checks["trusted_types"] = {"passed": True, "detail": "only trusted types"}
    else:
        named = ", ".join(facts.untrusted_types) or "unnamed"
        checks["trusted_types"] = {"passed": False, "detail": f"needs untrusted types: {named}"}

    names = getattr(model, "feature_names_in_", None)
    if names is None:
        checks["input_columns"] = {"passed": True, "detail": "model does not declare its input columns"}
    else:
        declared = [str(n) for n in names]
        ok = declared == INPUT_COLUMNS
        detail = "as the API sends them" if ok else _difference(declared, INPUT_COLUMNS)
        checks["input_columns"] = {"passed": ok, "detail": detail, "declared": declared}

    try:
        values = predictions(model, example_trips())
        ok = bool(np.isfinite(values).all())
        detail = "predicts API trips" if ok else "non-finite prediction for an ordinary API trip"
        checks["probe"] = {"passed": ok, "detail": detail, "predictions": _floats(values)}
    except Exception as exc:  # a model that cannot take the API's trips
        checks["probe"] = {"passed": False, "detail": f"predict on API trips raised {_error(exc)}"}

    failed = [f"{name} ({c['detail']})" for name, c in checks.items() if not c["passed"]]
    return gate_result("schema", failed, "inputs are the API's trip schema", checks)


def quality_gate(metrics: Mapping[str, Any], config: QualityConfig) -> GateResult:
    """Holdout RMSE and MAE (``taxi.model.evaluate`` output) at or under the configured limits."""
    rmse, mae, n = float(metrics["rmse"]), float(metrics["mae"]), int(metrics["n"])
    figures = {
        "rmse": rmse,
        "mae": mae,
        "trips": n,
        "max_rmse": config.max_rmse,
        "max_mae": config.max_mae,
        "min_trips": config.min_trips,
    }
    problems = []
    if n < config.min_trips:
        problems.append(f"holdout has {n} trips < {config.min_trips}")
    if not (math.isfinite(rmse) and math.isfinite(mae)):
        problems.append("non-finite predictions on the holdout (RMSE/MAE not finite)")
    else:
        if rmse > config.max_rmse:
            problems.append(f"RMSE {rmse:.2f} min > limit {config.max_rmse:.2f}")
        if mae > config.max_mae:
            problems.append(f"MAE {mae:.2f} min > limit {config.max_mae:.2f}")
    reason = f"RMSE {rmse:.2f} <= {config.max_rmse:.2f}, MAE {mae:.2f} <= {config.max_mae:.2f} min on {n} trips"
    return gate_result("quality", problems, reason, figures)


def no_regression_gate(
    candidate: Mapping[str, Any], champion: Mapping[str, Any] | None, config: NoRegressionConfig
) -> GateResult:
    """Candidate vs champion metrics (``taxi.model.evaluate`` on the same holdout): overall RMSE and slices.

    Fails when the overall RMSE is worse than the champion's by more than ``tolerance`` (relative), or a
    borough slice with at least ``min_slice_trips`` trips is worse by more than ``slice_tolerance``. Without a
    champion it passes ("no champion yet").
    """
    if champion is None:
        return GateResult(
            name="no_regression",
            passed=True,
            reason="no champion yet",
            figures={"candidate_rmse": float(candidate["rmse"])},
        )
    cand, champ = float(candidate["rmse"]), float(champion["rmse"])
    figures: dict[str, Any] = {
        "candidate_rmse": cand,
        "champion_rmse": champ,
        "candidate_mae": float(candidate["mae"]),
        "champion_mae": float(champion["mae"]),
        "relative_change": _relative(cand, champ),
        "tolerance": config.tolerance,
        "slice_tolerance": config.slice_tolerance,
        "min_slice_trips": config.min_slice_trips,
    }
    problems = []
    if not math.isfinite(champ):
        problems.append("the champion's RMSE is not finite: cannot compare")
    elif not _not_worse(cand, champ, config.tolerance):
        problems.append(f"RMSE {cand:.2f} vs champion {champ:.2f} ({_pct(cand, champ)} > +{config.tolerance:.0%})")

    slices: dict[str, Any] = {}
    cand_slices, champ_slices = candidate.get("slices", {}), champion.get("slices", {})
    for name, champ_slice in champ_slices.items():
        if name not in cand_slices:
            continue
        c, ch, n = float(cand_slices[name]["rmse"]), float(champ_slice["rmse"]), int(champ_slice["n"])
        gated = n >= config.min_slice_trips
        ok = _not_worse(c, ch, config.slice_tolerance) if gated else True
        slices[name] = {
            "trips": n,
            "candidate_rmse": c,
            "champion_rmse": ch,
            "relative_change": _relative(c, ch),
            "gated": gated,
            "passed": ok,
        }
        if gated and not ok and math.isfinite(ch):
            problems.append(f"{name} slice RMSE {c:.2f} vs {ch:.2f} ({_pct(c, ch)} > +{config.slice_tolerance:.0%})")
    figures["slices"] = slices
    gated = sum(s["gated"] for s in slices.values())
    reason = f"RMSE {cand:.2f} vs champion {champ:.2f} ({_pct(cand, champ)}); {gated} slice(s) within tolerance"
    return gate_result("no_regression", problems, reason, figures)


def operational_gate(
    model: Predictor,
    config: OperationalConfig,
    *,
    artifact_bytes: int | None = None,
    trip: pd.DataFrame | None = None,
) -> GateResult:
    """Single-row in-process p95 latency (after warm-up) and artifact size within their budgets.

    ``trip`` is the one-row frame timed (default: an ordinary API trip). The latency is timed in
    ``latency_rounds`` rounds of ``latency_calls`` calls and the quietest round's p95 is gated (as ``timeit``
    takes the best of its repeats: a slow model is slow in every round, a busy neighbour is not), with native
    thread pools (OpenMP, BLAS) limited to one thread when ``single_thread`` (see ``OperationalConfig``). The
    artifact size is checked when given (``CandidateFacts.artifact_bytes``).
    """
    row = trip if trip is not None else example_trips().head(1)
    with threadpool_limits(limits=1) if config.single_thread else nullcontext():
        for _ in range(config.warmup_calls):
            model.predict(row)
        rounds = []
        for _ in range(config.latency_rounds):
            ms = np.empty(config.latency_calls)
            for i in range(config.latency_calls):
                start = time.perf_counter()
                model.predict(row)
                ms[i] = (time.perf_counter() - start) * 1000
            rounds.append(ms)
    best = min(rounds, key=lambda ms: float(np.percentile(ms, 95)))
    p95 = float(np.percentile(best, 95))
    figures: dict[str, Any] = {
        "latency_p95_ms": p95,
        "latency_p50_ms": float(np.percentile(best, 50)),
        "latency_p95_ms_by_round": [float(np.percentile(ms, 95)) for ms in rounds],
        "latency_calls": config.latency_calls,
        "latency_rounds": config.latency_rounds,
        "single_thread": config.single_thread,
        "latency_budget_ms": config.latency_budget_ms,
        "artifact_mb": None if artifact_bytes is None else artifact_bytes / 1e6,
        "max_artifact_mb": config.max_artifact_mb,
    }
    problems = []
    if p95 > config.latency_budget_ms:
        problems.append(f"single-row p95 latency {p95:.1f} ms > budget {config.latency_budget_ms:g} ms")
    size = "artifact size not given"
    if artifact_bytes is not None:
        mb = artifact_bytes / 1e6
        size = f"artifact {mb:.1f} MB <= {config.max_artifact_mb:g} MB"
        if mb > config.max_artifact_mb:
            problems.append(f"artifact {mb:.1f} MB > budget {config.max_artifact_mb:g} MB")
    reason = f"single-row p95 {p95:.1f} ms <= {config.latency_budget_ms:g} ms; {size}"
    return gate_result("operational", problems, reason, figures)


def gate_result(name: str, problems: Sequence[str], ok_reason: str, figures: dict[str, Any]) -> GateResult:
    """A failed result whose reason lists ``problems`` ("<name> failed: a; b"), or a pass with ``ok_reason``."""
    if problems:
        return GateResult(name=name, passed=False, reason=f"{name} failed: " + "; ".join(problems), figures=figures)
    return GateResult(name=name, passed=True, reason=ok_reason, figures=figures)


def _check_signature(inputs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    declared = {str(name): _normal_type(kind) for name, kind in inputs}
    problems = []
    names = list(declared)
    if sorted(names) != sorted(EXPECTED_INPUT_TYPES):
        problems.append(_difference(names, list(EXPECTED_INPUT_TYPES)))
    wrong = [
        f"{name} is {declared[name]}, expected {kind}"
        for name, kind in EXPECTED_INPUT_TYPES.items()
        if name in declared and declared[name] != kind
    ]
    problems.extend(wrong)
    detail = "; ".join(problems) if problems else "inputs and types = the API's trip schema"
    return {"passed": not problems, "detail": detail, "declared": [[n, k] for n, k in declared.items()]}


def _normal_type(kind: Any) -> str:
    text = str(kind).removeprefix("DataType.")  # MLflow's DataType enum printed, or its .name
    return _TYPE_ALIASES.get(text, text)


def _unknown(what: str, required: bool) -> dict[str, Any]:
    return {"passed": not required, "detail": f"{what} (required)" if required else f"{what}: not checked"}


def _difference(declared: Sequence[str], expected: Sequence[str]) -> str:
    missing = [c for c in expected if c not in declared]
    extra = [c for c in declared if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected {', '.join(extra)}")
    if not parts:
        parts.append(f"columns in another order: {', '.join(declared)}")
    return "; ".join(parts)


def _not_worse(candidate: float, champion: float, tolerance: float) -> bool:
    return math.isfinite(candidate) and math.isfinite(champion) and candidate <= champion * (1 + tolerance)


def _relative(candidate: float, champion: float) -> float | None:
    if not (math.isfinite(candidate) and math.isfinite(champion)) or champion == 0:
        return None
    return candidate / champion - 1


def _pct(candidate: float, champion: float) -> str:
    change = _relative(candidate, champion)
    return "n/a" if change is None else f"{change:+.1%}"


def _floats(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def _error(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
