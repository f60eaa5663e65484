"""The 265 TLC taxi zones: the official borough and zone name of every id, and the synthetic world's
plane position, street speed, congestion and green-cab pickup weight of each zone.

Borough, zone name and service zone come from the official TLC zone lookup shipped as package data
(``taxi/taxi_zone_lookup.csv``; 264 and 265 are the file's "Unknown" zones, borough "Unknown").
Everything else is synthetic but follows the real city:

- **positions** (miles from Midtown, x east, y north): about seventy well-known zones are placed by hand
  (upper Manhattan, the airports, the green-cab neighbourhoods of Queens, Brooklyn and the Bronx); the
  others are spread uniformly over a box inside their real borough (Manhattan's "Yellow Zone" south of
  96th/110th St and its upper "Boro Zone" are separate boxes).
- **pickup weights**: green cabs may take street hails only in the "Boro Zone" service zone, so Manhattan
  below 96th St, the airports and Staten Island see few green pickups; named hot spots (East and Central
  Harlem, Washington Heights, Astoria, Jackson Heights, Elmhurst, Jamaica, Downtown Brooklyn,
  Williamsburg, the South Bronx, ...) get most of them, as in the real files.

The tables are built on first use (no work at import) and are the same on every machine.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib.resources import files

import numpy as np
import pandas as pd

N_ZONES = 265
EWR, JFK, LGA = 1, 132, 138
AIRPORTS = (EWR, JFK, LGA)

# The boroughs of the official lookup, in the order slices are reported. 264/265 are "Unknown" there
# (their service zone is "N/A"); ids outside 1..265 are reported as "Unknown" too.
BOROUGHS = ["Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island", "EWR", "Unknown"]
UNKNOWN = "Unknown"

_LOOKUP = "taxi_zone_lookup.csv"  # beside this module: a data/ folder would be dropped from the wheel by .gitignore

# Where a zone without a hand-placed position goes: (x min, x max, y min, y max, base speed mph).
_AREAS = {
    "Manhattan Yellow Zone": (-0.9, 0.9, -4.6, 3.8, 7.0),
    "Manhattan Boro Zone": (-0.9, 1.0, 4.0, 9.8, 9.0),
    "Bronx": (-0.5, 6.5, 6.0, 12.5, 11.0),
    "Brooklyn": (-2.8, 5.5, -13.0, -1.5, 10.5),
    "Queens": (3.0, 14.0, -9.0, 4.0, 12.5),
    "Staten Island": (-10.5, -4.5, -15.0, -8.0, 17.0),
    "EWR": (-9.5, -9.5, -4.5, -4.5, 20.0),
    "Unknown": (2.0, 2.0, -1.0, -1.0, 12.0),
}

# Hand-placed zones (official names, each unique in the lookup): (x, y) in miles from Midtown.
_PLACED = {
    # Manhattan
    "Inwood": (0.3, 9.6),
    "Washington Heights North": (0.0, 8.8),
    "Washington Heights South": (-0.3, 7.9),
    "Hamilton Heights": (-0.5, 6.9),
    "Manhattanville": (-0.8, 6.1),
    "Morningside Heights": (-0.9, 5.1),
    "Central Harlem North": (0.2, 6.6),
    "Central Harlem": (-0.1, 5.6),
    "East Harlem North": (0.9, 5.4),
    "East Harlem South": (0.8, 4.5),
    "Upper East Side North": (0.6, 3.0),
    "Upper West Side North": (-0.8, 3.5),
    "Central Park": (0.0, 2.8),
    "Roosevelt Island": (0.9, 1.0),
    "Midtown Center": (0.0, 0.0),
    "Times Sq/Theatre District": (-0.4, 0.0),
    "Penn Station/Madison Sq West": (-0.6, -0.8),
    "Union Sq": (-0.3, -2.0),
    "World Trade Center": (-0.4, -4.0),
    "Financial District South": (-0.2, -4.6),
    # Bronx
    "Mott Haven/Port Morris": (1.4, 6.0),
    "Melrose South": (1.2, 6.6),
    "East Concourse/Concourse Village": (0.9, 7.0),
    "West Concourse": (0.6, 7.3),
    "Highbridge": (0.3, 7.8),
    "Hunts Point": (2.8, 6.8),
    "Fordham South": (1.4, 9.3),
    "Parkchester": (3.5, 8.5),
    "Riverdale/North Riverdale/Fieldston": (-0.8, 12.0),
    "Co-Op City": (5.6, 11.5),
    # Queens
    "Astoria": (2.6, 3.3),
    "Old Astoria": (2.2, 3.0),
    "Steinway": (3.3, 3.0),
    "Long Island City/Queens Plaza": (1.6, 1.0),
    "Long Island City/Hunters Point": (1.2, 0.2),
    "Sunnyside": (3.0, 0.9),
    "Woodside": (4.2, 1.2),
    "Jackson Heights": (5.2, 2.1),
    "East Elmhurst": (5.9, 2.9),
    "Elmhurst": (5.8, 1.0),
    "Forest Hills": (7.8, -0.8),
    "Flushing": (8.6, 2.6),
    "Jamaica": (10.3, -1.6),
    "South Jamaica": (10.4, -3.0),
    "JFK Airport": (10.5, -6.5),
    "LaGuardia Airport": (5.6, 3.6),
    "Jamaica Bay": (8.0, -8.0),
    "Far Rockaway": (14.0, -9.5),
    "Breezy Point/Fort Tilden/Riis Beach": (4.5, -12.5),
    # Brooklyn
    "Greenpoint": (1.7, -1.3),
    "Williamsburg (North Side)": (1.4, -2.3),
    "Williamsburg (South Side)": (1.2, -3.0),
    "East Williamsburg": (2.4, -2.4),
    "Bushwick North": (3.6, -3.3),
    "Bushwick South": (3.2, -4.0),
    "Downtown Brooklyn/MetroTech": (0.2, -5.2),
    "Brooklyn Heights": (-0.3, -5.1),
    "Fort Greene": (0.9, -5.3),
    "Clinton Hill": (1.4, -5.2),
    "Bedford": (2.0, -4.5),
    "Stuyvesant Heights": (3.0, -5.0),
    "Park Slope": (0.4, -7.0),
    "Crown Heights North": (2.5, -6.4),
    "Sunset Park West": (-1.2, -8.2),
    "Bay Ridge": (-2.6, -10.6),
    "Coney Island": (-0.2, -13.2),
    "Canarsie": (4.8, -9.5),
    # Staten Island and Newark
    "Saint George/New Brighton": (-4.6, -8.0),
    "Newark Airport": (-9.5, -4.5),
}
_AIRPORT_SPEED = {EWR: 20.0, JFK: 16.0, LGA: 14.0}

# Green pickups: weight of a zone by service zone (street hails only in "Boro Zone"), then by borough,
# then named hot spots (multipliers on a "Boro Zone" zone's weight of about 1).
_SERVICE_WEIGHT = {"Boro Zone": 1.0, "Yellow Zone": 0.1, "Airports": 0.2, "EWR": 0.005, "N/A": 0.6}
_BOROUGH_WEIGHT = {"Staten Island": 0.05, "Bronx": 0.8, "Brooklyn": 0.9}
_HOT_SPOTS = {
    "East Harlem North": 30,
    "East Harlem South": 24,
    "Central Harlem": 18,
    "Morningside Heights": 12,
    "Central Harlem North": 10,
    "Washington Heights South": 8,
    "Hamilton Heights": 6,
    "Manhattanville": 5,
    "Washington Heights North": 4,
    "Inwood": 4,
    "Astoria": 12,
    "Jackson Heights": 10,
    "Elmhurst": 10,
    "Forest Hills": 8,
    "Jamaica": 8,
    "Woodside": 6,
    "Flushing": 6,
    "Steinway": 5,
    "Sunnyside": 4,
    "Long Island City/Queens Plaza": 4,
    "Downtown Brooklyn/MetroTech": 8,
    "Fort Greene": 6,
    "Park Slope": 6,
    "Williamsburg (North Side)": 6,
    "Williamsburg (South Side)": 4,
    "Bushwick North": 3,
    "Bushwick South": 3,
    "Crown Heights North": 4,
    "Bedford": 3,
    "Mott Haven/Port Morris": 5,
    "East Concourse/Concourse Village": 4,
    "West Concourse": 3,
    "Melrose South": 2,
}


@lru_cache(maxsize=1)
def official_zones() -> pd.DataFrame:
    """The shipped TLC zone lookup, indexed by zone id 1..265: borough, zone, service_zone (strings as in the file).

    Read with the csv module: pandas would turn the official zone name "NA" (id 265) into a missing value.
    """
    text = files("taxi").joinpath(_LOOKUP).read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    table = pd.DataFrame(
        {
            "borough": [r["Borough"] for r in rows],
            "zone": [r["Zone"] for r in rows],
            "service_zone": [r["service_zone"] for r in rows],
        },
        index=pd.Index([int(r["LocationID"]) for r in rows], name="zone_id"),
    ).sort_index()
    if list(table.index) != list(range(1, N_ZONES + 1)):
        raise RuntimeError(f"{_LOOKUP} must list the zone ids 1..{N_ZONES} once each")
    return table


def _area(borough: str, service_zone: str) -> str:
    return f"Manhattan {service_zone}" if borough == "Manhattan" else borough


@lru_cache(maxsize=1)
def zone_table() -> pd.DataFrame:
    """One row per zone id (1..265): the official borough, zone and service_zone, plus the synthetic
    world's x, y (miles), base_speed (mph), congestion (>1 = slower streets) and popularity (share of
    green pickups, sums to 1)."""
    rng = np.random.default_rng(20240101)
    table = official_zones().copy()
    areas = [_area(b, s) for b, s in zip(table["borough"], table["service_zone"], strict=True)]
    bounds = np.array([_AREAS[a] for a in areas])
    table["x"] = rng.uniform(bounds[:, 0], bounds[:, 1])
    table["y"] = rng.uniform(bounds[:, 2], bounds[:, 3])
    table["base_speed"] = bounds[:, 4]
    ids = {name: zone_id for zone_id, name in table["zone"].items()}
    for name, (x, y) in _PLACED.items():
        table.loc[ids[name], ["x", "y"]] = (x, y)
    for zone_id, speed in _AIRPORT_SPEED.items():
        table.loc[zone_id, "base_speed"] = speed
    table["congestion"] = np.exp(rng.normal(0, 0.18, len(table)))
    hot_spot = table["zone"].map(_HOT_SPOTS)
    noise = np.where(hot_spot.notna(), 1.0, rng.gamma(1.5, 1 / 1.5, len(table)))  # hot spots: as stated
    weight = table["service_zone"].map(_SERVICE_WEIGHT).to_numpy() * noise
    weight *= table["borough"].map(_BOROUGH_WEIGHT).fillna(1.0).to_numpy()
    weight *= hot_spot.fillna(1.0).to_numpy()
    table["popularity"] = weight / weight.sum()
    return table


def _lookup(column: str, zone_ids: pd.Series | np.ndarray | list[int]) -> np.ndarray:
    values = np.array([UNKNOWN, *official_zones()[column].tolist()], dtype=object)
    ids = np.asarray(zone_ids, dtype="int64")
    return values[np.where((ids >= 1) & (ids <= N_ZONES), ids, 0)]


def borough_of(zone_ids: pd.Series | np.ndarray | list[int]) -> np.ndarray:
    """Official borough of each zone id; ids outside 1..265 map to 'Unknown'."""
    return _lookup("borough", zone_ids)


def zone_name_of(zone_ids: pd.Series | np.ndarray | list[int]) -> np.ndarray:
    """Official zone name of each zone id (e.g. 74 -> 'East Harlem North'); ids outside 1..265 map to 'Unknown'."""
    return _lookup("zone", zone_ids)
