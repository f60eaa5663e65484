"""``certify``: run every gate on a candidate, and the ``CertificationReport`` that records the decision."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from taxi.certification.behaviour import base_trips, behaviour_gate
from taxi.certification.config import GateConfig
from taxi.certification.gates import (
    CandidateFacts,
    GateResult,
    Holdout,
    Predictor,
    _error,
    no_regression_gate,
    operational_gate,
    quality_gate,
    schema_gate,
)
from taxi.model import evaluate


class CertificationReport(BaseModel):
    """Every gate's result for one candidate, with what it was judged against (config, holdout, champion)."""

    model_config = ConfigDict(frozen=True)

    candidate: str
    champion: str | None
    holdout: dict[str, Any]
    gates: list[GateResult]
    config: dict[str, Any]
    facts: CandidateFacts = Field(default_factory=CandidateFacts)
    created_at: datetime
    seconds: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        """Certified: every gate passed."""
        return all(g.passed for g in self.gates)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed_gates(self) -> list[str]:
        return [g.name for g in self.gates if not g.passed]

    def gate(self, name: str) -> GateResult:
        """The result of gate ``name`` (KeyError naming the gates run otherwise)."""
        for result in self.gates:
            if result.name == name:
                return result
        raise KeyError(f"no gate '{name}' in this report (gates: {', '.join(g.name for g in self.gates)})")

    def to_json(self, indent: int | None = 2) -> str:
        """The whole report as JSON (non-finite figures become null); ``from_json`` reads it back."""
        return self.model_dump_json(indent=indent, by_alias=True)

    @classmethod
    def from_json(cls, text: str) -> CertificationReport:
        return cls.model_validate_json(text)

    def summary_tags(self) -> dict[str, str]:
        """Short strings for model-version tags: ``certified`` ("true"/"false") and ``failed_gates`` (comma list)."""
        return {"certified": str(self.passed).lower(), "failed_gates": ",".join(self.failed_gates)}

    def to_markdown(self) -> str:
        """A readable report: verdict, one table row per gate (result + reason), then each gate's figures."""
        verdict = "CERTIFIED" if self.passed else f"REJECTED (failed: {', '.join(self.failed_gates)})"
        h = self.holdout
        lines = [
            f"# Certification of {self.candidate}: {verdict}",
            "",
            f"- champion: {self.champion or 'none yet'}",
            f"- holdout: {h.get('label')} ({h.get('trips')} trips, fingerprint `{h.get('fingerprint')}`)",
            f"- run at {self.created_at:%Y-%m-%d %H:%M:%S} UTC in {self.seconds:.1f} s",
            "",
            "| gate | result | reason |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {g.name} | {'pass' if g.passed else '**FAIL**'} | {_cell(g.reason)} |" for g in self.gates]
        for g in self.gates:
            lines += ["", f"## {g.name}: {'pass' if g.passed else 'FAIL'}"]
            scalars, tables = _split(g.figures)
            if scalars:
                lines += ["", "| figure | value |", "| --- | --- |"]
                lines += [f"| {_cell(key)} | {_cell(_value(value))} |" for key, value in scalars]
            for key, rows in tables:
                columns = list(dict.fromkeys(c for row in rows.values() for c in row))
                header = f"| {_cell(key)} | {' | '.join(map(_cell, columns))} |"
                lines += ["", header, "| --- " * (len(columns) + 1) + "|"]
                lines += [
                    f"| {_cell(name)} | {' | '.join(_cell(_value(row.get(c))) for c in columns)} |"
                    for name, row in rows.items()
                ]
        return "\n".join(lines) + "\n"


def certify(
    candidate: Predictor,
    champion: Predictor | None,
    holdout: Holdout,
    config: GateConfig | None = None,
    *,
    facts: CandidateFacts | None = None,
    candidate_label: str = "candidate",
    champion_label: str | None = None,
) -> CertificationReport:
    """Run every gate (``GATE_NAMES``, in that order) on ``candidate``; passed = all gates passed.

    ``champion`` (None = no champion yet) is scored on the same ``holdout``. ``facts`` carries what only the
    registry knows (signature, trusted types, artifact size). Every gate runs even after one fails, so the
    report is complete; a gate that raises fails with the error as its reason, never passes.
    """
    config = config or GateConfig()
    facts = facts or CandidateFacts()
    start = time.perf_counter()
    scores: dict[str, Mapping[str, Any]] = {}

    def score(role: str, model: Predictor) -> Mapping[str, Any]:
        if role not in scores:
            try:
                scores[role] = evaluate(model, holdout.X, holdout.y)
            except Exception as exc:
                raise _ScoringError(f"the {role}'s predict failed on the holdout: {_error(exc)}") from exc
        return scores[role]

    def regression() -> GateResult:
        champion_metrics = score("champion", champion) if champion is not None else None
        return no_regression_gate(score("candidate", candidate), champion_metrics, config.no_regression)

    def behaviour() -> GateResult:
        return behaviour_gate(candidate, base_trips(holdout.X, config.behaviour.base_trips), config.behaviour)

    gates: dict[str, Callable[[], GateResult]] = {
        "schema": lambda: schema_gate(candidate, facts, config.schema_),
        "quality": lambda: quality_gate(score("candidate", candidate), config.quality),
        "no_regression": regression,
        "behaviour": behaviour,
        "operational": lambda: operational_gate(candidate, config.operational, artifact_bytes=facts.artifact_bytes),
    }
    results = [_run(name, gate) for name, gate in gates.items()]
    return CertificationReport(
        candidate=candidate_label,
        champion=(champion_label or "champion") if champion is not None else None,
        holdout=holdout.describe(),
        gates=results,
        config=config.to_dict(),
        facts=facts,
        created_at=datetime.now(UTC),
        seconds=time.perf_counter() - start,
    )


class _ScoringError(RuntimeError):
    pass


def _run(name: str, gate: Callable[[], GateResult]) -> GateResult:
    try:
        return gate()
    except _ScoringError as exc:
        return GateResult(name=name, passed=False, reason=f"{name} failed: {exc}", figures={"error": str(exc)})
    except Exception as exc:  # a gate that cannot run is a failed gate, never a pass
        reason = f"{name} failed: the gate could not run: {_error(exc)}"
        return GateResult(name=name, passed=False, reason=reason, figures={"error": _error(exc)})


def _split(
    figures: Mapping[str, Any], prefix: str = ""
) -> tuple[list[tuple[str, Any]], list[tuple[str, Mapping[str, Mapping[str, Any]]]]]:
    """Figures -> (dotted scalar rows, tables): a mapping or list of flat mappings (slices, cases) is a table."""
    scalars: list[tuple[str, Any]] = []
    tables: list[tuple[str, Mapping[str, Mapping[str, Any]]]] = []
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and all(_is_flat_mapping(v) for v in value.values()):
            tables.append((name, value))
        elif isinstance(value, list) and value and all(_is_flat_mapping(v) for v in value):
            tables.append((name, {str(i): row for i, row in enumerate(value, 1)}))
        elif isinstance(value, Mapping) and value:
            more_scalars, more_tables = _split(value, f"{name}.")
            scalars += more_scalars
            tables += more_tables
        else:
            scalars.append((name, value))
    return scalars, tables


def _is_flat_mapping(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and not any(isinstance(v, Mapping) for v in value.values())


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) if value else "-"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
