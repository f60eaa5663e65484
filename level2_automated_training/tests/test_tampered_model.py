"""Level 2's service never loads a model it cannot trust: `models:/trip-duration@production` tampered with in
the artifact store (one byte of model.skops flipped; a type from outside the trusted modules planted in it and
listed as trusted in its MLmodel, which MLflow alone would load and run) is refused before anything in it runs.
The tampering is shared with levels 3 and 4 (taxi.pipeline.tampering)."""

import pytest

from level2.service import create_app
from level2.settings import Settings
from taxi.pipeline.tampering import TAMPERINGS, refusal, tampered_model
from taxi.tracking import ModelArtifactError


@pytest.mark.parametrize("kind", TAMPERINGS)
def test_the_service_refuses_a_tampered_production_model(tmp_path, kind):
    tampered = tampered_model(tmp_path, "trip-duration", "production", kind)
    error = refusal(lambda: create_app(Settings(tracking_uri=tampered.tracking_uri)), tampered)
    assert isinstance(error, ModelArtifactError), repr(error)
    assert f"model 'trip-duration' v{tampered.version} refused: " in str(error)
