from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.http import HttpResponse
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, User
from accounts.selectors import audit_readable, audit_redact, audit_write
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

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset:
            token_revoke(token=token)
        self.message_user(request, f"{queryset.count()} token(s) revoked.", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: nobody edits or deletes the trail here (PRODRAG_AUDIT_RETENTION_DAYS purges
    it). Searching a number finds the events about, or showing, that document or object.

    An auditor (`view_auditevent`) sees every event, but what an event tells of a document or
    collection they may not read is withheld (accounts.selectors.audit_redact) on the list,
    the event's page and the exports; their search does not look into answers and titles,
    and a number finds only a document they may read. Superusers see everything."""

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

    def get_search_fields(self, request):
        if request.user.is_superuser:
            return self.search_fields
        return ["actor_name", "query", "token_prefix"]

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip().isdigit():
            number = int(search_term)
            about = queryset.filter(target_id=number)
            showing = queryset.filter(returned_documents__contains=[number])
            document = {("document", number)}
            if not audit_readable(viewer=request.user, refs=document):
                about = about.exclude(target_type__in=["document", "collection"])
                showing = queryset.none()
            found |= about | showing
        return found, duplicates

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        changelist.result_list = list(changelist.result_list)
        audit_redact(viewer=request.user, events=changelist.result_list)
        return changelist

    def get_object(self, request, object_id, from_field=None):
        event = super().get_object(request, object_id, from_field)
        if event is not None:
            audit_redact(viewer=request.user, events=[event])
        return event

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
        return self._export(request, queryset, "csv", "text/csv")

    @admin.action(description="Export the selected events as JSON")
    def export_json(self, request, queryset):
        return self._export(request, queryset, "json", "application/json")

    @staticmethod
    def _export(request, queryset, fmt: str, content_type: str) -> HttpResponse:
        response = HttpResponse(content_type=f"{content_type}; charset=utf-8")
        name = f"prodrag-audit-{timezone.now():%Y%m%d-%H%M%S}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        audit_write(events=queryset, fmt=fmt, out=response, viewer=request.user)
        return response
