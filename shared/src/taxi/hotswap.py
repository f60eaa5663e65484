"""Hot swap: serve the model versions the registry wants, replacing them without a failed request.

    holder = ModelHolder(resolve, load, challenger_share=0.1, poll_interval=5.0)
    holder.poll(raise_on_error=True)     # the first load, before serving (a start-up failure is an error)
    app = taxi.serving.create_app(holder)  # the app starts and stops the poller with its lifespan

- ``resolve() -> {"champion": "7", "challenger": "8" or None}``: which version each variant should serve
  (the MLflow implementation reads registry aliases: ``taxi.registry_watch``).
- ``load(version) -> ServedModel``: loads one version (anything with ``predict`` and ``describe``).

**The swap.** The holder keeps one reference, ``holder.current``, to an immutable ``Deployment`` (the
champion, an optional challenger and its traffic share). A poll resolves the wanted versions, loads and
warms any version not already loaded (a few predictions on a sample trip, so the first request does not
pay for lazy initialisation), builds a new ``Deployment`` and only then assigns it to that reference: one
attribute assignment, atomic under the GIL. Loading happens in the poller thread (or the admin call's
worker thread), never on a request's path. A request reads ``holder.current`` once and uses that object
for the whole request, so it never mixes two versions, and a model being replaced finishes the requests
that already hold it. A version that is already loaded is reused (promoting the challenger to champion
loads nothing).

**Failures.** If resolving (registry unreachable, no champion) or loading/warming the champion fails, the
current deployment keeps serving and the error is recorded (``status()``, shown by ``/model`` and
``/metrics``: the last error, its stage and time, the failures in a row, the seconds since the last successful
poll) and logged as one line on the ``taxi.serving.hotswap`` logger (again only when the error changes; one
line again when polling recovers). A challenger that fails to load is not served: the champion answers all
traffic until it loads.

Each holder polls in its own thread: run several uvicorn workers and each worker polls for itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from taxi.inference import predict_frame
from taxi.routing import CHALLENGER, CHAMPION, variant_for
from taxi.trip import Trip, trips_to_frame

log = logging.getLogger("taxi.serving.hotswap")

Resolver = Callable[[], Mapping[str, str | int | None]]
Loader = Callable[[str], Any]  # version -> ServedModel (taxi.serving)
MAX_ERROR_CHARS = 500


class WarmUpError(RuntimeError):
    """A freshly loaded model did not give one finite prediction per trip of the warm-up frame."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded, warmed model and what it serves as: never changed after it is made."""

    model: Any  # a taxi.serving.ServedModel
    version: str
    variant: str = CHAMPION
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0
    alias: str | None = None

    def describe(self) -> dict[str, Any]:
        """The model's own description, with the version and variant it serves as."""
        info = dict(self.model.describe())
        info.update(version=self.version, variant=self.variant, loaded_at=_iso(self.loaded_at))
        if self.alias is not None:
            info["alias"] = self.alias
        return info


@dataclass(frozen=True)
class Deployment:
    """What answers requests: the champion, and optionally a challenger on a share of the traffic."""

    champion: LoadedModel
    challenger: LoadedModel | None = None
    challenger_share: float = 0.0

    def pick(self, routing_key: str) -> LoadedModel:
        """The model that answers a request with this routing key (``taxi.routing.variant_for``)."""
        if self.challenger is not None and variant_for(routing_key, self.challenger_share) == CHALLENGER:
            return self.challenger
        return self.champion

    def versions(self) -> dict[str, str | None]:
        return {
            CHAMPION: self.champion.version,
            CHALLENGER: self.challenger.version if self.challenger is not None else None,
        }


@dataclass(frozen=True)
class PollStatus:
    """What the polls did so far (replaced as a whole after each poll; times are Unix seconds)."""

    polls: int = 0
    last_poll_at: float | None = None
    last_poll_ok: bool | None = None
    last_success_at: float | None = None
    last_error: str | None = None  # the most recent failure, kept after a later success
    last_error_stage: str | None = None  # "resolve" or "load"
    last_error_at: float | None = None
    wanted: Mapping[str, str | None] = field(default_factory=dict)
    swaps: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys((CHAMPION, CHALLENGER), 0))
    failures: Mapping[str, int] = field(default_factory=lambda: {"resolve": 0, "load": 0})
    consecutive_failures: int = 0  # failed polls since the last successful one


def example_frame() -> pd.DataFrame:
    """One ordinary trip (the API's documented example), as the models read it: the default warm-up input."""
    example = Trip.model_json_schema()["examples"][0]
    return trips_to_frame([Trip.model_validate(example)])


class ModelHolder:
    """One reference to the current ``Deployment``, replaced atomically by ``poll`` (see module doc)."""

    def __init__(
        self,
        resolve: Resolver | None,
        load: Loader | None,
        *,
        challenger_share: float = 0.0,
        poll_interval: float | None = None,
        warm_frame: pd.DataFrame | None = None,
        warm_calls: int = 3,
        aliases: Mapping[str, str] | None = None,
    ):
        """``challenger_share`` (0..1) of the traffic goes to the challenger when ``resolve`` names one (0: the
        challenger is not loaded); ``poll_interval`` seconds between background polls (None: only on demand);
        ``aliases`` names the registry alias of each variant in ``/model``."""
        if not 0.0 <= challenger_share <= 1.0:
            raise ValueError(f"challenger_share must be between 0 and 1; got {challenger_share}")
        if poll_interval is not None and poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive seconds; got {poll_interval}")
        if (resolve is None) != (load is None):
            raise ValueError("give both resolve and load, or neither (a fixed model: ModelHolder.fixed)")
        self._resolve = resolve
        self._load = load
        self.challenger_share = challenger_share
        self.poll_interval = poll_interval
        self._warm_frame = warm_frame
        self._warm_calls = warm_calls
        self._aliases = dict(aliases or {})
        self._current: Deployment | None = None
        self._status = PollStatus()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def fixed(cls, model: Any, version: str | None = None) -> ModelHolder:
        """A holder that always serves ``model`` (levels without hot swap); ``poll`` does nothing."""
        holder = cls(None, None)
        version = version or str(model.describe().get("version", "unknown"))
        holder._current = Deployment(LoadedModel(model, version))
        return holder

    @property
    def current(self) -> Deployment | None:
        """The deployment serving now (None before the first successful load). Read it once per request."""
        return self._current

    @property
    def status(self) -> PollStatus:
        return self._status

    @property
    def reloadable(self) -> bool:
        """Whether ``poll`` can change what is served (False for ``ModelHolder.fixed``)."""
        return self._resolve is not None

    # ---- polling ----

    def poll(self, *, raise_on_error: bool = False) -> bool:
        """Resolve the wanted versions, load and warm what is new, swap; True when the deployment changed.

        A failure is recorded and logged, and the current deployment keeps serving. Nothing is raised
        unless ``raise_on_error`` (start-up), and then only when resolving or loading the champion fails
        (a challenger that fails to load is recorded, never raised). Polls run one at a time (the poller
        and the admin call share a lock); requests never wait for a poll.
        """
        if self._resolve is None or self._load is None:
            return False
        with self._poll_lock:
            started = time.time()
            try:
                wanted = self._wanted(self._resolve())
            except Exception as exc:
                self._record_failure(
                    "resolve", "resolving the versions to serve", exc, started, None, quiet=raise_on_error
                )
                if raise_on_error:
                    raise
                return False
            current = self._current
            loaded = {m.version: m for m in (current.champion, current.challenger) if m} if current else {}
            try:
                champion = self._obtain(wanted[CHAMPION], CHAMPION, loaded)
            except Exception as exc:
                what = f"loading champion v{wanted[CHAMPION]}"
                self._record_failure("load", what, exc, started, wanted, quiet=raise_on_error)
                if raise_on_error:
                    raise
                return False
            challenger, challenger_error = None, None
            version = wanted[CHALLENGER]
            if version is not None and version != champion.version and self.challenger_share > 0:
                try:
                    challenger = self._obtain(version, CHALLENGER, {**loaded, champion.version: champion})
                except Exception as exc:
                    challenger_error = exc
            deployment = Deployment(champion, challenger, self.challenger_share)
            changed = current is None or deployment.versions() != current.versions()
            if changed:
                self._current = deployment  # the swap: one reference assignment
                self._record_swap(current, deployment)
            if challenger_error is not None:
                what = f"loading challenger v{version} (the champion serves all traffic)"
                self._record_failure("load", what, challenger_error, started, wanted)
            else:
                self._record_success(started, wanted)
            return changed

    def start(self) -> None:
        """Poll every ``poll_interval`` seconds in a daemon thread (no-op without an interval, or if running)."""
        if not self.reloadable or self.poll_interval is None or (self._thread and self._thread.is_alive()):
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="model-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the poller thread (waits for a poll in progress, up to ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.poll_interval):
            try:
                self.poll()
            except Exception:  # poll records its own failures; this keeps the poller alive whatever happens
                log.exception("model poller: unexpected error")

    # ---- loading ----

    @staticmethod
    def _wanted(resolved: Mapping[str, str | int | None]) -> dict[str, str | None]:
        wanted = {variant: resolved.get(variant) for variant in (CHAMPION, CHALLENGER)}
        if wanted[CHAMPION] is None:
            raise LookupError("no champion version to serve")
        return {variant: None if v is None else str(v) for variant, v in wanted.items()}

    def _obtain(self, version: str, variant: str, loaded: Mapping[str, LoadedModel]) -> LoadedModel:
        alias = self._aliases.get(variant)
        if version in loaded:
            return replace(loaded[version], variant=variant, alias=alias)
        assert self._load is not None
        start = time.perf_counter()
        model = self._load(version)
        self._warm(model)
        return LoadedModel(model, version, variant, time.time(), round(time.perf_counter() - start, 3), alias)

    def _warm(self, model: Any) -> None:
        frame = self._warm_frame if self._warm_frame is not None else example_frame()
        for _ in range(self._warm_calls):
            predictions = predict_frame(model, frame)
            if predictions.shape != (len(frame),) or not np.isfinite(predictions).all():
                raise WarmUpError(f"warm-up predictions are not {len(frame)} finite numbers: {predictions[:5]}")

    # ---- status ----

    def _record_swap(self, before: Deployment | None, after: Deployment) -> None:
        old = before.versions() if before else dict.fromkeys((CHAMPION, CHALLENGER))
        new = after.versions()
        swaps = dict(self._status.swaps)
        for variant in (CHAMPION, CHALLENGER):
            if before is not None and old[variant] != new[variant]:
                swaps[variant] += 1
            if old[variant] != new[variant]:
                log.info("%s", _swap_text(variant, old[variant], new[variant], after))
        self._status = replace(self._status, swaps=swaps)

    def _record_success(self, started: float, wanted: Mapping[str, str | None]) -> None:
        if self._status.last_poll_ok is False:
            log.warning("model reload recovered: serving %s", _versions_text(self._current))
        self._status = replace(
            self._status,
            polls=self._status.polls + 1,
            last_poll_at=started,
            last_poll_ok=True,
            last_success_at=started,
            wanted=dict(wanted),
            consecutive_failures=0,
        )

    def _record_failure(
        self,
        stage: str,
        what: str,
        exc: Exception,
        started: float,
        wanted: Mapping[str, str | None] | None,
        quiet: bool = False,
    ) -> None:
        """Record a failed poll, and log it unless ``quiet`` (the error is raised to a caller that reports it)."""
        error = f"{what}: {type(exc).__name__}: {exc}".replace("\n", " ")[:MAX_ERROR_CHARS]
        if not quiet and (error != self._status.last_error or self._status.last_poll_ok is not False):
            if self._current is None:  # a service told to wait for its first champion (wait_for_champion)
                log.warning("no model to serve yet: %s; polling again", error)
            else:
                log.warning("model reload failed: %s; still serving %s", error, _versions_text(self._current))
        failures = dict(self._status.failures)
        failures[stage] += 1
        self._status = replace(
            self._status,
            polls=self._status.polls + 1,
            last_poll_at=started,
            last_poll_ok=False,
            last_error=error,
            last_error_stage=stage,
            last_error_at=started,
            wanted=dict(wanted) if wanted is not None else self._status.wanted,
            failures=failures,
            consecutive_failures=self._status.consecutive_failures + 1,
        )

    def describe_status(self) -> dict[str, Any]:
        """The polls' status for ``/model``: times as ISO 8601 UTC, versions wanted and served, counters."""
        s = self._status
        current = self._current
        return {
            "poll_interval_s": self.poll_interval,
            "polls": s.polls,
            "last_poll_at": _iso(s.last_poll_at),
            "last_poll_ok": s.last_poll_ok,
            "last_success_at": _iso(s.last_success_at),
            "seconds_since_last_success": None
            if s.last_success_at is None
            else round(time.time() - s.last_success_at, 3),
            "consecutive_failures": s.consecutive_failures,
            "last_error": s.last_error,
            "last_error_stage": s.last_error_stage,
            "last_error_at": _iso(s.last_error_at),
            "wanted": dict(s.wanted),
            "serving": current.versions() if current else {},
            "challenger_share": self.challenger_share,
            "swaps": dict(s.swaps),
            "reload_failures": dict(s.failures),
        }


def _swap_text(variant: str, old: str | None, new: str | None, after: Deployment) -> str:
    if new is None:
        return f"{variant} v{old} no longer served"
    model = after.champion if variant == CHAMPION else after.challenger
    loaded = f" (loaded and warmed in {model.load_seconds:.2f} s)" if model and model.load_seconds else ""
    share = f" on {after.challenger_share:.0%} of traffic" if variant == CHALLENGER else ""
    return f"{variant} v{new} now serving{share}" + (f", replacing v{old}" if old else "") + loaded


def _versions_text(deployment: Deployment | None) -> str:
    if deployment is None:
        return "nothing (no model loaded yet)"
    text = f"champion v{deployment.champion.version}"
    if deployment.challenger is not None:
        text += f", challenger v{deployment.challenger.version} on {deployment.challenger_share:.0%}"
    return text


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")
