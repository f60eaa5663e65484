"""Canary: send a bounded amount of live traffic through the service's split and compare the two variants.

    result = run_canary("http://127.0.0.1:8000", trips, CanaryConfig(requests_per_variant=200))
    if not result.passed:
        print(result.reason)     # names each failing check with its figures; the flow rolls back

**Method: paired requests through the real split.** The service routes a request by a SHA-256 hash of its
``X-Routing-Key`` (``taxi.routing.variant_for``). The canary reads the challenger's share from ``GET /model``
and, for each sampled trip, picks two routing keys: one the hash sends to the champion and one it sends to
the challenger. Every trip is therefore answered by **both** variants, through the same routing code live
traffic takes (nothing is bypassed), and the two variants are compared on *the same trips*, not on two
random halves of the traffic. That matters for the prediction shift: with a plain split the two variants
see different trips, and the PSI between their predictions mixes model change with sampling noise (PSI is
biased upwards by about (bins - 1) / n per side); sent twice, any difference is the model's. The two
requests of a pair go out back to back, in alternating order, from ``concurrency`` client threads, so both
variants are timed under the same load. A response says which variant answered (``variant``); a 200 is
counted for the variant that answered (a mismatch with the key's variant, e.g. the challenger was removed
mid-canary, is counted as ``misrouted``). A failed request (non-200, transport error, timeout) has no body
to say who failed, so it is counted for the variant its key routes to, by the same hash the service uses.
After a failed request the client opens a fresh connection: when a model raises, the service answers 500 and
then drops the keep-alive connection (uvicorn closes it after the app's exception), and the *next* request
on it, whichever variant it is for, would fail with a transport error and be blamed on the wrong variant.

**Checks** (all are evaluated; the reason names every failing one with its figures):
1. ``error_rate``: the challenger's failed share of its requests <= ``max_error_rate``.
2. ``traffic``: each variant answered at least ``min_ok_per_variant`` requests with a 200 (fewer: not enough
   evidence, a fail; no challenger answering at all: a fail that says so).
3. ``latency``: challenger p95 <= ``max_p95_ratio`` x champion p95 + ``p95_slack_ms`` (client-side wall time of
   the successful requests; the slack keeps a few milliseconds of jitter on a busy machine from deciding).
4. ``prediction_shift`` over the trips both variants answered: PSI of the challenger's predictions against
   the champion's over fixed bins (the service's ``taxi_prediction_minutes`` histogram buckets, so the same
   figure can be read off ``/metrics``) <= ``max_psi``, and/or the relative shift of the mean prediction
   |mean_challenger / mean_champion - 1| <= ``max_mean_shift`` (either limit may be None, not both).

No challenger served (``GET /model`` shows none, or a share of 0) fails at once, sending nothing; a share of
1 leaves no champion traffic to compare with and fails too. A service that cannot be reached fails the
canary with the error as the reason (the flow keeps the champion).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from taxi.deployment.load import (
    MAX_REASON_CHARS,
    ServiceUnavailable,
    describe_error,
    new_client,
    percentile_ms,
    read_deployment,
    routing_key,
    trip_payloads,
)
from taxi.routing import CHALLENGER, CHAMPION, VARIANTS
from taxi.service_metrics import MINUTES_BUCKETS
from taxi.serving import ROUTING_HEADER

PSI_PSEUDOCOUNT = 0.5  # added to every bin of both sides: an empty bin gives a finite term, small samples less noise


class CanaryConfig(BaseModel):
    """How much traffic the canary sends and the limits the challenger must stay within."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_variant: int = Field(200, ge=1, description="trips sampled; each is sent once to each variant")
    min_ok_per_variant: int = Field(50, ge=1, description="fewer successful answers from a variant: fail")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="challenger's failed share of its requests")
    max_p95_ratio: float = Field(1.5, gt=0, description="challenger p95 / champion p95 latency")
    p95_slack_ms: float = Field(5.0, ge=0, description="milliseconds of p95 jitter tolerated beyond the ratio")
    max_psi: float | None = Field(0.2, ge=0, description="PSI of challenger vs champion predictions (None: off)")
    max_mean_shift: float | None = Field(0.15, ge=0, description="|relative shift of the mean prediction|")
    concurrency: int = Field(4, ge=1, description="client threads")
    timeout: float = Field(10.0, gt=0, description="seconds per request (a timeout is a failed request)")
    seed: int = Field(0, description="which trips are sampled")
    key_prefix: str = Field("canary", min_length=1, description="routing keys are <prefix>-<trip>-<variant>-<j>")

    @model_validator(mode="after")
    def _consistent(self) -> CanaryConfig:
        if self.min_ok_per_variant > self.requests_per_variant:
            raise ValueError(
                f"min_ok_per_variant ({self.min_ok_per_variant}) exceeds requests_per_variant "
                f"({self.requests_per_variant})"
            )
        if self.max_psi is None and self.max_mean_shift is None:
            raise ValueError("give max_psi, max_mean_shift or both: the prediction shift must be checked")
        return self


@dataclass(frozen=True)
class CanaryCheck:
    name: str
    passed: bool | None  # None: could not be evaluated (another check says why)
    detail: str


@dataclass(frozen=True)
class CanaryResult:
    passed: bool
    reason: str
    figures: dict[str, Any]
    checks: list[CanaryCheck] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reason": self.reason, "checks": [asdict(c) for c in self.checks],
                "figures": self.figures}  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        lines = [f"canary {'PASSED' if self.passed else 'FAILED'}: {self.reason}"]
        marks = {True: "ok  ", False: "FAIL", None: "-   "}
        lines += [f"  {marks[c.passed]} {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)


@dataclass
class _Answer:
    trip: int
    intended: str
    seconds: float
    ok: bool
    variant: str | None = None  # who answered (a 200)
    version: str | None = None
    prediction: float | None = None
    error: str | None = None


def psi(expected: np.ndarray, actual: np.ndarray, bounds: tuple[float, ...] = MINUTES_BUCKETS) -> float:
    """Population stability index of ``actual`` against ``expected``: sum over the bins ``(-inf, b0], (b0, b1], ...,
    (bn, inf)`` of (q - p) * ln(q / p), p and q the two sides' shares of each bin.

    Each bin's count gets ``PSI_PSEUDOCOUNT`` (additive smoothing): a bin empty on one side would otherwise make
    the PSI infinite, or as large as a floor makes it, from a single trip; with a few hundred requests the
    smoothing keeps the usual thresholds (0.1 watch, 0.2-0.25 act) meaningful.
    """
    edges = np.asarray(bounds, dtype="float64")
    shares = []
    for values in (expected, actual):
        counts = np.bincount(np.searchsorted(edges, np.asarray(values, dtype="float64")), minlength=len(edges) + 1)
        counts = counts + PSI_PSEUDOCOUNT
        shares.append(counts / counts.sum())
    p, q = shares
    return float(np.sum((q - p) * np.log(q / p)))


def run_canary(base_url: str, trips: pd.DataFrame, config: CanaryConfig | None = None) -> CanaryResult:
    """Send ``config.requests_per_variant`` trips to each variant and check the challenger (see module doc)."""
    config = config or CanaryConfig()
    base_url = base_url.rstrip("/")
    try:
        served = read_deployment(base_url, timeout=config.timeout)
    except ServiceUnavailable as exc:
        return CanaryResult(False, f"cannot run the canary: {exc}", {})
    figures: dict[str, Any] = {
        "champion_version": served.champion,
        "challenger_version": served.challenger,
        "challenger_share": served.challenger_share,
    }
    if served.challenger is None or served.challenger_share <= 0:
        reason = f"no challenger is served (GET /model: champion v{served.champion}, no challenger on any traffic)"
        return CanaryResult(False, reason, figures)
    if served.challenger_share >= 1:
        reason = "the challenger gets 100% of the traffic: no champion traffic to compare it with"
        return CanaryResult(False, reason, figures)

    payloads, _ = trip_payloads(trips)
    if not payloads:
        raise ValueError("no trip the API would accept: nothing to send")
    n = config.requests_per_variant
    rng = np.random.default_rng(config.seed)
    sample = rng.choice(len(payloads), size=n, replace=len(payloads) < n)
    keys = {
        (i, variant): routing_key(variant, served.challenger_share, f"{config.key_prefix}-{i}-{variant}")
        for i in range(n)
        for variant in VARIANTS
    }
    answers = _send_pairs(base_url, [payloads[j] for j in sample], keys, config)
    figures["trips"] = n
    checks = _evaluate(answers, n, config, figures)
    failed = [c for c in checks if c.passed is not True]
    versions = f"challenger v{served.challenger} vs champion v{served.champion}"
    if failed:
        named = [c for c in failed if c.passed is False] or failed
        reason = f"{versions}: " + "; ".join(f"{c.name}: {c.detail}" for c in named)
    else:
        reason = f"{versions}: " + "; ".join(f"{c.name}: {c.detail}" for c in checks)
    return CanaryResult(not failed, reason, figures, checks)


def _send_pairs(
    base_url: str, bodies: list[dict[str, Any]], keys: dict[tuple[int, str], str], config: CanaryConfig
) -> list[_Answer]:
    answers: list[_Answer] = []
    lock = threading.Lock()

    def client(part: int) -> None:
        mine: list[_Answer] = []
        http = new_client(base_url, config.timeout)
        try:
            for i in range(part, len(bodies), config.concurrency):
                order = VARIANTS if i % 2 == 0 else VARIANTS[::-1]  # alternate who goes first
                for variant in order:
                    answer = _ask(http, i, variant, bodies[i], keys[i, variant])
                    mine.append(answer)
                    if not answer.ok:  # the server may drop this connection: never blame the next request on it
                        http.close()
                        http = new_client(base_url, config.timeout)
        finally:
            http.close()
        with lock:
            answers.extend(mine)

    threads = [threading.Thread(target=client, args=(p,), daemon=True) for p in range(config.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def _ask(http: httpx.Client, i: int, variant: str, body: dict[str, Any], key: str) -> _Answer:
    start = time.perf_counter()
    try:
        response = http.post("/predict", json=body, headers={ROUTING_HEADER: key})
        seconds = time.perf_counter() - start
        if response.status_code != 200:
            error = f"HTTP {response.status_code}: {response.text}"[:MAX_REASON_CHARS]
            return _Answer(i, variant, seconds, False, error=error)
        answer = response.json()
        predictions = answer.get("predictions") or []
        if len(predictions) != 1 or not np.isfinite(predictions[0]):
            return _Answer(i, variant, seconds, False, error=f"a 200 without one finite prediction: {answer}")
        return _Answer(
            i, variant, seconds, True, answer.get("variant") or CHAMPION, str(answer["model_version"]), predictions[0]
        )
    except Exception as exc:  # transport error or an unreadable body: a failed request
        return _Answer(i, variant, time.perf_counter() - start, False, error=describe_error(exc))


def _evaluate(answers: list[_Answer], n: int, config: CanaryConfig, figures: dict[str, Any]) -> list[CanaryCheck]:
    stats: dict[str, dict[str, Any]] = {}
    predictions: dict[str, dict[int, float]] = {v: {} for v in VARIANTS}
    for variant in VARIANTS:
        ok = [a for a in answers if a.ok and a.variant == variant]
        errors = [a for a in answers if not a.ok and a.intended == variant]
        requests = len(ok) + len(errors)
        for a in ok:
            predictions[variant][a.trip] = float(a.prediction)  # type: ignore[arg-type]
        stats[variant] = {
            "requests": requests,
            "ok": len(ok),
            "errors": len(errors),
            "error_rate": round(len(errors) / requests, 4) if requests else None,
            "p50_ms": percentile_ms([a.seconds for a in ok], 50),
            "p95_ms": percentile_ms([a.seconds for a in ok], 95),
            "mean_prediction": round(float(np.mean(list(predictions[variant].values()))), 3) if ok else None,
            "versions": sorted({a.version for a in ok}),  # type: ignore[type-var]
            "first_errors": [a.error for a in errors[:3]],
        }
    figures.update(stats)
    figures["misrouted"] = sum(1 for a in answers if a.ok and a.variant != a.intended)
    champion, challenger = stats[CHAMPION], stats[CHALLENGER]
    return [
        _error_rate_check(champion, challenger, config),
        _traffic_check(champion, challenger, n, config, figures["misrouted"]),
        _latency_check(champion, challenger, config, figures),
        _shift_check(predictions, config, figures),
    ]


def _error_rate_check(champion: dict, challenger: dict, config: CanaryConfig) -> CanaryCheck:
    rate = challenger["error_rate"]
    if rate is None:
        return CanaryCheck("error_rate", None, "no request reached the challenger")
    detail = (
        f"challenger {rate:.1%} of {challenger['requests']} requests failed (limit {config.max_error_rate:.1%}; "
        f"champion {champion['error_rate'] or 0:.1%} of {champion['requests']})"
    )
    if challenger["first_errors"]:
        detail += f", first: {challenger['first_errors'][0]}"
    return CanaryCheck("error_rate", rate <= config.max_error_rate, detail)


def _traffic_check(champion: dict, challenger: dict, n: int, config: CanaryConfig, misrouted: int) -> CanaryCheck:
    low = [
        f"{name} answered {s['ok']} of {n} requests routed to it"
        for name, s in ((CHALLENGER, challenger), (CHAMPION, champion))
        if s["ok"] < config.min_ok_per_variant
    ]
    if challenger["ok"] == 0 and not challenger["errors"]:
        return CanaryCheck(
            "traffic", False, f"no challenger answered: all {misrouted} requests routed to it got the champion"
        )
    if low:
        return CanaryCheck("traffic", False, ", ".join(low) + f" (minimum {config.min_ok_per_variant} each)")
    detail = (
        f"{challenger['ok']} challenger and {champion['ok']} champion answers (minimum {config.min_ok_per_variant})"
    )
    return CanaryCheck("traffic", True, detail)


def _latency_check(champion: dict, challenger: dict, config: CanaryConfig, figures: dict[str, Any]) -> CanaryCheck:
    if challenger["p95_ms"] is None or champion["p95_ms"] is None:
        return CanaryCheck("latency", None, "no successful answers to time from both variants")
    ratio = challenger["p95_ms"] / champion["p95_ms"] if champion["p95_ms"] > 0 else float("inf")
    figures["p95_ratio"] = round(ratio, 3)
    limit = config.max_p95_ratio * champion["p95_ms"] + config.p95_slack_ms
    detail = (
        f"p95 challenger {challenger['p95_ms']:.1f} ms vs champion {champion['p95_ms']:.1f} ms (x{ratio:.2f}; "
        f"limit x{config.max_p95_ratio:g} + {config.p95_slack_ms:g} ms = {limit:.1f} ms)"
    )
    return CanaryCheck("latency", challenger["p95_ms"] <= limit, detail)


def _shift_check(
    predictions: dict[str, dict[int, float]], config: CanaryConfig, figures: dict[str, Any]
) -> CanaryCheck:
    both = sorted(set(predictions[CHAMPION]) & set(predictions[CHALLENGER]))
    figures["paired_trips"] = len(both)
    if not both:
        return CanaryCheck("prediction_shift", None, "no trip was answered by both variants")
    base = np.array([predictions[CHAMPION][i] for i in both])
    new = np.array([predictions[CHALLENGER][i] for i in both])
    value = psi(base, new)
    mean_shift = float(new.mean() / base.mean() - 1) if base.mean() != 0 else float("inf")
    figures.update(
        psi=round(value, 4),
        mean_shift=round(mean_shift, 4),
        mean_abs_difference_min=round(float(np.mean(np.abs(new - base))), 3),
    )
    parts, passed = [], True
    if config.max_psi is not None:
        parts.append(f"PSI {value:.3f} (limit {config.max_psi:g})")
        passed &= value <= config.max_psi
    if config.max_mean_shift is not None:
        parts.append(
            f"mean {new.mean():.2f} vs {base.mean():.2f} min ({mean_shift:+.1%}, limit ±{config.max_mean_shift:.0%})"
        )
        passed &= abs(mean_shift) <= config.max_mean_shift
    return CanaryCheck("prediction_shift", bool(passed), ", ".join(parts) + f" over {len(both)} trips sent to both")
