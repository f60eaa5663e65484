"""The local Prefect server the demos start: a new PREFECT_HOME begins from the migrated database template
`make setup` makes (real `prefect server database upgrade`, real `prefect server start` on a loopback port), and a
home with a database of its own keeps it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import httpx

from taxi.pipeline.prefect_server import DATABASE, StartingPrefectServer, make_database_template
from taxi.smoke import free_port


def _revision(database: Path) -> str:
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_a_new_home_starts_from_the_migrated_template_and_answers(tmp_path: Path):
    template = make_database_template()  # `make setup` made it already; made here otherwise
    assert make_database_template() == template  # made once
    home = tmp_path / ".prefect"
    server = StartingPrefectServer(free_port(), home, register_blocks=False)
    try:
        assert server.seeded and _revision(home / DATABASE) == _revision(template)
        api = server.wait()
        flows = httpx.post(f"{api}/flows/filter", json={}, timeout=30)  # the tables are there and answer
        assert flows.status_code == 200 and flows.json() == []
    finally:
        server.stop()
    again = StartingPrefectServer(free_port(), home, register_blocks=False)  # its own database now: kept
    try:
        assert not again.seeded
        again.wait()
    finally:
        again.stop()
