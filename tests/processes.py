"""For tests that start real server processes (worker, beat, gunicorn) on the test database."""

import os
import socket

from django.conf import settings
from django.db import connection


def test_database_url() -> str:
    """The test database as a DATABASE_URL another process can use."""
    database = connection.settings_dict
    user = database["USER"] or "postgres"
    return f"postgresql://{user}@/{database['NAME']}?host={database['HOST']}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_env(**extra: str) -> dict[str, str]:
    """This process's environment, pointed at the test database and its broker tables."""
    return {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        # The test process queues to the broker tables of the server's main database; the
        # processes must read from the same ones.
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        **extra,
    }
