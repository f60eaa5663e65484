"""The tlc source against a loopback HTTP server serving generated files."""

import http.server
import os
import stat
import threading
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from taxi.generator import generate_month
from taxi.loader import DataSourceError, fetch_month, load_month, write_parquet


class _Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    truncate: ClassVar[set[str]] = set()

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.path in self.truncate else body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = write_parquet(generate_month("2024-02", rows=1500), tmp_path_factory.mktemp("srv") / "m.parquet")
    good = path.read_bytes()
    no_distance = generate_month("2024-05", rows=50).drop(columns=["trip_distance"])
    _Handler.files = {
        "/trip-data/green_tripdata_2024-02.parquet": good,
        "/trip-data/green_tripdata_2024-03.parquet": good,
        "/trip-data/green_tripdata_2024-04.parquet": b"<html>not here</html>",
        "/trip-data/green_tripdata_2024-05.parquet": _parquet_bytes(tmp_path_factory, no_distance),
    }
    _Handler.truncate = {"/trip-data/green_tripdata_2024-03.parquet"}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/trip-data"
    httpd.shutdown()
    httpd.server_close()


def _parquet_bytes(factory, df: pd.DataFrame) -> bytes:
    return write_parquet(df, factory.mktemp("p") / "x.parquet").read_bytes()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_downloads_a_month(server, tmp_path):
    path = fetch_month("2024-02", tmp_path, base_url=server)
    assert path.name == "green_tripdata_2024-02.parquet"
    assert _leftovers(tmp_path) == [path.name]
    df = load_month("2024-02", source="tlc", base_url=server, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(df, generate_month("2024-02", rows=1500))


@pytest.mark.parametrize(
    ("month", "reason"),
    [
        ("2024-03", "truncated download"),
        ("2024-04", "cannot be read as parquet"),
        ("2024-05", "column 'trip_distance': required column is missing"),
        ("2024-06", "HTTP 404"),
    ],
)
def test_bad_download_is_a_clear_error_and_leaves_no_file(server, tmp_path, month, reason):
    with pytest.raises(DataSourceError, match=reason):
        fetch_month(month, tmp_path / "raw", base_url=server)
    assert _leftovers(tmp_path / "raw") == []


def test_unreachable_server(tmp_path):
    with pytest.raises(DataSourceError, match="download failed"):
        fetch_month("2024-02", tmp_path, base_url="http://127.0.0.1:9/none", timeout=2)
    assert _leftovers(tmp_path) == []


def test_local_folder_source(tmp_path):
    write_parquet(generate_month("2024-02", rows=300), tmp_path / "src" / "green_tripdata_2024-02.parquet")
    df = load_month("2024-02", source="tlc", base_url=str(tmp_path / "src"))
    assert len(df) == 300


def test_unknown_source():
    with pytest.raises(ValueError, match="source must be one of"):
        load_month("2024-02", source="s3")


@pytest.fixture
def umask():
    """Set the process umask for one test, and restore it."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield os.umask
    os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    source = write_parquet(generate_month("2024-02", rows=200), tmp_path / "src" / "green_tripdata_2024-02.parquet")
    fetched = fetch_month("2024-02", tmp_path / "raw", base_url=str(tmp_path / "src"))
    assert stat.S_IMODE(source.stat().st_mode) == mode
    assert stat.S_IMODE(fetched.stat().st_mode) == mode


def test_downloads_follow_the_umask(server, tmp_path, umask):
    umask(0o022)
    assert stat.S_IMODE(fetch_month("2024-02", tmp_path, base_url=server).stat().st_mode) == 0o644
