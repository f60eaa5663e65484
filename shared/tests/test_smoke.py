"""serve_and_smoke: never smoke-tests some other server, and shows why a service did not start."""

import socket
import sys

from taxi.smoke import port_in_use, serve_and_smoke


def test_a_busy_port_is_refused(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert port_in_use(port)
        lines: list[str] = []
        assert serve_and_smoke([sys.executable, "-c", "pass"], port, tmp_path / "log", echo=lines.append) == 1
    assert "already in use" in lines[0]


def test_a_service_that_exits_fails_with_its_log(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "import sys; print('cannot start: no model'); sys.exit(1)"]
    lines: list[str] = []
    assert serve_and_smoke(command, port, tmp_path / "serve.log", echo=lines.append) == 1
    report = "\n".join(lines)
    assert "exited before answering" in report and "cannot start: no model" in report
