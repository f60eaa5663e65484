"""Property-based API tests: every service level's app (levels 1-4) fuzzed in-process (ASGI) by schemathesis from
its own OpenAPI (``/openapi.json``).

Each operation gets schema-valid requests (which must be answered 2xx, or a documented refusal: a wrong admin
token, an unknown feedback id) and schema-violating ones (which must be refused with a documented 4xx), and every
answer is checked: no 5xx, a status code the OpenAPI documents, a documented content type, a body that matches the
documented schema, and (``ignored_auth``) no admin call without the token. So the OpenAPI has to state what the API
really enforces (``taxi.trip``: zone, distance and passenger ranges, the pickup time's pattern; ``taxi.serving``:
1..max_batch trips).

Then the trip model alone, with hypothesis: the pickup time's pattern in the OpenAPI is exactly the parser's rule,
and any JSON body gives trips or a 413/422 naming field and rule -- never an exception -- with the same answer
whether a batch is validated as ``TripRow`` objects (serving's fast path) or as ``Trip`` objects.

Reproducible: hypothesis derandomized (the same cases every run, no example database), a bounded number of
examples an operation. The apps are built here, not from the levels' own fixtures: this file needs schemathesis,
a dev dependency of this repository that a level copied out (``make export-level``) does not have.
"""

from __future__ import annotations

import collections
import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis.python import asgi

from taxi.serving import batch_adapter, parse_body, row_adapter
from taxi.trip import EARLIEST, LATEST, NEW_YORK, PICKUP_PATTERN, Trip

EXAMPLES = 40  # generated cases an operation (positive and negative), on top of schemathesis' coverage cases
LEVELS = ["level1", "level2", "level3", "level4"]
CONFIG = {
    # 413 is the documented answer to too many trips (schema: maxItems) and too large a body
    "checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422]}},
    "generation": {"mode": "all", "deterministic": True, "database": "none"},
}
# (level, operation, generation mode, status) -> responses: what the fuzzing did (asserted after each level)
SEEN: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", params=LEVELS)
def api(request, level_app, admin_token, tmp_path_factory) -> Iterator[schemathesis.BaseSchema]:
    """The level's app and the OpenAPI it serves; the app's lifespan (pollers, level 4's log writer) is stopped
    after its cases."""
    level = request.param
    folder = tmp_path_factory.mktemp(f"fuzz-{level}")
    app = level_app(level, folder)
    app.state.fuzz_level = level
    admin = {"auth": {"openapi": {"HTTPBearer": {"bearer": admin_token}}}}  # levels 3-4: /admin/reload reloads
    config = CONFIG | (admin if level in ("level3", "level4") else {})
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis.Config.from_dict(config))
    asgi.shutdown_lifespans()  # the lifespans schemathesis started: only these apps'
    shutil.rmtree(folder, ignore_errors=True)

    seen = collections.defaultdict(collections.Counter)
    for (at, operation, mode, status), n in SEEN.items():
        if at == level:
            seen[operation][f"{mode} {status}"] += n
    print(f"\n{level}: {sum(c.total() for c in seen.values())} requests", json.dumps(seen, sort_keys=True))
    # the cases were neither all refused nor all accepted: trips were answered and bad trips refused
    assert seen["POST /predict"]["positive 200"] > 0 and seen["POST /predict"]["negative 422"] > 0, seen


schema = schemathesis.pytest.from_fixture("api")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request) -> None:
    """schemathesis 4.32's lazy schemas label each operation's subtest through ``Node._nodeid``, which pytest 9 no
    longer has (it keeps ``_id``): give it the attribute to read and write."""
    request.node._nodeid = request.node.nodeid


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_every_answer_is_documented(case):
    response = case.call()
    mode = case.meta.generation.mode.value if case.meta else "explicit"
    SEEN[(case.operation.app.state.fuzz_level, case.operation.label, mode, response.status_code)] += 1
    case.validate_response(response)


# --- the trip model alone: what the OpenAPI says of a trip is what the parser does --------------------------------

PROPERTIES = settings(max_examples=300, derandomize=True, database=None, deadline=None)
GOOD = {"PULocationID": 74, "DOLocationID": 42, "trip_distance": 1.8, "lpep_pickup_datetime": "2024-03-05T08:15:00"}


def _accepts_pickup(text: str) -> datetime | None:
    try:
        return Trip.model_validate({**GOOD, "lpep_pickup_datetime": text}).lpep_pickup_datetime
    except ValidationError:
        return None


@st.composite
def pickup_texts(draw) -> str:
    """Strings shaped like ISO 8601 times, near and across every rule: the year range, calendar days (leap years),
    separators, hours/minutes/seconds, fractions, offsets -- and numbers, which pydantic would read as Unix time."""
    year = draw(st.sampled_from([1999, 2000, 2001, 2023, 2024, 2098, 2099, 2100]) | st.integers(1900, 2200))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    text = f"{year:04d}-{month:02d}-{day:02d}"
    if draw(st.booleans()):
        text += draw(st.sampled_from("Tt _x"))
        text += f"{draw(st.integers(0, 25)):02d}:{draw(st.integers(0, 61)):02d}"
        if draw(st.booleans()):
            text += f":{draw(st.integers(0, 61)):02d}" + draw(st.sampled_from(["", ".5", ",25", ".1234567", "."]))
        text += draw(st.sampled_from(["", "Z", "z", "+00:00", "-05:00", "+0530", "+14:00", "-23:59", "+24:00", "+05"]))
    return draw(st.sampled_from([text, text, text, str(year * 1000), f"{year}.5"]))


@PROPERTIES
@given(pickup_texts())
def test_the_pickup_pattern_in_the_openapi_is_the_parsers_rule(text):
    """A pickup time is accepted if and only if it matches the OpenAPI's pattern; the range applies to the time as
    written, and an aware time becomes New York local time."""
    accepted = _accepts_pickup(text)
    assert (accepted is not None) == bool(re.search(PICKUP_PATTERN, text)), text
    if accepted is not None:
        assert accepted.tzinfo is None


@PROPERTIES
@given(st.from_regex(PICKUP_PATTERN, fullmatch=True))
def test_every_time_the_pattern_allows_is_accepted(text):
    assert _accepts_pickup(text) is not None, text


@PROPERTIES
@given(
    st.datetimes(EARLIEST, LATEST - timedelta(microseconds=1)),
    st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda minutes: timezone(timedelta(minutes=minutes))),
)
def test_an_aware_pickup_is_the_same_instant_in_new_york(when, zone):
    aware = when.replace(tzinfo=zone)
    expected = aware.astimezone(NEW_YORK).replace(tzinfo=None)
    assert _accepts_pickup(aware.isoformat()) == expected
    assert _accepts_pickup(when.isoformat()) == when  # naive: New York local as written


JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
)
FIELD_VALUES = {
    "PULocationID": st.integers(-1, 267) | st.sampled_from([74.0, 74.5, "74", True, 2.6e-42, 1e300]),
    "DOLocationID": st.integers(-1, 267) | st.sampled_from([42.0, False, None, "42"]),
    "trip_distance": st.floats(-1, 201) | st.sampled_from([0, 200, float("nan"), float("inf"), "1.5", True]),
    "lpep_pickup_datetime": pickup_texts() | st.sampled_from([1_700_000_000, None, "yesterday", 2024]),
    "passenger_count": st.integers(-1, 10) | st.sampled_from([None, 1.0, 1.5, "2", True]),
}


@st.composite
def trip_like(draw) -> dict:
    """A trip object with each field good, bad in one of many ways, or missing, and maybe an extra key."""
    trip = {}
    for name, bad in FIELD_VALUES.items():
        choice = draw(st.sampled_from(["good", "good", "bad", "missing"]))
        if choice != "missing":
            trip[name] = GOOD.get(name, 1) if choice == "good" else draw(bad)
    if draw(st.booleans()):
        trip[draw(st.text(max_size=5))] = draw(JSON_SCALARS)
    return trip


BODIES = trip_like() | st.lists(trip_like(), min_size=0, max_size=6) | JSON_VALUES
MAX_BATCH = 4


@PROPERTIES
@given(BODIES)
def test_any_json_body_gives_trips_or_a_client_error_never_an_exception(payload):
    """What POST /predict does with a body: trips (200), or 413 / 422 with each error's field and rule. Batches
    validated as TripRow objects (no Python per trip) give exactly Trip's answer."""
    body = json.dumps(payload).encode()  # NaN and Infinity as the JSON extensions Python writes
    answers = [
        parse_body(body, batch_adapter(MAX_BATCH), MAX_BATCH, rows)
        for rows in (None, row_adapter(MAX_BATCH))  # Trip objects; TripRow objects first
    ]
    for trips, status, errors in answers:
        if trips is None:
            assert status in (413, 422) and errors
            assert all(set(e) == {"loc", "msg", "type"} and e["loc"][0] == "body" for e in errors)
            json.dumps(errors, allow_nan=False)  # the answer can be sent as JSON
        else:
            assert status == 200 and 1 <= len(trips) <= MAX_BATCH and not errors
    (trips, status, errors), (rows, row_status, row_errors) = answers
    assert (status, errors) == (row_status, row_errors)
    if trips is not None:
        assert [t.model_dump() for t in trips] == [{n: getattr(r, n) for n in Trip.model_fields} for r in rows]
