"""What `make run` starts beside its own work (the story itself is `make run`'s, measured, not tested here): a
context manager entered in the background, and Prefect's server started first thing unless PREFECT_API_URL
names one."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from taxi.deployment.background import in_background
from taxi.pipeline.prefect_server import background_prefect_server


def test_a_manager_is_entered_in_another_thread_and_exited_when_the_block_ends():
    events: list[str] = []
    started = threading.Event()

    @contextmanager
    def slow_service():
        started.wait(5)  # entered only once the block runs: the block is not waiting for it
        events.append(f"enter in {threading.current_thread().name}")
        yield "http://127.0.0.1:1"
        events.append("exit")

    with in_background(slow_service()) as starting:
        events.append("the block runs")
        started.set()
        assert starting.result(timeout=5) == "http://127.0.0.1:1"
        assert events[-1].startswith("enter in background-start")
    assert events == ["the block runs", events[1], "exit"]


def test_a_start_that_fails_raises_where_its_result_is_asked_and_is_not_exited():
    exited = []

    @contextmanager
    def broken_service():
        raise RuntimeError("port 1 is already in use")
        yield  # pragma: no cover
        exited.append(True)  # pragma: no cover

    with pytest.raises(RuntimeError, match="already in use"), in_background(broken_service()) as starting:
        starting.result(timeout=5)
    assert exited == []


def test_a_prefect_server_named_by_prefect_api_url_is_used_and_nothing_is_started(monkeypatch, tmp_path):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    with background_prefect_server(tmp_path / ".prefect") as server:
        assert server is None
    assert not (tmp_path / ".prefect").exists()
