import numpy as np
import pandas as pd
import pytest

from taxi.generator import SCENARIOS, generate_month, world_for
from taxi.model import duration_minutes
from taxi.schema import GREEN_SCHEMA
from taxi.zones import AIRPORTS, EWR, JFK, LGA, N_ZONES, zone_table


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
    assert (minutes < 0).any()
    assert 0.01 <= (march["trip_distance"] == 0).mean() <= 0.05  # real files: a few percent
    assert 15 <= march["trip_distance"].quantile(0.99) <= 24  # real: p99 15-24 mi
    assert (march["lpep_pickup_datetime"].dt.year == 2009).any()  # stray timestamps, as in real files
    assert march["PULocationID"].between(1, N_ZONES).all()
    assert march["DOLocationID"].isin(AIRPORTS).mean() > 0.02


def test_zone_table_has_265_zones_in_their_official_boroughs():
    zones = zone_table()
    assert list(zones.index) == list(range(1, 266))
    assert zones.loc[EWR, "borough"] == "EWR" and zones.loc[JFK, "borough"] == zones.loc[LGA, "borough"] == "Queens"
    assert (zones["borough"] == "Manhattan").sum() == 69
    assert zones["popularity"].sum() == pytest.approx(1.0)


def test_positions_follow_the_real_geography():
    zones = zone_table()
    mean = zones.groupby("borough")[["x", "y"]].mean()
    assert (
        mean.loc["Bronx", "y"] > mean.loc["Manhattan", "y"] > mean.loc["Brooklyn", "y"] > mean.loc["Staten Island", "y"]
    )
    assert mean.loc["Queens", "x"] > mean.loc["Manhattan", "x"] > mean.loc["Staten Island", "x"]
    upper = zones["zone"].isin(["East Harlem North", "Central Harlem", "Washington Heights South", "Inwood"])
    downtown = zones["zone"].isin(["Midtown Center", "Union Sq", "Financial District South"])
    assert zones.loc[upper, "y"].min() > zones.loc[downtown, "y"].max()
    manhattan = zones[zones["borough"] == "Manhattan"]
    assert manhattan["x"].between(-1, 1.1).all()  # a long, narrow island


def test_green_pickups_are_where_green_cabs_work(march):
    zones = zone_table()
    pickups = march["PULocationID"]
    service = zones["service_zone"].reindex(pickups).to_numpy()
    assert (service == "Boro Zone").mean() > 0.95  # street hails: not in Manhattan below 96th St, not at airports
    busiest = set(pickups.value_counts().index[:5])
    assert {74, 75} <= busiest  # East Harlem North and South, as in the real files
    boroughs = pd.Series(zones["borough"].reindex(pickups).to_numpy()).value_counts(normalize=True)
    assert boroughs["Staten Island"] < 0.01
    assert min(boroughs["Manhattan"], boroughs["Queens"], boroughs["Brooklyn"]) > 0.15 and boroughs["Bronx"] > 0.05


def test_airport_runs_go_to_the_real_airport_ids(march):
    airport = march.loc[march["DOLocationID"].isin(AIRPORTS), "DOLocationID"]
    assert set(airport) == {EWR, JFK, LGA}
    assert (march.loc[march["DOLocationID"] == JFK, "RatecodeID"].dropna() == 2).all()  # the JFK flat fare


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
