"""A real PostgreSQL for tests: `initdb` and `pg_ctl` from Debian's `postgresql` package into
a temporary directory, listening on 127.0.0.1 on a free port, password authentication
(SCRAM), stopped and removed afterwards.

PostgreSQL refuses to run as root, and CI runs as root: there the server runs as the
`postgres` user the Debian package creates (through `runuser`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

__all__ = ["PostgresServer", "postgres_bin"]

START_ATTEMPTS = 5  # a free port can be taken by another process before the server binds it
DATABASE = "memcloud"
USER = "memcloud"


def postgres_bin() -> Path:
    """The directory of `initdb` and `pg_ctl` (Debian keeps them off PATH, under
    /usr/lib/postgresql/<version>/bin); in CI (MEMCLOUD_REQUIRE_ALL_TOOLS=1) missing fails."""
    found = shutil.which("pg_ctl")
    if found is not None:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if versions:
        return Path(versions[-1]).parent
    if os.environ.get("MEMCLOUD_REQUIRE_ALL_TOOLS"):
        pytest.fail("PostgreSQL (initdb, pg_ctl) is required in CI but is not installed")
    pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed")


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """`with PostgresServer() as pg:` … `pg.url` is `postgresql://memcloud:…@127.0.0.1:P/memcloud`."""

    def __init__(self, *, also_on: str = "", network: str = "") -> None:
        """`also_on`: another address to listen on (a test network's), from which clients
        of `network` (a CIDR) may log in with the password."""
        self.also_on = also_on
        self.network = network
        self.bin = postgres_bin()
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="memcloud-pg-"))
        self.data = self.root / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def url_on(self, host: str, database: str = DATABASE) -> str:
        """The URL through another of its addresses (`also_on`)."""
        return f"postgresql://{USER}:{self.password}@{host}:{self.port}/{database}"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(self.password)
        if self._as:
            shutil.chown(password_file, "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D", str(self.data),
            "-U", USER,
            "--auth=scram-sha-256",
            f"--pwfile={password_file}",
            "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        password_file.unlink()
        if self.network:
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {self.network} scram-sha-256\n")
        for attempt in range(START_ATTEMPTS):
            self.port = _free_port()
            try:
                self.start_server()
                break
            except subprocess.CalledProcessError:
                if attempt == START_ATTEMPTS - 1:
                    raise
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def start_server(self) -> None:
        """Start the initialized server on `self.port` (again, after `stop_server`)."""
        hosts = ",".join(filter(None, ("127.0.0.1", self.also_on)))
        options = f"-p {self.port} -h {hosts} -k {self.root} -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "log"), "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop_server(self) -> None:
        """Stop the server, keeping its data (`start_server` brings it back)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def fresh_database(self, name: str) -> str:
        """The URL of a new, empty database on this server (one per test)."""
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop_server()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
