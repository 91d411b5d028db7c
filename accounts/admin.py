from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.contrib.auth.models import Group
from django.http import HttpResponse
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, DirectorySync, ExternalIdentity, User
from accounts.selectors import audit_readable, audit_redact, audit_write
from accounts.services import token_revoke

DIRECTORY_OWNS = (
    "{group} is a directory group ({directory}): the directory decides its members, and its "
    "next sync or sign-in would undo a change made here. Change it in the directory."
)


class DirectoryUserForm(UserChangeForm):
    """Memberships of directory groups are the directory's: a hand change to them is refused,
    saying so; groups given by hand stay editable."""

    def clean_groups(self):
        chosen = set(self.cleaned_data["groups"])
        held = set(self.instance.groups.all()) if self.instance.pk else set()
        for group in chosen ^ held:
            if hasattr(group, "directory"):
                raise forms.ValidationError(
                    DIRECTORY_OWNS.format(
                        group=group.name, directory=group.directory.get_directory_display()
                    )
                )
        return self.cleaned_data["groups"]


class ExternalIdentityInline(admin.TabularInline):
    model = ExternalIdentity
    fields = readonly_fields = ["directory", "subject"]
    extra = 0
    can_delete = False
    verbose_name_plural = "Directories (they set this user's directory groups and, for LDAP "
    verbose_name_plural += "and SCIM, whether the user is active: a change here is undone)"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(User)
class DirectoryAwareUserAdmin(UserAdmin):
    form = DirectoryUserForm
    inlines = [ExternalIdentityInline]
    list_display = [*UserAdmin.list_display, "is_active", "directories"]
    list_filter = [*UserAdmin.list_filter, "identities__directory"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("identities")

    @admin.display(description="directories")
    def directories(self, obj: User) -> str:
        return ", ".join(i.directory for i in obj.identities.all()) or "local"


admin.site.unregister(Group)


@admin.register(Group)
class DirectoryAwareGroupAdmin(GroupAdmin):
    """A directory group's name is its directory's, and it is not deleted here (the next sync
    would create it again, without its grants)."""

    list_display = ["name", "source"]
    list_filter = ["directory__directory"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("directory")

    @admin.display(description="source")
    def source(self, obj: Group) -> str:
        marked = getattr(obj, "directory", None)
        return f"{marked.get_directory_display()} (members set by it)" if marked else "by hand"

    def get_readonly_fields(self, request, obj=None):
        return ["name"] if obj is not None and hasattr(obj, "directory") else []

    def has_delete_permission(self, request, obj=None):
        if obj is not None and hasattr(obj, "directory"):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(DirectorySync)
class DirectorySyncAdmin(admin.ModelAdmin):
    """The LDAP sync's runs: what each found and changed, or why it changed nothing."""

    list_display = [
        "started_at",
        "outcome",
        "users_seen",
        "groups_seen",
        "users_created",
        "users_deactivated",
        "memberships_added",
        "memberships_removed",
    ]
    list_filter = ["outcome"]
    readonly_fields = [f.name for f in DirectorySync._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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
