"""Management commands that change or read what the audit trail covers record their events as
made through a command (the person is whoever runs it on the server)."""

from django.core.management.base import BaseCommand

from accounts.models import AuditEvent
from accounts.services import AuditOrigin, audit_origin


class AuditedCommand(BaseCommand):
    def execute(self, *args, **options):
        with audit_origin(AuditOrigin(via=AuditEvent.Via.COMMAND)):
            return super().execute(*args, **options)
