"""Basic integration test of the model: the service answers what the model answers in-process."""

import json
import pickle

import numpy as np

from taxi.generator import generate_month
from taxi.model import INPUT_COLUMNS, build_features, clean_trips


def test_service_equals_in_process_prediction(client, trained):
    trips = clean_trips(generate_month("2024-04", rows=400, seed=9)).head(200)[INPUT_COLUMNS]
    payload = json.loads(trips.to_json(orient="records", date_format="iso"))
    served = np.array(client.post("/predict", json=payload).json()["predictions"])

    model = pickle.loads(trained.model_path.read_bytes())
    expected = model.predict(build_features(trips))
    np.testing.assert_allclose(served, expected, rtol=1e-9)
    assert served.min() > 0 and served.max() < 120
