"""The retraining policy: monitoring signals -> actions, with thresholds, minimum evidence and a cooldown.

    policy = load_policy(Path("policy.yaml"))                        # one clear line for any mistake in the file
    decision = decide(policy, result, champion_rmse=5.8, history=DecisionLog(path).read())
    decision.actions          # e.g. [retrain, alert]; [] = nothing to do
    decision.training_months  # with retrain: the newest months that passed the quality checks

A pure function of its inputs: the monitoring result of one window (``level4.monitor.MonitoringResult``), the
champion's certified RMSE (what "worse" is measured against) and the decisions taken on earlier windows (for
``consecutive_windows``, the cooldown and the quarantined months). Rules are read in order; the first that fires
decides. A rule fires when its signal passes its threshold with enough evidence (rows, trips with feedback) in
this window and in the ``consecutive_windows - 1`` windows before it. A retraining inside the cooldown is held
back (the decision says so). Quarantined months are never trained on: they are the pipeline's
``ingest.exclude_months``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:  # Evidently (seconds to import) is not needed to read a policy or a decision
    from level4.monitor import MonitoringResult


class PolicyError(ValueError):
    """policy.yaml is missing or wrong: the message is one line naming the file, the key and the rule broken."""


class Signal(StrEnum):
    quality_failure = "quality_failure"  # any data-quality test of the window failed
    rmse_ratio = "rmse_ratio"  # window RMSE / the champion's certified RMSE
    drift_share = "drift_share"  # share of the watched input columns that drifted


class Action(StrEnum):
    retrain = "retrain"
    alert = "alert"
    quarantine = "quarantine"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    signal: Signal
    above: float | None = Field(None, ge=0, description="the signal fires above this (not for quality_failure)")
    min_rows: int = Field(0, ge=0, description="predictions the window needs for the rule to judge it")
    min_feedback: int = Field(0, ge=0, description="trips with their true duration the window needs")
    consecutive_windows: int = Field(1, ge=1, le=12, description="windows in a row the signal must fire")
    actions: list[Action] = Field(min_length=1)

    @model_validator(mode="after")
    def _threshold_fits_the_signal(self) -> Rule:
        if self.signal is Signal.quality_failure and self.above is not None:
            raise ValueError("quality_failure takes no 'above' (it fires when any quality test fails)")
        if self.signal is not Signal.quality_failure and self.above is None:
            raise ValueError(f"{self.signal.value} needs a threshold 'above'")
        if self.signal is Signal.drift_share and self.above is not None and self.above >= 1:
            raise ValueError("drift_share is a share: 'above' must be below 1")
        return self


class RetrainPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    months: int = Field(1, ge=1, le=12, description="train on the newest months that passed the quality checks")
    cooldown_windows: int = Field(2, ge=0, le=12, description="windows after a retraining that do not retrain")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(min_length=1)
    retrain: RetrainPolicy = RetrainPolicy()

    @model_validator(mode="after")
    def _unique_names(self) -> Policy:
        names = [r.name for r in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique: {', '.join(twice)}")
        return self


def load_policy(path: Path) -> Policy:
    """policy.yaml as a ``Policy``; any problem is a PolicyError of one line."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise PolicyError(f"{path}: not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    try:
        return Policy.model_validate(document or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(_location(first["loc"], document)) or "the file"
        got = f" (got {first['input']!r})" if first["type"] not in {"missing", "value_error"} else ""
        more = f"; and {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
        message = first["msg"].removeprefix("Value error, ")
        raise PolicyError(f"{path}: {where}: {message}{got}{more}") from None


def _location(loc: tuple[Any, ...], document: Any) -> list[str]:
    """rules.1.actions.0 -> rules[error_regression].actions[0]: name the rule rather than its index."""
    parts: list[str] = []
    node = document
    for key in loc:
        if isinstance(key, int):
            name = node[key].get("name") if isinstance(node, list) and isinstance(node[key], dict) else None
            parts[-1] += f"[{name or key}]"
        else:
            parts.append(str(key))
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
    return parts


class Decision(BaseModel):
    """What the policy decided on one window, and why: a line of the decision log (and MLflow tags)."""

    window: str
    month: str | None = Field(None, description="the window's month (YYYY-MM), when it is one")
    rule: str | None = Field(None, description="the rule that decided; None when no rule fired")
    actions: list[Action] = Field(default_factory=list)
    reason: str
    fired: list[str] = Field(default_factory=list, description="every rule whose signal passed in this window")
    held_back: str | None = Field(None, description="why an action of the rule was not taken (cooldown)")
    training_months: list[str] = Field(default_factory=list)
    quarantined: list[str] = Field(default_factory=list, description="every month quarantined so far")
    evidence: dict[str, Any] = Field(default_factory=dict)

    @property
    def retrain(self) -> bool:
        return Action.retrain in self.actions

    def summary(self) -> str:
        actions = ", ".join(a.value for a in self.actions) or "nothing to do"
        held = f" ({self.held_back})" if self.held_back else ""
        return f"policy on {self.window}: {actions}{held}: {self.reason}"


def signals(result: MonitoringResult, champion_rmse: float | None) -> dict[str, Any]:
    """The evidence the rules read, as recorded with the decision."""
    ratio = result.rmse / champion_rmse if result.rmse is not None and champion_rmse else None
    return {
        "rows": result.rows,
        "rows_with_feedback": result.rows_with_feedback,
        "quality_failures": [f.check for f in result.quality_failures],
        "drift_share": round(result.drift_share, 3),
        "drifted_columns": result.drifted_columns,
        "rmse": None if result.rmse is None else round(result.rmse, 3),
        "champion_rmse": None if champion_rmse is None else round(champion_rmse, 3),
        "rmse_ratio": None if ratio is None else round(ratio, 3),
        "champion_version": result.champion_version,
    }


def fires(rule: Rule, evidence: dict[str, Any]) -> str | None:
    """Why ``rule`` fires on this window's ``evidence``, or None."""
    if evidence["rows"] < rule.min_rows or evidence["rows_with_feedback"] < rule.min_feedback:
        return None
    if rule.signal is Signal.quality_failure:
        failed = evidence["quality_failures"]
        return f"data-quality test(s) failed: {', '.join(failed)}" if failed else None
    value = evidence[rule.signal.value]
    if value is None or value <= (rule.above or 0):
        return None
    if rule.signal is Signal.rmse_ratio:
        return (f"RMSE {evidence['rmse']:.2f} min is {value:.2f} x the champion's certified "
                f"{evidence['champion_rmse']:.2f} (limit {rule.above:.2f} x)")  # fmt: skip
    columns = ", ".join(evidence["drifted_columns"])
    return f"drift share {value:.2f} > {rule.above:.2f} (drifted: {columns})"


def window_month(result: MonitoringResult) -> str | None:
    """The window's month when the window is one (``2024-08``), else None."""
    try:
        return str(pd.Period(result.window, "M")) if len(result.window) == 7 else None
    except ValueError:
        return None


def decide(policy: Policy, result: MonitoringResult, champion_rmse: float | None, history: list[Decision]) -> Decision:
    """The decision on this window (see module doc); ``history`` = earlier decisions, oldest first."""
    evidence = signals(result, champion_rmse)
    reasons = {rule.name: why for rule in policy.rules if (why := fires(rule, evidence))}
    month = window_month(result)
    quarantined = sorted({m for d in history for m in d.quarantined})

    for rule in policy.rules:
        if rule.name not in reasons:
            continue
        earlier = history[len(history) - (rule.consecutive_windows - 1) :] if rule.consecutive_windows > 1 else []
        if len(earlier) < rule.consecutive_windows - 1 or any(rule.name not in d.fired for d in earlier):
            continue  # not yet as many windows in a row as the rule needs
        actions, held_back = list(rule.actions), None
        if Action.quarantine in actions and month:
            quarantined = sorted({*quarantined, month})
        if Action.retrain in actions:
            held_back = cooldown(policy, history)
            if held_back is None and month is None:
                held_back = "the window is not a month: retraining needs whole months"
            if held_back:
                actions.remove(Action.retrain)
        decision = Decision(
            window=result.window, month=month, rule=rule.name, actions=actions, reason=reasons[rule.name],
            fired=sorted(reasons), held_back=held_back, quarantined=quarantined, evidence=evidence,
        )  # fmt: skip
        if decision.retrain:
            decision.training_months = training_months(month, quarantined, policy.retrain.months)
        return decision
    return Decision(
        window=result.window, month=month, actions=[], reason="no rule fired", fired=sorted(reasons),
        quarantined=quarantined, evidence=evidence,
    )  # fmt: skip


def cooldown(policy: Policy, history: list[Decision]) -> str | None:
    """Why a retraining now would be too soon after the last one, or None."""
    recent = history[-policy.retrain.cooldown_windows :] if policy.retrain.cooldown_windows else []
    for decision in reversed(recent):
        if decision.retrain:
            return f"cooldown: retrained on {decision.window}, {policy.retrain.cooldown_windows} window(s) ago or less"
    return None


def training_months(month: str, quarantined: list[str], count: int, lookback: int = 24) -> list[str]:
    """The ``count`` newest months up to ``month`` that are not quarantined, oldest first."""
    newest = pd.Period(month, "M")
    kept = [str(newest - i) for i in range(lookback) if str(newest - i) not in quarantined]
    return sorted(kept[:count])


def pipeline_overrides(decision: Decision) -> dict[str, Any]:
    """params.yaml overrides that make the DVC pipeline train on the decision's months (and skip quarantined)."""
    months = decision.training_months
    span = pd.period_range(months[0], months[-1], freq="M").astype(str).tolist()
    return {
        "ingest.first_month": months[0],
        "ingest.months": len(span),
        "ingest.exclude_months": [m for m in span if m not in months],
    }


class DecisionLog:
    """The decisions, one JSON line each, oldest first: the policy's memory and its audit trail."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> list[Decision]:
        if not self.path.exists():
            return []
        lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        return [Decision.model_validate_json(line) for line in lines]

    def append(self, decision: Decision, **outcome: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = json.loads(decision.model_dump_json())
        with self.path.open("a") as f:
            f.write(json.dumps({**record, **outcome}) + "\n")
