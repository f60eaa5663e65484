"""Request bodies are bounded before they are read whole (``taxi.body_limit``): 413 over ``max_body_bytes`` (at
once on ``Content-Length``, at the passing chunk without it), 408 for a body that does not arrive in time, on the
real HTTP stack; and a burst of large bodies against a uvicorn process costs it a bounded amount of memory."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from taxi.body_limit import DEFAULT_BODY_TIMEOUT, default_max_body_bytes
from taxi.generator import generate_month
from taxi.model import build_model, prepare
from taxi.service_settings import HotSwapServiceFields
from taxi.serving import SklearnModel, create_app, serve_in_thread
from taxi.trip import DEFAULT_MAX_BATCH

GOOD = {"PULocationID": 74, "DOLocationID": 42, "trip_distance": 1.8, "lpep_pickup_datetime": "2024-03-05T08:15:00"}
LIMIT = 64 * 1024
TIMEOUT = 1.0


@pytest.fixture(scope="module")
def model() -> SklearnModel:
    X, y = prepare(generate_month("2024-03", rows=2000, seed=3))
    return SklearnModel(build_model({"max_iter": 20}).fit(X, y), {"version": "1"})


@pytest.fixture(scope="module")
def served(model) -> Iterator[tuple[str, int]]:
    """A real uvicorn (in a thread) with a 64 KiB body limit and a 1 s body timeout: (host, port)."""
    with serve_in_thread(create_app(model, max_body_bytes=LIMIT, body_timeout=TIMEOUT)) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def padded(size: int) -> bytes:
    """A valid one-trip body of exactly ``size`` bytes (JSON whitespace after the object)."""
    body = json.dumps(GOOD).encode()
    return body + b" " * (size - len(body))


def problem(response: httpx.Response) -> dict:
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"]
    return error


def read_response(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and the seconds until its first byte."""
    start = time.monotonic()
    sock.settimeout(timeout)
    data, first = b"", None
    while chunk := sock.recv(65536):
        first = first if first is not None else time.monotonic() - start
        data += chunk
    return data, first if first is not None else float("inf")


def status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_body_of_exactly_the_limit_is_served_and_one_byte_more_is_413_naming_the_limit(model):
    http = TestClient(create_app(model, max_body_bytes=LIMIT))
    assert http.post("/predict", content=padded(LIMIT)).status_code == 200
    answer = http.post("/predict", content=padded(LIMIT + 1))
    assert answer.status_code == 413 and answer.headers["x-request-id"] and answer.headers["connection"] == "close"
    error = problem(answer)
    assert error["type"] == "too_large"
    assert f"Content-Length is {LIMIT + 1} bytes, the limit is {LIMIT} bytes (max_body_bytes)" in error["msg"]


def test_the_default_limit_fits_a_full_batch_of_indented_json_and_is_documented(model):
    app = create_app(model, max_batch=DEFAULT_MAX_BATCH)
    assert app.state.max_body_bytes == default_max_body_bytes(DEFAULT_MAX_BATCH) == 2_072_576
    assert app.state.body_timeout == DEFAULT_BODY_TIMEOUT
    full_batch = json.dumps([GOOD | {"passenger_count": 1}] * DEFAULT_MAX_BATCH, indent=4).encode()
    assert len(full_batch) < app.state.max_body_bytes
    answer = TestClient(app).post("/predict", content=full_batch)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == DEFAULT_MAX_BATCH
    assert create_app(model, max_batch=10).state.max_body_bytes == default_max_body_bytes(10)
    responses = TestClient(app).get("/openapi.json").json()["paths"]["/predict"]["post"]["responses"]
    assert "2072576 bytes" in responses["413"]["description"] and "1000 trips" in responses["413"]["description"]
    assert f"{DEFAULT_BODY_TIMEOUT:g} s" in responses["408"]["description"]
    fields = HotSwapServiceFields()
    assert fields.max_body_bytes is None and fields.body_timeout == DEFAULT_BODY_TIMEOUT
    assert "max_batch" in HotSwapServiceFields.model_fields["max_body_bytes"].description


def test_a_too_long_content_length_is_413_before_any_of_the_body_is_sent(served):
    with socket.create_connection(served) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
                     b"content-length: 52428800\r\n\r\n")  # fmt: skip
        raw, seconds = read_response(sock, timeout=10)
    status, body = status_and_body(raw)
    assert status == 413 and seconds < TIMEOUT  # no byte of the body was sent: it was not waited for
    assert "Content-Length is 52428800 bytes, the limit is 65536 bytes" in body["detail"][0]["msg"]
    assert b"connection: close" in raw.lower()


def test_a_chunked_body_is_refused_at_the_chunk_that_passes_the_limit(served):
    chunk = b" " * 8192
    sent = 0
    with socket.create_connection(served) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n")
        while sent < 100 * LIMIT:  # never ends, unless the server answers
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            if select.select([sock], [], [], 0.01)[0]:
                break
        raw, _ = read_response(sock, timeout=10)
    status, body = status_and_body(raw)
    assert status == 413, raw
    assert body["detail"][0]["msg"] == (
        f"request body too large: more than {LIMIT} bytes received, the limit is {LIMIT} bytes (max_body_bytes)"
    )
    assert LIMIT < sent <= LIMIT + 4 * len(chunk)  # answered as the limit was passed, not at the end


@pytest.mark.parametrize("chunked", [False, True], ids=["stalled body", "body dribbled byte by byte"])
def test_a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closed(served, chunked):
    framing = b"transfer-encoding: chunked" if chunked else b"content-length: 1000"
    start = time.monotonic()
    with socket.create_connection(served) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nhost: t\r\n%s\r\n\r\n" % framing)
        while not select.select([sock], [], [], 0.1)[0] and time.monotonic() - start < 10 * TIMEOUT:
            sock.sendall(b"1\r\n \r\n" if chunked else b" ")  # still sending, just too slowly
        raw, _ = read_response(sock, timeout=10)  # and then the server closes the connection
    seconds = time.monotonic() - start
    status, body = status_and_body(raw)
    assert status == 408 and TIMEOUT <= seconds < TIMEOUT + 2, (raw, seconds)
    assert body["detail"][0]["type"] == "timeout"
    assert "the limit is 1 s to send the whole body (body_timeout)" in body["detail"][0]["msg"]
    host, port = served
    assert httpx.post(f"http://{host}:{port}/predict", json=GOOD).status_code == 200  # no worker left waiting


APP = """
from taxi.generator import generate_month
from taxi.model import build_model, prepare
from taxi.serving import SklearnModel, create_app


def make():
    X, y = prepare(generate_month("2024-03", rows=2000, seed=3))
    return create_app(SklearnModel(build_model({"max_iter": 20}).fit(X, y), {"version": "1"}))
"""


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


@pytest.fixture
def service_process(tmp_path) -> Iterator[tuple[str, int]]:
    """``create_app`` with its default limits in a uvicorn process on a free loopback port: (url, pid)."""
    (tmp_path / "limits_app.py").write_text(textwrap.dedent(APP))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "limits_app:make", "--app-dir", str(tmp_path),
           "--fd", str(sock.fileno()), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(cmd, pass_fds=[sock.fileno()], env=os.environ | {"PYTHONUNBUFFERED": "1"})
    sock.close()
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "the service exited at start-up"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start within 120 s"
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_burst_of_20_mb_bodies_gets_413s_in_bounded_memory_and_the_service_answers_after(service_process):
    url, pid = service_process
    clients, size, chunk = 30, 20 << 20, b" " * (64 << 10)

    def stream() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    def post(n: int) -> tuple[int, str]:
        headers = {"content-type": "application/json"}
        if n % 2:  # half declare their length (refused before reading), half are chunked (refused on the way)
            headers["content-length"] = str(size)
        response = httpx.post(f"{url}/predict", content=stream(), headers=headers, timeout=60)
        return response.status_code, response.text

    assert httpx.post(f"{url}/predict", json=GOOD).status_code == 200  # warm: the first request's allocations
    before = status_kib(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(post, range(clients)))
    peak = status_kib(pid, "VmHWM")
    assert [status for status, _ in answers] == [413] * clients, answers
    assert all("the limit is 2072576 bytes (max_body_bytes)" in text for _, text in answers)
    grown_mb = (peak - before) / 1024
    print(f"RSS {before / 1024:.0f} MB before, peak {peak / 1024:.0f} MB during {clients} x 20 MB bodies")
    assert grown_mb < clients * 20 / 8, f"the service's RSS grew by {grown_mb:.0f} MB"  # 30 x 20 MB = 600 MB
    answer = httpx.post(f"{url}/predict", json=[GOOD] * 3)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 3
