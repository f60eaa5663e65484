"""One loader, two sources: ``synthetic`` (the generator, offline, the default) and ``tlc`` (the real
monthly files, by URL or local path).

    load_month("2024-03")                                   # synthetic, stationary
    load_month("2024-08", scenario="drift")                 # synthetic, after the change
    load_month("2024-03", source="tlc")                     # download green_tripdata_2024-03.parquet
    load_month("2024-03", source="tlc", base_url="/data/tlc")  # a folder of files fetched by hand

Downloads stream to a temporary file beside the destination and are moved into place only once they
are complete and read as a parquet file with the expected columns: an interrupted or wrong download
never leaves a file behind. Written files get the mode the umask gives a new file (0644 under the usual
umask 022), not the owner-only mode of the temporary file, so a team or a container user can read them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from taxi.generator import DEFAULT_CHANGE_MONTH, DEFAULT_ROWS, DEFAULT_SEED, generate_month
from taxi.months import parse_month
from taxi.validation import DataValidationError, check_structure, read_trips

SOURCES = ("synthetic", "tlc")
# The official download location pattern; {color} and {month} are filled in.
TLC_BASE_URL = "https://d37ci6vzurychx.cloudfront.net/trip-data"
TLC_FILE_PATTERN = "{color}_tripdata_{month}.parquet"
_CHUNK = 1 << 20


class DataSourceError(RuntimeError):
    """A month could not be fetched: the message says which URL and why."""


def tlc_filename(month: str, color: str = "green") -> str:
    parse_month(month)
    return TLC_FILE_PATTERN.format(color=color, month=month)


def tlc_url(month: str, base_url: str = TLC_BASE_URL, color: str = "green") -> str:
    return f"{base_url.rstrip('/')}/{tlc_filename(month, color)}"


def fetch_month(month: str, dest_dir: str | Path, *, base_url: str = TLC_BASE_URL, timeout: float = 60.0) -> Path:
    """Download (or copy, when ``base_url`` is a folder) one green month into ``dest_dir``.

    Returns the file's path. Raises DataSourceError for HTTP/network failures, truncated downloads
    and files that are not trip parquet; in every failure case no file is left in ``dest_dir``.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / tlc_filename(month)
    url = tlc_url(month, base_url)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if _is_local(base_url):
                _copy_local(Path(url.removeprefix("file://")), out)
            else:
                _download(url, out, timeout)
        try:
            check_structure(read_trips(tmp), source=url)  # .part is read as parquet
        except DataValidationError as exc:
            raise DataSourceError(f"{url} did not give a usable trip file:\n" + "\n".join(exc.problems)) from None
        _publish(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status).

    Elsewhere it is read the only portable way, by setting and restoring it, which is not thread-safe
    for the instant in between.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the mode a newly created file would have (mkstemp makes it 0600), then rename it to ``target``."""
    os.chmod(tmp, 0o666 & ~current_umask())
    os.replace(tmp, target)


def _is_local(base_url: str) -> bool:
    return "://" not in base_url or base_url.startswith("file://")


def _copy_local(path: Path, out) -> None:
    if not path.exists():
        raise DataSourceError(f"{path} does not exist")
    with path.open("rb") as src:
        shutil.copyfileobj(src, out, _CHUNK)


def _download(url: str, out, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "taxi-data/0.1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            received = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
    except urllib.error.HTTPError as exc:
        raise DataSourceError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataSourceError(f"{url}: download failed ({reason})") from None
    except Exception as exc:  # http.client.IncompleteRead and friends
        raise DataSourceError(f"{url}: download interrupted ({type(exc).__name__}: {exc})") from None
    if expected is not None and received != int(expected):
        raise DataSourceError(f"{url}: truncated download ({received} of {expected} bytes)")


def load_month(
    month: str,
    *,
    source: str = "synthetic",
    scenario: str = "stationary",
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    change_month: str = DEFAULT_CHANGE_MONTH,
    base_url: str = TLC_BASE_URL,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """One month of raw trips in canonical dtypes, from ``source`` (see module doc).

    For ``tlc`` the file is kept in ``cache_dir`` (a temporary folder when None) and reused.
    """
    if source == "synthetic":
        return generate_month(month, rows=rows, seed=seed, scenario=scenario, change_month=change_month)
    if source == "tlc":
        if cache_dir is None:
            with tempfile.TemporaryDirectory() as tmp:
                return _load_tlc(month, Path(tmp), base_url)
        return _load_tlc(month, Path(cache_dir), base_url)
    raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")


def _load_tlc(month: str, cache_dir: Path, base_url: str) -> pd.DataFrame:
    path = cache_dir / tlc_filename(month)
    if not path.exists():
        path = fetch_month(month, cache_dir, base_url=base_url)
    return check_structure(read_trips(path), source=str(path))


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame atomically (temp file + rename): readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        df.to_parquet(tmp_name, index=False)
        _publish(Path(tmp_name), path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path
