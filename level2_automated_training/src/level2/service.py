"""The level 2 service: level 1's FastAPI core, now serving `models:/<name>@production` from the registry.

The model is loaded at start-up; a new release is picked up on restart (hot reload is level 3's job).
"""

from __future__ import annotations

# taxi.tracking imports skops before MLflow: after MLflow's ~1,000 modules, skops' import takes seconds longer
from taxi.tracking import RegistryModel  # isort: split

import mlflow
from fastapi import FastAPI

from level2.settings import Settings
from taxi.serving import create_app as create_service


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    model = RegistryModel.from_alias(settings.model_name, settings.serving_alias)
    return create_service(
        model,
        max_batch=settings.max_batch,
        title="Trip duration - level 2",
        description=f"Serves models:/{settings.model_name}@{settings.serving_alias} from the MLflow registry.",
    )
