from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date

from accounts.models import AuditEvent
from accounts.selectors import audit_write


class Command(BaseCommand):
    help = "Write audit events as CSV or JSON (to standard output, or --output FILE)."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["csv", "json"], default="csv", dest="fmt")
        parser.add_argument("--since", help="First day (YYYY-MM-DD, UTC), inclusive.")
        parser.add_argument("--until", help="Last day (YYYY-MM-DD, UTC), inclusive.")
        parser.add_argument("--action", action="append", choices=AuditEvent.Action.values)
        parser.add_argument("--actor", help="Username.")
        parser.add_argument("--document", type=int, help="Events about or showing this document.")
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args, fmt, since, until, action, actor, document, output, **options):
        events = AuditEvent.objects.all()
        for bound, lookup in ((since, "at__date__gte"), (until, "at__date__lte")):
            if bound is not None:
                day = parse_date(bound)
                if day is None:
                    raise CommandError(f"Not a date (YYYY-MM-DD): {bound!r}.")
                events = events.filter(**{lookup: day})
        if action:
            events = events.filter(action__in=action)
        if actor:
            events = events.filter(actor_name=actor)
        if document is not None:
            events = events.filter(target_type="document", target_id=document) | events.filter(
                returned_documents__contains=[document]
            )
        if output is None:
            count = audit_write(events=events, fmt=fmt, out=self.stdout)
        else:
            with open(output, "w", encoding="utf-8", newline="") as out:
                count = audit_write(events=events, fmt=fmt, out=out)
        self.stderr.write(f"{count} event(s) written.")
