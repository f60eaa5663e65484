"""Level 4's service never loads a champion it cannot trust: `models:/trip-duration@champion` tampered with in
the artifact store (one byte of model.skops flipped; a type from outside the trusted modules planted in it and
listed as trusted in its MLmodel, which MLflow alone would load and run) is refused at start, before anything in
it runs and before the prediction store is opened. The tampering is shared with levels 2 and 3
(taxi.pipeline.tampering)."""

import pytest

from level4.service import create_app
from level4.settings import Settings
from taxi.pipeline.tampering import TAMPERINGS, refusal, tampered_model
from taxi.tracking import ModelArtifactError


@pytest.mark.parametrize("kind", TAMPERINGS)
def test_the_service_refuses_a_tampered_champion_before_logging_anything(tmp_path, kind):
    tampered = tampered_model(tmp_path, "trip-duration", "champion", kind)
    store = tmp_path / "predictions.db"
    settings = Settings(tracking_uri=tampered.tracking_uri, prediction_store=f"sqlite:///{store}")
    error = refusal(lambda: create_app(settings), tampered)
    assert isinstance(error, ModelArtifactError), repr(error)
    assert f"model 'trip-duration' v{tampered.version} refused: " in str(error)
    assert not store.exists()  # refused before the prediction store was opened
