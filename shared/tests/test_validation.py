import numpy as np
import pandas as pd
import pytest

from taxi.schema import GREEN_SCHEMA
from taxi.validation import DataValidationError, read_trips, validate_file, validate_frame


def test_a_generated_month_is_valid_and_its_dirty_rows_are_counted(march):
    frame, report = validate_frame(march, month="2024-03")
    assert len(frame) == report.rows == len(march)
    assert 0.9 * report.rows < report.usable < report.rows
    assert report.dirty["with dropoff before pickup"] > 0
    assert report.dirty["with a pickup outside 2024-03"] == 3
    assert "usable for training" in report.summary()


def _error(df: pd.DataFrame) -> str:
    with pytest.raises(DataValidationError) as info:
        validate_frame(df)
    return str(info.value)


@pytest.mark.parametrize("column", ["trip_distance", "PULocationID", "lpep_dropoff_datetime"])
def test_missing_required_column_is_named(march, column):
    assert f"column '{column}': required column is missing" in _error(march.drop(columns=[column]))


def test_unparseable_number_is_named(march):
    df = march.astype({"trip_distance": object})
    df.loc[3, "trip_distance"] = "abc"
    message = _error(df)
    assert "column 'trip_distance'" in message and "'abc'" in message and "float64" in message


def test_unparseable_datetime_is_named(march):
    df = march.astype({"lpep_pickup_datetime": str})
    df.loc[5, "lpep_pickup_datetime"] = "yesterday"
    assert "column 'lpep_pickup_datetime'" in _error(df)


def test_missing_zone_id_is_named(march):
    df = march.astype({"DOLocationID": float})
    df.loc[5, "DOLocationID"] = np.nan
    assert "column 'DOLocationID': must not be missing" in _error(df)


def test_empty_frame_is_refused(march):
    assert "no rows" in _error(march.iloc[:0])


def test_older_dtypes_are_normalised(march):
    old = march.astype({"VendorID": "int64", "PULocationID": "int64", "lpep_pickup_datetime": "datetime64[ns]"})
    frame, _ = validate_frame(old)
    assert {c: str(t) for c, t in frame.dtypes.items()} == GREEN_SCHEMA


def test_empty_and_garbage_files_are_refused(tmp_path):
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "html.parquet").write_text("<html>Access denied</html>")
    with pytest.raises(DataValidationError, match="empty"):
        read_trips(tmp_path / "empty.parquet")
    with pytest.raises(DataValidationError, match="cannot be read as parquet"):
        read_trips(tmp_path / "html.parquet")


def test_csv_files_are_read(tmp_path, march):
    march.to_csv(tmp_path / "m.csv", index=False)
    frame, report = validate_file(tmp_path / "m.csv")
    assert report.rows == len(march)
    assert str(frame["lpep_pickup_datetime"].dtype) == "datetime64[us]"


def test_fractional_zone_id_is_named(march):
    df = march.astype({"PULocationID": float})
    df.loc[7, "PULocationID"] = 74.5
    message = _error(df)
    assert (
        "column 'PULocationID': values must be whole numbers" in message and "74.5" in message and "rows 7" in message
    )


def test_every_problem_is_reported_at_once(march):
    df = march.drop(columns=["DOLocationID"]).astype({"trip_distance": object, "lpep_pickup_datetime": object})
    df.loc[2, "trip_distance"] = None
    df.loc[4, "lpep_pickup_datetime"] = "yesterday"
    message = _error(df)
    assert "column 'DOLocationID': required column is missing" in message
    assert "column 'trip_distance': must not be missing; 1 missing value(s) (rows 2)" in message
    assert "column 'lpep_pickup_datetime': values must be dates and times" in message and "'yesterday'" in message


def test_timezone_aware_times_become_new_york_wall_clock_columns(march):
    df = march.head(50).copy()
    df["lpep_pickup_datetime"] = df["lpep_pickup_datetime"].dt.strftime("%Y-%m-%dT%H:%M:%S-05:00")
    frame, _ = validate_frame(df)
    assert str(frame["lpep_pickup_datetime"].dtype) == "datetime64[us]"
    assert (frame["lpep_pickup_datetime"] == march.head(50)["lpep_pickup_datetime"]).all()
