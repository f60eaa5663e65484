"""The canary's and load generator's own pieces (``taxi.deployment.canary``, ``taxi.deployment.load``): PSI, the
payloads sent, routing keys, a generator pointed at nothing. Both run against a real service, with faulty,
shifted and equivalent challengers, in level 3's tests (``test_canary_ab_load.py``), beside its A/B test."""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pandas as pd
import pytest

from taxi.deployment.canary import psi
from taxi.deployment.load import LoadGenerator, routing_key, trip_payloads
from taxi.generator import generate_month
from taxi.routing import CHALLENGER, CHAMPION, variant_for


@pytest.fixture(scope="module")
def trips() -> pd.DataFrame:
    return generate_month("2024-03", rows=3000, seed=7)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_psi_of_fixed_bins():
    rng = np.random.default_rng(1)
    base = rng.gamma(3, 5, 2000)
    assert psi(base, base) == 0.0
    assert psi(base, rng.permutation(base)) == 0.0  # the same values, in any order
    assert 0 < psi(base, base * 1.03) < 0.05
    assert psi(base, base + 30) > 2


def test_trip_payloads_drop_what_the_api_refuses(trips):
    raw = trips.head(6).copy()
    raw.loc[raw.index[0], "trip_distance"] = 25_000.0
    raw.loc[raw.index[1], "PULocationID"] = 0
    raw.loc[raw.index[2], "passenger_count"] = np.nan
    payloads, kept = trip_payloads(raw)
    assert list(kept) == [raw.index[i] for i in (2, 3, 4, 5)] and len(payloads) == 4
    assert payloads[0]["passenger_count"] is None
    assert set(payloads[0]) == {
        "PULocationID",
        "DOLocationID",
        "trip_distance",
        "lpep_pickup_datetime",
        "passenger_count",
    }
    json.dumps(payloads)  # plain JSON types


def test_routing_keys_reach_the_variant_they_are_chosen_for():
    for share in (0.05, 0.5, 0.95):
        for variant in (CHAMPION, CHALLENGER):
            for i in range(20):
                assert variant_for(routing_key(variant, share, f"t-{i}"), share) == variant
    with pytest.raises(ValueError, match="no routing key reaches the challenger"):
        routing_key(CHALLENGER, 0.0, "t")


def test_load_generator_against_a_stopped_port_counts_failures_and_raises_nothing(trips):
    with pytest.raises(ValueError, match="rate must be a positive number"):
        LoadGenerator("http://127.0.0.1:1", trips, rate=0)
    load = LoadGenerator(f"http://127.0.0.1:{free_port()}", trips, threads=2, timeout=2.0)
    with load:
        deadline = time.monotonic() + 20
        while load.stats().failures < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    stats = load.stats()
    print("\n" + stats.to_text())
    assert stats.requests == stats.failures >= 6 and stats.ok == 0 and stats.failure_rate == 1.0
    assert stats.failure_kinds.keys() == {"ConnectError"}
    assert 1 <= len(stats.first_failures) <= 5 and stats.first_failures[0].startswith("ConnectError")
    assert stats.by_version == {} and stats.p50_ms is None
