"""pgvector must be present, at 0.8 or newer (iterative index scans), on whatever server we use."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

REQUIRED = (0, 8)
_checked_aliases: set[str] = set()


def _version(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def pgvector_problem(*, available: str | None, installed: str | None) -> str | None:
    """What is wrong with the server's pgvector, as an instruction; None when nothing is."""
    wanted = ".".join(map(str, REQUIRED))
    if available is None:
        return (
            f"The PostgreSQL server at DATABASE_URL has no pgvector extension. Install pgvector "
            f"{wanted} or newer on it (Debian/Ubuntu: the postgresql-<major>-pgvector package; "
            "Docker: the pgvector/pgvector image), or unset DATABASE_URL to use the embedded "
            "server."
        )
    installed_version = _version(installed)
    if (
        installed_version is not None
        and installed_version < REQUIRED
        and _version(available) >= REQUIRED
    ):
        return (
            f"pgvector {installed} is enabled in this database but {wanted} or newer is "
            f"required; {available} is installed on the server: run "
            f"ALTER EXTENSION vector UPDATE; as a superuser."
        )
    if _version(available) < REQUIRED:
        return (
            f"pgvector {available} is installed on the PostgreSQL server at DATABASE_URL, but "
            f"{wanted} or newer is required: upgrade the server's pgvector package."
        )
    return None


def _pgvector_versions(alias: str) -> tuple[str | None, str | None]:
    """The server's pgvector (default version) and this database's (installed), or Nones."""
    from documents.models import AvailableExtension

    row = (
        AvailableExtension.objects.using(alias)
        .filter(name="vector")
        .values_list("default_version", "installed_version")
        .first()
    )
    return row or (None, None)


def pgvector_enabled(alias: str = "default") -> str:
    """The version of pgvector enabled in this database; ImproperlyConfigured saying what to
    do when the server lacks it, it is too old, or it is not enabled (migrations enable it).
    What the readiness probe checks, by the same rule as every new connection."""
    available, installed = _pgvector_versions(alias)
    problem = pgvector_problem(available=available, installed=installed)
    if problem:
        raise ImproperlyConfigured(problem)
    if not installed:
        raise ImproperlyConfigured("pgvector is not enabled in this database: run migrations.")
    return installed


@receiver(connection_created)
def pgvector_check(sender, connection, **kwargs):
    # Django's short-lived maintenance connections (creating the test database) have no
    # registered alias; the configured connection is checked when it first connects (before
    # migrations, which enable the extension: only the server's pgvector is checked here).
    if connection.alias in _checked_aliases or connection.alias not in connections.settings:
        return
    available, installed = _pgvector_versions(connection.alias)
    problem = pgvector_problem(available=available, installed=installed)
    if problem:
        raise ImproperlyConfigured(problem)
    _checked_aliases.add(connection.alias)
