"""`make bench` (scripts/bench.py + scripts/benchmark/): the pure parts, and the load client over real HTTP.

No timing is asserted here: the goals are reported by `make bench`, never tested. The load client runs
against a tiny FastAPI app on loopback (counts and errors only); one server is started and stopped by its
process group."""

import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from taxi.serving import serve_in_thread
from taxi.smoke import port_in_use

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))  # scripts/benchmark is a folder of modules beside scripts/bench.py
stats = importlib.import_module("benchmark.stats")
load = importlib.import_module("benchmark.load")
report = importlib.import_module("benchmark.report")
levels = importlib.import_module("benchmark.levels")
readme = importlib.import_module("benchmark.readme")
servers = importlib.import_module("benchmark.servers")
inprocess = importlib.import_module("benchmark.inprocess")
monitoring = importlib.import_module("benchmark.monitoring")
logging_cost = importlib.import_module("benchmark.logging_cost")
uv_root_venv = importlib.import_module("benchmark.uv_root_venv")


def summary(p50=1.0, p99=2.0, ok=100, errors=0, seconds=1.0, rows=1):
    return stats.Summary(ok=ok, errors=errors, seconds=seconds, p50_ms=p50, p99_ms=p99, rows_per_call=rows)


# ---- percentiles and summaries ----


def test_nearest_rank_percentiles():
    values = [v / 1000 for v in range(100, 0, -1)]  # 0.001 .. 0.100, unsorted
    assert stats.percentile(values, 50) == 0.050
    assert stats.percentile(values, 99) == 0.099
    assert stats.percentile(values, 100) == 0.100
    assert stats.percentile([7.0], 99) == 7.0
    assert stats.percentile([1.0, 2.0, 3.0], 50) == 2.0  # a value that happened, never interpolated
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError):
        stats.percentile([1.0], 0)


def test_summary_in_milliseconds_and_rates():
    s = stats.summarise([0.001, 0.002, 0.003, 0.004], errors=1, seconds=2.0, rows_per_call=1000)
    assert (s.ok, s.errors) == (4, 1)
    assert s.p50_ms == pytest.approx(2.0)
    assert s.p99_ms == pytest.approx(4.0)
    assert s.calls_per_s == 2.0
    assert s.rows_per_s == 2000.0


# ---- tables, goals, results.md, README block ----


def test_markdown_and_text_tables_align_numbers_right():
    rows = [["a", "1.50"], ["bb", "—"]]
    md = report.render_table(["path |Δ|", "p50"], rows, markdown=True).splitlines()
    assert md[0] == "| path \\|Δ\\| | p50 |"  # a | inside a cell does not end it
    assert md[1] == "| --- | ---: |"
    assert md[3] == "| bb | — |"
    text = report.render_table(["path", "p50"], rows).splitlines()
    assert text[2] == "a     1.50"
    assert text[3] == "bb       —"


def test_path_rows_show_what_is_missing_and_why():
    measured = report.PathResult(
        "level 2 service", report.SERVICE, "compiled (taxi.fast_path): max |difference| 0 min on 2130 trips",
        c1=summary(1.234, 5.0), c8=summary(3.0, 9.0, ok=800, seconds=2.0), batch=summary(20, 30, ok=10, rows=1000),
        max_diff=0.0,
    )  # fmt: skip
    missing = report.PathResult("in-process fast path", report.FAST_PATH, note="not available (no module)")
    row, empty = report.path_rows([measured, missing])
    assert row == ["level 2 service", "compiled (taxi.fast_path)", "1.23", "5.00", "3.00", "9.00", "400",
                   "20.0", "10k", "0", "0", "100/800/10"]  # fmt: skip
    assert empty[1] == "not available (no module)"
    assert empty[2:] == ["—"] * 9 + ["—/—/—"]


def test_number_formats():
    assert report.fmt_ms(0.0642) == "0.064"
    assert report.fmt_ms(2.971) == "2.97"
    assert report.fmt_ms(18.61) == "18.6"
    assert report.fmt_ms(844.2) == "844"
    assert report.fmt_ms(float("nan")) == "—"
    assert report.fmt_rate(125_400) == "125k"
    assert report.fmt_rate(1_250_000) == "1.25M"
    assert report.fmt_rate(19.94) == "19.9"
    assert report.fmt_diff(0.0) == "0"
    assert report.fmt_diff(3.2e-9) == "3.2e-09"


def paths(service_c1=(1.5, 6.0), batch_rows_per_s=150_000.0, diff=0.0, fast=True):
    seconds = 1000 / batch_rows_per_s  # 1 call of 1000 rows
    results = [
        report.PathResult("ours", report.SERVICE, c1=summary(*service_c1),
                          batch=summary(ok=1, seconds=seconds, rows=1000), max_diff=diff),
        report.PathResult("mlflow models serve", report.MLFLOW, c1=summary(20.0, 40.0), max_diff=0.0),
        report.PathResult("in-process pipeline", report.PIPELINE, c1=summary(18.0, 25.0)),
    ]  # fmt: skip
    if fast:
        results.append(report.PathResult("in-process fast path", report.FAST_PATH, c1=summary(0.05, 0.1), max_diff=0))
    return results


def goals_by_name(results, monitoring=None):
    return {(g.subject, g.goal.split(" (")[0]): g for g in report.evaluate_goals(results, monitoring)}


def test_goals_met():
    goals = goals_by_name(paths())
    assert all(g.ok for g in goals.values()), [g for g in goals.values() if not g.ok]
    assert goals[("ours", "≥ 2× faster than mlflow models serve")].measured == "13.3×"
    assert len(goals) == 7  # five per service of ours, two for the in-process fast path


def test_goals_missed_and_unmeasured():
    goals = goals_by_name(paths(service_c1=(12.0, 30.0), batch_rows_per_s=50_000, diff=1e-3, fast=False))
    assert goals[("ours", "single-row p50 ≤ 3 ms")].ok is False
    assert goals[("ours", "single-row p99 ≤ 10 ms")].ok is False
    assert goals[("ours", "≥ 2× faster than mlflow models serve")].ok is False  # 20 / 12 = 1.7×
    assert goals[("ours", "batch of 1000 ≥ 100k rows/s")].ok is False
    assert goals[("ours", "same answers as the registered pipeline")].ok is False
    in_process = goals[("in-process pipeline", "in-process single-row ≤ 1 ms")]
    assert in_process.ok is False and "no fast path" in in_process.measured

    failed = [report.PathResult("ours", report.SERVICE, note="failed: did not start")]
    assert {g.ok for g in report.evaluate_goals(failed)} == {None}  # not measured is neither ✓ nor ✗
    assert report.mark(None) == "–"


def level4_paths(on_c8=900.0, off_c8=1000.0, on_rows=114_000.0, off_rows=120_000.0):
    def measured(name, logging, c8, rows, logged=None):
        return report.PathResult(
            name, report.SERVICE, c1=summary(1.0, 2.0), c8=summary(ok=int(c8), seconds=1.0),
            batch=summary(ok=1, seconds=1000 / rows, rows=1000), max_diff=0.0, prediction_log=logging, logged=logged,
        )  # fmt: skip

    logged = {"written": 106_000.0, "dropped": 0.0, "queued": 0.0, "caught_up_s": 1.5}
    return [
        measured("level 4 service (logging off)", False, off_c8, off_rows),
        measured("level 4 service (logging on, SQLite)", True, on_c8, on_rows, logged),
    ]


def monitor_run(rows=report.MONITOR_ROWS, drift_s=8.0):
    steps = [
        report.MonitorStep("monitor_window (drift + quality reports)", 15.0, rows, "drift share 0.00"),
        report.MonitorStep("drift report", drift_s, rows, "drift share 0.00", drift=True),
    ]
    return report.MonitorRun(rows, 20_000, steps)


def test_level_4_goals_compare_logging_on_with_off_and_judge_the_monitoring():
    def logging_goal(results, what):
        return next(g for g in report.evaluate_goals(results) if "logging costs" in g.goal and what in g.goal)

    single, batch = logging_goal(level4_paths(on_c8=920), "c=8"), logging_goal(level4_paths(), "1000-row")
    assert single.ok is True and single.measured == "8% lower: 920 on, 1k off (req/s)"
    assert batch.ok is True and batch.measured == "5% lower: 114k on, 120k off (rows/s)"
    slow = logging_goal(level4_paths(on_c8=800), "c=8")
    assert slow.ok is False and slow.measured.startswith("20% lower")
    assert logging_goal(level4_paths()[1:], "c=8").ok is None  # logging off was not measured
    assert not [g for g in report.evaluate_goals(paths()) if "logging costs" in g.goal]  # no level 4: no such goal

    drift = "drift on the inputs of 1M logged rows < 10 s"
    assert goals_by_name([], monitor_run())[("level4.monitor", drift)].ok is True
    assert goals_by_name([], monitor_run(drift_s=17.0))[("level4.monitor", drift)].ok is False
    quick = goals_by_name([], monitor_run(rows=20_000))[("level4.monitor", drift)]
    assert quick.ok is None and quick.measured == "8.0 s on 20k rows only"  # too few rows to judge
    missing = goals_by_name([], report.MonitorRun(0, 0, [], note="level 4 is not installed here"))
    assert missing[("level4.monitor", drift)].measured == "level 4 is not installed here"


def interleaved(single=((1000, 900), (1100, 1000), (900, 800)), batch=((120_000, 114_000),) * 3):
    """A LoggingCost with rounds of (off, on) throughputs; the service CPU follows throughput."""
    run = report.LoggingCost(rounds=len(single), seconds=4.0, logged={"written": 9e4, "dropped": 0.0, "queued": 0.0})
    for what, pairs in (("single rows, c=8", single), ("1000-row batches", batch)):
        for off, on in pairs:
            run.samples += [report.LoggingRound(what, False, off, 800 / off, 0),
                            report.LoggingRound(what, True, on, 800 / on, 0)]  # fmt: skip
    return run


def test_interleaved_logging_rounds_are_judged_on_their_medians():
    run = interleaved()
    assert run.median("single rows, c=8", False) == 1000 and run.median("single rows, c=8", True) == 900
    # each round's pair: 10 %, 9.1 %, 11.1 % -> 10 %
    assert run.cost("single rows, c=8") == pytest.approx(0.10) and run.cost("1000-row batches") == pytest.approx(0.05)
    drifting = interleaved(single=((1000, 950), (1500, 1425), (600, 570)))  # the machine slows, the pairs agree
    assert drifting.cost("single rows, c=8") == pytest.approx(0.05)
    assert run.kinds() == ["single rows, c=8", "1000-row batches"]
    # the single runs say 20 %, the interleaved medians 10 %: the medians judge
    goals = [g for g in report.evaluate_goals(level4_paths(on_c8=800), None, run) if "logging costs" in g.goal]
    assert [g.ok for g in goals] == [True, True]
    assert goals[0].measured == "10.0% lower (median of 3 interleaved rounds); 900 on, 1k off (req/s, medians)"
    worse = interleaved(single=((1000, 850),) * 3)
    assert [g.ok for g in report.evaluate_goals([], None, worse) if "logging costs" in g.goal] == [False, True]
    failed = report.LoggingCost(rounds=5, seconds=4.0, note="failed: level 4 service did not start")
    assert {g.measured for g in report.evaluate_goals([], None, failed) if "logging" in g.goal} == {failed.note}
    assert report.logging_rows(run)[0] == ["single rows, c=8", "1k req/s", "900 req/s", "10.0%", "0.800 → 0.889", "—"]
    assert run.spread("single rows, c=8") is None  # under four rounds
    five = interleaved(single=((1000, 900), (1000, 950), (1000, 800), (1000, 1000), (1000, 850)))
    for sample in five.samples:
        if sample.logging:
            object.__setattr__(sample, "writer_ms", 0.02)
    assert five.cost("single rows, c=8") == pytest.approx(0.10)  # rounds: 10, 5, 20, 0, 15 %
    assert five.spread("single rows, c=8") == pytest.approx((0.025, 0.175))
    assert report.logging_rows(five)[0][3:] == ["10.0% (3% … 18%)", "0.800 → 0.889", "0.020"]

    machine = {"date": "d", "commit": "c", "cores": "2", "usable_cores": "2", "cpu": "x", "system": "Linux",
               "load_at_start": "0.1"}  # fmt: skip
    text = report.results_markdown(
        machine=machine, versions={}, setup=[], results=level4_paths(), levels=[], not_measured=[],
        total_seconds=60, logging=run,
    )  # fmt: skip
    assert "## What prediction logging costs (level 4, interleaved)" in text and "| 1000-row batches |" in text
    block = report.readme_block(machine=machine, results=[], levels=[], total_seconds=60, link="r.md", logging=run)
    assert "Prediction logging (level 4, 3 interleaved rounds, medians): single rows, c=8 10.0% lower" in block


def test_the_interleaved_measurement_loads_both_services_in_turn(tmp_path):
    script = (
        "import sys, uvicorn\n"
        "from fastapi import FastAPI\n"
        "from fastapi.responses import PlainTextResponse\n"
        "app = FastAPI()\n"
        "@app.post('/predict')\n"
        "async def predict():\n"
        "    return {'predictions': [1.0]}\n"
        "@app.get('/health')\n"
        "async def health():\n"
        "    return {'status': 'ok'}\n"
        "@app.get('/metrics')\n"
        "async def metrics():\n"
        "    return PlainTextResponse('taxi_prediction_log_written_total 7.0\\ntaxi_prediction_log_queued 0.0\\n'\n"
        "                             'taxi_prediction_log_writer_cpu_seconds_total 0.5\\n')\n"
        "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')\n"
    )
    env = servers.base_env(Path(sys.prefix) / "bin", {})
    on, off = (
        servers.Server(name, lambda port: [sys.executable, "-c", script, str(port)], env, prediction_log=logs)
        for name, logs in (("on", True), ("off", False))
    )
    trip = {"PULocationID": 74, "DOLocationID": 42, "trip_distance": 1.8, "lpep_pickup_datetime": "2024-03-05T08:15"}
    model = type("Model", (), {"payloads": [trip] * 1000})()
    said = []
    plan = logging_cost.Rounds(rounds=2, seconds=0.3, warmup_seconds=0.1)
    run = logging_cost.measure_logging_cost(on, off, model, tmp_path, plan, said.append)
    assert run.note == "" and run.errors == 0 and len(said) == 2 and "logging on" in said[0]
    assert [(s.what, s.logging) for s in run.samples] == [
        ("single rows, c=8", False),
        ("single rows, c=8", True),
        ("1000-row batches", False),
        ("1000-row batches", True),
        ("single rows, c=8", True),
        ("single rows, c=8", False),
        ("1000-row batches", True),
        ("1000-row batches", False),
    ]  # alternating order, round by round
    assert all(s.rows_per_s > 0 and s.cpu_ms is not None and s.cpu_ms >= 0 for s in run.samples)
    assert {s.writer_ms for s in run.samples if not s.logging} == {None}  # read from the logging service only
    assert all(s.writer_ms == 0 for s in run.samples if s.logging)  # its counter did not move
    assert run.logged["written"] == 7.0
    assert logging_cost.process_seconds(10**9) is None  # no such process


def test_a_logging_service_row_says_what_its_log_held():
    row = report.path_rows(level4_paths()[1:])[0]
    assert row[1] == "logged 106k predictions, 0 dropped"
    assert "logged 106k predictions" in report.one_line(level4_paths()[1])


def test_results_markdown_has_every_section():
    machine = {"date": "2026-11-28 08:00 UTC", "commit": "abc1234", "cores": "2", "usable_cores": "2",
               "cpu": "AMD EPYC", "system": "Linux", "load_at_start": "0.10", "load_at_end": "0.20"}  # fmt: skip
    runs = [report.LevelRun("1", 31.4, "ok", "no Docker daemon"), report.LevelRun("5", None, "skipped: no such level")]
    text = report.results_markdown(
        machine=machine, versions={"python": "3.11.7", "mlflow": "3"}, setup=["model: v1"], results=paths(),
        levels=runs, not_measured=["level 4: does not exist yet"], total_seconds=300,
    )  # fmt: skip
    for expected in ("## Serving paths", "## Goals (7 of 7 met in this run)", "| make level1 | 31 s | ok |",
                     "| make level5 | — | skipped: no such level |", "- level 4: does not exist yet",
                     "python 3.11.7", "abc1234", "![", "2 cores"):  # fmt: skip
        assert expected in text, expected
    assert "Monitoring a large window" not in text and "LEVEL4_PREDICTION_LOG" not in text
    block = report.readme_block(machine=machine, results=paths(), levels=runs, total_seconds=300, link="bench/r.md")
    assert "Goals met in this run: 7 of 7." in block and "`make level1` 31 s" in block

    with_level4 = report.results_markdown(
        machine=machine, versions={}, setup=[], results=level4_paths() + paths(), levels=[], not_measured=[],
        total_seconds=300, monitoring=monitor_run(),
    )  # fmt: skip
    for expected in ("## Monitoring a large window (level 4)", "| drift report | 1,000,000 | 8.0 | drift share 0.00 |",
                     "`LEVEL4_PREDICTION_LOG=true`", "## Goals (20 of 20 met in this run)"):  # fmt: skip
        assert expected in with_level4, expected
    block = report.readme_block(
        machine=machine, results=level4_paths(), levels=[], total_seconds=300, link="r.md", monitoring=monitor_run()
    )
    assert "Monitoring (level 4, 1,000,000 logged rows): monitor_window (drift + quality reports) 15.0 s" in block


def test_readme_block_is_replaced_between_its_markers_only(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(f"# Title\n\n## Benchmark\n\n{readme.START}\nold table\n{readme.END}\n\n## Next\n")
    assert readme.update_readme(path, "new table\n")
    assert path.read_text() == f"# Title\n\n## Benchmark\n\n{readme.START}\nnew table\n{readme.END}\n\n## Next\n"
    assert readme.replace_block("no markers here", "x") is None


# ---- levels ----


def test_levels_spec():
    present = ["0", "1", "2", "3"]
    assert levels.parse_levels("all", present) == present
    assert levels.parse_levels("", present) == []
    assert levels.parse_levels("  ", present) == []
    assert levels.parse_levels("1 2", present) == ["1", "2"]
    assert levels.parse_levels("level3,1,3", present) == ["3", "1"]
    assert levels.parse_levels("7", present) == ["7"]  # reported as "no such level" by the run, not dropped
    with pytest.raises(ValueError, match="level numbers"):
        levels.parse_levels("one", present)


def test_the_uv_stand_in_never_syncs():
    assert uv_root_venv.main(["sync", "--all-packages", "--locked"]) == 0
    assert uv_root_venv.main(["run"]) == 2


# ---- servers, answers ----


def test_request_bodies():
    trip = {"PULocationID": 74, "DOLocationID": 42, "trip_distance": 1.8,
            "lpep_pickup_datetime": "2024-03-05T08:15:00", "passenger_count": None}  # fmt: skip
    assert json.loads(servers.encode_trips([trip])) == trip
    assert json.loads(servers.encode_trips([trip, trip])) == [trip, trip]
    split = json.loads(servers.encode_split([trip]))["dataframe_split"]
    assert split["data"] == [[74, 42, 1.8, "2024-03-05T08:15:00", None]]
    assert json.loads(servers.encode_records([trip])) == {"dataframe_records": [trip]}


def test_max_abs_difference():
    reference = np.array([1.0, 2.0, 3.0])
    assert inprocess.max_abs_difference([1.0, 2.0, 3.5], reference) == 0.5
    assert inprocess.max_abs_difference([1.0, 2.0], reference) == math.inf  # an answer missing
    assert inprocess.max_abs_difference([1.0, float("nan"), 3.0], reference) == math.inf


def test_a_server_is_started_on_a_free_port_and_stopped_with_its_process_group(tmp_path):
    server = servers.Server(
        name="http.server",
        command=lambda port: [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        env=servers.base_env(Path(sys.prefix) / "bin", {}),
        health_path="/",
    )
    with servers.running(server, tmp_path, timeout=30) as url:
        assert servers.http_json(url + "/")[0] == 200
        port = int(url.rsplit(":", 1)[1])
    assert not port_in_use(port)  # stopped: nothing answers there any more
    with pytest.raises(servers.ServerError, match="exited before answering"):
        broken = servers.Server("broken", lambda port: [sys.executable, "-c", "raise SystemExit(3)"], server.env)
        with servers.running(broken, tmp_path, timeout=30):
            pass


# ---- the load client over real HTTP ----


def tiny_app() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request):
        body = json.loads(await request.body())
        if body.get("fail"):
            return JSONResponse({"detail": "bad"}, status_code=422)
        return {"predictions": [1.0]}

    return app


def test_the_load_client_counts_every_call_and_every_error():
    good, bad = json.dumps({"fail": False}).encode(), json.dumps({"fail": True}).encode()
    with serve_in_thread(tiny_app()) as url:
        result = load.run_load(url, "/predict", [good, good, bad], concurrency=4, max_calls=60, max_seconds=60)
        single = load.run_load(url, "/predict", [good], concurrency=1, max_calls=5, max_seconds=60, rows_per_call=3)
        floor = load.run_load(url, "/predict", [good], concurrency=2, max_calls=100, max_seconds=0, min_calls=7)
    assert result.calls == 60  # bounded by calls: exactly max_calls were sent
    assert result.errors == 20  # every third body is refused with a 422
    assert len(result.latencies_s) == 40
    assert result.error_reasons == {"HTTP 422": 20}
    s = result.summary()
    assert (s.ok, s.errors) == (40, 20) and s.p50_ms > 0 and s.p99_ms >= s.p50_ms
    assert (single.calls, single.errors, single.summary().rows_per_call) == (5, 0, 3)
    assert floor.calls == 7  # out of time at once, but a slow path still gets its minimum of samples


def test_in_process_timing_is_bounded_by_calls_and_has_a_floor():
    calls = []
    s = inprocess.time_calls(lambda: calls.append(1), max_calls=10, max_seconds=60, warmup=2, rows_per_call=1000)
    assert (s.ok, len(calls), s.rows_per_call) == (10, 12, 1000)  # the warm-up calls are not measured
    assert inprocess.time_calls(lambda: None, max_calls=100, max_seconds=0, min_calls=4, warmup=0).ok == 4


def test_the_load_client_counts_refused_connections_as_errors():
    port = servers.free_port()  # nothing listens there
    result = load.run_load(f"http://127.0.0.1:{port}", "/predict", [b"{}"], concurrency=2, max_calls=6, max_seconds=30)
    assert (result.calls, result.errors, result.latencies_s) == (6, 6, [])
    assert sum(result.error_reasons.values()) == 6
    with pytest.raises(ValueError):
        load.run_load("https://example.org", "/", [b"{}"])


# ---- level 4: the prediction log's figures, the monitoring of a window ----


def test_a_logging_services_figures_are_read_once_its_writer_caught_up():
    app, scrapes = FastAPI(), []

    @app.get("/metrics")
    async def metrics():
        scrapes.append(1)
        queued = 5.0 if len(scrapes) < 3 else 0.0  # the writer catches up by the third scrape
        text = (
            "# HELP taxi_prediction_log_written predictions committed\n"
            f"taxi_prediction_log_written_total {1000 - queued}\n"
            'taxi_prediction_log_dropped_total{reason="queue_full"} 2.0\n'
            'taxi_prediction_log_dropped_total{reason="store_error"} 1.0\n'
            f"taxi_prediction_log_queued {queued}\n"
            "taxi_prediction_log_lag_seconds 0.0\n"
        )
        return PlainTextResponse(text)

    with serve_in_thread(app) as url:
        figures = servers.prediction_log_figures(url, timeout=30)
    assert len(scrapes) == 3
    assert (figures["written"], figures["dropped"], figures["queued"]) == (1000.0, 3.0, 0.0)
    assert report.logged_text(figures) == "logged 1k predictions, 3 dropped"


def test_the_monitoring_of_a_small_window_times_every_step():
    pytest.importorskip("level4.monitor")
    said = []
    run = monitoring.measure_monitoring(3_000, said.append, month_rows=4_000)
    assert run.rows == 3_000 and 0 < run.reference_rows <= monitoring.REFERENCE_ROWS
    assert [step.rows for step in run.steps] == [3_000] * 5
    assert run.drift is run.steps[2] and all(step.seconds > 0 for step in run.steps)
    assert run.steps[0].note == "3,000 rows read back"  # load_window: the window written to a store, read back
    assert run.steps[1].note.endswith("0 quality failures")
    assert run.steps[3].note == "the same scores as the drift report"  # plain strings: the same data, coded dearer
    assert any("drift report" in line for line in said)
    goal = report.evaluate_goals([], run)[-1]
    assert goal.ok is None and goal.measured.endswith("on 3k rows only")
