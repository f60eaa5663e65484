"""Every service level's API docs work with no internet: ``/docs`` (Swagger UI) and ``/redoc`` name no outside
host, and the scripts, styles and icon they load are served by the service itself (``taxi.serving`` builds every
level's app with ``fastapi_offline``).

Browser-free: the pages' HTML and the answers for what they reference. Each level's app is built the level's own
way (level 1 from its handed-off model file, levels 2-4 from a sqlite MLflow registry in a temporary folder).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from taxi.generator import generate_month
from taxi.model import build_model, prepare
from taxi.serving import SklearnModel, create_app

URL = re.compile(r"""https?://[^\s"'<>)]+""", re.IGNORECASE)
REFERENCE = re.compile(r"""\b(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|\burl:\s*["']([^"']+)["']""")
LOCAL_HOSTS = ("127.0.0.1", "testserver")
TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


def shared_app(tmp_path: Path) -> FastAPI:
    X, y = prepare(generate_month("2024-03", rows=1000, seed=2))
    return create_app(SklearnModel(build_model({"max_iter": 10}).fit(X, y), {"version": "1"}))


@pytest.fixture(scope="module", params=["shared", "level1", "level2", "level3", "level4"])
def docs_client(request, level_app, tmp_path_factory) -> TestClient:
    """A TestClient on the shared core's app or a level's (no lifespan: nothing polls, nothing is written)."""
    folder = tmp_path_factory.mktemp(request.param)
    return TestClient(shared_app(folder) if request.param == "shared" else level_app(request.param, folder))


def external_urls(text: str) -> list[str]:
    hosts = [(url, re.split(r"[/:?#]", url.split("://", 1)[1], maxsplit=1)[0]) for url in URL.findall(text)]
    return [url for url, host in hosts if host.lower() not in LOCAL_HOSTS]


def references(html: str) -> list[str]:
    found = [a or b for a, b in REFERENCE.findall(html)]
    assert not [ref for ref in found if ref.startswith("//")], f"protocol-relative references: {found}"
    return found


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_the_service_itself(docs_client, page):
    answer = docs_client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert external_urls(answer.text) == [], f"{page} loads from outside the service"
    refs = references(answer.text)
    scripts = [ref for ref in refs if ref.endswith(".js")]
    assert scripts, f"{page} references no script: {refs}"
    if page == "/docs":
        assert any(ref.endswith(".css") for ref in refs), f"/docs references no stylesheet: {refs}"
    for ref in refs:
        suffix = Path(ref.split("?")[0]).suffix
        if suffix not in TYPES:  # e.g. the oauth2 redirect page, opened only by a login flow
            continue
        asset = docs_client.get(ref)
        assert asset.status_code == 200, f"{page} references {ref}: {asset.status_code}"
        assert TYPES[suffix] in asset.headers["content-type"], (ref, asset.headers["content-type"])
        if suffix == ".js":
            assert len(asset.content) > 100_000, f"{ref} is not the bundle ({len(asset.content)} bytes)"
