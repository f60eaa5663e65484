"""Calling a served model: its compiled fast path when it has one, else the pipeline with small inputs on
one OpenMP thread (extra: ``taxi-shared[serving]``).

``predict_trips(model, trips)`` is what a service answers with: a model that carries a ``fast_path``
(``taxi.fast_path.FastTripModel``, compiled and checked when the model was loaded) predicts the validated
trips directly, without building a DataFrame; any other model gets ``predict_frame`` on ``trips_to_frame``.

HistGradientBoosting predicts with an OpenMP thread pool. For a handful of rows the pool's start-up and
synchronisation cost dominates, and under CPU contention (several requests at once on two cores) a
single-row prediction gets many times slower. ``predict_frame`` therefore limits OpenMP to one thread,
in the calling thread only, for inputs of at most ``SINGLE_THREAD_MAX_ROWS`` rows; larger batches keep
the pool. libgomp keeps the thread count per calling thread, so concurrent requests do not affect each
other, and the limit is restored when the call returns.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from taxi.trip import Trip, trips_to_frame

SINGLE_THREAD_MAX_ROWS = 64

_controller: ThreadpoolController | None = None
_controller_lock = threading.Lock()


class Predictor(Protocol):
    def predict(self, frame: pd.DataFrame) -> Any: ...


def _threadpools() -> ThreadpoolController:
    """One controller per process, made on first use (inspecting the loaded libraries costs milliseconds;
    limiting through an existing controller costs microseconds)."""
    global _controller
    if _controller is None:
        with _controller_lock:
            if _controller is None:
                _controller = ThreadpoolController()
    return _controller


def predict_frame(model: Predictor, frame: pd.DataFrame) -> np.ndarray:
    """``model.predict(frame)`` as float64, on one OpenMP thread when the frame is small."""
    if len(frame) <= SINGLE_THREAD_MAX_ROWS:
        with _threadpools().limit(limits=1, user_api="openmp"):
            return np.asarray(model.predict(frame), dtype="float64")
    return np.asarray(model.predict(frame), dtype="float64")


def fast_path_of(model: Any) -> Any | None:
    """The model's compiled fast path (``taxi.fast_path.FastTripModel``), or None."""
    return getattr(model, "fast_path", None)


def predict_trips(model: Any, trips: Sequence[Trip]) -> np.ndarray:
    """The model's predictions for validated trips, in minutes: through its fast path when it has one."""
    fast = fast_path_of(model)
    if fast is not None:
        return fast.predict_trips(trips)
    return predict_frame(model, trips_to_frame(trips))
