"""`taxi-data`: generate, fetch and validate monthly trip files; train and evaluate the shared model."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.progress import track

from taxi import generator, loader
from taxi.console import fail
from taxi.loader import DataSourceError
from taxi.model import build_model, evaluate, format_metrics, prepare
from taxi.months import month_range, parse_month
from taxi.validation import DataValidationError, validate_file

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

Month = Annotated[str, typer.Option(help="first month, YYYY-MM")]
Months = Annotated[int, typer.Option(min=1, help="how many consecutive months")]
Scenario = Annotated[str, typer.Option(help=f"one of: {', '.join(generator.SCENARIOS)}")]


def _check_month(month: str, option: str = "--month") -> None:
    try:
        parse_month(month)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@app.command()
def generate(
    month: Month = "2024-01",
    months: Months = 1,
    scenario: Scenario = "stationary",
    rows: Annotated[int, typer.Option(min=1, help="rows per month")] = generator.DEFAULT_ROWS,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same data")] = generator.DEFAULT_SEED,
    change_month: Annotated[str, typer.Option(help="first month of the scenario's change")] = (
        generator.DEFAULT_CHANGE_MONTH
    ),
    out: Annotated[Path, typer.Option(help="a .parquet file (one month) or a folder (TLC file names)")] = Path("data"),
) -> None:
    """Write synthetic green-taxi months in the TLC schema."""
    _check_month(month)
    _check_month(change_month, "--change-month")
    if scenario not in generator.SCENARIOS:
        raise typer.BadParameter(f"must be one of {', '.join(generator.SCENARIOS)}", param_hint="--scenario")
    wanted = month_range(month, months)
    single_file = out.suffix == ".parquet"
    if single_file and months > 1:
        raise typer.BadParameter("give a folder to write several months", param_hint="--out")
    for m in track(wanted, description="generating", disable=months == 1):
        df = generator.generate_month(m, rows=rows, seed=seed, scenario=scenario, change_month=change_month)
        path = loader.write_parquet(df, out if single_file else out / loader.tlc_filename(m))
        typer.echo(f"wrote {path} ({len(df)} trips, {scenario}, seed {seed})")


@app.command()
def fetch(
    month: Month = "2024-01",
    months: Months = 1,
    base_url: Annotated[str, typer.Option(help="where the monthly files live (URL or folder)")] = loader.TLC_BASE_URL,
    out: Annotated[Path, typer.Option(help="folder to write the files to")] = Path("data"),
) -> None:
    """Download real TLC green monthly files (skips months already there)."""
    _check_month(month)
    for m in month_range(month, months):
        target = out / loader.tlc_filename(m)
        if target.exists():
            typer.echo(f"{target} already there, skipped")
            continue
        try:
            path = loader.fetch_month(m, out, base_url=base_url)
        except DataSourceError as exc:
            fail(str(exc))
        typer.echo(f"fetched {path}")


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="parquet or CSV trip files")],
    month: Annotated[str | None, typer.Option(help="expected month, to count pickups outside it")] = None,
) -> None:
    """Check trip files: structural problems fail (exit 1); dirty rows are counted, never fatal."""
    if month is not None:
        _check_month(month)
    failed = False
    for path in paths:
        try:
            _, report = validate_file(path, month=month)
        except DataValidationError as exc:
            typer.secho(str(exc), fg=typer.colors.RED, err=True)
            failed = True
            continue
        typer.echo(report.summary())
        typer.secho(f"{path}: valid", fg=typer.colors.GREEN)
    if failed:
        raise typer.Exit(1)


@app.command()
def baseline(
    source: Annotated[str, typer.Option(help=f"one of: {', '.join(loader.SOURCES)}")] = "synthetic",
    base_url: Annotated[str, typer.Option(help="tlc: where the monthly files live (URL or folder)")] = (
        loader.TLC_BASE_URL
    ),
    train_month: Annotated[str, typer.Option(help="first training month")] = "2024-01",
    train_months: Annotated[int, typer.Option(min=1, help="number of training months")] = 1,
    test_month: Annotated[str, typer.Option(help="month to evaluate on")] = "2024-02",
    scenario: Annotated[str, typer.Option(help=f"synthetic: one of {', '.join(generator.SCENARIOS)}")] = "stationary",
    rows: Annotated[int, typer.Option(min=100, help="synthetic: rows per month")] = generator.DEFAULT_ROWS,
) -> None:
    """Compare the course baseline with the shared model: train on some months, evaluate on another (no files kept).

    On real files: taxi-data baseline --source tlc --base-url DIR --train-month 2021-01 --test-month 2021-02
    """
    _check_month(train_month, "--train-month")
    _check_month(test_month, "--test-month")
    if source not in loader.SOURCES:
        fail(f"--source must be one of: {', '.join(loader.SOURCES)}; got {source!r}")
    if scenario not in generator.SCENARIOS:
        fail(f"--scenario must be one of: {', '.join(generator.SCENARIOS)}; got {scenario!r}")
    wanted = month_range(train_month, train_months)
    with tempfile.TemporaryDirectory() as cache:  # each tlc month is fetched once, nothing is kept

        def load(month: str) -> pd.DataFrame:
            try:
                return loader.load_month(
                    month, source=source, scenario=scenario, rows=rows, base_url=base_url, cache_dir=cache
                )
            except (DataSourceError, DataValidationError) as exc:
                fail(str(exc))

        train = pd.concat([load(m) for m in wanted], ignore_index=True)
        test = load(test_month)
    X_train, y_train = prepare(train)
    X_test, y_test = prepare(test)
    what = f"{scenario}, {rows} rows a month" if source == "synthetic" else base_url
    typer.echo(f"training on {len(X_train)} trips ({', '.join(wanted)}; {source}: {what}) ...")
    results = {
        kind: evaluate(build_model({"model": kind}).fit(X_train, y_train), X_test, y_test)
        for kind in ("linear_baseline", "hist_gradient_boosting")
    }
    course = results["linear_baseline"]
    clean = f" ({course['clean']['rmse']:.2f} on distance > 0)" if "clean" in course else ""
    typer.echo(f"course baseline (linear regression on PU_DO + distance): RMSE {course['rmse']:.2f} min{clean}")
    typer.echo(f"shared model (gradient boosting), evaluated on {test_month}:")
    typer.echo(format_metrics(results["hist_gradient_boosting"]))


if __name__ == "__main__":  # pragma: no cover
    app()
