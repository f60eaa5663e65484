"""Smoke test of a running trip-duration service (any level): health, one prediction, one bad request.

Standard library only, so it runs anywhere the service does."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAMPLE_TRIP = {
    "PULocationID": 74,
    "DOLocationID": 42,
    "trip_distance": 1.8,
    "lpep_pickup_datetime": "2024-03-05T08:15:00",
}
BAD_TRIP = {**SAMPLE_TRIP, "trip_distance": -3}


class SmokeTestFailed(AssertionError):
    pass


def call_json(url: str, body: Any | None = None, timeout: float = 5.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_until_healthy(base_url: str, timeout: float = 60.0, alive: Callable[[], bool] = lambda: True) -> dict:
    """Poll /health until it answers 200; ``alive`` says whether the server process is still running."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise SmokeTestFailed("the service exited before answering /health")
        try:
            status, body = call_json(f"{base_url}/health", timeout=2)
            if status == 200:
                return body
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError) as exc:
            last_error = exc
        time.sleep(0.5)
    raise SmokeTestFailed(f"{base_url}/health did not answer 200 within {timeout:.0f} s ({last_error})")


def smoke_test(base_url: str, echo=print, alive: Callable[[], bool] = lambda: True) -> float:
    """Returns the sample prediction; raises SmokeTestFailed with the reason."""
    health = wait_until_healthy(base_url, alive=alive)
    echo(f"  GET  /health  -> ok, model version {health['model_version']}")
    status, body = call_json(f"{base_url}/predict", SAMPLE_TRIP)
    if status != 200:
        raise SmokeTestFailed(f"POST /predict answered {status}: {body}")
    minutes = body["predictions"][0]
    if not 1 <= minutes <= 60:
        raise SmokeTestFailed(f"POST /predict gave {minutes} minutes for a 1.8-mile trip")
    echo(f"  POST /predict {json.dumps(SAMPLE_TRIP)}\n       -> {minutes:.1f} minutes")
    status, body = call_json(f"{base_url}/predict", BAD_TRIP)
    fields = [e["loc"][-1] for e in body.get("detail", [])] if isinstance(body, dict) else []
    if status != 422 or "trip_distance" not in fields:
        raise SmokeTestFailed(f"a negative distance should give 422 naming trip_distance; got {status}: {body}")
    echo(f"  POST /predict with trip_distance=-3 -> 422: {body['detail'][0]['msg']}")
    return minutes


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's pick), for a server a test or a demo starts."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def describe_model(base_url: str) -> str:
    """One line from /model: version, and the run and lineage where the level records them."""
    _, model = call_json(f"{base_url}/model")
    tags = model.get("tags") or {}
    parts = [f"version {model.get('version')}"]
    parts += [f"run {model['run_id'][:8]}"] if model.get("run_id") else []
    parts += [f"data md5 {tags['data_md5'][:8]}"] if tags.get("data_md5") else []
    parts += [f"git {tags['git_commit'][:8]}"] if tags.get("git_commit") else []
    parts += [f"sha256 {model['sha256'][:12]}"] if model.get("sha256") else []
    return ", ".join(parts)


def serve_and_smoke(command: list[str], port: int, log_path: Path, echo=print) -> int:
    """Start ``command`` (a service on 127.0.0.1:``port``), smoke-test it, stop it. 0 passed, 1 failed.

    Refuses a port that is already taken (a smoke test must not pass against some other server); the
    service's output goes to ``log_path`` and its tail is shown when something fails.
    """
    if port_in_use(port):
        echo(f"port {port} is already in use: stop what runs there, or choose another (PORT=...)")
        return 1
    base_url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        smoke_test(base_url, echo=echo, alive=lambda: process.poll() is None)
        echo(f"  GET  /model   -> {describe_model(base_url)}")
        echo("smoke test passed")
        return 0
    except (SmokeTestFailed, OSError) as exc:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        echo(f"smoke test FAILED: {exc}\n--- last lines of {log_path} ---\n{tail}")
        return 1
    finally:
        stop_process(process)
        echo(f"stopped the service (pid {process.pid}; its log: {log_path})")


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM a process we started (by its PID, never by name); SIGKILL it if it has not exited in ``timeout``."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(base_url: str) -> int:
    """Run the smoke test and say how it went: 0 passed, 1 failed (for the levels' `smoke` commands)."""
    try:
        smoke_test(base_url.rstrip("/"))
    except SmokeTestFailed as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="start a service, smoke-test it, stop it")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True, help="where the service's output goes")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command that serves on --port (after --)")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    sys.exit(serve_and_smoke(command, args.port, args.log))
