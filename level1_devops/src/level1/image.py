"""The service image: stage a minimal build context, build it, run the container and smoke-test it.

Docker is driven through the Docker SDK for Python (``docker``): build, run, wait for the image's
HEALTHCHECK, stop and remove - by the container object, not by parsing ``docker`` command output.

The same staging works in the workspace (shared/ beside this level) and in a level exported on its own
(shared/ inside it): the shared package is found from its installed location, the requirements are
exported from whichever uv.lock governs this project.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.images import Image

import level1
import taxi
from taxi.smoke import SmokeTestFailed, describe_model, port_in_use, smoke_test

LEVEL_DIR = Path(level1.__file__).resolve().parents[2]
SHARED_DIR = Path(taxi.__file__).resolve().parents[2]
CONTAINER_PORT = 8000  # the port the image's CMD serves on


class ImageError(RuntimeError):
    """The image cannot be staged, built or run, or the container failed its release check."""


def _uv() -> list[str]:
    """uv as the caller runs it: ``UV`` (`uv run` sets it to its own binary; a Makefile may pass a command with
    arguments, e.g. ``python3 -m uv``), else uv on PATH."""
    given = os.environ.get("UV", "")
    if given and not Path(given).is_file():
        return shlex.split(given)
    return [given or shutil.which("uv") or "uv"]


def _copy_src(package_dir: Path, dest: Path) -> None:
    shutil.copytree(package_dir / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def stage_context(dest: Path, handoff_dir: Path) -> Path:
    """Write the build context to ``dest``: Dockerfile, requirements.lock.txt, shared/, level/, handoff/."""
    if not (handoff_dir / "model.pkl").exists():
        raise ImageError(f"no model in {handoff_dir}: run `make train handoff` first")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("Dockerfile", ".dockerignore"):
        shutil.copy2(LEVEL_DIR / name, dest / name)
    export = [*_uv(), "export", "--frozen", "--no-dev", "--no-header", "--package", "level1-devops",
              "--no-emit-project", "--no-emit-package", "taxi-shared"]  # fmt: skip
    export += ["-o", str(dest / "requirements.lock.txt")]
    done = subprocess.run(export, cwd=LEVEL_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        raise ImageError(f"uv export failed: {done.stderr.strip()}")
    _copy_src(SHARED_DIR, dest / "shared")
    _copy_src(LEVEL_DIR, dest / "level")
    shutil.copytree(handoff_dir, dest / "handoff")
    return dest


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def docker_client(timeout: int = 20) -> docker.DockerClient:
    """A client of the daemon that DOCKER_HOST (or the default socket) names; ImageError when none answers."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise ImageError(f"no Docker daemon reachable at {where} ({_root_cause(exc)})") from None
    return client


def docker_available() -> tuple[bool, str]:
    """(True, '') when a Docker daemon answers; otherwise (False, why)."""
    try:
        docker_client().close()
    except ImageError as exc:
        return False, str(exc)
    return True, ""


def build_image(context: Path, tag: str, client: docker.DockerClient | None = None) -> Image:
    """``docker build`` of a staged context; a failed build raises ImageError with the end of its log."""
    client = client or docker_client()
    try:
        image, _ = client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    except docker.errors.BuildError as exc:
        log = "".join(chunk.get("stream", "") or chunk.get("error", "") for chunk in exc.build_log)
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise ImageError(f"docker build of {tag} failed: {exc.msg}\n{tail}") from None
    except docker.errors.APIError as exc:
        raise ImageError(f"docker build of {tag} failed: {exc.explanation or exc}") from None
    return image


def image_size_mb(image: Image) -> float:
    return image.attrs["Size"] / 1e6


def wait_for_healthcheck(container: Container, timeout: float = 60.0) -> str:
    """Wait while the image's HEALTHCHECK says 'starting'; returns the final status ('healthy', 'unhealthy')."""
    deadline = time.monotonic() + timeout
    container.reload()
    while container.health == "starting" and time.monotonic() < deadline:
        time.sleep(1)
        container.reload()
    return container.health


def container_smoke(
    client: docker.DockerClient, tag: str, port: int, name: str | None = None, echo: Callable[[str], None] = print
) -> None:
    """Run image ``tag`` on 127.0.0.1:``port``, smoke-test it, wait for its HEALTHCHECK, stop and remove it.

    Refuses a busy port (a smoke test must not pass against some other server). Raises ImageError (or
    taxi.smoke.SmokeTestFailed) saying what failed; the container is removed whatever happens.
    """
    if port_in_use(port):
        raise ImageError(f"port {port} is already in use: stop what runs there, or choose another (PORT=...)")
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        raise ImageError(f"no image {tag}: build it first (`make image`)") from None
    if name:  # a container of ours left behind by an interrupted run
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(name).remove(force=True)
    try:
        container = client.containers.run(  # as in production: docker run --read-only --tmpfs /tmp
            tag,
            detach=True,
            name=name,
            ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
            read_only=True,
            tmpfs={"/tmp": "rw,size=16m"},
        )
    except docker.errors.DockerException as exc:
        raise ImageError(f"cannot run {tag}: {exc}") from None
    echo(f"started container {container.name} ({tag}) on http://127.0.0.1:{port} (read-only root filesystem)")
    url = f"http://127.0.0.1:{port}"

    def running() -> bool:
        container.reload()
        return container.status in ("created", "running")

    try:
        smoke_test(url, echo=echo, alive=running)
        echo(f"  GET  /model   -> {describe_model(url)}")
        health = wait_for_healthcheck(container)
        echo(f"  docker HEALTHCHECK -> {health}")
        if health != "healthy":
            raise ImageError(f"the container's HEALTHCHECK says {health!r}")
    except (SmokeTestFailed, ImageError) as exc:
        logs = container.logs(tail=15).decode(errors="replace")
        raise ImageError(f"release check FAILED: {exc}\n--- last lines of the container's log ---\n{logs}") from None
    finally:
        container.remove(force=True)
        echo(f"stopped and removed container {container.name}")
