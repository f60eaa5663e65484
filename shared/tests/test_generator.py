import numpy as np
import pandas as pd
import pytest

from taxi.generator import SCENARIOS, generate_month, world_for
from taxi.model import duration_minutes
from taxi.schema import GREEN_SCHEMA
from taxi.zones import AIRPORTS, N_ZONES, zone_table


def test_same_seed_gives_identical_frame():
    a = generate_month("2024-05", rows=2000, seed=7, scenario="drift")
    b = generate_month("2024-05", rows=2000, seed=7, scenario="drift")
    pd.testing.assert_frame_equal(a, b)


def test_different_months_and_seeds_differ():
    a = generate_month("2024-05", rows=2000)
    assert not a.equals(generate_month("2024-06", rows=2000))
    assert not a.equals(generate_month("2024-05", rows=2000, seed=8))


def test_schema_is_the_tlc_green_schema(march):
    assert list(march.columns) == list(GREEN_SCHEMA)
    assert {c: str(t) for c, t in march.dtypes.items()} == GREEN_SCHEMA


def test_looks_like_a_real_month(march):
    minutes = duration_minutes(march)
    assert 0.93 <= minutes.between(1, 60).mean() <= 0.98  # real files: 95-97 %
    assert 1.2 <= march["trip_distance"].median() <= 3.0  # real: about 2 miles
    assert march["trip_distance"].max() > 1000  # absurd odometer rows exist
    assert march["ehail_fee"].isna().all()
    assert 0.05 <= march["passenger_count"].isna().mean() <= 0.47
    assert (minutes < 0).any() and (march["trip_distance"] == 0).any()
    assert (march["lpep_pickup_datetime"].dt.year == 2009).any()  # stray timestamps, as in real files
    assert march["PULocationID"].between(1, N_ZONES).all()
    assert march["DOLocationID"].isin(AIRPORTS).mean() > 0.02


def test_zone_table_has_265_zones_in_boroughs():
    zones = zone_table()
    assert list(zones.index) == list(range(1, 266))
    assert zones.loc[1, "borough"] == "EWR" and zones.loc[132, "borough"] == "Queens"
    assert (zones["borough"] == "Manhattan").sum() == 69


def test_scenarios_change_only_from_the_change_month():
    for scenario in SCENARIOS:
        pd.testing.assert_frame_equal(
            generate_month("2024-03", rows=500, scenario=scenario), generate_month("2024-03", rows=500)
        )
    assert world_for("2024-08", "drift").manhattan_speedup > 1
    with pytest.raises(ValueError, match="scenario must be one of"):
        generate_month("2024-03", scenario="chaos")


def test_data_quality_month_reports_kilometres_for_one_vendor():
    clean = generate_month("2024-08", rows=3000)
    broken = generate_month("2024-08", rows=3000, scenario="data_quality")
    vendor2 = clean["VendorID"] == 2
    ratio = broken.loc[vendor2, "trip_distance"].sum() / clean.loc[vendor2, "trip_distance"].sum()
    assert ratio == pytest.approx(1.609, rel=0.01)
    np.testing.assert_array_equal(broken.loc[~vendor2, "trip_distance"], clean.loc[~vendor2, "trip_distance"])


def test_bad_month_is_a_clear_error():
    with pytest.raises(ValueError, match="YYYY-MM"):
        generate_month("2024-13")
