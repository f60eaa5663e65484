"""Certification gates: the checks a candidate model must pass before it is served (levels 3 and 4).

    from taxi.certification import Holdout, certify, load_gate_config
    report = certify(candidate, champion, Holdout.from_trips(month, "2024-05"), load_gate_config(path))
    report.passed, report.failed_gates, report.to_json(), report.to_markdown(), report.summary_tags()

Five named gates, each a ``GateResult(name, passed, reason, figures)``, run in this order:

1. ``schema``: the inputs are the API's trip schema; the artifact needs only trusted types;
2. ``quality``: holdout RMSE and MAE under absolute limits;
3. ``no_regression``: not worse than the champion on the same holdout, overall and per borough slice;
4. ``behaviour``: CheckList-style directional, invariance, minimum-functionality and robustness tests;
5. ``operational``: single-row p95 latency and artifact size within budgets.

Pure pandas / numpy / pydantic (+ PyYAML for the config file): what only a model registry knows (signature,
skops types, artifact size) is passed in as ``CandidateFacts`` by the caller's registry glue.
"""

from taxi.certification.behaviour import EDGE_TRIPS, NAMED_TRIPS, NamedTrip, base_trips, behaviour_gate
from taxi.certification.config import (
    BehaviourConfig,
    GateConfig,
    GateConfigError,
    NoRegressionConfig,
    OperationalConfig,
    QualityConfig,
    SchemaConfig,
    load_gate_config,
    parse_gate_config,
)
from taxi.certification.gates import (
    EXPECTED_INPUT_TYPES,
    GATE_NAMES,
    CandidateFacts,
    GateResult,
    Holdout,
    Predictor,
    no_regression_gate,
    operational_gate,
    quality_gate,
    schema_gate,
)
from taxi.certification.report import CertificationReport, certify

__all__ = [
    "EDGE_TRIPS",
    "EXPECTED_INPUT_TYPES",
    "GATE_NAMES",
    "NAMED_TRIPS",
    "BehaviourConfig",
    "CandidateFacts",
    "CertificationReport",
    "GateConfig",
    "GateConfigError",
    "GateResult",
    "Holdout",
    "NamedTrip",
    "NoRegressionConfig",
    "OperationalConfig",
    "Predictor",
    "QualityConfig",
    "SchemaConfig",
    "base_trips",
    "behaviour_gate",
    "certify",
    "load_gate_config",
    "no_regression_gate",
    "operational_gate",
    "parse_gate_config",
    "quality_gate",
    "schema_gate",
]
