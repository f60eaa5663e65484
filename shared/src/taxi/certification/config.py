"""The certification thresholds, in one place: a pydantic model with defaults, loadable from YAML.

The defaults are set for the shared model (``taxi.model``, gradient boosting on raw trips):

- **quality** ``max_rmse`` 8.0 / ``max_mae`` 5.5 min: an absolute floor that catches a broken model, not a
  ranking. The shared model scores RMSE 6.5 / MAE 4.4 on a synthetic 20k-trip month (5.9-6.7 / 3.9-4.6 trained on
  5k trips with 60 iterations) and about 5-6 min RMSE on real TLC months; the well-known course baseline scores
  7.3-7.9, a model fed kilometres about 9, a mean predictor about 12. Beating the champion is ``no_regression``'s
  job. ``min_trips`` 500: a smaller holdout makes every figure noise.
- **no_regression** ``tolerance`` 0.03 (relative RMSE): two retrains of the same model on adjacent months of an
  unchanged world differ by 1-2 % on the same holdout, so 3 % lets the noise through and stops a real
  regression (a model trained on the km-distance month is 13 % worse). ``slice_tolerance`` 0.10 on borough
  slices with at least ``min_slice_trips`` 200 trips: a slice figure on a few hundred trips moves by several
  per cent between equivalent models; smaller slices (Staten Island, EWR, the Unknown zones) are reported, not
  gated.
- **behaviour** ``epsilon_min`` 0.5 min: a tree ensemble is piecewise constant, so a longer trip may be
  predicted a little shorter (good models shorten 0-0.3 % of the lengthened trips by more, by up to 2 min);
  ``invariance_bound_min`` 3.0 min: passenger count has no effect on duration in the generator, yet a model
  fitted to noise moves by 0.1-0.5 min on average and up to 2.5-4 min on the rare counts (5, 6);
  ``max_failure_rate`` 0.02 (CheckList reports failure rates): at most 2 % of the perturbed trips may break the
  directional or invariance expectation (good models break 0-0.6 %; a model adding 3 min per passenger breaks
  most). Minimum functionality and robustness allow no failure.
- **operational** ``latency_budget_ms`` 250: single-row in-process p95 after ``warmup_calls`` 5, timed in
  ``latency_rounds`` 3 rounds of ``latency_calls`` 30, the quietest round gated, with ``single_thread`` true
  (native thread pools limited to one thread, as a service should predict one row: for a single row,
  HistGradientBoosting's OpenMP threads are pure overhead, and on 2 cores shared with other work they make it
  20-30x slower: p95 27 ms single-threaded vs 240-760 ms with default threads, measured at load 4). One trip
  takes 18-40 ms, so 250 ms stops a model an order of magnitude slower without failing on a busy machine.
  ``max_artifact_mb`` 50: the registered pipeline is about 0.4 MB (300 iterations on 20k trips); 50 MB catches
  training data pickled into the model or an unbounded forest.
- **schema** ``require_registry_facts`` false: a bare in-process model has no signature or skops types to show,
  so the gate checks what it can (input columns, a probe call); the level-3 glue sets it true, so a registered
  candidate without a signature or trusted-type facts fails.

Unknown keys are rejected, and every error names the key and the rule (``GateConfigError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class GateConfigError(ValueError):
    """A certification config that breaks a rule: the message names the file, the key and the rule."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchemaConfig(_Section):
    """Gate ``schema``: the candidate's inputs are the API's trip schema, its artifact only trusted types."""

    require_registry_facts: bool = Field(
        False, description="fail when the signature or the trusted-types verdict is not given (registered models)"
    )


class QualityConfig(_Section):
    """Gate ``quality``: absolute error limits on the holdout, in minutes."""

    max_rmse: float = Field(8.0, gt=0, allow_inf_nan=False, description="largest holdout RMSE allowed (min)")
    max_mae: float = Field(5.5, gt=0, allow_inf_nan=False, description="largest holdout MAE allowed (min)")
    min_trips: int = Field(500, ge=1, description="smallest holdout the figures are trusted on")


class NoRegressionConfig(_Section):
    """Gate ``no_regression``: candidate vs champion on the same holdout (relative RMSE)."""

    tolerance: float = Field(0.03, ge=0, le=1, description="overall RMSE may be this much worse (0.03 = 3 %)")
    slice_tolerance: float = Field(0.10, ge=0, le=1, description="a borough slice's RMSE may be this much worse")
    min_slice_trips: int = Field(200, ge=1, description="slices with fewer holdout trips are reported, not gated")


class BehaviourConfig(_Section):
    """Gate ``behaviour``: CheckList-style directional, invariance, minimum-functionality, robustness tests."""

    base_trips: int = Field(200, ge=10, le=10_000, description="holdout trips the perturbations start from")
    distance_multipliers: tuple[float, ...] = Field(
        (1.5, 2.0, 3.0), min_length=1, description="directional: each base trip's distance times each of these"
    )
    epsilon_min: float = Field(0.5, ge=0, allow_inf_nan=False, description="directional: allowed shortening (min)")
    invariance_bound_min: float = Field(
        3.0, gt=0, allow_inf_nan=False, description="invariance: largest change from passenger count (min)"
    )
    max_failure_rate: float = Field(
        0.02, ge=0, lt=1, description="share of perturbed trips allowed to break directional / invariance"
    )

    @field_validator("distance_multipliers")
    @classmethod
    def _longer(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 1 < m <= 10 for m in value):
            raise ValueError("every multiplier must lengthen the trip: 1 < multiplier <= 10")
        return value


class OperationalConfig(_Section):
    """Gate ``operational``: single-row in-process latency and artifact size budgets."""

    latency_budget_ms: float = Field(250.0, gt=0, allow_inf_nan=False, description="largest single-row p95 (ms)")
    latency_calls: int = Field(30, ge=5, le=10_000, description="single-row calls timed per round for the p95")
    latency_rounds: int = Field(3, ge=1, le=100, description="rounds timed; the quietest round's p95 is gated")
    single_thread: bool = Field(True, description="time with native thread pools (OpenMP, BLAS) limited to 1 thread")
    warmup_calls: int = Field(5, ge=0, le=1_000, description="untimed calls first (caches, lazy imports)")
    max_artifact_mb: float = Field(50.0, gt=0, allow_inf_nan=False, description="largest model artifact (MB)")


class GateConfig(_Section):
    """Every certification threshold, one section per gate (see the module doc for the defaults' reasons)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: SchemaConfig = Field(default_factory=SchemaConfig, alias="schema")
    quality: QualityConfig = Field(default_factory=QualityConfig)
    no_regression: NoRegressionConfig = Field(default_factory=NoRegressionConfig)
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig)
    operational: OperationalConfig = Field(default_factory=OperationalConfig)

    def to_dict(self) -> dict[str, Any]:
        """The config as the YAML file spells it (section ``schema``, not ``schema_``)."""
        return self.model_dump(mode="json", by_alias=True)


def parse_gate_config(data: Mapping[str, Any] | None, source: str = "certification config") -> GateConfig:
    """A ``GateConfig`` from a mapping (a parsed YAML file or a section of one); missing keys keep their default.

    Raises ``GateConfigError`` naming ``source``, each offending key (dotted, e.g. ``no_regression.tolerance``)
    and the rule it breaks; unknown keys are errors that list the allowed ones.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise GateConfigError(f"{source}: must be a mapping of gate sections; got {type(data).__name__}")
    try:
        return GateConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise GateConfigError(f"{source}: " + "; ".join(problems)) from None


def load_gate_config(path: str | Path, *, section: str | None = None) -> GateConfig:
    """Read a YAML file of certification thresholds (or its top-level ``section``); an empty file = defaults."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateConfigError(f"{path}: no such certification config file") from None
    except yaml.YAMLError as exc:
        raise GateConfigError(f"{path}: not valid YAML: {exc}") from None
    source = str(path)
    if section is not None:
        if not isinstance(data, Mapping) or section not in data:
            raise GateConfigError(f"{path}: no top-level '{section}' section")
        data, source = data[section], f"{path} [{section}]"
    return parse_gate_config(data, source)


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(error["loc"][:-1])
        return f"{key}: unknown key (allowed: {', '.join(allowed)})"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}: {message} (got {error['input']!r})"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = GateConfig
    for part in loc:
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [f.alias or name for name, f in model.model_fields.items()]
