"""For tests that start real server processes (worker, beat, gunicorn) on the test database."""

import os
import socket
import time

from django.conf import settings
from django.db import connection


def test_database_url() -> str:
    """The test database as a DATABASE_URL another process can use."""
    params = connection.get_connection_params()
    user = params.get("user") or "postgres"
    return f"postgresql://{user}@/{params['dbname']}?host={params.get('host', '')}"


def broker_url() -> str:
    """The broker as a URL another process can use (the embedded server's broker connects
    through a creator that knows the address; its URL names only the database)."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if "creator" not in options:
        return settings.CELERY_BROKER_URL
    database = options["creator"].args[0]  # a functools.partial naming the database
    uri = settings.EMBEDDED_DATABASE.uri(database)
    return "sqla+" + uri.replace("postgresql://", "postgresql+psycopg://", 1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_wait(port: int, what: str, process=None, seconds: float = 30) -> None:
    """Return once something listens on the loopback port; RuntimeError naming `what` when
    nothing does within `seconds` (or its `process` exits first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen within {seconds:.0f} s")


def process_env(**extra: str) -> dict[str, str]:
    """This process's environment, pointed at the test database and its broker tables."""
    return {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        # The test process queues to the broker tables of the server's main database; the
        # processes must read from the same ones.
        "CELERY_BROKER_URL": broker_url(),
        **extra,
    }
