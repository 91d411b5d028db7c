"""The embedded PostgreSQL server: started once, shared by processes, kept, stopped cleanly."""

import subprocess
import sys

import psycopg
import pytest

from core.config import BASE_DIR
from documents.extension import pgvector_problem
from prodrag.embedded_db import embedded_server_pid, embedded_server_stop, embedded_server_uri


def _start_in_subprocess(pgdata) -> int:
    """Another process (like a worker or a management command) asking for the server."""
    code = (
        "from pathlib import Path; from prodrag.embedded_db import *; "
        f"embedded_server_uri(pgdata=Path({str(pgdata)!r}), dbname='app'); "
        f"print(embedded_server_pid(pgdata=Path({str(pgdata)!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


@pytest.fixture
def pgdata(tmp_path):
    path = tmp_path / "pgdata"
    yield path
    embedded_server_stop(pgdata=path)


def test_started_once_shared_by_processes_and_kept_across_restarts(pgdata):
    uri = embedded_server_uri(pgdata=pgdata, dbname="app")
    first_pid = embedded_server_pid(pgdata=pgdata)
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('survives')")
        version = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()[0]
    assert tuple(map(int, version.split(".")[:2])) >= (0, 8)

    # A second process reuses the running server instead of starting its own.
    assert _start_in_subprocess(pgdata) == first_pid

    assert embedded_server_stop(pgdata=pgdata) is True
    assert embedded_server_pid(pgdata=pgdata) is None
    assert embedded_server_stop(pgdata=pgdata) is False

    uri = embedded_server_uri(pgdata=pgdata, dbname="app")
    assert embedded_server_pid(pgdata=pgdata) not in (None, first_pid)
    with psycopg.connect(uri) as conn:
        assert conn.execute("SELECT value FROM kept").fetchone() == ("survives",)


def test_command_line_status_start_stop(pgdata):
    def run(action):
        return subprocess.run(
            [sys.executable, "-m", "prodrag.embedded_db", action, "--pgdata", str(pgdata)],
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run("status").returncode == 3
    assert "running" in run("start").stdout
    assert run("status").returncode == 0
    assert run("stop").stdout.strip() == "embedded PostgreSQL stopped"
    assert run("status").returncode == 3


@pytest.mark.parametrize(
    ("available", "installed", "expected"),
    [
        ("0.8.6", None, None),
        ("0.8.6", "0.8.6", None),
        ("0.9.0", "0.8.0", None),
        (None, None, "has no pgvector extension"),
        ("0.7.4", None, "upgrade the server's pgvector package"),
        ("0.8.1", "0.7.0", "ALTER EXTENSION vector UPDATE"),
    ],
)
def test_pgvector_requirement_messages(available, installed, expected):
    problem = pgvector_problem(available=available, installed=installed)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem


def test_server_without_pgvector_stops_start_up_with_what_to_install():
    """This machine's PostgreSQL 15 on port 5432 has no pgvector; skip where it is absent."""
    url = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            has_vector = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL server without pgvector on 127.0.0.1:5432")
    if has_vector:
        pytest.skip("the server on 127.0.0.1:5432 has pgvector")
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--plan"],
        cwd=BASE_DIR,
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "has no pgvector extension" in result.stderr
