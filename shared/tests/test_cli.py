import pytest
from typer.testing import CliRunner

from taxi.cli import app
from taxi.generator import generate_month
from taxi.loader import tlc_filename, write_parquet

runner = CliRunner()


def test_generate_then_validate(tmp_path):
    out = tmp_path / "x.parquet"
    result = runner.invoke(
        app, ["generate", "--month", "2024-07", "--scenario", "drift", "--rows", "800", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate", str(out), "--month", "2024-07"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "usable for training" in result.output


def test_generate_several_months_into_a_folder(tmp_path):
    result = runner.invoke(
        app, ["generate", "--month", "2024-11", "--months", "3", "--rows", "200", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "green_tripdata_2024-11.parquet", "green_tripdata_2024-12.parquet", "green_tripdata_2025-01.parquet",
    ]  # fmt: skip


def test_validate_fails_with_readable_errors(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "cannot be read as parquet" in result.output
    assert "Traceback" not in result.output


def test_bad_months_are_refused_naming_the_option(tmp_path):
    for args, option in (
        (["generate", "--change-month", "2024-13", "--scenario", "drift"], "--change-month"),
        (["validate", str(tmp_path / "x.parquet"), "--month", "2024-13"], "--month"),
        (["baseline", "--train-month", "2024-1"], "--train-month"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and option in result.output and "YYYY-MM" in result.output, result.output
        assert "Traceback" not in result.output


def test_bad_options_are_refused():
    assert "YYYY-MM" in runner.invoke(app, ["generate", "--month", "July"]).output
    assert runner.invoke(app, ["generate", "--scenario", "chaos"]).exit_code == 2


def test_fetch_reports_failure(tmp_path):
    result = runner.invoke(
        app, ["fetch", "--month", "2024-01", "--base-url", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_baseline_on_a_folder_of_tlc_files(tmp_path):
    for month in ("2021-01", "2021-02", "2021-03"):
        write_parquet(generate_month(month, rows=1500, seed=3), tmp_path / tlc_filename(month))
    args = ["baseline", "--source", "tlc", "--base-url", str(tmp_path), "--train-month", "2021-01"]
    result = runner.invoke(app, [*args, "--train-months", "2", "--test-month", "2021-03"])
    assert result.exit_code == 0, result.output
    assert "2021-01, 2021-02; tlc" in result.output and "evaluated on 2021-03" in result.output
    assert "course baseline" in result.output and "RMSE" in result.output
    assert "all served trips" in result.output and "East Harlem North" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [tlc_filename(m) for m in ("2021-01", "2021-02", "2021-03")]


def test_baseline_on_synthetic_months_is_the_default():
    result = runner.invoke(app, ["baseline", "--rows", "1500"])
    assert result.exit_code == 0, result.output
    assert "synthetic: stationary, 1500 rows a month" in result.output and "evaluated on 2024-02" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "s3"], "--source must be one of: synthetic, tlc"),
        (["--source", "tlc", "--base-url", "{missing}"], "does not exist"),
        (["--scenario", "chaos"], "--scenario must be one of"),
    ],
)
def test_baseline_refuses_bad_sources_in_one_line(tmp_path, args, message):
    args = [a.format(missing=tmp_path / "nowhere") for a in args]
    result = runner.invoke(app, ["baseline", "--rows", "200", *args])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output
