"""Moving the test database between migrations, for tests of the migrations themselves
(with the `migrated_back_and_forth` fixture, tests/conftest.py)."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets=None) -> None:
    """To `targets` ([(app, migration)]), or to the latest of every app."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
