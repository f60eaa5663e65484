"""compose.yaml, as Docker Compose reads it (`docker compose config`: v2, or v1 under the `docker compose` shim), and
the files around it: what the platform is made of, its healthchecks and start order, loopback-only ports, named
volumes, secrets only from .env; the project's image built from python:3.11-slim with `uv sync --locked`; the
Prefect image at the locked Prefect version; prefect.yaml's deployments pointing at flows that exist.

The compose checks need a Docker daemon (Compose interpolates and validates there): without one they skip, naming
why; with REQUIRE_DOCKER=1 (CI) they fail instead. Bringing the platform up needs the official images from Docker
Hub, which CI machines cannot pull: tests/test_platform.py runs the same servers as processes instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = {"postgres", "mlflow", "prefect-server", "prefect-worker"}
SERVICES = {"level2-service", "level3-service", "level4-service"}


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        return f"no Docker daemon is reachable ({(info.stderr or info.stdout).strip().splitlines()[-1:]})"
    compose = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if compose.returncode != 0:
        return "`docker compose` is not available (the Compose plugin, or docker-compose behind a shim)"
    return None


@pytest.fixture(scope="module")
def compose():
    """``compose(env_file, **env)``: `docker compose config` of the root compose.yaml -> CompletedProcess."""
    why = _docker_unavailable()
    if why:
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(f"REQUIRE_DOCKER=1 but {why}", pytrace=False)
        pytest.skip(f"compose.yaml is checked by Docker Compose: {why}")

    def config(env_file: Path, **env: str) -> subprocess.CompletedProcess:
        command = ["docker", "compose", "-f", str(ROOT / "compose.yaml"), "--env-file", str(env_file)]
        command += ["--profile", "services", "config"]
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "LEVEL", "PLATFORM_"))}
        return subprocess.run(command, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120)

    return config


@pytest.fixture(scope="module")
def resolved(compose) -> dict:
    done = compose(ROOT / ".env.example", LEVELS_ROOT="/srv/checkout", PLATFORM_UID="1234", PLATFORM_GID="1234")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def _ports(service: dict) -> list[tuple[str, str]]:
    """(host ip, published port) of each published port, in v1's short or v2's long form."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append((port.get("host_ip", ""), str(port.get("published", ""))))
        else:
            ip, published, _ = str(port).rsplit(":", 2) if str(port).count(":") >= 2 else ("", *str(port).split(":"))
            found.append((ip, published))
    return found


def _healthy_dependencies(service: dict) -> dict[str, str]:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):  # the short form has no conditions
        return dict.fromkeys(depends, "")
    return {name: spec.get("condition", "") for name, spec in depends.items()}


def test_compose_describes_the_platform_and_the_level_services(resolved):
    services = resolved["services"]
    assert set(services) == PLATFORM | SERVICES
    # official images by default; the project's own image is built from platform/Dockerfile
    assert services["postgres"]["image"] == "postgres:16"
    assert services["prefect-server"]["image"].startswith("prefecthq/prefect:")
    assert services["mlflow"]["build"]["dockerfile"].endswith("platform/Dockerfile")
    own = services["mlflow"]["image"]
    assert all(services[name]["image"] == own for name in ("prefect-worker", *SERVICES))
    # every part has a healthcheck, and starts after what it needs is healthy
    assert all(services[name].get("healthcheck", {}).get("test") for name in services), "a service has no healthcheck"
    assert _healthy_dependencies(services["mlflow"]) == {"postgres": "service_healthy"}
    assert _healthy_dependencies(services["prefect-server"]) == {"postgres": "service_healthy"}
    assert _healthy_dependencies(services["prefect-worker"]) == {
        "prefect-server": "service_healthy",
        "mlflow": "service_healthy",
    }
    # published on loopback only; state in named volumes
    for name, service in services.items():
        assert all(ip == "127.0.0.1" for ip, _ in _ports(service)), f"{name} publishes beyond loopback"
    assert {"postgres-data", "mlflow-artifacts"} <= set(resolved["volumes"])
    assert any("postgres-data" in str(v) for v in services["postgres"]["volumes"])
    assert any("mlflow-artifacts" in str(v) for v in services["mlflow"]["volumes"])


def test_servers_are_configured_as_the_platform_test_runs_them(resolved):
    services = resolved["services"]
    mlflow = " ".join(services["mlflow"]["command"])
    assert "--backend-store-uri=postgresql+psycopg://platform:change-me-postgres@postgres:5432/mlflow" in mlflow
    assert "--serve-artifacts" in mlflow and "--artifacts-destination=/mlartifacts" in mlflow
    assert "mlflow:5000" in mlflow  # its name in the network is an allowed Host header
    prefect = services["prefect-server"]["environment"]
    assert prefect["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://platform:")
    assert prefect["PREFECT_UI_API_URL"] == "http://127.0.0.1:4200/api"
    assert prefect["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    worker = services["prefect-worker"]
    assert "--pool=platform" in worker["command"] and "--type=process" in worker["command"]
    assert worker["environment"]["LEVELS_ROOT"] == worker["working_dir"] == "/srv/checkout"
    assert worker["user"] == "1234:1234"
    for level in ("LEVEL2", "LEVEL3", "LEVEL4"):
        assert worker["environment"][f"{level}_TRACKING_URI"] == "http://mlflow:5000"
    assert worker["environment"]["LEVEL4_PREDICTION_STORE"].startswith("postgresql+psycopg://platform:")
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert services["level4-service"]["environment"]["LEVEL4_FEEDBACK_TOKEN"] == "change-me-level4-feedback"


def test_compose_refuses_to_start_without_the_secrets(compose, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("".join(line + "\n" for line in (ROOT / ".env.example").read_text().splitlines()
                                if not line.startswith("POSTGRES_PASSWORD=")))  # fmt: skip
    done = compose(env_file, LEVELS_ROOT="/srv/checkout")
    assert done.returncode != 0 and "POSTGRES_PASSWORD is not set" in done.stderr, done.stderr
    done = compose(ROOT / ".env.example")
    assert done.returncode != 0 and "LEVELS_ROOT is not set" in done.stderr, done.stderr


def test_images_and_files_around_compose():
    """No Docker needed: the project image's recipe, the Prefect image's tag, .env kept out of git, prefect.yaml."""
    dockerfile = (ROOT / "platform" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", dockerfile, re.M)
    assert "uv sync --locked" in dockerfile
    lock = (ROOT / "uv.lock").read_text()
    prefect = re.search(r'\[\[package\]\]\nname = "prefect"\nversion = "([^"]+)"', lock).group(1)
    assert f"prefecthq/prefect:{prefect}-python3.11" in (ROOT / "compose.yaml").read_text(), "Prefect image != lock"
    assert re.search(r'name = "asyncpg"', lock) and re.search(r'name = "psycopg"', lock)
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode
    assert ignored == 0, ".env (the platform's secrets) must be git-ignored"
    assert subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT).returncode == 1

    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    assert {d["name"] for d in deployments} == {"nightly", "on-demand", "monthly", "on-breach"}
    for deployment in deployments:
        path, function = deployment["entrypoint"].split(":")
        assert re.search(rf"^def {function}\(", (ROOT / path).read_text(), re.M), deployment["entrypoint"]
        assert deployment["work_pool"]["name"] == "platform"
        project = deployment.get("parameters", {}).get("project_dir")
        assert project is None or (ROOT / project / "dvc.yaml").exists(), project
