from __future__ import annotations

import dataclasses

from django.db import connection, transaction

from accounts.models import AuditEvent
from accounts.services import audit_record
from retrieval.postings import REBUILD_SQL
from retrieval.selectors import passages_search
from retrieval.types import Filters, SearchResult


def search_perform(
    *,
    user,
    query: str,
    k: int,
    mode: str,
    filters: Filters,
    collapse: bool,
    expand: bool,
) -> SearchResult:
    """A person's or integration's search: passages_search, recorded in the audit trail with
    the passages it returned. (Searches made on a user's behalf, such as an answer's, are
    recorded by their own action.)

    Locks: none."""
    result = passages_search(
        user=user,
        query=query,
        k=k,
        mode=mode,
        filters=filters,
        collapse=collapse,
        expand=expand,
    )
    audit_record(
        action=AuditEvent.Action.SEARCH,
        actor=user,
        query=query,
        returned=[(passage.document_id, passage.chunk_id) for passage in result.passages],
        details={
            "mode": result.mode,
            "k": k,
            "filters": {
                name: value for name, value in dataclasses.asdict(filters).items() if value
            },
            "per_document": collapse,
            "expand": expand,
        },
    )
    return result


def postings_rebuild(*, k1: float, b: float) -> int:
    """Recompute every full-text posting's impact with these BM25 parameters and the current
    average passage length (retrieval.postings). Returns the postings written.

    Locks: SHARE on the chunk table until the commit (ingestion's writes wait; searches do
    not, and read the old postings until then)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in REBUILD_SQL:
            cursor.execute(sql, {"k1": k1, "b": b})
        return cursor.rowcount
