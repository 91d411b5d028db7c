from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "documents"
    verbose_name = "Documents"

    def ready(self) -> None:
        from accounts.selectors import audit_readability_register
        from core.metrics import state_collector_register
        from documents import extension, signals  # noqa: F401  (connect their receivers)
        from documents.metrics import DocumentStates
        from documents.selectors import objects_readable_among

        state_collector_register(DocumentStates())
        # The audit trail (accounts) shows a viewer only what documents.authority lets them read.
        audit_readability_register(objects_readable_among)
