"""A/B test of model performance: replay trips through the running service's split, join the truth afterwards.

    result = run_ab_test("http://127.0.0.1:8000", generate_month("2024-03"))
    print(result.to_text())      # per-variant n / RMSE / MAE, the RMSE difference with its CI, the verdict

**What is sent.** The trips the models are scored on (``taxi.model.served_trips``: 1-60 minutes, a distance
the API accepts) go to ``POST /predict`` with only the inputs a client has at pickup time; the true duration
(dropoff - pickup) never leaves this process and is joined to the predictions by trip afterwards. Requests
carry a routing key, so the service's own hash (``taxi.routing.variant_for``) decides which variant answers,
and every response says which variant and version did; predictions are attributed to the variant that
answered. Trips go in batches of ``batch_size`` that all reach the same variant (one routing key per
request), so a month replays in seconds; a failed request is counted, its trips left out.

**Design: paired by default.** The replay controls the traffic, so each trip is sent twice, with one
routing key the hash sends to the champion and one it sends to the challenger (``paired=True``). Both
models are then scored on the same trips, and the bootstrap resamples trips, recomputing both RMSEs on each
resample: the trip-to-trip spread of the error (most of it, the noise of the trips themselves) cancels in
the difference, so a paired test needs far fewer trips than two independent halves to reach a verdict.
A duration prediction does not change the trip, so answering it twice is harmless, unlike a live A/B test
of something users react to. ``paired=False`` is the classic split: each trip is sent once, with the key
``ab-<seed>-<trip>``, and reaches one variant (the challenger for its share of keys); the two groups are
independent samples, resampled independently.

**Verdict.** ``rmse_difference`` = RMSE(challenger) - RMSE(champion), in minutes, negative when the challenger
is better; the confidence interval is the percentile interval of ``n_boot`` bootstrap resamples at level
1 - ``alpha``. It lies below 0: "challenger better"; above 0: "challenger worse"; it contains 0: "inconclusive".
Two identical models in the paired design give a difference of exactly 0 on every resample: inconclusive.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from taxi.deployment.load import (
    MAX_REASON_CHARS,
    describe_error,
    new_client,
    read_deployment,
    routing_key,
    trip_payloads,
)
from taxi.model import duration_minutes, served_trips
from taxi.routing import CHALLENGER, CHAMPION, VARIANTS, variant_for
from taxi.serving import ROUTING_HEADER

BETTER, WORSE, INCONCLUSIVE = "challenger better", "challenger worse", "inconclusive"
BOOT_CELLS = 4_000_000  # resample indices held in memory at once (n_boot is drawn in chunks)


class ABTestError(RuntimeError):
    """The A/B test cannot be run or scored (no challenger served, too few trips answered by a variant)."""


@dataclass(frozen=True)
class VariantScore:
    variant: str
    version: str | None
    n: int
    rmse: float
    mae: float
    mean_prediction: float


@dataclass(frozen=True)
class ABResult:
    design: str  # "paired" or "split"
    champion: VariantScore
    challenger: VariantScore
    rmse_difference: float  # challenger - champion, minutes (negative: the challenger is better)
    ci_low: float
    ci_high: float
    mae_difference: float
    verdict: str
    alpha: float
    n_boot: int
    trips: int  # trips with a true duration that were sent
    dropped: int  # rows without a usable true duration or that the API would refuse: never sent
    failed_requests: int
    failed_trips: int
    first_failures: list[str]
    challenger_share: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        design = (
            "paired: every trip answered by both variants"
            if self.design == "paired"
            else f"split: each trip answered by one variant, challenger share {self.challenger_share:.0%}"
        )
        lines = [
            f"A/B test ({design}): {self.trips} trips with true durations "
            f"({self.dropped} rows dropped, {self.failed_requests} failed requests)",
            f"  {'variant':<11} {'version':>7} {'trips':>7} {'RMSE':>7} {'MAE':>7}",
        ]
        for s in (self.champion, self.challenger):
            lines.append(f"  {s.variant:<11} {s.version or '-':>7} {s.n:>7} {s.rmse:>7.3f} {s.mae:>7.3f}")
        kind = "paired" if self.design == "paired" else "independent"
        lines += [
            f"  RMSE challenger - champion: {self.rmse_difference:+.3f} min, "
            f"{1 - self.alpha:.0%} CI [{self.ci_low:+.3f}, {self.ci_high:+.3f}] "
            f"({kind} bootstrap, {self.n_boot} resamples)",
            f"  verdict: {self.verdict}",
        ]
        for reason in self.first_failures:
            lines.append(f"  failed: {reason}")
        return "\n".join(lines)


def true_durations(trips: pd.DataFrame) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Trips with dropoff times -> (request bodies, true minutes) for the trips that can be scored."""
    scored = served_trips(trips)
    payloads, kept = trip_payloads(scored)
    return payloads, duration_minutes(scored.loc[kept]).to_numpy(dtype="float64")


def run_ab_test(
    base_url: str,
    trips_with_truth: pd.DataFrame,
    *,
    paired: bool = True,
    share: float | None = None,
    seed: int = 42,
    n_boot: int = 2000,
    alpha: float = 0.05,
    batch_size: int = 50,
    concurrency: int = 4,
    timeout: float = 30.0,
    max_trips: int | None = None,
) -> ABResult:
    """Replay ``trips_with_truth`` through the service, score each variant, and decide (see module doc).

    ``share`` is the challenger's share the routing keys are chosen for (default: the one ``GET /model``
    reports, the service's own); ``max_trips`` samples that many trips (seeded) instead of all of them.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1; got {alpha}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100; got {n_boot}")
    base_url = base_url.rstrip("/")
    served = read_deployment(base_url, timeout=timeout)
    if served.challenger is None:
        raise ABTestError(f"no challenger is served (champion v{served.champion} answers everything): nothing to test")
    share = served.challenger_share if share is None else share
    if not 0 < share < 1:
        raise ABTestError(f"the challenger's share must be strictly between 0 and 1 to reach both; got {share}")

    payloads, truth = true_durations(trips_with_truth)
    dropped = len(trips_with_truth) - len(payloads)
    rng = np.random.default_rng(seed)
    if max_trips is not None and len(payloads) > max_trips:
        chosen = np.sort(rng.choice(len(payloads), size=max_trips, replace=False))
        payloads, truth = [payloads[i] for i in chosen], truth[chosen]
    if not payloads:
        raise ABTestError("no trip with a true duration of 1-60 minutes that the API accepts")

    batches = (
        _paired_batches(len(payloads), share, seed, batch_size)
        if paired
        else _split_batches(len(payloads), share, seed, batch_size)
    )
    replay = _replay(base_url, payloads, batches, concurrency, timeout)

    predicted, versions = replay["predictions"], replay["versions"]
    if paired:
        both = np.isfinite(predicted[CHAMPION]) & np.isfinite(predicted[CHALLENGER])
        masks = {CHAMPION: both, CHALLENGER: both}
    else:
        masks = {v: np.isfinite(predicted[v]) for v in VARIANTS}
    errors = {v: predicted[v][masks[v]] - truth[masks[v]] for v in VARIANTS}
    for v in VARIANTS:
        if len(errors[v]) < 2:
            raise ABTestError(
                f"the {v} answered {len(errors[v])} scorable trips: too few to score "
                f"({replay['failed_requests']} failed requests; first: {replay['first_failures'][:1]})"
            )
    scores = {
        v: VariantScore(
            v,
            ",".join(sorted(versions[v])) or None,
            len(errors[v]),
            _rmse(errors[v]),
            float(np.mean(np.abs(errors[v]))),
            float(np.mean(predicted[v][masks[v]])),
        )
        for v in VARIANTS
    }
    squared = {v: errors[v] ** 2 for v in VARIANTS}
    boots = _bootstrap(squared[CHAMPION], squared[CHALLENGER], paired, n_boot, rng)
    ci_low, ci_high = (float(x) for x in np.quantile(boots, [alpha / 2, 1 - alpha / 2]))
    verdict = BETTER if ci_high < 0 else WORSE if ci_low > 0 else INCONCLUSIVE
    return ABResult(
        design="paired" if paired else "split",
        champion=scores[CHAMPION],
        challenger=scores[CHALLENGER],
        rmse_difference=scores[CHALLENGER].rmse - scores[CHAMPION].rmse,
        ci_low=ci_low,
        ci_high=ci_high,
        mae_difference=scores[CHALLENGER].mae - scores[CHAMPION].mae,
        verdict=verdict,
        alpha=alpha,
        n_boot=n_boot,
        trips=len(payloads),
        dropped=dropped,
        failed_requests=replay["failed_requests"],
        failed_trips=replay["failed_trips"],
        first_failures=replay["first_failures"],
        challenger_share=share,
        seed=seed,
    )


def _rmse(errors: np.ndarray) -> float:
    return float(np.sqrt(np.mean(errors**2)))


def _chunks(indices: list[int] | np.ndarray, size: int) -> list[list[int]]:
    indices = list(indices)
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def _paired_batches(n: int, share: float, seed: int, size: int) -> list[tuple[str, str, list[int]]]:
    """Every trip to both variants: per variant, batches with a routing key the hash sends to that variant."""
    per_variant = {
        v: [(v, routing_key(v, share, f"ab-{seed}-{v}-{b}"), chunk) for b, chunk in enumerate(_chunks(range(n), size))]
        for v in VARIANTS
    }
    # interleave the two variants' batches, so both are served under the same conditions
    return [batch for pair in zip(per_variant[CHAMPION], per_variant[CHALLENGER], strict=True) for batch in pair]


def _split_batches(n: int, share: float, seed: int, size: int) -> list[tuple[str, str, list[int]]]:
    """Each trip to the variant its own key ``ab-<seed>-<trip>`` reaches; a batch carries its first trip's key."""
    keys = [f"ab-{seed}-{i}" for i in range(n)]
    groups: dict[str, list[int]] = {v: [] for v in VARIANTS}
    for i, key in enumerate(keys):
        groups[variant_for(key, share)].append(i)
    batches = [(v, keys[chunk[0]], chunk) for v in VARIANTS for chunk in _chunks(groups[v], size)]
    order = np.argsort([chunk[0] for _, _, chunk in batches], kind="stable")  # replay order: trip order
    return [batches[i] for i in order]


def _replay(
    base_url: str,
    payloads: list[dict[str, Any]],
    batches: list[tuple[str, str, list[int]]],
    concurrency: int,
    timeout: float,
) -> dict[str, Any]:
    predictions = {v: np.full(len(payloads), np.nan) for v in VARIANTS}
    versions: dict[str, set[str]] = {v: set() for v in VARIANTS}
    failures: list[str] = []
    failed_requests = failed_trips = 0
    lock = threading.Lock()
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    for batch in batches:
        jobs.put(batch)

    def client() -> None:
        nonlocal failed_requests, failed_trips
        http = new_client(base_url, timeout)
        try:
            while True:
                try:
                    _, key, trips = jobs.get_nowait()
                except queue.Empty:
                    return
                error, variant, version, values = None, CHAMPION, "", np.empty(0)
                try:
                    response = http.post("/predict", json=[payloads[i] for i in trips], headers={ROUTING_HEADER: key})
                    if response.status_code != 200:
                        error = f"HTTP {response.status_code}: {response.text}"
                    else:
                        answer = response.json()
                        variant = answer.get("variant") or CHAMPION  # who answered, whatever the key meant
                        values = np.asarray(answer["predictions"], dtype="float64")
                        version = str(answer["model_version"])
                        if values.shape != (len(trips),) or variant not in predictions:
                            error = f"{len(trips)} trips sent; a 200 from {variant!r} with {values.size} predictions"
                except Exception as exc:  # transport error, unreadable body: the batch failed
                    error = describe_error(exc)
                if error is not None:  # after a failure the server may drop the connection: start a fresh one
                    http.close()
                    http = new_client(base_url, timeout)
                with lock:
                    if error is not None:
                        failed_requests, failed_trips = failed_requests + 1, failed_trips + len(trips)
                        if len(failures) < 3:
                            failures.append(error[:MAX_REASON_CHARS])
                        continue
                    predictions[variant][trips] = values
                    versions[variant].add(version)
        finally:
            http.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(max(1, concurrency))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "predictions": predictions,
        "versions": versions,
        "failed_requests": failed_requests,
        "failed_trips": failed_trips,
        "first_failures": failures,
    }


def _bootstrap(
    champion_sq: np.ndarray, challenger_sq: np.ndarray, paired: bool, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_boot`` bootstrap draws of RMSE(challenger) - RMSE(champion) from squared errors.

    Paired: the same resampled trips for both (the arrays are aligned by trip). Independent: each group
    resampled on its own.
    """
    out = np.empty(n_boot)
    biggest = max(len(champion_sq), len(challenger_sq))
    step = max(1, BOOT_CELLS // biggest)
    for start in range(0, n_boot, step):
        k = min(step, n_boot - start)
        if paired:
            idx = rng.integers(0, len(champion_sq), size=(k, len(champion_sq)))
            a, b = champion_sq[idx], challenger_sq[idx]
        else:
            a = champion_sq[rng.integers(0, len(champion_sq), size=(k, len(champion_sq)))]
            b = challenger_sq[rng.integers(0, len(challenger_sq), size=(k, len(challenger_sq)))]
        out[start : start + k] = np.sqrt(b.mean(axis=1)) - np.sqrt(a.mean(axis=1))
    return out
