"""The level 1 scoring service: the shared FastAPI core serving the handed-off model file.

The file's SHA-256 must match its metadata: a model that is not the one handed off is refused.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from fastapi import FastAPI

from level1.settings import Settings
from level1.train import metadata_path_for, sha256_of
from taxi.serving import SklearnModel
from taxi.serving import create_app as create_service


class ModelFileError(RuntimeError):
    """The model file is missing, has no metadata, or is not the file the metadata describes."""


def load_model_file(path: Path) -> SklearnModel:
    meta_path = metadata_path_for(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} not found: run `make train handoff` first")
    if not meta_path.exists():
        raise ModelFileError(f"{meta_path} not found: the model file must come with its metadata")
    try:
        metadata = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{meta_path} is not valid JSON ({exc}): hand the model off again") from None
    actual = sha256_of(path)
    if actual != metadata.get("sha256"):
        raise ModelFileError(
            f"{path} has SHA-256 {actual[:12]}... but {meta_path.name} says {str(metadata.get('sha256'))[:12]}...: "
            "refusing to serve a model that is not the one handed off"
        )
    pipeline = pickle.loads(path.read_bytes())  # only files whose hash matches the handed-off metadata
    return SklearnModel(pipeline, metadata)


def create_app(settings: Settings) -> FastAPI:
    model = load_model_file(settings.model_path)
    return create_service(
        model,
        max_batch=settings.max_batch,
        title="Trip duration - level 1",
        description="Serves the model file handed off by `make handoff` (level 1: DevOps, no MLOps).",
    )
