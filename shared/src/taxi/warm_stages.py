"""Warm stages: what DVC's stage commands import, imported once; a process forked for each stage.

`dvc repro` starts every stage as a new process (`level3 stage train ...`), and on 2 cores most of a stage's time
is Python importing what it needs anew: MLflow, scikit-learn, skops and MLflow's SQL store are ~8 s of train's
~11 s, ~7 s of evaluate's ~10 s, ~4 s of register's ~5 s, for every candidate trained. A command that runs
`dvc repro` (`level2 repro`, `level3 cd`, level 3's story, level 4's replay) starts a warm process first:

    with warm_process("level3.cli:app"):   # TAXI_WARM_STAGES names its socket, for the dvc processes started inside
        ...  tools.repro()  ...

It imports the level's CLI and the stages' modules, then waits on a Unix socket. The level's console script
(``run_command``) hands `levelN stage ...` to it when TAXI_WARM_STAGES is set: the warm process forks, and the
child runs the stage with the command's arguments, working directory, environment, standard input, output and
error; the command exits with the child's exit status, and passes Ctrl-C (SIGINT, SIGTERM, SIGHUP) on to it;
killed outright (SIGKILL, say with its process group), it takes the stage with it (the child kills itself when
the command's end of the socket closes).
DVC sees the same command, output and exit status as without: the stage runs in a process of its own, as
before, with its imports done. A command that finds the warm process still importing waits for it (its imports
end sooner than the stage's own would); when nothing answers (no warm process, stopped, killed, or it failed to
import), the command runs the stage itself, as it always did. Every other command runs as usual, and so does
another level's stage command (the warm process of ``level3.cli:app`` serves `level3` only).

The warm process only imports: it starts no thread, opens no database connection and runs no numerical code
before it forks, so a child inherits nothing it could share by mistake. Linux only (``SUPPORTED``): on macOS,
forking after these imports is unsafe, which is why Python's multiprocessing does not fork there.

This module imports only the standard library: the console script reads it before deciding anything.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ENV = "TAXI_WARM_STAGES"  # the warm process's socket; set by warm_process() for the processes it starts
SUPPORTED = sys.platform == "linux"
START_WAIT_SECONDS = 30.0  # how long a stage command waits for a warm process still importing
STAGE_COMMAND = "stage"  # `levelN stage NAME ...`: the only commands handed over
PRELOAD = (  # what the stages import, beyond the level's CLI (which brings typer, pydantic-settings, pandas)
    "taxi.pipeline.ingest",
    "taxi.pipeline.validate",
    "taxi.pipeline.prepare",
    "taxi.pipeline.train",
    "taxi.pipeline.evaluate",
    "taxi.pipeline.register",
    "mlflow.sklearn",
    "mlflow.store.tracking.sqlalchemy_store",  # an SQL tracking URI's store: ~2 s to import in every process
    "mlflow.store.model_registry.sqlalchemy_store",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
)
_HEADER = struct.Struct("<I")  # a request's length
_STATUS = struct.Struct("<q")  # the child's pid, then its exit status


# ---- the console script's side ----


def run_command(app: str) -> int | None:
    """A level's console script (``levelN = "levelN.__main__:main"``, which exits with what this returns):
    `levelN stage ...` goes to the warm process when one answers at TAXI_WARM_STAGES (its exit status is
    returned); anything else imports ``app`` ("level3.cli:app") and runs it."""
    if (status := forwarded(sys.argv)) is not None:
        return status
    return _load(app)()


def forwarded(argv: Sequence[str]) -> int | None:
    """Run ``argv`` in a child of the warm process and return its exit status; None when it is not a stage
    command, no warm process is set or none answers (the caller then runs the command itself)."""
    path = os.environ.get(ENV)
    if not (SUPPORTED and path and argv[1:2] == [STAGE_COMMAND]):
        return None
    if (connection := _connect(path)) is None:
        return None
    try:
        request = json.dumps({"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(connection, [_HEADER.pack(len(request)) + request], [0, 1, 2])
        pid = _receive_number(connection)
    except OSError:
        pid = None
    if pid is None:  # it closed the connection without starting the stage: run it here
        connection.close()
        return None
    with connection, _passing_signals_to(pid):
        status = _receive_number(connection)
    if status is None:  # the child ended without saying how (killed by a signal): wait for it to be gone
        while _running(pid):
            time.sleep(0.05)
        print(f"{argv[0]}: the stage's process ({pid}) ended without an exit status (killed?)", file=sys.stderr)
        return 1
    return status


def _connect(path: str) -> socket.socket | None:
    """A connection to the warm process. While it is still importing (its pid file names a live process), wait
    for it, up to ``START_WAIT_SECONDS``: its imports end sooner than a stage's own would."""
    deadline = time.monotonic() + START_WAIT_SECONDS
    while True:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(path)
            return connection
        except OSError:
            connection.close()
        if time.monotonic() > deadline or not _running(_pid_in(Path(path).with_suffix(".pid"))):
            return None  # waited long enough, or it died while importing
        time.sleep(0.05)


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def _running(pid: int | None) -> bool:
    """Whether process ``pid`` exists and has not ended (an ended child not yet waited for does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return pid is not None and state not in ("Z", "X")


@contextlib.contextmanager
def _passing_signals_to(pid: int) -> Iterator[None]:
    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    kinds = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {kind: signal.signal(kind, forward) for kind in kinds}
    try:
        yield
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)


def _receive_number(connection: socket.socket) -> int | None:
    data = b""
    while len(data) < _STATUS.size:  # a signal handler's interruption is retried by Python itself (PEP 475)
        if not (chunk := connection.recv(_STATUS.size - len(data))):
            return None
        data += chunk
    return _STATUS.unpack(data)[0]


def _load(spec: str) -> Any:
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


# ---- the warm process ----


@contextlib.contextmanager
def warm_process(app: str, preload: Sequence[str] = PRELOAD) -> Iterator[Path | None]:
    """Start a warm process for ``app``'s stages in the background (it imports ``app`` and ``preload``: the shared
    stages' modules, and a level's own) and point TAXI_WARM_STAGES at it while the block runs (in this process's
    environment: every dvc started inside inherits it); stop it after. Stage commands run before it is ready run
    cold; if it ends early (it could not import ``app``), the stages run cold and its last line is printed to
    stderr at the end. Yields the socket's path (None where unsupported)."""
    if not SUPPORTED:
        yield None
        return
    import subprocess  # only here: the console script's path imports nothing it does not need

    folder = Path(tempfile.mkdtemp(prefix="taxi-warm-"))  # short: a socket's path is at most 107 bytes
    path, log_path = folder / "stages.sock", folder / "warm.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "taxi.warm_stages", app, str(path), *preload], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    path.with_suffix(".pid").write_text(str(process.pid))  # "starting": stage commands wait for its socket
    previous = os.environ.get(ENV)
    os.environ[ENV] = str(path)
    try:
        yield path
    finally:
        path.with_suffix(".pid").unlink(missing_ok=True)
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        if (ended := process.poll()) is not None:  # before its time: say why, or nobody would know
            lines = log_path.read_text(errors="replace").strip().splitlines() or ["no output"]
            print(f"warm stages: the warm process ended early (exit {ended}): {lines[-1][:300]}; the stages ran as "
                  "new processes", file=sys.stderr)  # fmt: skip
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for leftover in (path, log_path):
            leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()


def serve(app: str, path: Path, preload: Sequence[str] = PRELOAD) -> int:
    """Import ``app`` and ``preload``, then serve stage commands on the Unix socket ``path`` until terminated.
    Returns only in a forked child, with the stage's exit status (``main`` exits with it)."""
    atexit.register(_report_exit)  # registered first, so it runs last: after the stage's own exit handlers
    command = _load(app)
    command_name = app.partition(".")[0].partition(":")[0]  # "level3.cli:app" serves the `level3` command only
    for module in preload:
        importlib.import_module(module)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    listener.bind(str(path) + ".new")
    os.replace(str(path) + ".new", path)  # the socket appears when it is listening, never half ready
    listener.listen(16)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel: no thread waits for them
    print(f"warm: {app} and {len(preload)} modules imported; serving stage commands on {path}", flush=True)
    while True:
        connection, _ = listener.accept()
        try:
            request, fds = _receive_request(connection)
        except (OSError, ValueError) as exc:
            print(f"warm: a request that could not be read: {exc}", flush=True)
            connection.close()
            continue
        if Path(request["argv"][0]).name != command_name:  # another level's command: it runs cold, never here
            print(f"warm: not {command_name}'s command, refused: {request['argv'][0]}", flush=True)
            for fd in fds:
                os.close(fd)
            connection.close()
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            listener.close()
            return _run_child(command, request, fds, connection)
        for fd in fds:
            os.close(fd)
        connection.close()


def _receive_request(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The command's request (argv, cwd, env) and its stdin, stdout and stderr; ValueError (the descriptors closed)
    for anything else."""
    message, fds, _flags, _address = socket.recv_fds(connection, 1 << 20, 3)
    try:
        if len(fds) != 3 or len(message) < _HEADER.size:
            raise ValueError("expected a request with the command's stdin, stdout and stderr")
        size = _HEADER.unpack_from(message)[0]
        body = message[_HEADER.size :]
        while len(body) < size:
            if not (chunk := connection.recv(size - len(body))):
                raise ValueError("the request was cut short")
            body += chunk
        request = json.loads(body)
        if not (
            isinstance(request, dict) and isinstance(request.get("argv"), list) and request["argv"]
            and isinstance(request.get("cwd"), str) and isinstance(request.get("env"), dict)
        ):  # fmt: skip
            raise ValueError("a request needs argv, cwd and env")
    except (ValueError, OSError):
        for fd in fds:
            os.close(fd)
        raise
    return request, fds


_child_status: dict[str, Any] = {}  # in a forked child: its connection and exit status, for _report_exit


def _run_child(command: Any, request: dict[str, Any], fds: list[int], connection: socket.socket) -> int:
    """In the forked child: become the command's process (streams, directory, environment, arguments), run it."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the stage may wait for processes of its own
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for stream in (sys.stdout, sys.stderr):  # buffered as a new process's would be, on a terminal or not
        stream.reconfigure(line_buffering=os.isatty(stream.fileno()))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    sys.argv = list(request["argv"])
    _child_status["connection"] = connection
    connection.sendall(_STATUS.pack(os.getpid()))
    import threading

    threading.Thread(target=_end_with_the_command, args=(connection,), name="warm-stage-watch", daemon=True).start()
    try:
        command(args=sys.argv[1:], prog_name=Path(sys.argv[0]).name)
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:  # what an uncaught exception does to a process: the traceback, exit status 1
        import traceback

        traceback.print_exc()
        status = 1
    _child_status["status"] = status
    return status


def _end_with_the_command(connection: socket.socket) -> None:
    """In the child: the command sends nothing after its request, so the end of the connection means it is gone
    (killed with its process group, say): the stage is killed too, as it would have been in the command's place."""
    with contextlib.suppress(OSError):
        while connection.recv(64):
            pass
    os.kill(os.getpid(), signal.SIGKILL)


def _report_exit() -> None:
    """At a child's exit, after every other exit handler: its output flushed, its status sent to the command, and
    the process ended there, as multiprocessing ends its forked children (``os._exit``): tearing down the modules
    it inherited would take ~2 s, with the command's output pipe held open all the while."""
    connection = _child_status.get("connection")
    if connection is None:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    status = _child_status.get("status", 1)
    with contextlib.suppress(OSError):
        connection.sendall(_STATUS.pack(status))
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m taxi.warm_stages APP SOCKET [MODULE ...]`` (warm_process() runs it)."""
    app, path, *preload = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return serve(app, Path(path), preload)


if __name__ == "__main__":
    sys.exit(main())
