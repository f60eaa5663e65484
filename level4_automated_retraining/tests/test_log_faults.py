"""A full disk under the prediction log, injected for real: the SQLite store lives on a small tmpfs mounted for the
test and filled to the last byte (SQLite: "database or disk is full"), or, where mounting is not allowed, SQLite's
own limit (``PRAGMA max_page_count`` at the database's current size: the same SQLITE_FULL from the same write
path). The service keeps answering, the dropped predictions are counted in ``/metrics``, nothing crashes, and
logging resumes once space is freed. The real app over HTTP on loopback."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, text

from level4.prediction_log import PredictionStore
from level4.service import create_app
from taxi.api_payloads import trip_payloads
from taxi.generator import generate_month
from taxi.serving import serve_in_thread

TRIPS, _ = trip_payloads(generate_month("2024-03", rows=400, seed=5))
DISK = "2m"  # the tmpfs: room for the store's first pages, not for 2,000 more predictions


class FullDisk:
    """A folder for the prediction store whose space can be used up and given back, for real.

    ``tmpfs``: a tmpfs of ``DISK`` mounted on the folder (needs root); ``fill`` writes a file until the kernel says
    ENOSPC, ``free`` deletes it. ``max_page_count`` (or a tmpfs that cannot be mounted): every connection of the
    store gets ``PRAGMA max_page_count`` = the database's size at ``fill`` (new connections: the pool is emptied),
    so SQLite refuses to grow it exactly as on a full disk; ``free`` lifts the limit."""

    def __init__(self, folder: Path, how: str):
        self.folder = folder
        folder.mkdir()
        self.mounted = False
        if how == "tmpfs":
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(folder)], check=False)
            self.mounted = done.returncode == 0
            if self.mounted:  # the store's folder is now that small disk
                stat = os.statvfs(folder)
                assert stat.f_blocks * stat.f_frsize <= 2 * 1024 * 1024, "the tmpfs is not the one mounted"
        self.how = "tmpfs" if self.mounted else "max_page_count"
        self.filler = folder / "filler"
        self.limit: int | None = None
        self.store: PredictionStore | None = None

    def attach(self, store: PredictionStore) -> PredictionStore:
        self.store = store
        if self.how == "max_page_count":
            event.listen(store.engine, "connect", self._limit)
        return store

    def _limit(self, connection, _record) -> None:
        if self.limit is not None:
            connection.execute(f"PRAGMA max_page_count = {self.limit}")

    def fill(self) -> None:
        assert self.store is not None
        if self.how == "tmpfs":
            size = 65536
            with self.filler.open("wb", buffering=0) as filler:
                while True:  # until not even one page fits
                    try:
                        filler.write(b"\0" * size)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC, exc
                        if size == 4096:
                            break
                        size //= 2
            return
        with self.store.engine.connect() as connection:
            self.limit = connection.execute(text("PRAGMA page_count")).scalar()
        self.store.engine.dispose()  # the next connection gets the limit

    def free(self) -> None:
        if self.how == "tmpfs":
            self.filler.unlink()
            return
        self.limit = None
        assert self.store is not None
        self.store.engine.dispose()

    def remove(self) -> None:
        if self.mounted and subprocess.run(["umount", str(self.folder)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(self.folder)], check=False)


@pytest.fixture(params=["tmpfs", "max_page_count"])
def disk(request, tmp_path) -> Iterator[FullDisk]:
    disk = FullDisk(tmp_path / "store", request.param)
    try:
        yield disk
    finally:
        disk.remove()


def metrics(client: httpx.Client) -> dict[str, float]:
    values = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def predict(client: httpx.Client, start: int, requests: int, size: int) -> int:
    """``requests`` batches of ``size`` trips; every one must be answered. Returns the trips answered."""
    for i in range(requests):
        at = (start + i * size) % (len(TRIPS) - size)
        response = client.post("/predict", json=TRIPS[at : at + size])
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == size
    return requests * size


def test_a_full_disk_costs_logged_predictions_never_answers(registry, disk, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="level4.prediction_log")
    store = disk.attach(PredictionStore(f"sqlite:///{disk.folder / 'predictions.db'}"))
    app = create_app(registry.settings_for(tmp_path), store=store)
    log = app.state.prediction_log
    log.retry_pause = 0.05  # the writer's pause before its one retry, and after a failed batch
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        before = predict(client, 0, 5, 2)  # the store works: these are written
        assert log.flush(timeout=30) and log.stats().written == before

        disk.fill()
        answered = predict(client, 10, 20, 100)  # 2,000 predictions the full disk cannot take
        assert log.flush(timeout=60)
        assert client.get("/health").status_code == 200
        full = metrics(client)
        stats = log.stats()
        assert (stats.written, stats.dropped["store_error"]) == (before, answered)  # none lost without a count
        assert stats.last_write_ok is False
        assert "database or disk is full" in stats.last_error
        assert full['taxi_prediction_log_dropped_total{reason="store_error"}'] == stats.dropped["store_error"]
        assert full["taxi_prediction_log_last_write_ok"] == 0 and full["taxi_prediction_log_queued"] == 0
        assert full.get('taxi_predict_requests_total{outcome="error",variant="champion",version="1"}', 0) == 0
        drops = [r.getMessage() for r in caplog.records if "dropping predictions (store_error" in r.getMessage()]
        assert drops and "database or disk is full" in drops[0] and "the service keeps answering" in drops[0]

        disk.free()
        written = stats.written
        after = predict(client, 30, 5, 10)
        assert log.flush(timeout=30)
        stats = log.stats()
        assert stats.written == written + after and stats.last_write_ok is True
        assert metrics(client)["taxi_prediction_log_last_write_ok"] == 1
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    with store.engine.connect() as connection:  # what was written is all there, the store is sound
        assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        trips = connection.execute(text("SELECT coalesce(sum(trips), 0) FROM prediction_batches")).scalar()
        assert trips == stats.written
