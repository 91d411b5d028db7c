"""What the metrics report of sources, read at scrape time (registered with core.metrics by
the sources app)."""

from django.db import DatabaseError
from django.db.models import Max, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from sources.models import Source, SourceRun


class SourceStates:
    """Each source's age of its last successful sync, and a mirror source's age of its last
    permission pass (the lag of a revocation there): growing past the source's interval, it
    says the source is not being synced."""

    def collect(self):
        done = Q(runs__outcome=SourceRun.Outcome.DONE)
        try:
            sources = list(
                Source.objects.annotate(last=Max("runs__finished_at", filter=done)).values_list(
                    "name", "last", "permission_mode", "permissions_checked_at"
                )
            )
        except DatabaseError:
            return  # the database is down: /readyz says so
        age = GaugeMetricFamily(
            "prodrag_source_last_success_age_seconds",
            "Seconds since each source's last sync that ended done (absent: never).",
            labels=["source"],
        )
        lag = GaugeMetricFamily(
            "prodrag_source_permission_lag_seconds",
            "Seconds since each mirror source's last permission pass began: how old the "
            "readers it mirrors may be (absent: never).",
            labels=["source"],
        )
        now = timezone.now()
        for name, last, mode, checked in sources:
            if last is not None:
                age.add_metric([name], (now - last).total_seconds())
            if mode == Source.PermissionMode.MIRROR and checked is not None:
                lag.add_metric([name], (now - checked).total_seconds())
        yield age
        yield lag
