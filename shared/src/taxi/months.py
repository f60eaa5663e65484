"""Months as 'YYYY-MM' strings, the unit of every data file."""

from __future__ import annotations

import re

import pandas as pd

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def parse_month(month: str) -> pd.Period:
    """'2024-07' -> Period('2024-07', 'M'); a clear ValueError for anything else."""
    if not isinstance(month, str) or not _MONTH.match(month):
        raise ValueError(f"month must look like YYYY-MM (e.g. 2024-07); got {month!r}")
    return pd.Period(month, freq="M")


def month_range(start: str, count: int) -> list[str]:
    """``count`` consecutive months from ``start``: month_range('2024-11', 3) -> 2024-11, 2024-12, 2025-01."""
    if count < 1:
        raise ValueError(f"the number of months must be at least 1; got {count}")
    first = parse_month(start)
    return [str(first + i) for i in range(count)]
