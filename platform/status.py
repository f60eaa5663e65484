"""Is the platform up? One line a part, from where the levels see it (`make platform-status`; `make platform-up`
waits with --wait):

    python platform/status.py --mlflow http://127.0.0.1:5000 --prefect http://127.0.0.1:4200/api \
        --postgres postgresql://platform:...@127.0.0.1:5432/mlflow [--pool platform] [--wait 300]

prints

    postgres        127.0.0.1:5432                 ok    PostgreSQL 16.4
    mlflow          http://127.0.0.1:5000          ok    tracking server 3.17.2, 2 registered models
    prefect         http://127.0.0.1:4200/api      ok    server 3.9.1
    work pool       platform (process)             ok    1 worker online: compose-worker

and exits 0 when every part is ok, 1 otherwise (with --wait: once every part is ok, or 1 after that many seconds,
naming the parts that are not).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

Check = tuple[str, str, Callable[[], str]]  # part, where, check (returns a detail; raises when not ok)


def _http(url: str, body: Any | None = None, timeout: float = 5.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read().decode()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def check_postgres(url: str) -> str:
    import psycopg  # the extra `postgres` (make setup installs it)

    with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=5) as connection:
        version = connection.execute("show server_version").fetchone()[0]
    return f"PostgreSQL {version.split()[0]}"


def check_mlflow(url: str) -> str:
    if _http(f"{url}/health") != "OK":
        raise RuntimeError("/health did not say OK")
    version = _http(f"{url}/version")
    models = _http(f"{url}/api/2.0/mlflow/registered-models/search?max_results=1000").get("registered_models", [])
    return f"tracking server {version}, {len(models)} registered model(s)"


def check_prefect(api: str) -> str:
    _http(f"{api}/health")
    return f"server {_http(f'{api}/admin/version')}"


def check_pool(api: str, pool: str) -> str:
    try:
        info = _http(f"{api}/work_pools/{urllib.parse.quote(pool)}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise RuntimeError(f"no work pool {pool!r} yet (a worker creates it when it starts)") from None
        raise
    workers = _http(f"{api}/work_pools/{urllib.parse.quote(pool)}/workers/filter", {})
    online = [w["name"] for w in workers if w.get("status") == "ONLINE"]
    if not online:
        raise RuntimeError(f"{info['type']} pool, no worker online")
    return f"{len(online)} worker(s) online: {', '.join(online)}"


def checks(args: argparse.Namespace) -> list[Check]:
    found: list[Check] = []
    if args.postgres:
        where = urllib.parse.urlsplit(args.postgres.replace("+psycopg", ""))
        found.append(("postgres", f"{where.hostname}:{where.port or 5432}", lambda: check_postgres(args.postgres)))
    if args.mlflow:
        found.append(("mlflow", args.mlflow, lambda: check_mlflow(args.mlflow.rstrip("/"))))
    if args.prefect:
        api = args.prefect.rstrip("/")
        found.append(("prefect", api, lambda: check_prefect(api)))
        found.append(("work pool", args.pool, lambda: check_pool(api, args.pool)))
    return found


def run_checks(found: list[Check]) -> list[tuple[str, str, bool, str]]:
    results = []
    for part, where, check in found:
        try:
            results.append((part, where, True, check()))
        except Exception as exc:  # any failure is the part's status, in one line
            reason = getattr(exc, "reason", None) or exc
            results.append((part, where, False, f"{type(exc).__name__}: {reason}".splitlines()[0][:160]))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlflow", help="the MLflow tracking server's URL")
    parser.add_argument("--prefect", help="the Prefect server's API URL (…/api)")
    parser.add_argument("--postgres", help="a PostgreSQL URL on the platform's server")
    parser.add_argument("--pool", default="platform", help="the work pool the worker polls")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for every part to be ok")
    args = parser.parse_args(argv)
    found = checks(args)
    if not found:
        parser.error("name at least one part: --mlflow, --prefect, --postgres")
    deadline = time.monotonic() + args.wait
    while True:
        results = run_checks(found)
        if all(ok for *_, ok, _ in results) or time.monotonic() >= deadline:
            break
        time.sleep(3)
    for part, where, ok, detail in results:
        print(f"{part:<15} {where:<30} {'ok' if ok else 'DOWN':<5} {detail}")
    down = [part for part, _, ok, _ in results if not ok]
    if down:
        waited = f" after {args.wait:.0f} s" if args.wait else ""
        print(f"not up{waited}: {', '.join(down)} (make platform-status; docker compose logs)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
