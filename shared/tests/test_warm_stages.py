"""taxi.warm_stages: a stage command handed to the warm process behaves as the same command run cold (output,
exit status, working directory, environment, signals), and runs cold when no warm process answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from taxi import warm_stages
from taxi.warm_stages import ENV, SUPPORTED, forwarded, warm_process

pytestmark = pytest.mark.skipif(not SUPPORTED, reason="warm stages fork: Linux only")

APP = textwrap.dedent(
    """
    import os, sys, time
    import typer

    app = typer.Typer()
    stage = typer.Typer()
    app.add_typer(stage, name="stage")
    WARM_PID = os.getpid()  # the process that imported this module

    @stage.command("echo")
    def echo(word: str, code: int = 0) -> None:
        print(f"out {word} cwd={os.getcwd()} x={os.environ.get('X')} imported_here={WARM_PID == os.getpid()}")
        print(f"err {word}", file=sys.stderr)
        raise typer.Exit(code)

    @stage.command("boom")
    def boom() -> None:
        raise RuntimeError("a stage that fails")

    @stage.command("wait")
    def wait(marker: str) -> None:
        open(marker, "w").write(str(os.getpid()))
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            raise typer.Exit(130)

    @app.command("other")
    def other() -> None:
        print("other: pid", os.getpid())
    """
)


@pytest.fixture()
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CLI with stage commands, importable by the warm process (PYTHONPATH) and the commands alike."""
    (tmp_path / "warmapp.py").write_text(APP)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return tmp_path


def command(app_dir: Path, *args: str, name: str = "warmapp", env: dict[str, str] | None = None,
            cwd: Path | None = None, **kw):  # fmt: skip
    """The level's console script ``name``, as DVC would start it: a new process running ``run_command``."""
    script = app_dir / name
    script.write_text("import sys\nfrom taxi.warm_stages import run_command\nsys.exit(run_command('warmapp:app'))\n")
    environment = {**os.environ, "PYTHONPATH": str(app_dir), **(env or {})}
    return subprocess.Popen(
        [sys.executable, str(script), *args], cwd=cwd or app_dir, env=environment, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,
    )  # fmt: skip


def run(app_dir: Path, *args: str, **kw) -> tuple[int, str, str]:
    process = command(app_dir, *args, **kw)
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def ready(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, "the warm process did not start listening"
        time.sleep(0.05)


def test_a_stage_runs_in_a_forked_child_as_it_would_cold(app_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cold = run(app_dir, "stage", "echo", "hi", "--code", "3", env={"X": "1"}, cwd=elsewhere)
    assert cold[0] == 3 and f"out hi cwd={elsewhere} x=1 imported_here=True" in cold[1] and "err hi" in cold[2]

    with warm_process("warmapp:app", preload=["json"]) as path:
        assert path is not None and os.environ[ENV] == str(path)
        ready(path)
        status, out, err = run(app_dir, "stage", "echo", "hi", "--code", "3", env={"X": "1"}, cwd=elsewhere)
        # the same output, status, directory and environment; the module was imported by the warm process
        assert (status, err) == (3, cold[2])
        assert out == cold[1].replace("imported_here=True", "imported_here=False")
        assert run(app_dir, "stage", "echo", "ok")[0] == 0

        status, _, err = run(app_dir, "stage", "boom")  # an uncaught exception: its traceback, status 1
        assert status == 1 and "RuntimeError: a stage that fails" in err

        for junk in (b"not a request", b"\x05\x00\x00\x00{bad}"):  # what is not a request is refused, not fatal
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
                raw.connect(str(path))
                raw.sendall(junk)
                assert raw.recv(8) == b""
        assert run(app_dir, "stage", "echo", "still")[0] == 0

        status, out, _ = run(app_dir, "other")  # not a stage command: run here, never handed over
        assert status == 0 and "other: pid" in out

        status, out, _ = run(app_dir, "stage", "echo", "x", name="otherlevel")  # another command: run here
        assert status == 0 and "imported_here=True" in out
    assert ENV not in os.environ and not path.exists()

    # the warm process is gone: the command runs the stage itself
    status, out, _ = run(app_dir, "stage", "echo", "cold", env={ENV: str(path)})
    assert status == 0 and "imported_here=True" in out


def test_signals_and_kills_reach_the_stage_and_back(app_dir: Path, tmp_path: Path) -> None:
    with warm_process("warmapp:app", preload=["json"]) as path:
        assert path is not None
        ready(path)
        marker = tmp_path / "pid"
        waiting = command(app_dir, "stage", "wait", str(marker))
        child = _pid_in(marker)
        assert child != waiting.pid  # the stage runs in the warm process's child, not in the command
        waiting.send_signal(signal.SIGINT)  # Ctrl-C on the command: the stage sees it
        out, _ = waiting.communicate(timeout=30)
        assert waiting.returncode == 130 and "interrupted" in out

        marker.unlink()
        waiting = command(app_dir, "stage", "wait", str(marker))
        os.kill(_pid_in(marker), signal.SIGKILL)  # the stage's process killed: the command fails, saying so
        _, err = waiting.communicate(timeout=30)
        assert waiting.returncode == 1 and "ended without an exit status" in err

        marker.unlink()
        waiting = command(app_dir, "stage", "wait", str(marker))
        stage = _pid_in(marker)
        waiting.kill()  # the command killed (kill -9, or its process group): its stage ends too, as it would cold
        waiting.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while _running(stage):
            assert time.monotonic() < deadline, "the stage outlived its command"
            time.sleep(0.05)

        assert run(app_dir, "stage", "echo", "after")[0] == 0  # the warm process serves the next one


def test_a_command_waits_for_a_warm_process_still_importing_not_for_a_dead_one(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (app_dir / "slowimport.py").write_text("import time\ntime.sleep(3)\n")
    with warm_process("warmapp:app", preload=["slowimport"]) as path:
        assert path is not None and not path.exists()  # still importing
        status, out, _ = run(app_dir, "stage", "echo", "waited")
        assert status == 0 and "imported_here=False" in out  # handed over once it listened
    with warm_process("warmapp:app", preload=["no_such_module"]) as path:
        began = time.monotonic()
        status, out, _ = run(app_dir, "stage", "echo", "cold")
        assert status == 0 and "imported_here=True" in out  # the warm process died importing: run here
        assert time.monotonic() - began < warm_stages.START_WAIT_SECONDS
    said = capsys.readouterr().err  # and why it is not there, once it is stopped
    assert "warm process ended early (exit 1)" in said and "No module named 'no_such_module'" in said


def test_without_a_warm_process_nothing_is_handed_over(tmp_path: Path) -> None:
    os.environ.pop(ENV, None)
    assert forwarded(["level3", "stage", "train"]) is None  # none set
    os.environ[ENV] = str(tmp_path / "nobody.sock")
    try:
        assert forwarded(["level3", "stage", "train"]) is None  # set, nobody answers
        assert forwarded(["level3", "cd"]) is None  # not a stage command
    finally:
        os.environ.pop(ENV, None)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _pid_in(marker: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while not (marker.exists() and marker.read_text()):
        assert time.monotonic() < deadline, "the stage did not start"
        time.sleep(0.05)
    return int(marker.read_text())
