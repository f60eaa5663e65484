"""The services measured, each started as its own process on 127.0.0.1, one at a time.

A ``Server`` says how to start one (a command for a port, its environment), where it answers and how its
requests and answers look. ``running(server, ...)`` starts it in a new session (its own process group) on a
free loopback port, waits until its health route answers 200, yields the base URL and stops it on exit:
SIGTERM to the process group we started (``mlflow models serve`` runs uvicorn as a child), SIGKILL if it
has not exited in time. Never by name.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taxi.model import INPUT_COLUMNS

Payloads = list[dict[str, Any]]


class ServerError(RuntimeError):
    """A service did not start or did not answer: the message says which, with the end of its log."""


def encode_trips(payloads: Payloads) -> bytes:
    """Our services' body: one trip object, or a list of them."""
    return json.dumps(payloads[0] if len(payloads) == 1 else payloads).encode()


def encode_split(payloads: Payloads) -> bytes:
    """``mlflow models serve``: a pandas split-oriented frame."""
    data = [[p[c] for c in INPUT_COLUMNS] for p in payloads]
    return json.dumps({"dataframe_split": {"columns": INPUT_COLUMNS, "data": data}}).encode()


def encode_records(payloads: Payloads) -> bytes:
    """``mlflow models serve``: a list of records."""
    return json.dumps({"dataframe_records": payloads}).encode()


@dataclass(frozen=True)
class Server:
    name: str
    command: Callable[[int], list[str]]  # port -> argv
    env: Mapping[str, str]
    predict_path: str = "/predict"
    health_path: str = "/health"
    info_path: str | None = "/model"  # where the service says what it serves (serving_path); None: nowhere
    encoders: Mapping[str, Callable[[Payloads], bytes]] = field(default_factory=lambda: {"trips": encode_trips})
    serving_path: str = ""  # what to record when the service does not say
    prediction_log: bool | None = None  # level 4: whether it logs predictions (None: not a service that can)

    @property
    def encode(self) -> Callable[[Payloads], bytes]:
        """The body format the load runs use (the first encoder)."""
        return next(iter(self.encoders.values()))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def http_json(url: str, body: bytes | None = None, timeout: float = 60.0) -> tuple[int, Any]:
    """(status, parsed JSON or None) for a GET, or a POST of ``body``."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, None


def wait_for_200(url: str, timeout: float, alive: Callable[[], bool]) -> None:
    """Poll ``url`` until it answers 200 (any body: ``mlflow models serve`` answers /health with none)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise ServerError("it exited before answering")
        try:
            if http_json(url, timeout=2)[0] == 200:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise ServerError(f"{url} did not answer 200 within {timeout:.0f} s")


def stop_group(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the process group we started (its leader is ``process``), SIGKILL it after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def _tail(path: Path, lines: int = 15) -> str:
    return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:]) if path.exists() else ""


@contextmanager
def running(server: Server, workdir: Path, timeout: float = 180.0) -> Iterator[str]:
    """Start ``server`` with ``workdir`` as its folder, wait for health, yield its base URL, stop it."""
    with running_process(server, workdir, timeout) as (base_url, _):
        yield base_url


@contextmanager
def running_process(server: Server, workdir: Path, timeout: float = 180.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """``running``, yielding the process too (its processor time is read from /proc)."""
    port = free_port()
    slug = re.sub(r"\W+", "-", server.name).strip("-")
    log_path = workdir / f"{slug}-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            server.command(port), cwd=workdir, env=dict(server.env), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_200(base_url + server.health_path, timeout, alive=lambda: process.poll() is None)
        except ServerError as exc:
            raise ServerError(f"{server.name} did not start: {exc}\n--- {log_path} ---\n{_tail(log_path)}") from None
        yield base_url, process
    finally:
        stop_group(process)


def base_env(venv_bin: Path, settings: Mapping[str, str]) -> dict[str, str]:
    """This environment without any level's settings, the venv's commands first on PATH, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEVEL1_", "LEVEL2_", "LEVEL3_", "LEVEL4_"))}
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    return env | dict(settings)


def level_service(
    level: int, venv_bin: Path, settings: Mapping[str, str], name: str | None = None, prediction_log: bool | None = None
) -> Server:
    """``levelN serve`` on 127.0.0.1 with ``settings`` (LEVELN_* variables)."""
    labels = {
        1: "level 1 service (handed-off file)",
        2: "level 2 service (@production)",
        3: "level 3 service (@champion, hot swap)",
    }
    return Server(
        name=name or labels.get(level, f"level {level} service"),
        command=lambda port: [str(venv_bin / f"level{level}"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=base_env(venv_bin, settings),
        prediction_log=prediction_log,
    )


LOG_METRICS = ("written", "dropped", "queued")  # taxi_prediction_log_<name>[_total] on a level 4 service's /metrics


def prediction_log_figures(base_url: str, timeout: float = 120.0) -> dict[str, float]:
    """A logging service's prediction-log figures from ``/metrics`` once its writer has caught up (nothing queued,
    or ``timeout`` passed): {"written": n, "dropped": n (every reason), "queued": n, "caught_up_s": seconds}."""
    began = time.monotonic()
    while True:
        request = urllib.request.Request(base_url + "/metrics")
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        figures = {name: 0.0 for name in LOG_METRICS}
        for line in text.splitlines():
            for name in LOG_METRICS:
                if line.startswith((f"taxi_prediction_log_{name}_total", f"taxi_prediction_log_{name} ")):
                    figures[name] += float(line.rpartition(" ")[2])
        waited = time.monotonic() - began
        if figures["queued"] == 0 or waited > timeout:
            return figures | {"caught_up_s": waited}
        time.sleep(0.2)


def writer_cpu_seconds(base_url: str) -> float | None:
    """A logging service's ``taxi_prediction_log_writer_cpu_seconds_total`` (None: no such series)."""
    with urllib.request.urlopen(urllib.request.Request(base_url + "/metrics"), timeout=30) as response:
        text = response.read().decode()
    name = "taxi_prediction_log_writer_cpu_seconds_total "
    return next((float(line[len(name) :]) for line in text.splitlines() if line.startswith(name)), None)


def mlflow_models_serve(venv_bin: Path, model_uri: str, tracking_uri: str) -> Server:
    """``mlflow models serve`` of the registered version, in this environment (no virtualenv, no internet)."""
    serve = [str(venv_bin / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", "127.0.0.1"]
    return Server(
        name="mlflow models serve",
        command=lambda port: [*serve, "-p", str(port)],
        env=base_env(venv_bin, {"MLFLOW_TRACKING_URI": tracking_uri}),
        predict_path="/invocations",
        info_path=None,
        encoders={"dataframe_split": encode_split, "dataframe_records": encode_records},
        serving_path="MLflow pyfunc scoring server",
    )
