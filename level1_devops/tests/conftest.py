from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from level1.handoff import handoff
from level1.ingest import ingest
from level1.service import create_app
from level1.settings import Settings
from level1.train import train


def make_settings(root: Path, **overrides) -> Settings:
    values = dict(
        data_dir=root / "data",
        model_dir=root / "models",
        handoff_dir=root / "handoff",
        model_path=root / "handoff" / "model.pkl",
        params_file=Path(__file__).resolve().parent.parent / "params.yaml",
        first_month="2024-01",
        months=2,
        rows=3000,
    )
    return Settings(**{**values, **overrides})


@pytest.fixture
def settings_for():
    """Settings rooted in a folder: settings_for(tmp_path, rows=500)."""
    return make_settings


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Settings:
    """A small end-to-end run: two ingested months, a trained model, handed off."""
    settings = make_settings(tmp_path_factory.mktemp("level1"))
    ingest(settings, echo=lambda *_: None)
    train(settings)
    handoff(settings)
    return settings


@pytest.fixture(scope="session")
def client(trained) -> TestClient:
    return TestClient(create_app(trained))
