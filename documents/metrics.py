"""What the metrics report of documents, read at scrape time (registered with core.metrics by
the documents app)."""

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily


class DocumentStates:
    """Documents per status and the ingestion backlog, counted at scrape time."""

    def collect(self):
        from documents.selectors import document_status_counts

        try:
            counts = document_status_counts()
        except DatabaseError:
            return  # the database is down: /readyz says so; the event metrics still answer
        documents = GaugeMetricFamily(
            "prodrag_documents", "Documents, by ingestion status.", labels=["status"]
        )
        for status, count in sorted(counts.items()):
            documents.add_metric([status], count)
        yield documents
        yield GaugeMetricFamily(
            "prodrag_ingestion_queue_depth",
            "Documents waiting for ingestion to start (status pending).",
            value=counts["pending"],
        )
