"""A level's params.yaml, as the CD pipeline uses it: overrides, and the sections it checks before training.

apply_params(Path("params.yaml"), {"ingest.months": 4})    # what a commit changing params.yaml would do
check_config(load_params(Path("params.yaml")))             # bad certification / canary thresholds: fail now
canary_config(params)                                      # params.yaml ``canary`` as a CanaryConfig
"""

from __future__ import annotations

from functools import reduce
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML

from taxi.certification import GateConfigError, parse_gate_config
from taxi.deployment import DeploymentError
from taxi.deployment.canary import CanaryConfig


def apply_params(params_file: Path, overrides: dict[str, Any]) -> None:
    """Write ``{"group.key": value}`` overrides into params.yaml, keeping its comments (as a commit would)."""
    yaml = YAML()
    document = yaml.load(params_file.read_text())
    for dotted, value in overrides.items():
        *groups, key = dotted.split(".")
        try:
            node = reduce(lambda mapping, group: mapping[group], groups, document)
        except (KeyError, TypeError):
            raise DeploymentError(f"params.yaml has no group '{'.'.join(groups)}' (override {dotted})") from None
        if key not in node:
            raise DeploymentError(f"params.yaml has no parameter '{dotted}': only existing ones can be overridden")
        node[key] = value
    with params_file.open("w") as f:
        yaml.dump(document, f)


def canary_config(params: dict[str, Any]) -> CanaryConfig:
    """params.yaml ``canary`` as a ``CanaryConfig``; a wrong key or value is a DeploymentError naming it."""
    try:
        return CanaryConfig(**(params.get("canary") or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'canary'}: {e['msg']}" for e in exc.errors())
        raise DeploymentError(f"params.yaml [canary]: {problems}") from None


def check_config(params: dict[str, Any]) -> None:
    """Fail before training, not after, when the certification or canary thresholds are wrong."""
    try:
        parse_gate_config(params.get("certification"), "params.yaml [certification]")
    except GateConfigError as exc:
        raise DeploymentError(str(exc)) from None
    canary_config(params)
