"""A service run as a separate process (``taxi.service_process``): started at once and waited for when needed,
stopped by its PID; a busy port, a process that exits or one that never answers is a ServiceStartError."""

from __future__ import annotations

import socket
import sys

import pytest

from taxi.service_process import ServiceStartError, service_process, started_service
from taxi.smoke import port_in_use


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slow_server(port: int, delay: float) -> list[str]:
    """A static file server (GET /health serves the file ``health``: ``{}``) that starts listening after ``delay``."""
    code = (
        f"import time, runpy, sys; time.sleep({delay}); sys.argv = ['http.server', '--bind', '127.0.0.1', '{port}']; "
    )
    code += "runpy.run_module('http.server', run_name='__main__')"
    return [sys.executable, "-c", code]


def test_a_started_service_is_waited_for_when_needed_and_stopped_by_its_pid(tmp_path):
    (tmp_path / "health").write_text("{}")
    port = free_port()
    with started_service(slow_server(port, 1.0), port, log_path=tmp_path / "serve.log", cwd=tmp_path) as service:
        assert not port_in_use(port)  # not answering yet: the caller went on at once
        assert service.wait_healthy(timeout=30) == f"http://127.0.0.1:{port}"
        assert service.process.poll() is None
    assert service.process.poll() is not None and not port_in_use(port)
    with service_process(slow_server(port, 0), port, log_path=tmp_path / "again.log", cwd=tmp_path) as url:
        assert port_in_use(port) and url.endswith(f":{port}")


def test_a_busy_port_an_exiting_process_or_no_answer_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with (
            pytest.raises(ServiceStartError, match=f"port {port} is already in use"),
            started_service([sys.executable, "-c", "pass"], port, log_path=tmp_path / "x.log"),
        ):
            pass
    port = free_port()
    exits = [sys.executable, "-c", "print('bad settings'); raise SystemExit(1)"]
    with (
        started_service(exits, port, log_path=tmp_path / "exits.log") as service,
        pytest.raises(ServiceStartError, match=r"exited before answering.*exits\.log"),
    ):
        service.wait_healthy(timeout=30)
    assert "bad settings" in (tmp_path / "exits.log").read_text()
    with (
        started_service(slow_server(port, 60), port, log_path=tmp_path / "slow.log") as service,
        pytest.raises(ServiceStartError, match="did not answer 200 within 1 s"),
    ):
        service.wait_healthy(timeout=1)
    assert not port_in_use(port)
