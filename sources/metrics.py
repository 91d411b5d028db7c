"""What the metrics report of sources, read at scrape time (registered with core.metrics by
the sources app)."""

from django.db import DatabaseError
from django.db.models import Max, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from sources.models import Source, SourceRun


class SourceStates:
    """Each source's age of its last successful sync: growing past the source's interval, it
    says the source is not being synced."""

    def collect(self):
        done = Q(runs__outcome=SourceRun.Outcome.DONE)
        try:
            sources = list(
                Source.objects.annotate(last=Max("runs__finished_at", filter=done)).values_list(
                    "name", "last"
                )
            )
        except DatabaseError:
            return  # the database is down: /readyz says so
        age = GaugeMetricFamily(
            "prodrag_source_last_success_age_seconds",
            "Seconds since each source's last sync that ended done (absent: never).",
            labels=["source"],
        )
        now = timezone.now()
        for name, last in sources:
            if last is not None:
                age.add_metric([name], (now - last).total_seconds())
        yield age
