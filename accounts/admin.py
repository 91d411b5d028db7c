from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.http import HttpResponse
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, User
from accounts.selectors import audit_write
from accounts.services import token_revoke

admin.site.register(User, UserAdmin)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created with `manage.py create_token` (the only time one is shown); here
    they are listed and revoked."""

    list_display = ["prefix", "user", "name", "scope", "created_at", "expires_at", "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "user__username"]
    readonly_fields = [f.name for f in ApiToken._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            token_revoke(token=token)
        self.message_user(request, f"{queryset.count()} token(s) revoked.", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: nobody edits or deletes the trail here (PRODRAG_AUDIT_RETENTION_DAYS purges
    it). Searching a number finds the events about, or showing, that document or object."""

    list_display = [
        "at",
        "actor_name",
        "via",
        "action",
        "target_repr",
        "query_start",
        "returned",
        "cited",
    ]
    list_filter = ["action", "via", ("actor", admin.RelatedOnlyFieldListFilter), "target_type"]
    date_hierarchy = "at"
    search_fields = ["actor_name", "query", "answer", "target_repr", "token_prefix"]
    actions = ["export_csv", "export_json"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip().isdigit():
            number = int(search_term)
            found |= queryset.filter(target_id=number) | queryset.filter(
                returned_documents__contains=[number]
            )
        return found, duplicates

    @admin.display(description="query")
    def query_start(self, obj: AuditEvent) -> str:
        return obj.query if len(obj.query) <= 80 else obj.query[:79] + "\u2026"

    @admin.display(description="documents returned")
    def returned(self, obj: AuditEvent) -> int | str:
        searched = (AuditEvent.Action.SEARCH, AuditEvent.Action.ASK)
        return len(obj.returned_documents) if obj.action in searched else ""

    @admin.display(description="documents cited")
    def cited(self, obj: AuditEvent) -> int | str:
        return len(obj.cited_documents) if obj.action == AuditEvent.Action.ASK else ""

    @admin.action(description="Export the selected events as CSV")
    def export_csv(self, request, queryset):
        return self._export(queryset, "csv", "text/csv")

    @admin.action(description="Export the selected events as JSON")
    def export_json(self, request, queryset):
        return self._export(queryset, "json", "application/json")

    @staticmethod
    def _export(queryset, fmt: str, content_type: str) -> HttpResponse:
        response = HttpResponse(content_type=f"{content_type}; charset=utf-8")
        name = f"prodrag-audit-{timezone.now():%Y%m%d-%H%M%S}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        audit_write(events=queryset, fmt=fmt, out=response)
        return response
