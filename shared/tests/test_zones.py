"""taxi.zones against the official TLC zone lookup shipped as package data, read here independently."""

import csv
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taxi.zones import BOROUGHS, N_ZONES, borough_of, official_zones, zone_name_of

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "taxi" / "taxi_zone_lookup.csv"


@pytest.fixture(scope="module")
def official() -> list[dict[str, str]]:
    with SHIPPED.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_lookup_is_package_data():
    shipped = files("taxi").joinpath("taxi_zone_lookup.csv")
    assert shipped.is_file()
    assert shipped.read_text(encoding="utf-8") == SHIPPED.read_text(encoding="utf-8")


def test_borough_and_zone_name_agree_with_the_official_table_for_every_id(official):
    ids = [int(row["LocationID"]) for row in official]
    assert sorted(ids) == list(range(1, N_ZONES + 1))
    assert list(borough_of(ids)) == [row["Borough"] for row in official]
    assert list(zone_name_of(ids)) == [row["Zone"] for row in official]


def test_the_issue_examples():
    # the invented table said Brooklyn, Queens, Brooklyn, Bronx, Manhattan, Bronx, Brooklyn
    assert list(borough_of([74, 75, 41, 43, 5, 6, 206])) == ["Manhattan"] * 4 + ["Staten Island"] * 3
    assert list(zone_name_of([1, 132, 138, 74])) == ["Newark Airport", "JFK Airport", "LaGuardia Airport",
                                                    "East Harlem North"]  # fmt: skip


def test_unknown_zones_follow_the_file():
    # 264/265: borough "Unknown", zones "NV" and "NA" (not a missing value), service zone "N/A"
    assert list(borough_of([264, 265])) == ["Unknown", "Unknown"]
    assert list(zone_name_of([264, 265])) == ["NV", "NA"]
    assert list(official_zones().loc[[264, 265], "service_zone"]) == ["N/A", "N/A"]
    assert list(borough_of([0, -3, 266, 10_000])) == ["Unknown"] * 4
    assert list(zone_name_of([0, 266])) == ["Unknown"] * 2


def test_boroughs_are_the_official_ones():
    official = pd.read_csv(SHIPPED, keep_default_na=False)
    assert set(BOROUGHS) == set(official["Borough"])


def test_accepts_series_arrays_and_lists():
    expected = ["Manhattan", "Queens"]
    for ids in ([74, 7], np.array([74, 7], dtype="int32"), pd.Series([74, 7])):
        assert list(borough_of(ids)) == expected
