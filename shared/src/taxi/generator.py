"""Synthetic green-taxi months in the official TLC schema, with scenarios.

A month is a pure function of (month, rows, seed, scenario, change month): same arguments, same frame.
The world: the 265 official TLC zones (``taxi.zones``: real boroughs and names, synthetic positions),
green pickups where green cabs really work (upper Manhattan and the outer boroughs), dropoffs mostly
near the pickup (a gravity model) or in Manhattan, airport runs to the real airport ids, street speeds
that depend on borough, zone congestion, hour and weekday, and the dirty rows real files have (zero
distances, negative or day-long durations, blocks of missing fields, pickups in other years, absurd
odometer values).

Noise, calibrated so that the course baseline (linear regression on PU_DO + distance) scores RMSE 7-8 min
and the shared model 5-6 min, as on real green months:

- each trip drives at its own speed (log-normal around the street speed: driver, lights, weather);
- a heavy right tail: some trips lose extra minutes (a jam, a detour, waiting for the rider);
- ``trip_distance`` is what the meter reports: odometer/GPS noise around the driven distance, and GPS
  gaps that under-report it; a few percent of trips report 0.

Scenarios (the change starts at ``change_month``, default 2024-07; earlier months are identical to
``stationary``):

- ``stationary``: nothing changes.
- ``drift``: the world changes. Trips touching Manhattan get much faster (congestion pricing clears
  the streets: a concept shift) and airport runs become far more common (a covariate shift).
- ``data_quality``: the world is unchanged but vendor 2's feed reports trip_distance in kilometres.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from taxi.months import parse_month
from taxi.schema import GREEN_SCHEMA
from taxi.zones import AIRPORTS, JFK, N_ZONES, zone_table

SCENARIOS = ("stationary", "drift", "data_quality")
DEFAULT_CHANGE_MONTH = "2024-07"
DEFAULT_ROWS = 20_000
DEFAULT_SEED = 42

# hour of day -> relative number of pickups (green cabs: morning and evening peaks)
_HOURLY_DEMAND = np.array(
    [2.0, 1.4, 1.0, 0.8, 0.7, 0.9, 2.0, 3.8, 4.8, 4.5, 4.2, 4.3,
     4.5, 4.6, 4.9, 5.3, 5.8, 6.0, 5.6, 4.8, 4.0, 3.6, 3.2, 2.6]
)  # fmt: skip
# hour of day -> speed multiplier (free-flowing nights, slow rush hours)
_HOURLY_SPEED = np.array(
    [1.35, 1.4, 1.42, 1.42, 1.4, 1.3, 1.1, 0.85, 0.78, 0.85, 0.95, 0.95,
     0.93, 0.92, 0.9, 0.85, 0.78, 0.76, 0.8, 0.92, 1.02, 1.1, 1.18, 1.25]
)  # fmt: skip
_WEEKEND_SPEED = 1.12


@dataclass(frozen=True)
class Noise:
    """How far a trip strays from the street-speed model (see module doc); the defaults are calibrated."""

    speed_sigma: float = 0.25  # log-normal sigma of a trip's own speed factor
    tail_share: float = 0.06  # share of trips that lose extra minutes
    tail_minutes: float = 9.0  # mean of those extra minutes (exponential)
    odometer_sigma: float = 0.12  # log-normal sigma of the reported vs the driven distance
    gps_gap_share: float = 0.03  # share of trips whose reported distance misses a part of the route
    zero_distance_share: float = 0.025  # share of trips reporting trip_distance = 0


NOISE = Noise()


@dataclass(frozen=True)
class World:
    """What the scenario changes in a given month."""

    manhattan_speedup: float = 1.0  # concept: speed multiplier for trips touching Manhattan
    airport_share: float = 0.04  # covariate: share of trips that are airport runs
    km_vendor: int | None = None  # data quality: this vendor reports kilometres


DRIFTED = World(manhattan_speedup=1.5, airport_share=0.12)  # the world after the change, scenario drift


def world_for(month: str, scenario: str = "stationary", change_month: str = DEFAULT_CHANGE_MONTH) -> World:
    """The state of the world in ``month`` under ``scenario``."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}; got {scenario!r}")
    if scenario == "stationary" or parse_month(month) < parse_month(change_month):
        return World()
    if scenario == "drift":
        return DRIFTED
    return World(km_vendor=2)


def generate_month(
    month: str,
    *,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    scenario: str = "stationary",
    change_month: str = DEFAULT_CHANGE_MONTH,
) -> pd.DataFrame:
    """One month of green-taxi trips in the TLC schema (see module doc)."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1; got {rows}")
    period = parse_month(month)
    world = world_for(month, scenario, change_month)
    rng = np.random.default_rng([seed, period.year, period.month])
    zones = zone_table()

    pickup = _pickup_times(rng, period, rows)
    pu = rng.choice(zones.index.to_numpy(), size=rows, p=zones["popularity"].to_numpy())
    do = _dropoff_zones(rng, pu)
    airport = rng.random(rows) < world.airport_share
    do = np.where(airport, rng.choice(AIRPORTS, size=rows, p=[0.15, 0.5, 0.35]), do)

    driven = _driven_distances(rng, pu, do)
    minutes = _durations(rng, pu, do, driven, pickup, world)
    frame = _records(rng, pu, do, _reported_distances(rng, driven), pickup, minutes)
    _make_dirty(rng, frame, period)
    if world.km_vendor is not None:
        km = frame["VendorID"] == world.km_vendor
        frame.loc[km, "trip_distance"] = (frame.loc[km, "trip_distance"] * 1.609344).round(2)
    frame = frame.sort_values("lpep_pickup_datetime", kind="stable").reset_index(drop=True)
    return frame.astype(GREEN_SCHEMA)[list(GREEN_SCHEMA)]


def _pickup_times(rng: np.random.Generator, period: pd.Period, rows: int) -> pd.Series:
    days = rng.integers(0, period.days_in_month, rows)
    hours = rng.choice(24, size=rows, p=_HOURLY_DEMAND / _HOURLY_DEMAND.sum())
    seconds = rng.integers(0, 3600, rows)
    offset = days * 86_400 + hours * 3600 + seconds
    return pd.Series(period.start_time + pd.to_timedelta(offset, unit="s"))


@lru_cache(maxsize=1)
def _dropoff_cdf() -> np.ndarray:
    """Cumulative dropoff probabilities per pickup zone: a gravity model (short trips dominate).

    A zone attracts dropoffs by its green pickups plus a share for every Manhattan "Yellow Zone"
    (riders from Harlem or Queens going downtown, where green cabs may drop off but not pick up).
    """
    zones = zone_table()
    xy = zones[["x", "y"]].to_numpy()
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    yellow = (zones["service_zone"] == "Yellow Zone").to_numpy()
    attraction = zones["popularity"].to_numpy() + 0.002 + 0.004 * yellow
    weights = attraction[None, :] * np.exp(-dist / 1.6)
    weights[np.diag_indices_from(weights)] *= 4.0  # trips inside the zone
    cdf = np.cumsum(weights, axis=1)
    return cdf / cdf[:, -1:]


def _dropoff_zones(rng: np.random.Generator, pu: np.ndarray) -> np.ndarray:
    cdf = _dropoff_cdf()[pu - 1]
    draws = rng.random(len(pu))[:, None]
    return (cdf < draws).sum(axis=1).clip(0, N_ZONES - 1) + 1


def _driven_distances(rng: np.random.Generator, pu: np.ndarray, do: np.ndarray) -> np.ndarray:
    """Miles actually driven: the street grid's detour over the straight line, or a short hop inside a zone."""
    zones = zone_table()
    x, y = zones["x"].to_numpy(), zones["y"].to_numpy()
    straight = np.hypot(x[pu - 1] - x[do - 1], y[pu - 1] - y[do - 1])
    road = straight * 1.3 * rng.lognormal(0, 0.1, len(pu)) + 0.3
    inside = rng.gamma(2.0, 0.45, len(pu)) + 0.2
    return np.where(pu == do, inside, road)


def _reported_distances(rng: np.random.Generator, driven: np.ndarray) -> np.ndarray:
    """What the meter reports: odometer/GPS noise, and GPS gaps that lose part of the route."""
    n = len(driven)
    reported = driven * rng.lognormal(0, NOISE.odometer_sigma, n)
    gap = rng.random(n) < NOISE.gps_gap_share
    reported = np.where(gap, reported * rng.uniform(0.2, 0.8, n), reported)
    return np.round(reported, 2)


def _durations(
    rng: np.random.Generator,
    pu: np.ndarray,
    do: np.ndarray,
    distance: np.ndarray,
    pickup: pd.Series,
    world: World,
) -> np.ndarray:
    """Minutes from pickup to dropoff for the driven ``distance`` (see module doc for the noise)."""
    zones = zone_table()
    n = len(pu)
    speed = np.sqrt(zones["base_speed"].to_numpy()[pu - 1] * zones["base_speed"].to_numpy()[do - 1])
    congestion = np.sqrt(zones["congestion"].to_numpy()[pu - 1] * zones["congestion"].to_numpy()[do - 1])
    speed = speed / congestion
    speed *= 1 + 0.6 * (1 - np.exp(-distance / 8))  # highways on long trips
    speed *= _HOURLY_SPEED[pickup.dt.hour.to_numpy()]
    speed *= np.where(pickup.dt.dayofweek.to_numpy() >= 5, _WEEKEND_SPEED, 1.0)
    boroughs = zones["borough"].to_numpy()
    manhattan = (boroughs[pu - 1] == "Manhattan") | (boroughs[do - 1] == "Manhattan")
    speed *= np.where(manhattan, world.manhattan_speedup, 1.0)
    speed *= rng.lognormal(0, NOISE.speed_sigma, n)
    moving = distance / speed * 60
    delay = np.where(rng.random(n) < NOISE.tail_share, rng.exponential(NOISE.tail_minutes, n), 0.0)
    return 1.5 + moving + delay + rng.normal(0, 0.6, n).clip(-1.2, None)


def _records(
    rng: np.random.Generator,
    pu: np.ndarray,
    do: np.ndarray,
    distance: np.ndarray,
    pickup: pd.Series,
    minutes: np.ndarray,
) -> pd.DataFrame:
    n = len(pu)
    boroughs = zone_table()["borough"].to_numpy()
    manhattan = (boroughs[pu - 1] == "Manhattan") | (boroughs[do - 1] == "Manhattan")
    airport = np.isin(do, AIRPORTS) | np.isin(pu, AIRPORTS)
    payment = np.where(rng.random(n) < 0.62, 1.0, 2.0)  # 1 card, 2 cash
    ratecode = np.where(rng.random(n) < 0.03, 5.0, 1.0)
    ratecode = np.where(do == JFK, 2.0, ratecode)
    fare = np.round(3.0 + 3.5 * distance + 0.35 * minutes, 1)
    fare = np.where(ratecode == 2.0, 70.0, fare)
    extra = rng.choice([0.0, 1.0, 2.5], size=n, p=[0.55, 0.3, 0.15])
    tip = np.where(payment == 1.0, np.round(fare * rng.uniform(0.1, 0.25, n), 2), 0.0)
    tolls = np.where(airport & (rng.random(n) < 0.5), 6.94, 0.0)
    congestion = np.where(manhattan, 2.75, 0.0)
    total = fare + extra + 0.5 + tip + tolls + 1.0 + congestion
    return pd.DataFrame(
        {
            "VendorID": np.where(rng.random(n) < 0.15, 1, 2),
            "lpep_pickup_datetime": pickup.to_numpy(),
            "lpep_dropoff_datetime": (pickup + pd.to_timedelta(np.round(minutes * 60), unit="s")).to_numpy(),
            "store_and_fwd_flag": np.where(rng.random(n) < 0.004, "Y", "N").astype(object),
            "RatecodeID": ratecode,
            "PULocationID": pu,
            "DOLocationID": do,
            "passenger_count": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], size=n, p=[0.8, 0.1, 0.03, 0.02, 0.03, 0.02]),
            "trip_distance": distance,
            "fare_amount": fare,
            "extra": extra,
            "mta_tax": np.full(n, 0.5),
            "tip_amount": tip,
            "tolls_amount": tolls,
            "ehail_fee": np.full(n, np.nan),
            "improvement_surcharge": np.full(n, 1.0),
            "total_amount": np.round(total, 2),
            "payment_type": payment,
            "trip_type": np.where(rng.random(n) < 0.03, 2.0, 1.0),
            "congestion_surcharge": congestion,
        }
    )


def _make_dirty(rng: np.random.Generator, frame: pd.DataFrame, period: pd.Period) -> None:
    """Add the quirks of real monthly files, in place."""
    n = len(frame)
    pick = frame["lpep_pickup_datetime"]
    drop = frame["lpep_dropoff_datetime"]
    # a block of rows (dispatch-app trips) without the optional fields
    missing = rng.random(n) < 0.08
    for column in ("passenger_count", "RatecodeID", "payment_type", "trip_type", "congestion_surcharge"):
        frame.loc[missing, column] = np.nan
    frame.loc[missing, "store_and_fwd_flag"] = None
    # zero distance (meter not engaged for distance, GPS lost): the trip itself is real
    frame.loc[rng.random(n) < NOISE.zero_distance_share, "trip_distance"] = 0.0
    # very short / cancelled trips
    short = rng.random(n) < 0.012
    frame.loc[short, "lpep_dropoff_datetime"] = pick[short] + pd.to_timedelta(rng.integers(0, 50, n)[short], unit="s")
    # meter left running: hours-long trips
    long = rng.random(n) < 0.012
    frame.loc[long, "lpep_dropoff_datetime"] = drop[long] + pd.to_timedelta(rng.integers(60, 1400, n)[long], unit="m")
    # dropoff before pickup
    negative = rng.random(n) < 0.004
    frame.loc[negative, ["lpep_pickup_datetime", "lpep_dropoff_datetime"]] = frame.loc[
        negative, ["lpep_dropoff_datetime", "lpep_pickup_datetime"]
    ].to_numpy()
    if n >= 200:
        # a handful of pickups stamped in other months, even 2009
        stray = rng.choice(n, size=3, replace=False)
        to_2009 = pd.Timestamp("2009-01-01 00:13:00") - pick.iloc[stray[0]]
        shifts = [to_2009, pd.Timedelta(days=-40), pd.Timedelta(days=45)]
        for row, shift in zip(stray, shifts, strict=True):
            frame.loc[row, ["lpep_pickup_datetime", "lpep_dropoff_datetime"]] += shift
        # absurd odometer readings
        frame.loc[rng.choice(n, size=2, replace=False), "trip_distance"] = rng.uniform(20_000, 244_000, 2).round(2)
