"""What prediction logging costs level 4's service, measured interleaved: both services up at once (logging on
and off, the same model), loaded in turn, round after round, in alternating order; the cost is the median of the
rounds' on/off (``report.LoggingCost.cost``).

One run of each service, one after the other, cannot judge a 10 % goal on a shared 2-core machine: the same
service measured twice in a row differs by that much (issue 12's notes: 1 % one evening, 21 % the next). Here
slow and fast stretches of the machine fall on both services alike, and the service's own processor time per
request (from /proc, where there is one) says where the difference comes from, whatever the client got. Even so,
single rounds swing by ±30 % on a shared virtual machine, so the report gives the middle half of the rounds beside
the median, and the writer thread's processor time per request (the service counts it on /metrics), which does
not swing with the machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmark import servers
from benchmark.load import run_load
from benchmark.measure import BATCH, SINGLE_TRIPS
from benchmark.model import BenchModel
from benchmark.report import LOGGING_KINDS, LoggingCost, LoggingRound

KINDS = tuple(zip(LOGGING_KINDS, (1, BATCH), (8, 1), strict=True))  # what is measured, rows a call, concurrency


@dataclass(frozen=True)
class Rounds:
    """How long the interleaved measurement takes: ``rounds`` x both services x both kinds x ``seconds``."""

    rounds: int = 11
    seconds: float = 3.0
    warmup_seconds: float = 2.0


QUICK_ROUNDS = Rounds(rounds=2, seconds=1.0, warmup_seconds=0.5)


def process_seconds(pid: int) -> float | None:
    """The processor time (user + system, every thread) process ``pid`` has used; None without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_logging_cost(
    on: servers.Server,
    off: servers.Server,
    model: BenchModel,
    workdir: Path,
    plan: Rounds,
    say: Callable[[str], None],
) -> LoggingCost:
    """Start ``on`` and ``off``, then load them in turn (see module doc); stop both."""
    bodies = {
        1: [servers.encode_trips([p]) for p in model.payloads[:SINGLE_TRIPS]],
        BATCH: [servers.encode_trips(model.payloads[:BATCH])],
    }
    result = LoggingCost(rounds=plan.rounds, seconds=plan.seconds)
    try:
        with ExitStack() as stack:
            started = {
                logs: stack.enter_context(servers.running_process(s, workdir)) for logs, s in ((True, on), (False, off))
            }
            for url, _ in started.values():
                for _, rows, concurrency in KINDS:
                    run_load(url, "/predict", bodies[rows], concurrency=concurrency, max_calls=10**6,
                             max_seconds=plan.warmup_seconds, rows_per_call=rows)  # fmt: skip
            for i in range(plan.rounds):
                order = (False, True) if i % 2 == 0 else (True, False)
                for what, rows, concurrency in KINDS:
                    for logs in order:
                        url, process = started[logs]
                        result.samples.append(_one(what, logs, url, process.pid, bodies[rows], rows, concurrency, plan))
                say(f"  round {i + 1}/{plan.rounds}: " + "; ".join(_round_text(result.samples[-4:])))
            result.logged = servers.prediction_log_figures(started[True][0])
    except (servers.ServerError, OSError) as exc:
        result.note = f"failed: {str(exc).splitlines()[0]}"
        say(f"  logging on vs off: FAILED: {exc}")
    return result


def _one(
    what: str, logs: bool, url: str, pid: int, bodies: Sequence[bytes], rows: int, concurrency: int, plan: Rounds
) -> LoggingRound:
    writer_before = servers.writer_cpu_seconds(url) if logs else None  # scraped outside the measured processor time
    before = process_seconds(pid)
    load = run_load(url, "/predict", bodies, concurrency=concurrency, max_calls=10**7, max_seconds=plan.seconds,
                    rows_per_call=rows)  # fmt: skip
    if logs:
        time.sleep(0.3)  # the writer's work for this round is counted in this round
    after, writer_after = process_seconds(pid), servers.writer_cpu_seconds(url) if logs else None
    summary = load.summary()
    return LoggingRound(
        what, logs, summary.rows_per_s, _per_call_ms(before, after, summary.ok), load.errors,
        _per_call_ms(writer_before, writer_after, summary.ok),
    )  # fmt: skip


def _per_call_ms(before: float | None, after: float | None, calls: int) -> float | None:
    return (after - before) / calls * 1000 if before is not None and after is not None and calls else None


def _round_text(samples: Sequence[LoggingRound]) -> list[str]:
    by_kind: dict[str, dict[bool, LoggingRound]] = {}
    for s in samples:
        by_kind.setdefault(s.what, {})[s.logging] = s
    return [
        f"{what}: logging on {pair[True].rows_per_s / pair[False].rows_per_s - 1:+.1%}"
        for what, pair in by_kind.items()
        if len(pair) == 2 and pair[False].rows_per_s
    ]
