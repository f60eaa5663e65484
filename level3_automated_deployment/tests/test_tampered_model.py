"""Level 3's service never loads a champion it cannot trust: `models:/trip-duration@champion` tampered with in
the artifact store (one byte of model.skops flipped; a type from outside the trusted modules planted in it and
listed as trusted in its MLmodel, which MLflow alone would load and run) is refused at start, before anything in
it runs. (A tampered version the alias moves to later is refused by the poll while the champion keeps serving:
shared/tests/test_serving_faults.py.) The tampering is shared with levels 2 and 4 (taxi.pipeline.tampering)."""

import pytest

from level3.service import create_app
from level3.settings import Settings
from taxi.pipeline.tampering import TAMPERINGS, refusal, tampered_model
from taxi.tracking import ModelArtifactError


@pytest.mark.parametrize("kind", TAMPERINGS)
def test_the_service_refuses_a_tampered_champion_at_start(tmp_path, kind):
    tampered = tampered_model(tmp_path, "trip-duration", "champion", kind)
    settings = Settings(tracking_uri=tampered.tracking_uri, deploy_log=tmp_path / "deployments.jsonl")
    error = refusal(lambda: create_app(settings), tampered)
    assert isinstance(error, ModelArtifactError) and f"v{tampered.version} refused: " in str(error), repr(error)
