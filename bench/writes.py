"""What a piece of work cost the database, for the benchmarks: seconds, SQL statements (and
how many of them wrote) and rows written (inserted, updated and deleted, from PostgreSQL's
table statistics). Import after django.setup()."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection

WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)", re.IGNORECASE)


@dataclass
class Cost:
    seconds: float = 0.0
    statements: int = 0
    writing: int = 0
    rows: int = 0

    def __str__(self) -> str:
        return (f"{self.seconds:.2f} s, {self.statements} statements ({self.writing} writing), "
                f"{self.rows} rows written")  # fmt: skip


def rows_written() -> int:
    """Rows inserted, updated and deleted in this database so far (the statistics collector's
    counts, flushed first)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(1.2)  # the flush happens when the backend goes idle
    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables")
        return int(cursor.fetchone()[0] or 0)


@contextmanager
def measured() -> Iterator[Cost]:
    """The cost of the block (its statements on this thread's connection), filled in when it
    ends."""
    cost = Cost()

    def count(execute, sql, params, many, context):
        cost.statements += 1
        cost.writing += bool(WRITES.match(sql))
        return execute(sql, params, many, context)

    before = rows_written()
    with connection.execute_wrapper(count):
        started = time.perf_counter()
        yield cost
        cost.seconds = time.perf_counter() - started
    cost.rows = rows_written() - before
