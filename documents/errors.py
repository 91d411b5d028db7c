"""Errors worth another try later: the database or the embedding endpoint was unreachable.
Their own module, so that tasks.py can name them at import without importing the services
(which import the tasks, to queue them)."""

from django.db import InterfaceError, OperationalError

from documents.embedding import EmbeddingUnavailable

TRANSIENT_ERRORS = (OperationalError, InterfaceError, EmbeddingUnavailable)
