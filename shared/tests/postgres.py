"""A throwaway PostgreSQL server for the tests (level 4's prediction store, the root's platform test): ``initdb``
in a temporary folder, ``postgres`` on a free loopback port (its socket in the same folder), stopped by its PID,
never by name.

PostgreSQL refuses to run as root: when the tests run as root (this machine, CI), the server's programs run as
the unprivileged user ``nobody`` (``subprocess``'s ``user=``/``group=``, a plain setuid in the child: the PID
the tests hold is the server's own), and the folder is theirs.

    bindir = find_bindir()                     # None: no PostgreSQL server here (apt-get install postgresql)
    server = PostgresServer.create(bindir)      # initdb
    server.start()                             # waits until it accepts connections
    url = server.new_database("t1")            # postgresql+psycopg://postgres@127.0.0.1:PORT/t1
    server.stop()                              # fast shutdown (SIGINT to the PID); start() again on the same data
    server.remove()
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = "apt-get install postgresql (Debian/Ubuntu), or set POSTGRES_BINDIR to the folder of initdb and postgres"
PROGRAMS = ("initdb", "postgres")
SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``: $POSTGRES_BINDIR if set (only there), else Debian's newest
    /usr/lib/postgresql/N/bin, else where ``postgres`` on PATH really is."""
    if os.environ.get("POSTGRES_BINDIR"):
        candidates = [Path(os.environ["POSTGRES_BINDIR"])]
    else:
        debian = Path("/usr/lib/postgresql").glob("*/bin")
        candidates = sorted(debian, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)], reverse=True)
        if on_path := shutil.which("postgres"):
            candidates.append(Path(on_path).resolve().parent)
    return next((c for c in candidates if all(os.access(c / p, os.X_OK) for p in PROGRAMS)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unprivileged() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root, None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


@dataclass
class PostgresServer:
    bindir: Path
    folder: Path  # the data directory is folder/data, the socket and the server's log are in folder
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen | None = None
    _databases: Iterator[int] = field(default_factory=itertools.count, repr=False)

    @classmethod
    def create(cls, bindir: Path) -> PostgresServer:
        """A new cluster (``initdb``, trust authentication, superuser ``postgres``) in a new temporary folder."""
        folder = Path(tempfile.mkdtemp(prefix="taxi-pg-"))  # not under pytest's tmp_path: that is root's 0700
        server = cls(bindir, folder)
        if (owner := _unprivileged()) is not None:
            os.chown(folder, *owner)
        command = [str(bindir / "initdb"), "-D", str(folder / "data"), "-U", SUPERUSER, "--auth=trust"]
        command += ["--encoding=UTF8", "--locale=C", "--no-sync"]
        done = subprocess.run(command, capture_output=True, text=True, **server._as_owner())
        if done.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr or done.stdout}")
        return server

    def _as_owner(self) -> dict:
        owner = _unprivileged()
        return {} if owner is None else {"user": owner[0], "group": owner[1], "extra_groups": []}

    @property
    def log_path(self) -> Path:
        return self.folder / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server on its data (again, after ``stop``) and wait until it accepts connections."""
        if self.running():
            return
        command = [str(self.bindir / "postgres"), "-D", str(self.folder / "data"), "-k", str(self.folder)]
        command += ["-p", str(self.port), "-h", "127.0.0.1"]
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **self._as_owner())
        deadline = time.monotonic() + timeout
        while not self._accepts():
            if not self.running() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url().replace("+psycopg", ""), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT to the server's PID: open sessions are ended), SIGKILL if it hangs."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def new_database(self, label: str) -> str:
        """Create a new, empty database named after ``label`` (a test's name) and return its SQLAlchemy URL."""
        import psycopg

        name = f"{re.sub(r'[^a-z0-9]+', '_', label.lower())[:40]}_{next(self._databases)}"
        with psycopg.connect(self.url().replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
