"""Unit tests of the service's application code: validation, errors, response shape."""

import json

import pytest

GOOD = {"PULocationID": 74, "DOLocationID": 42, "trip_distance": 1.8, "lpep_pickup_datetime": "2024-03-05T08:15:00"}


def test_one_trip(client):
    response = client.post("/predict", json=GOOD)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"predictions", "model_version", "request_id"}
    assert len(body["predictions"]) == 1 and 1 < body["predictions"][0] < 60
    assert response.headers["X-Request-ID"] == body["request_id"]


def test_a_list_of_trips_keeps_its_order(client):
    trips = [GOOD, {**GOOD, "trip_distance": 9.0}, {**GOOD, "passenger_count": 3}]
    predictions = client.post("/predict", json=trips).json()["predictions"]
    assert len(predictions) == 3
    assert predictions[1] > predictions[0]  # a much longer trip takes longer


def test_the_caller_request_id_is_kept(client):
    response = client.post("/predict", json=GOOD, headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123" and response.json()["request_id"] == "abc-123"


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"trip_distance": "far"}, "trip_distance", "valid number"),
        ({"trip_distance": -1}, "trip_distance", "greater than or equal to 0"),
        ({"PULocationID": 999}, "PULocationID", "less than or equal to 265"),
        ({"DOLocationID": 0}, "DOLocationID", "greater than or equal to 1"),
        ({"DOLocationID": "Harlem"}, "DOLocationID", "valid integer"),
        ({"lpep_pickup_datetime": "31/02/2024 8am"}, "lpep_pickup_datetime", "datetime"),
        ({"passenger_count": 12}, "passenger_count", "less than or equal to 9"),
        ({"lpep_pickup_datetime": "1600-01-01T00:00:00"}, "lpep_pickup_datetime", "between 2000-01-01"),
        ({"lpep_pickup_datetime": "9999-12-31T23:00:00-12:00"}, "lpep_pickup_datetime", "New York time"),
    ],
)
def test_bad_trip_gives_422_naming_field_and_rule(client, change, field, rule):
    response = client.post("/predict", json={**GOOD, **change})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", field] and rule in error["msg"]


def test_missing_field(client):
    trip = {k: v for k, v in GOOD.items() if k != "trip_distance"}
    (error,) = client.post("/predict", json=trip).json()["detail"]
    assert error["loc"] == ["body", "trip_distance"] and error["msg"] == "Field required"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_inf_are_refused_not_500(client, literal):
    body = json.dumps(GOOD).replace("1.8", literal)
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "trip_distance"]


def test_errors_in_a_list_name_the_item(client):
    response = client.post("/predict", json=[GOOD, {**GOOD, "trip_distance": -2}])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", 1, "trip_distance"]


@pytest.mark.parametrize("body", ["{not json", '"a string"', "42", "[]", "[" * 100_000 + "]" * 100_000])
def test_malformed_bodies_give_422(client, body):
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_too_many_trips_gives_413(client, trained):
    response = client.post("/predict", json=[GOOD] * (trained.max_batch + 1))
    assert response.status_code == 413
    assert str(trained.max_batch) in response.json()["detail"][0]["msg"]


def test_a_full_batch_is_served(client, trained):
    assert len(client.post("/predict", json=[GOOD] * trained.max_batch).json()["predictions"]) == trained.max_batch


def test_health_and_model(client, trained):
    health = client.get("/health").json()
    model = client.get("/model").json()
    assert health["status"] == "ok" and health["model_version"] == model["version"]
    assert model["train_months"] == ["2024-01"] and model["test_month"] == "2024-02"
    assert "rmse" in model["metrics"]


def test_docs_and_openapi_describe_the_request(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "trip_distance" in schema["oneOf"][0]["properties"]
    assert schema["oneOf"][1]["maxItems"] == 1000
