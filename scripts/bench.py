"""`make bench`: the same registered model served every way we serve it, measured in one run on this machine.

    python scripts/bench.py [--levels "1 2" | --levels ""] [--monitor-rows N] [--out bench] [--quick] [--keep]

1. model: one model trained as level 3 trains it (its params.yaml), registered in a temporary sqlite MLflow
   with the aliases ``production`` and ``champion``; level 1's hand-off written from the same pipeline;
2. in-process: the registered pipeline, the fast path (``taxi.fast_path``, when it exists), pydantic
   validation of a 1000-trip list;
3. over HTTP on 127.0.0.1, one server at a time: level 1's, 2's and 3's services, level 4's with prediction
   logging off and on (a SQLite store in the temp folder), and ``mlflow models serve`` of the same version;
   each is checked against the registered pipeline's answers, then loaded with single trips at concurrency 1
   and 8 and with 1000-trip batches (``benchmark.load``); then level 4's two services up together, loaded in
   turn for a few rounds: what prediction logging costs (``benchmark.logging_cost``);
4. level 4's monitoring of a window of a million logged predictions, in-process (``benchmark.monitoring``;
   ``--monitor-rows``, 0 skips it);
5. ``make levelN`` wall times in a throwaway copy of the working tree (``--levels``; default all);
6. ``bench/results.md`` + ``bench/results.png``, the README's Benchmark block, and the tables printed.

Goals are reported with ✓/✗, never asserted. Everything temporary lives in one temp folder, removed at the
end (``--keep`` keeps it, with the server and level logs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmark import levels, logging_cost, measure, monitoring, report, servers
from benchmark.chart import write_chart
from benchmark.machine import load_average, machine_info, package_versions
from benchmark.model import BenchModel, prepare_model, write_level1_handoff
from benchmark.readme import update_readme
from benchmark.report import MLFLOW, MONITOR_ROWS, SERVICE, LevelRun, LoggingCost, MonitorRun, PathResult

ROOT = Path(__file__).resolve().parent.parent
PARAMS = ("level3_automated_deployment/params.yaml", "level2_automated_training/params.yaml")  # the first present
QUICK_MONITOR_ROWS = 20_000


def say(message: str) -> None:
    print(message, flush=True)


def http_servers(model: BenchModel, workdir: Path) -> list[tuple[servers.Server, str]]:
    """Every level service installed here, pointed at the same model, then `mlflow models serve` of it."""
    bin_dir = Path(sys.prefix) / "bin"
    settings = {
        1: {"LEVEL1_MODEL_PATH": str(write_level1_handoff(model, workdir / "handoff"))},
        2: {"LEVEL2_TRACKING_URI": model.tracking_uri, "LEVEL2_MODEL_NAME": model.name},
        3: {"LEVEL3_TRACKING_URI": model.tracking_uri, "LEVEL3_MODEL_NAME": model.name},
    }
    settings[2]["LEVEL2_SERVING_ALIAS"] = "production"
    present = levels.present_levels(ROOT)
    ours = [
        (servers.level_service(level, bin_dir, env), SERVICE)
        for level, env in settings.items()
        if str(level) in present and (bin_dir / f"level{level}").exists()
    ]
    level4 = level4_services(model, workdir / "predictions.db")
    ours += [(level4[logging], SERVICE) for logging in (False, True) if level4]
    return [*ours, (servers.mlflow_models_serve(bin_dir, model.uri, model.tracking_uri), MLFLOW)]


def level4_services(model: BenchModel, store: Path) -> dict[bool, servers.Server]:
    """Level 4's service with prediction logging off (False) and on (True, to a SQLite ``store``); {} without it."""
    bin_dir = Path(sys.prefix) / "bin"
    if "4" not in levels.present_levels(ROOT) or not (bin_dir / "level4").exists():
        return {}
    level4 = {"LEVEL4_TRACKING_URI": model.tracking_uri, "LEVEL4_MODEL_NAME": model.name}
    url = f"sqlite:///{store.resolve()}"
    names = {False: "level 4 service (logging off)", True: "level 4 service (logging on, SQLite)"}
    return {
        logging: servers.level_service(
            4,
            bin_dir,
            level4 | {"LEVEL4_PREDICTION_LOG": str(logging).lower(), "LEVEL4_PREDICTION_STORE": url},
            name=name,
            prediction_log=logging,
        )
        for logging, name in names.items()
    }


def not_measured(present: list[str]) -> list[str]:
    if "4" in present and (Path(sys.prefix) / "bin" / "level4").exists():
        return []
    why = "level 4 does not exist yet" if "4" not in present else "level 4 has no service yet"
    return [f"level 4 throughput with prediction logging on vs off: {why}"]


def write_outputs(
    args: argparse.Namespace,
    machine: dict[str, str],
    model: BenchModel,
    budget: measure.Budget,
    results: list[PathResult],
    level_runs: list[LevelRun],
    total: float,
    monitor_run: MonitorRun | None = None,
    logging_run: LoggingCost | None = None,
) -> None:
    machine = machine | {"load_at_end": load_average()}
    versions = package_versions()
    train = model.params["train"]
    setup = [
        f"model: {model.name} version {model.version} ({train['model']}, max_iter {train['max_iter']}, level 3's "
        f"params.yaml; {model.train_rows} training trips): the same registered version behind every path",
        f"load: a closed-loop client on this machine (it shares the cores), keep-alive HTTP/1.1 on 127.0.0.1, one "
        f"server at a time; each measurement up to {budget.seconds:g} s (c=1: {budget.c1_calls} calls, c=8: "
        f"{budget.c8_calls}, 1000-row: {budget.batch_calls}) after a warm-up; in-process up to "
        f"{budget.in_process_seconds:g} s each",
    ]
    missing = not_measured(levels.present_levels(ROOT))
    args.out.mkdir(parents=True, exist_ok=True)
    chart = write_chart(
        results, args.out / "results.png", f"make bench, {machine['date']}: {machine['cores']} cores, {machine['cpu']}"
    )
    markdown = report.results_markdown(
        machine=machine, versions=versions, setup=setup, results=results, levels=level_runs,
        not_measured=missing, total_seconds=total, chart=chart.name, monitoring=monitor_run, logging=logging_run,
    )  # fmt: skip
    (args.out / "results.md").write_text(markdown)
    link = Path(os.path.relpath(args.out / "results.md", args.readme.resolve().parent)).as_posix()
    block = report.readme_block(
        machine=machine, results=results, levels=level_runs, total_seconds=total, link=link, monitoring=monitor_run,
        logging=logging_run,
    )  # fmt: skip
    if args.readme.exists() and update_readme(args.readme, block):
        say(f"updated the Benchmark block of {args.readme}")
    say("")
    say(report.render_table(report.HEADERS, report.path_rows(results)))
    if logging_run is not None and logging_run.samples:
        say("")
        say(report.render_table(report.LOGGING_HEADERS, report.logging_rows(logging_run)))
    if monitor_run is not None and monitor_run.steps:
        say("")
        say(report.render_table(["monitoring", "rows", "seconds", "note"], report.monitoring_rows(monitor_run)))
    say("")
    goals = report.evaluate_goals(results, monitor_run, logging_run)
    say(report.render_table(["goal", "path", "this run", "met"], report.goal_rows(goals)))
    if level_runs:
        say("")
        say(report.render_table(["command", "wall time", "result", "note"], report.level_rows(level_runs)))
    for item in missing:
        say(f"not measured: {item}")
    say(f"\nwrote {args.out / 'results.md'} and {chart} ({total / 60:.1f} min)")


def run(args: argparse.Namespace, machine: dict[str, str], chosen_levels: list[str], workdir: Path) -> None:
    began = time.monotonic()
    budget = measure.QUICK if args.quick else measure.Budget()
    params_file = next(ROOT / p for p in PARAMS if (ROOT / p).exists())
    say(f"\n[1/6] one model, trained with {params_file.relative_to(ROOT)}, registered in {workdir}/mlflow.db")
    model = prepare_model(workdir, params_file)
    say(f"  {model.uri} (@production, @champion): {model.train_rows} training trips, {len(model.payloads)} to send")

    say("\n[2/6] in-process")
    in_process = [measure.measure_pipeline(model, budget, say), measure.measure_fast_path(model, budget, say)]
    in_process += measure.measure_validation(model, budget, say)

    say("\n[3/6] over HTTP on 127.0.0.1, one server at a time")
    over_http = [
        measure.measure_server(server, role, model, workdir, budget, say)
        for server, role in http_servers(model, workdir)
    ]
    logging_run = None
    if level4 := level4_services(model, workdir / "predictions-interleaved.db"):
        plan = logging_cost.QUICK_ROUNDS if args.quick else logging_cost.Rounds()
        say(f"  level 4, logging on vs off: both up, loaded in turn, {plan.rounds} rounds of {plan.seconds:g} s each")
        logging_run = logging_cost.measure_logging_cost(level4[True], level4[False], model, workdir, plan, say)

    rows = QUICK_MONITOR_ROWS if args.quick and args.monitor_rows == MONITOR_ROWS else args.monitor_rows
    say(f"\n[4/6] level 4's monitoring of {rows:,} logged predictions" if rows else "\n[4/6] monitoring: skipped")
    monitor_run = monitoring.measure_monitoring(rows, say) if rows else None

    say(f"\n[5/6] make levelN wall times: {' '.join(chosen_levels) or 'none (LEVELS is empty)'}")
    level_runs = levels.run_levels(ROOT, chosen_levels, workdir, timeout=args.level_timeout, echo=say)

    say("\n[6/6] results")
    results = over_http + in_process
    write_outputs(args, machine, model, budget, results, level_runs, time.monotonic() - began, monitor_run, logging_run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="all", help='levels whose `make levelN` is timed: "all", "1 2", "" (none)')
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="where results.md and results.png go")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md", help="README with the Benchmark block")
    parser.add_argument("--quick", action="store_true", help="short measurements (a smoke run of the benchmark)")
    parser.add_argument(
        "--monitor-rows", type=int, default=MONITOR_ROWS, help=f"level 4's monitored window (0 skips; --quick: "
        f"{QUICK_MONITOR_ROWS:,})",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server and level logs)")
    parser.add_argument("--level-timeout", type=float, default=600.0, help="seconds before a level run is stopped")
    args = parser.parse_args(argv)
    try:
        chosen_levels = levels.parse_levels(args.levels, levels.present_levels(ROOT))
    except ValueError as exc:
        print(f"make bench: {exc}", file=sys.stderr)
        return 2
    machine = machine_info(ROOT)
    say(
        f"make bench: {machine['date']}, commit {machine['commit']}, {machine['cores']} cores ({machine['cpu']}), "
        f"load average {machine['load_at_start']}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="make-bench-"))
    try:
        run(args, machine, chosen_levels, workdir)
    finally:
        if args.keep:
            say(f"kept {workdir} (server and level logs)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
