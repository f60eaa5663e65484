"""The 265 TLC taxi zones: borough, a plane position (miles), congestion and popularity.

Real ids of the landmarks are kept (1 = Newark Airport, 132 = JFK, 138 = LaGuardia, 264/265 =
Unknown); the other zones are spread over the boroughs with the official per-borough counts.
The table is built on first use (no work at import) and is the same on every machine.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

N_ZONES = 265
EWR, JFK, LGA = 1, 132, 138
AIRPORTS = (EWR, JFK, LGA)
UNKNOWN_ZONES = (264, 265)

BOROUGHS = ["Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island", "EWR", "Unknown"]

# borough -> (zone count among ids 2..263 without the airports, centre x, centre y, spread x,
#             spread y, base speed mph, share of green pickups)
_BOROUGH_LAYOUT = {
    "Manhattan": (69, 0.0, 0.0, 0.8, 5.0, 8.0, 0.36),
    "Brooklyn": (61, 2.0, -6.5, 2.5, 2.5, 11.0, 0.26),
    "Queens": (67, 7.5, -1.0, 3.0, 3.0, 13.0, 0.24),
    "Bronx": (43, 2.5, 7.5, 2.0, 2.0, 12.0, 0.125),
    "Staten Island": (20, -7.0, -12.0, 2.5, 2.5, 18.0, 0.005),
}
_FIXED = {
    EWR: ("EWR", -9.0, -5.0, 0.0, 20.0),
    JFK: ("Queens", 10.5, -8.0, 0.0, 16.0),
    LGA: ("Queens", 6.0, 2.5, 0.0, 14.0),
    264: ("Unknown", 2.0, -1.0, 0.004, 12.0),
    265: ("Unknown", 2.0, -1.0, 0.004, 12.0),
}


@lru_cache(maxsize=1)
def zone_table() -> pd.DataFrame:
    """One row per zone id (1..265): borough, x, y, base_speed, congestion, popularity."""
    rng = np.random.default_rng(20240101)
    free_ids = [z for z in range(2, 264) if z not in _FIXED]
    order = rng.permutation(free_ids)
    rows: list[dict] = []
    start = 0
    for borough, (count, cx, cy, sx, sy, speed, share) in _BOROUGH_LAYOUT.items():
        ids = order[start : start + count]
        start += count
        xs = cx + rng.normal(0, sx, count)
        ys = cy + rng.normal(0, sy, count)
        weights = rng.gamma(1.2, 1.0, count)
        if borough == "Manhattan":  # green cabs mostly serve upper Manhattan
            weights *= np.where(ys > 1.5, 4.0, 0.4)
        weights = weights / weights.sum() * share
        for zone, x, y, w in zip(ids, xs, ys, weights, strict=True):
            rows.append(dict(zone=int(zone), borough=borough, x=x, y=y, base_speed=speed, popularity=w))
    for zone, (borough, x, y, share, speed) in _FIXED.items():
        rows.append(dict(zone=zone, borough=borough, x=x, y=y, base_speed=speed, popularity=share))
    table = pd.DataFrame(rows).set_index("zone").sort_index()
    table["congestion"] = np.exp(rng.normal(0, 0.18, len(table)))  # >1 = slower streets
    table["popularity"] /= table["popularity"].sum()
    return table


def borough_of(zone_ids: pd.Series | np.ndarray) -> np.ndarray:
    """Borough name for each zone id; ids outside 1..265 map to 'Unknown'."""
    lookup = np.array(["Unknown", *zone_table()["borough"].tolist()], dtype=object)
    ids = np.asarray(zone_ids, dtype="int64")
    ids = np.where((ids >= 1) & (ids <= N_ZONES), ids, 0)
    return lookup[ids]
