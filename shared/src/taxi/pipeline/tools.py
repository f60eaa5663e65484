"""Running this environment's command-line tools (dvc, git, mlflow, prefect) from Python.

The tools come from the bin folder of the running interpreter, and so do the stage commands DVC runs
(`levelN stage ...`): a level's `repro` command works whether or not the environment is activated.

    from taxi.pipeline.tools import ToolError, dvc, repro, run, stream
    repro(echo=typer.echo)              # dvc repro (output streamed), then dvc push
    dvc("exp", "show", "--no-pager")    # any dvc command, output captured; ToolError when it fails
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

BIN_DIR = Path(sys.executable).parent

# What `dvc repro` says that is not news in this project: git hints for a repository we don't commit to.
DVC_NOISE = (
    "To track the changes with git",
    "git add dvc.lock",
    "To enable auto staging",
    "core.autostage",
    "Use `dvc push`",
)


class ToolError(RuntimeError):
    """A tool exited non-zero; the message has the command and the end of its output."""


def tool_env() -> dict[str, str]:
    return {**os.environ, "PATH": str(BIN_DIR) + os.pathsep + os.environ.get("PATH", "")}


def tool(name: str) -> str:
    """The path of ``name`` in this environment's bin folder (or the bare name: found on PATH)."""
    path = BIN_DIR / name
    return str(path) if path.exists() else name


def run(cmd: Sequence[str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a tool, output captured; ToolError on failure when ``check``."""
    cmd = [tool(cmd[0]), *cmd[1:]]
    done = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise ToolError(f"{' '.join(cmd[:4])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}".rstrip())
    return done


def dvc(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``run(["dvc", *args])``: a DVC command, output captured; ToolError on failure when ``check``."""
    return run(["dvc", *args], cwd=cwd, check=check)


def is_noise(line: str) -> bool:
    return not line.strip() or any(marker in line for marker in DVC_NOISE)


def stream(cmd: Sequence[str], cwd: Path | None = None, echo: Callable[[str], None] = print) -> str:
    """Run a tool showing its output line by line as it comes (noise lines left out); returns all of it.
    ToolError when it fails (its output has been shown already)."""
    cmd = [tool(cmd[0]), *cmd[1:]]
    lines = []
    with subprocess.Popen(
        cmd, cwd=cwd, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if not is_noise(line):
                echo(line.rstrip("\n"))
    if process.returncode != 0:
        raise ToolError(f"{' '.join(cmd[:3])} failed (exit {process.returncode})")
    return "".join(lines)


def repro(push: bool = True, cwd: Path | None = None, echo: Callable[[str], None] = print) -> str:
    """`dvc repro` (only the stages whose deps or params changed; its output shown as it comes), then, when
    ``push``, `dvc push` to the default DVC remote. Returns repro's output; ToolError when a step fails."""
    output = stream(["dvc", "repro"], cwd=cwd, echo=echo)
    if push:
        remote = push_to_remote(cwd)
        echo(f"dvc push: data and model stored in the DVC remote '{remote}' (`dvc remote list`)")
    return output


def push_to_remote(cwd: Path | None = None) -> str:
    """`dvc push` to the default DVC remote; returns its name. A remote that cannot take the data (unreachable,
    not writable) is one ToolError line naming it and DVC's reason; nothing local is touched (dvc.lock, the
    outputs and the DVC cache stay as repro left them), so `dvc push` once the remote is back completes it."""
    # the remote's name (for the messages) asked beside the push, not before it: a DVC command starts in seconds
    with subprocess.Popen(
        [tool("dvc"), "remote", "default"], cwd=cwd, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    ) as asking:  # fmt: skip
        done = dvc("push", cwd=cwd, check=False)  # not -q: DVC then keeps quiet about some failures too
        remote = asking.communicate()[0].strip()
    if done.returncode == 0:
        return remote
    output = (done.stdout + "\n" + done.stderr).splitlines()
    reasons = [line.removeprefix("ERROR:").strip() for line in output if line.startswith("ERROR:")]
    url = dvc("config", f"remote.{remote}.url", cwd=cwd, check=False).stdout.strip() if remote else ""
    where = f"the DVC remote '{remote}' ({url or '?'})" if remote else "the DVC remote (none set)"
    raise ToolError(
        f"dvc push to {where} failed: {'; '.join(reasons)[:400] or f'exit {done.returncode}'}. The results are kept"
        " here (dvc.lock, outputs, the DVC cache): make the remote reachable (`dvc remote list`), then run `dvc push`"
    )


def ensure_git_repo(cwd: Path | None = None) -> bool:
    """DVC versions data beside git: make ``cwd`` a git repository unless it is inside one; True if one was made."""
    inside = run(["git", "rev-parse", "--is-inside-work-tree"], cwd=cwd, check=False).stdout.strip() == "true"
    if not inside:
        run(["git", "init", "-q"], cwd=cwd)
    return not inside
