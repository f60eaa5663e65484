"""What a run found, as tables: every serving path, level 4's monitoring, the goals (✓/✗ against this run), the
level wall times.

Pure functions over ``PathResult`` / ``LevelRun``: ``path_rows`` + ``render_table`` give the table that is
printed and written to results.md, ``evaluate_goals`` judges the issue's goals on this run's numbers (the
goals are reported, never asserted by a test), ``results_markdown`` assembles results.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from benchmark.stats import Summary

# The goals (issue 11; DESIGN.md §5), on 2 cores.
HTTP_P50_MS = 3.0
HTTP_P99_MS = 10.0
VS_MLFLOW = 2.0  # ours at least this many times faster than `mlflow models serve` (single row, p50, c=1)
IN_PROCESS_MS = 1.0
BATCH_ROWS_PER_S = 100_000
SAME_ANSWERS = 1e-6  # minutes, against the registered pipeline
# The goals of issue 12 (level 4): what prediction logging may cost, and the monitoring of a large window.
LOGGING_COST = 0.10  # throughput with logging on at most this much lower than with it off
MONITOR_ROWS = 1_000_000  # logged predictions in the monitored window
DRIFT_SECONDS = 10.0  # the drift report on the inputs of MONITOR_ROWS rows

SERVICE, MLFLOW, PIPELINE, FAST_PATH, VALIDATION = "service", "mlflow", "pipeline", "fast_path", "validation"


@dataclass
class PathResult:
    """One way of getting a prediction (or of validating trips), and what it measured."""

    name: str
    role: str  # SERVICE (ours, over HTTP), MLFLOW, PIPELINE, FAST_PATH or VALIDATION
    serving_path: str = ""  # what the path says it runs (a service's GET /model `serving_path`)
    c1: Summary | None = None  # single row, one call at a time
    c8: Summary | None = None  # single row, 8 concurrent connections
    batch: Summary | None = None  # 1000 rows a call
    max_diff: float | None = None  # largest |prediction - registered pipeline's| over the checked trips
    note: str = ""  # why something is missing ("not available: ...", "failed: ...")
    prediction_log: bool | None = None  # level 4: logging predictions (True) or not (False); None: no such switch
    logged: dict[str, float] | None = None  # its prediction log's figures after the runs (benchmark.servers)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in (self.c1, self.c8, self.batch) if s is not None)


@dataclass(frozen=True)
class LoggingRound:
    """One load of one level 4 service in the interleaved logging measurement (``benchmark.logging_cost``)."""

    what: str  # "single rows, c=8" or "1000-row batches"
    logging: bool
    rows_per_s: float
    cpu_ms: float | None  # the service's processor time per call (every thread), None where unreadable
    errors: int
    writer_ms: float | None = None  # logging on: the prediction log's writer thread's processor time per call


@dataclass
class LoggingCost:
    """Level 4's service with prediction logging on and off, measured interleaved, round by round."""

    rounds: int
    seconds: float
    samples: list[LoggingRound] = field(default_factory=list)
    logged: dict[str, float] | None = None  # the logging service's prediction-log figures at the end
    note: str = ""

    def median(self, what: str, logging: bool, attr: str = "rows_per_s") -> float | None:
        values = [getattr(s, attr) for s in self.samples if s.what == what and s.logging is logging]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def costs(self, what: str) -> list[float]:
        """Each round's 1 - throughput on / throughput off (0.05: logging cost 5 % in that round)."""
        on = [s.rows_per_s for s in self.samples if s.what == what and s.logging]
        off = [s.rows_per_s for s in self.samples if s.what == what and not s.logging]
        return [1 - a / b for a, b in zip(on, off, strict=False) if b]

    def cost(self, what: str) -> float | None:
        """The median of the rounds' costs: each round's pair was measured back to back, so a slow stretch of the
        machine falls on both."""
        costs = self.costs(what)
        return statistics.median(costs) if costs else None

    def spread(self, what: str) -> tuple[float, float] | None:
        """The middle half of the rounds' costs (first and third quartiles; None under four rounds): how far one
        round's figure can be trusted on this machine."""
        costs = self.costs(what)
        if len(costs) < 4:
            return None
        first, _, third = statistics.quantiles(costs, n=4)
        return first, third

    def kinds(self) -> list[str]:
        return list(dict.fromkeys(s.what for s in self.samples))

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.samples)


@dataclass(frozen=True)
class MonitorStep:
    what: str
    seconds: float
    rows: int
    note: str = ""
    drift: bool = False  # the drift report on the whole window: what the goal judges


@dataclass(frozen=True)
class MonitorRun:
    """Level 4's monitoring of a window of ``rows`` logged predictions, step by step (``benchmark.monitoring``)."""

    rows: int
    reference_rows: int
    steps: list[MonitorStep]
    note: str = ""  # why nothing was measured

    @property
    def drift(self) -> MonitorStep | None:
        return next((step for step in self.steps if step.drift), None)


@dataclass(frozen=True)
class LevelRun:
    level: str
    seconds: float | None
    status: str  # "ok", "failed (exit 2)", "skipped: ..."
    note: str = ""


@dataclass(frozen=True)
class Goal:
    goal: str
    subject: str
    measured: str
    ok: bool | None  # None: could not be measured in this run


def fmt_ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if value < 1:
        return f"{value:.3f}"
    if value < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def fmt_rate(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def fmt_diff(value: float | None) -> str:
    if value is None:
        return "—"
    return "0" if value == 0 else f"{value:.1e}"


HEADERS = (
    "path", "serving path", "c=1 p50 ms", "c=1 p99 ms", "c=8 p50 ms", "c=8 p99 ms", "c=8 req/s",
    "1000-row p50 ms", "1000-row rows/s", "max |Δ| min", "errors", "calls c=1/c=8/1000",
)  # fmt: skip


def path_rows(results: Iterable[PathResult]) -> list[list[str]]:
    """One table row per path; a path that could not be measured says why in its serving-path cell."""
    rows = []
    for r in results:

        def pick(summary: Summary | None, attr: str) -> float | None:
            return getattr(summary, attr) if summary is not None else None

        label = "; ".join(text for text in (short(r.serving_path), r.note, logged_text(r.logged)) if text)
        rows.append(
            [
                r.name,
                label or "—",
                fmt_ms(pick(r.c1, "p50_ms")),
                fmt_ms(pick(r.c1, "p99_ms")),
                fmt_ms(pick(r.c8, "p50_ms")),
                fmt_ms(pick(r.c8, "p99_ms")),
                fmt_rate(pick(r.c8, "calls_per_s")),
                fmt_ms(pick(r.batch, "p50_ms")),
                fmt_rate(pick(r.batch, "rows_per_s")),
                fmt_diff(r.max_diff),
                str(r.errors) if any((r.c1, r.c8, r.batch)) else "—",
                "/".join(str(s.ok + s.errors) if s else "—" for s in (r.c1, r.c8, r.batch)),
            ]
        )
    return rows


def logged_text(logged: Mapping[str, float] | None) -> str:
    """A logging service's figures after its runs: "logged 106k predictions, 0 dropped"."""
    if not logged:
        return ""
    text = f"logged {fmt_rate(logged['written'])} predictions, {fmt_rate(logged['dropped'])} dropped"
    return text + (f", {fmt_rate(logged['queued'])} still queued" if logged.get("queued") else "")


def short(serving_path: str) -> str:
    """A reported serving path without its details: "compiled (taxi.fast_path): max |difference| ..." ->
    "compiled (taxi.fast_path)" (results.md lists the full text)."""
    return serving_path.split(": ", 1)[0]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, markdown: bool = False) -> str:
    """A Markdown table, or the same aligned for a terminal (text left, numbers right)."""
    if markdown:
        numeric = [_numeric_column(rows, i) for i in range(len(headers))]
        rule = ["---:" if n else "---" for n in numeric]
        lines = [headers, rule, *rows]
        return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in lines)
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    numeric = [_numeric_column(rows, i) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])


def _numeric_column(rows: Sequence[Sequence[str]], i: int) -> bool:
    cells = [row[i] for row in rows if row[i] not in ("—", "")]
    return bool(cells) and all(_looks_numeric(c) for c in cells)


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell.rstrip("kM×"))
    except ValueError:
        return False
    return True


def evaluate_goals(
    results: Sequence[PathResult], monitoring: MonitorRun | None = None, logging: LoggingCost | None = None
) -> list[Goal]:
    """The issues' goals against this run: per service of ours, in-process, then level 4's (what logging costs:
    from the interleaved measurement when there is one; the monitoring of a large window). Unmeasured -> ok None."""
    goals: list[Goal] = []
    mlflow = next((r for r in results if r.role == MLFLOW and r.c1 is not None), None)
    for r in results:
        if r.role != SERVICE:
            continue
        p50, p99 = (r.c1.p50_ms, r.c1.p99_ms) if r.c1 else (None, None)
        goals.append(_at_most(f"single-row p50 ≤ {HTTP_P50_MS:g} ms (HTTP, c=1)", r.name, p50, HTTP_P50_MS, "ms"))
        goals.append(_at_most(f"single-row p99 ≤ {HTTP_P99_MS:g} ms (HTTP, c=1)", r.name, p99, HTTP_P99_MS, "ms"))
        goal = f"≥ {VS_MLFLOW:g}× faster than mlflow models serve (p50, c=1)"
        if p50 and mlflow is not None:
            ratio = mlflow.c1.p50_ms / p50
            goals.append(Goal(goal, r.name, f"{ratio:.1f}×", ratio >= VS_MLFLOW))
        else:
            goals.append(Goal(goal, r.name, "not measured", None))
        rate = r.batch.rows_per_s if r.batch else None
        goals.append(_at_least(f"batch of 1000 ≥ {fmt_rate(BATCH_ROWS_PER_S)} rows/s (HTTP)", r.name, rate))
        goals.append(_same_answers(r))
    fast = next((r for r in results if r.role == FAST_PATH and r.c1 is not None), None)
    pipeline = next((r for r in results if r.role == PIPELINE and r.c1 is not None), None)
    goal = f"in-process single-row ≤ {IN_PROCESS_MS:g} ms (p50)"
    if fast is not None:
        goals.append(_at_most(goal, fast.name, fast.c1.p50_ms, IN_PROCESS_MS, "ms"))
        goals.append(_same_answers(fast))
    elif pipeline is not None:
        measured = f"no fast path; {pipeline.name}: {fmt_ms(pipeline.c1.p50_ms)} ms"
        goals.append(Goal(goal, pipeline.name, measured, pipeline.c1.p50_ms <= IN_PROCESS_MS))
    else:
        goals.append(Goal(goal, "in-process", "not measured", None))
    goals += _interleaved_logging_goals(logging) if logging is not None else _logging_goals(results)
    if monitoring is not None:
        goals.append(_monitoring_goal(monitoring))
    return goals


def _logging_goals(results: Sequence[PathResult]) -> list[Goal]:
    """Level 4's throughput with prediction logging on against off (none when level 4 was not measured)."""
    on = next((r for r in results if r.prediction_log is True), None)
    off = next((r for r in results if r.prediction_log is False), None)
    if on is None and off is None:
        return []
    goals = []
    for what, attr, unit in (("single rows, c=8", "c8", "req/s"), ("1000-row batches", "batch", "rows/s")):
        goal = f"prediction logging costs ≤ {LOGGING_COST:.0%} of throughput ({what})"
        rates = [_rate(getattr(r, attr, None) if r else None, unit) for r in (on, off)]
        if None in rates or not rates[1]:
            goals.append(Goal(goal, "level 4 service", "not measured", None))
            continue
        cost = 1 - rates[0] / rates[1]
        measured = f"{cost:.0%} lower: {fmt_rate(rates[0])} on, {fmt_rate(rates[1])} off ({unit})"
        goals.append(Goal(goal, "level 4 service", measured, cost <= LOGGING_COST))
    return goals


LOGGING_KINDS = ("single rows, c=8", "1000-row batches")  # the loads of the interleaved logging measurement


def _unit(what: str) -> str:
    return "req/s" if what == LOGGING_KINDS[0] else "rows/s"


def _interleaved_logging_goals(run: LoggingCost) -> list[Goal]:
    """The same goals judged on the medians of the interleaved rounds (``benchmark.logging_cost``)."""
    goals = []
    for what in LOGGING_KINDS:
        goal = f"prediction logging costs ≤ {LOGGING_COST:.0%} of throughput ({what})"
        cost = run.cost(what)
        if cost is None:
            goals.append(Goal(goal, "level 4 service", run.note or "not measured", None))
            continue
        unit = _unit(what)
        on, off = run.median(what, True), run.median(what, False)
        measured = (
            f"{cost:.1%} lower (median of {run.rounds} interleaved rounds); {fmt_rate(on)} on, {fmt_rate(off)} off "
            f"({unit}, medians)"
        )
        goals.append(Goal(goal, "level 4 service", measured, cost <= LOGGING_COST))
    return goals


def logging_rows(run: LoggingCost) -> list[list[str]]:
    """Per kind of load: median throughput off and on, the cost, the service's processor time per call."""
    rows = []
    for what in run.kinds():
        unit = _unit(what)
        cpu = [run.median(what, logs, "cpu_ms") for logs in (False, True)]
        writer = run.median(what, True, "writer_ms")
        cost, spread = run.cost(what), run.spread(what)
        rows.append([
            what,
            f"{fmt_rate(run.median(what, False))} {unit}",
            f"{fmt_rate(run.median(what, True))} {unit}",
            (f"{cost:.1%}" if cost is not None else "—") + (f" ({spread[0]:.0%} … {spread[1]:.0%})" if spread else ""),
            " → ".join(f"{c:.3f}" if c is not None else "—" for c in cpu),
            f"{writer:.3f}" if writer is not None else "—",
        ])  # fmt: skip
    return rows


LOGGING_HEADERS = [
    "level 4 service", "logging off", "logging on", "cost (middle half of the rounds)",
    "service CPU ms/call (off → on)", "writer thread CPU ms/call",
]  # fmt: skip


def _rate(summary: Summary | None, unit: str) -> float | None:
    if summary is None or summary.ok == 0:
        return None
    return summary.rows_per_s if unit == "rows/s" else summary.calls_per_s


def _monitoring_goal(run: MonitorRun) -> Goal:
    goal = f"drift on the inputs of {fmt_rate(MONITOR_ROWS)} logged rows < {DRIFT_SECONDS:g} s"
    drift = run.drift
    if drift is None:
        return Goal(goal, "level4.monitor", run.note or "not measured", None)
    measured = f"{drift.seconds:.1f} s"
    if run.rows < MONITOR_ROWS:  # a quick run: too few rows to judge
        return Goal(goal, "level4.monitor", f"{measured} on {fmt_rate(run.rows)} rows only", None)
    return Goal(goal, "level4.monitor", measured, drift.seconds < DRIFT_SECONDS)


def monitoring_rows(run: MonitorRun) -> list[list[str]]:
    return [[step.what, f"{step.rows:,}", f"{step.seconds:.1f}", step.note] for step in run.steps]


def _at_most(goal: str, subject: str, value: float | None, limit: float, unit: str) -> Goal:
    if value is None or math.isnan(value):
        return Goal(goal, subject, "not measured", None)
    return Goal(goal, subject, f"{fmt_ms(value)} {unit}", value <= limit)


def _at_least(goal: str, subject: str, rate: float | None) -> Goal:
    if rate is None or math.isnan(rate):
        return Goal(goal, subject, "not measured", None)
    return Goal(goal, subject, f"{fmt_rate(rate)} rows/s", rate >= BATCH_ROWS_PER_S)


def _same_answers(r: PathResult) -> Goal:
    goal = f"same answers as the registered pipeline (≤ {SAME_ANSWERS:g} min)"
    if r.max_diff is None:
        return Goal(goal, r.name, "not measured", None)
    return Goal(goal, r.name, f"max |Δ| {fmt_diff(r.max_diff)}", r.max_diff <= SAME_ANSWERS)


def mark(ok: bool | None) -> str:
    return {True: "✓", False: "✗", None: "–"}[ok]


def goal_rows(goals: Iterable[Goal]) -> list[list[str]]:
    return [[g.goal, g.subject, g.measured, mark(g.ok)] for g in goals]


def level_rows(runs: Iterable[LevelRun]) -> list[list[str]]:
    return [
        [f"make level{r.level}", f"{r.seconds:.0f} s" if r.seconds is not None else "—", r.status, r.note or ""]
        for r in runs
    ]


def results_markdown(
    *,
    machine: Mapping[str, str],
    versions: Mapping[str, str],
    setup: Sequence[str],
    results: Sequence[PathResult],
    levels: Sequence[LevelRun],
    not_measured: Sequence[str],
    total_seconds: float,
    chart: str | None = "results.png",
    monitoring: MonitorRun | None = None,
    logging: LoggingCost | None = None,
) -> str:
    """results.md: when and where, the model and the load, the paths, level 4's logging cost and monitoring, the
    goals, the level wall times."""
    goals = evaluate_goals(results, monitoring, logging)
    met = sum(g.ok is True for g in goals)
    lines = [
        "# `make bench` results",
        "",
        f"Run {machine['date']} on commit {machine['commit']}; the whole run took {total_seconds / 60:.1f} min.",
        "",
        f"- machine: {machine['cores']} cores ({machine['usable_cores']} usable), {machine['cpu']}, "
        f"{machine['system']}; "
        f"1-minute load average {machine['load_at_start']} at the start, {machine.get('load_at_end', '?')} at the end "
        "(anything else running on the machine competes with what is measured)",
        "- versions: " + ", ".join(f"{name} {v}" for name, v in versions.items()),
        *(f"- {line}" for line in setup),
        "",
        "## Serving paths",
        "",
        render_table(HEADERS, path_rows(results), markdown=True),
        "",
        "c=N: N keep-alive connections sending one trip per request, back to back (in-process rows: one call",
        "at a time); p50/p99 are nearest-rank percentiles of the successful calls. 1000-row: a list of 1000 trips",
        "per request (in-process: a 1000-row frame; pydantic: a 1000-trip list). max |Δ|: the largest difference",
        "from the registered pipeline's prediction over the same 1000 trips, in minutes.",
        "",
        "What each service reported as its serving path (`GET /model`, key `serving_path`):",
        "",
        *(f"- {r.name}: {r.serving_path or 'nothing'}" for r in results if r.role == SERVICE),
        *_logging_lines(results),
        "",
        *_interleaved_lines(logging),
        *_monitoring_lines(monitoring),
        f"## Goals ({met} of {len(goals)} met in this run)",
        "",
        render_table(["goal", "path", "this run", "met"], goal_rows(goals), markdown=True),
        "",
        "## `make levelN` wall times",
        "",
    ]
    if levels:
        lines.append(render_table(["command", "wall time", "result", "note"], level_rows(levels), markdown=True))
    else:
        lines.append("Not run in this benchmark (LEVELS was empty).")
    if not_measured:
        lines += ["", "## Not measured", "", *(f"- {item}" for item in not_measured)]
    if chart:
        lines += ["", f"![single-row latency and batch throughput of every path]({chart})"]
    return "\n".join(lines) + "\n"


def _logging_lines(results: Sequence[PathResult]) -> list[str]:
    if not any(r.prediction_log is not None for r in results):
        return []
    return [
        "",
        "Level 4 is measured twice, the same service with prediction logging on (`LEVEL4_PREDICTION_LOG=true`, the",
        "default: every answered trip queued and written to a SQLite prediction store in the run's temp folder by",
        "the writer thread) and off (`false`: level 3's service, no store). What its log held once the writer had",
        "caught up is in the serving-path cell.",
    ]


def _interleaved_lines(run: LoggingCost | None) -> list[str]:
    if run is None:
        return []
    lines = ["## What prediction logging costs (level 4, interleaved)", ""]
    if not run.samples:
        return [*lines, f"Not measured: {run.note or 'no rounds ran'}.", ""]
    return [
        *lines,
        f"Both level 4 services up at once (logging on and off, the same model), loaded in turn for {run.seconds:g} s",
        f"each, {run.rounds} rounds in alternating order (`scripts/benchmark/logging_cost.py`). Cost: the median of",
        "the rounds' 1 - on/off (each pair measured back to back), and in brackets the middle half of the rounds;",
        "throughput and the service's processor time per call (from /proc, every thread: the writer's too): medians.",
        "The single runs in the table above swing by more than 10 % from one run to the next; this is the figure the",
        "goal is judged on. The writer thread's processor time per call (the service's /metrics:",
        "`taxi_prediction_log_writer_cpu_seconds_total`) is what logging adds beside queueing each request,",
        "measured without that noise.",
        "",
        render_table(LOGGING_HEADERS, logging_rows(run), markdown=True),
        "",
        f"The logging service {logged_text(run.logged)}; {run.errors} failed requests." if run.logged else "",
        "",
    ]


def _monitoring_lines(run: MonitorRun | None) -> list[str]:
    if run is None:
        return []
    lines = ["## Monitoring a large window (level 4)", ""]
    if not run.steps:
        return [*lines, f"Not measured: {run.note}.", ""]
    return [
        *lines,
        f"`level4.monitor` in this process on {run.rows:,} logged predictions against a reference of "
        f"{run.reference_rows:,} training trips (generated months; no feedback, so no performance report; see "
        "`scripts/benchmark/monitoring.py`). The last two rows are cheap wins measured here, not made in level 4.",
        "",
        render_table(["what", "rows", "seconds", "note"], monitoring_rows(run), markdown=True),
        "",
    ]


def readme_block(
    *,
    machine: Mapping[str, str],
    results: Sequence[PathResult],
    levels: Sequence[LevelRun],
    total_seconds: float,
    link: object,
    monitoring: MonitorRun | None = None,
    logging: LoggingCost | None = None,
) -> str:
    """The README's copy of the latest run: the paths table, level 4's logging cost and monitoring, the goals met,
    the level wall times."""
    goals = evaluate_goals(results, monitoring, logging)
    missed = sorted({g.goal for g in goals if g.ok is False})
    lines = [
        f"Latest run: {machine['date']}, commit {machine['commit']}, {machine['cores']} cores ({machine['cpu']}), "
        f"load average {machine['load_at_start']} at the start, {total_seconds / 60:.1f} min. Versions, setup, "
        f"the goals path by path and the chart: [{link}]({link}).",
        "",
        render_table(HEADERS, path_rows(results), markdown=True),
        "",
        *([_logging_text(logging), ""] if logging and logging.samples else []),
        *(
            [f"Monitoring (level 4, {monitoring.rows:,} logged rows): {_steps_text(monitoring)}.", ""]
            if monitoring and monitoring.steps
            else []
        ),
        f"Goals met in this run: {sum(g.ok is True for g in goals)} of {len(goals)}"
        + (f"; missed: {'; '.join(missed)}." if missed else "."),
    ]
    if levels:
        times = ", ".join(
            f"`make level{r.level}` {r.seconds:.0f} s" + ("" if r.status == "ok" else f" ({r.status})")
            if r.seconds is not None
            else f"`make level{r.level}` {r.status}"
            for r in levels
        )
        lines += ["", f"Wall times (fresh copy of the tree, after setup): {times}."]
    return "\n".join(lines)


def _logging_text(run: LoggingCost) -> str:
    parts = []
    for row in logging_rows(run):
        what, off, on, cost, cpu, writer = row
        parts.append(f"{what} {cost} lower ({on} on, {off} off; service CPU {cpu} ms a call, the writer's {writer})")
    return f"Prediction logging (level 4, {run.rounds} interleaved rounds, medians): {'; '.join(parts)}."


def _steps_text(run: MonitorRun) -> str:
    return "; ".join(f"{step.what} {step.seconds:.1f} s" for step in run.steps)


def one_line(r: PathResult) -> str:
    """A progress line for one measured path."""
    parts = []
    if r.c1 is not None:
        parts.append(f"1 row p50 {fmt_ms(r.c1.p50_ms)} / p99 {fmt_ms(r.c1.p99_ms)} ms")
    if r.c8 is not None:
        parts.append(f"c=8 p50 {fmt_ms(r.c8.p50_ms)} ms, {fmt_rate(r.c8.calls_per_s)} req/s")
    if r.batch is not None:
        parts.append(f"1000 rows p50 {fmt_ms(r.batch.p50_ms)} ms, {fmt_rate(r.batch.rows_per_s)} rows/s")
    if r.max_diff is not None:
        parts.append(f"max |Δ| {fmt_diff(r.max_diff)}")
    if any((r.c1, r.c8, r.batch)):
        parts.append(f"errors {r.errors}")
    if r.logged:
        parts.append(logged_text(r.logged))
    if r.serving_path:
        parts.append(f"serving path: {r.serving_path}")
    return f"{r.name}: " + "; ".join(parts or [r.note or "not measured"])
