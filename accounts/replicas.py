"""Read replicas: which database a read goes to, and why a replica never shows a user what
they may no longer read, nor an older state than they last wrote.

Every write, every transaction, the admin and the workers use the primary ("default"). Only
code that asks (`replica_reads`: search, answer retrieval, read-only pages) reads from a
replica, and only from one that, checked at that moment:

- has replayed every committed change that can narrow what anyone may read: its copy of
  `PermissionMark` (kept by database triggers on users, group memberships, documents and
  collections, in the changing transaction itself) is as new as the primary's;
- has replayed past the user's own last write (`WriteMark`, set after each of their write
  requests by prodrag.middleware.ReadYourWrites);
- is up, is a standby, and is no more than PRODRAG_REPLICA_MAX_LAG_SECONDS behind.

Otherwise the read goes to the primary: nobody gets an error because a replica is down or
behind; a metric and a log line say why it was skipped. A replica that fails to answer is
left alone for a few seconds, so a dead one costs one connection attempt, not one per read.

The check costs one small query on the primary (the marks) and one on the replica. The
primary's mark is read first: a change committed before it is replayed on any replica chosen.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from core import metrics

logger = logging.getLogger(__name__)

# A replica that failed to answer is not tried again for this long (per process).
DOWN_PAUSE_SECONDS = 5.0

# The database this context reads from (None: the primary); set by `replica_reads`.
_reading: ContextVar[str | None] = ContextVar("prodrag_replica_reading", default=None)
_down_until: dict[str, float] = {}

# WAL positions are compared as integers: bytes since 0/0.
_PRIMARY_MARKS_SQL = """
    SELECT (SELECT position FROM accounts_permissionmark WHERE id = 1),
           (SELECT position FROM accounts_writemark WHERE user_id = %s),
           (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint
"""
# Lag: none when everything received is replayed and nothing is missing; otherwise the age of
# the last replayed commit (the usual measure; it grows while replay stands still).
_REPLICA_STATE_SQL = """
    SELECT pg_is_in_recovery(),
           (SELECT position FROM accounts_permissionmark WHERE id = 1),
           (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint,
           EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
"""


@dataclass(frozen=True)
class _Marks:
    permissions: int | None
    user_write: int | None
    primary_position: int


class ReplicaRouter:
    """DATABASE_ROUTERS entry: reads go where `replica_reads` chose (the primary unless it
    chose a replica); writes and migrations only to the primary."""

    def db_for_read(self, model, **hints) -> str | None:
        return _reading.get()

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True

    def allow_migrate(self, db, app_label, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS


def reading_alias() -> str:
    """The database this context reads from: what raw SQL runs on (retrieval's statement)."""
    return _reading.get() or DEFAULT_DB_ALIAS


@contextmanager
def replica_reads(*, user) -> Iterator[str]:
    """Within this block, the ORM's reads and `reading_alias()` use a replica fresh enough for
    `user` (see the module docstring), or the primary. Yields the alias chosen."""
    alias = replica_choose(user=user)
    token = _reading.set(None if alias == DEFAULT_DB_ALIAS else alias)
    try:
        yield alias
    finally:
        _reading.reset(token)


READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def page_reads_from_replica(view):
    """Decorates a page view (inside `login_required`, so that the user is known): a
    read-only request's reads use `replica_reads`."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method not in READ_ONLY_METHODS:
            return view(request, *args, **kwargs)
        with replica_reads(user=request.user):
            return view(request, *args, **kwargs)

    return wrapped


class ApiReadsFromReplica:
    """A DRF view mixin: after authentication, a read-only request's reads use `replica_reads`
    until its response is made."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in READ_ONLY_METHODS:
            self._replica_reads = replica_reads(user=request.user)
            self._replica_reads.__enter__()

    def finalize_response(self, request, response, *args, **kwargs):
        reads = getattr(self, "_replica_reads", None)
        if reads is not None:
            self._replica_reads = None
            reads.__exit__(None, None, None)
        return super().finalize_response(request, response, *args, **kwargs)


def replica_choose(*, user) -> str:
    """A replica that may serve `user`'s reads now, or DEFAULT_DB_ALIAS. Inside a transaction
    on the primary (which may have written), or with no replica configured: the primary."""
    current = _reading.get()
    if current is not None:
        return current
    replicas = settings.DATABASE_REPLICAS
    if not replicas or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    marks = _primary_marks(user_id=user.pk if user.is_authenticated else None)
    for alias in random.sample(replicas, len(replicas)):
        if _down_until.get(alias, 0.0) > time.monotonic():
            continue
        if _replica_fresh(alias, marks):
            metrics.REPLICA_READS.labels(database="replica").inc()
            return alias
    metrics.REPLICA_READS.labels(database="primary").inc()
    return DEFAULT_DB_ALIAS


def _primary_marks(*, user_id: int | None) -> _Marks:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_PRIMARY_MARKS_SQL, [user_id])
        permissions, user_write, position = cursor.fetchone()
    return _Marks(permissions=permissions, user_write=user_write, primary_position=position)


def _replica_fresh(alias: str, marks: _Marks) -> bool:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(_REPLICA_STATE_SQL)
            standby, permissions, replayed, replay_age = cursor.fetchone()
    except DatabaseError as exc:
        _down_until[alias] = time.monotonic() + DOWN_PAUSE_SECONDS
        connections[alias].close()
        _skip(alias, "down", f"it did not answer: {exc}".strip())
        return False
    if not standby:
        _skip(alias, "down", "it is not a standby (promoted, or not a replica)")
        return False
    lag = 0.0 if replayed >= marks.primary_position else float(replay_age or 0.0)
    if lag > settings.REPLICA_MAX_LAG_SECONDS:
        _skip(alias, "lagging", f"its replay is {lag:.1f} s behind")
        return False
    behind = (marks.permissions is not None and (permissions or 0) < marks.permissions) or (
        marks.user_write is not None and replayed < marks.user_write
    )
    if behind:
        # Routine right after a change (milliseconds); not worth a log line.
        metrics.REPLICA_SKIPS.labels(replica=alias, reason="behind").inc()
        return False
    return True


def _skip(alias: str, reason: str, why: str) -> None:
    metrics.REPLICA_SKIPS.labels(replica=alias, reason=reason).inc()
    logger.warning("replica %s skipped (%s): %s; reading from the primary", alias, reason, why)


def write_mark(*, user) -> None:
    """Remember where the primary's WAL is now, after `user`'s write request: their reads use a
    replica only once it has replayed this far. Nothing without replicas."""
    if not settings.DATABASE_REPLICAS:
        return
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_writemark (user_id, position) "
            "VALUES (%s, (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint) "
            "ON CONFLICT (user_id) DO UPDATE SET position = GREATEST("
            "accounts_writemark.position, EXCLUDED.position)",
            [user.pk],
        )
