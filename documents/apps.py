from django.apps import AppConfig
from django.db import connection


class DocumentsConfig(AppConfig):
    name = "documents"
    verbose_name = "Documents"

    def ready(self) -> None:
        from accounts.selectors import audit_readability_register
        from core.health import readiness_check_register
        from core.metrics import state_collector_register
        from documents import checks, extension, signals  # noqa: F401  (receivers, checks)
        from documents.metrics import DocumentStates
        from documents.selectors import objects_readable_among

        state_collector_register(DocumentStates())
        readiness_check_register(
            "database", _database_ready, after_failure=lambda: connection.close()
        )
        readiness_check_register("embedding", _embedding_ready)
        # The audit trail (accounts) shows a viewer only what documents.authority lets them read.
        audit_readability_register(objects_readable_among)


def _database_ready() -> str:
    from documents.extension import pgvector_enabled

    return f"pgvector {pgvector_enabled()}"


def _embedding_ready() -> str:
    from documents.embedding import embedder

    provider = embedder()
    return f"{provider.model} ({provider.dimensions} dimensions)"
