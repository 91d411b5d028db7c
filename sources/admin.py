from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from documents.models import Collection
from sources.credentials import Credentials, credentials_changed, credentials_username
from sources.models import Source, SourceRun
from sources.services import source_check, source_save
from sources.tasks import source_sync_run


class SourceForm(forms.ModelForm):
    """The credentials are write-only: the user name is shown, the secret never (left empty,
    it stays as stored; "clear" removes both)."""

    username = forms.CharField(required=False, help_text="User name or access key id.")
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Password, token or secret key; or env:NAME to read it from the worker's "
        "environment variable NAME. Never shown; leave empty to keep the stored one.",
    )
    clear_credentials = forms.BooleanField(required=False)

    class Meta:
        model = Source
        fields = [
            "name",
            "kind",
            "location",
            "branch",
            "endpoint",
            "hosts",
            "collection",
            "permission_mode",
            "include",
            "exclude",
            "sync_minutes",
            "permission_minutes",
            "max_deletion_share",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["username"].initial = credentials_username(self.instance.credentials)

    def credentials(self) -> Credentials | None:
        """What to store: None keeps the stored credentials."""
        data = self.cleaned_data
        if data.get("clear_credentials"):
            return Credentials()
        username = data.get("username", "")
        stored = credentials_username(self.instance.credentials) if self.instance.pk else ""
        return credentials_changed(
            self.instance.credentials,
            username=None if username == stored else username,
            secret=data.get("secret") or None,  # left empty: the stored one stays
        )

    def _post_clean(self):
        super()._post_clean()
        if self.errors or not self.cleaned_data.get("collection"):
            return
        # The checks source_save makes, shown on the form's fields.
        try:
            source_check(source=self.instance)
        except ValidationError as exc:
            self._update_errors(exc)


class SourceRunInline(admin.TabularInline):
    model = SourceRun
    fields = readonly_fields = [
        "started_at",
        "outcome",
        "seen",
        "added",
        "changed",
        "unchanged",
        "deleted",
        "failed",
        "error",
        "errors",
    ]
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-started_at"]


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    """A source is its collection's: only those who manage the collection (documents.authority)
    see it, change it, sync it or read its runs; the collection list offers only collections
    they manage."""

    form = SourceForm
    list_display = ["name", "kind", "collection", "permission_mode", "state", "next_run"]
    # The collections of the sources listed (those the user manages), not every collection's.
    list_filter = [("collection", admin.RelatedOnlyFieldListFilter), "kind", "permission_mode"]
    search_fields = ["name"]
    readonly_fields = ["state", "next_run", "last_errors", "permissions_checked_at"]
    inlines = [SourceRunInline]
    actions = ["sync_now"]

    def get_queryset(self, request):
        sources = super().get_queryset(request).select_related("collection")
        if request.user.is_superuser:
            return sources
        return sources.filter(collection__in=Collection.objects.managed_by(request.user))

    def _member(self, request) -> bool:
        user = request.user
        return (
            user.is_active
            and user.is_staff
            and (user.is_superuser or Collection.objects.managed_by(user).exists())
        )

    def has_module_permission(self, request):
        return self._member(request)

    def has_view_permission(self, request, obj=None):
        return self._member(request)  # get_queryset limits which

    def has_add_permission(self, request):
        return self._member(request)

    def has_change_permission(self, request, obj=None):
        return self._member(request)

    def has_delete_permission(self, request, obj=None):
        return self._member(request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "collection" and not request.user.is_superuser:
            kwargs["queryset"] = Collection.objects.managed_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.owner = request.user
        if not request.user.is_superuser and not (
            Collection.objects.managed_by(request.user).filter(pk=obj.collection_id).exists()
        ):
            raise PermissionDenied
        source_save(source=obj, credentials=form.credentials())

    @admin.display(description="state")
    def state(self, obj: Source) -> str:
        """The running sync's progress, or the last run's outcome and counts."""
        run = obj.runs.first() if obj.pk else None
        if run is None:
            return "never synced"
        if run.outcome == SourceRun.Outcome.RUNNING:
            done = run.added + run.changed + run.unchanged + run.failed
            return (
                f"running since {run.started_at:%H:%M:%S}: {done} of {run.seen} items"
                if run.seen
                else f"running since {run.started_at:%H:%M:%S}: listing the source"
            )
        return (
            f"{run.get_outcome_display()} ({run.started_at:%Y-%m-%d %H:%M}): {run.seen} seen, "
            f"{run.added} added, {run.changed} changed, {run.unchanged} unchanged, "
            f"{run.deleted} deleted, {run.failed} failed"
        )

    @admin.display(description="next run")
    def next_run(self, obj: Source) -> str:
        if not obj.pk:
            return "-"
        run = obj.runs.first()
        sync = obj.next_sync_at(run.started_at if run else None)
        text = f"sync {sync:%Y-%m-%d %H:%M}" if sync else "sync only when asked"
        if (permissions := obj.next_permission_pass_at()) is not None:
            text += f"; permissions {permissions:%Y-%m-%d %H:%M}"
        return text

    @admin.display(description="last errors")
    def last_errors(self, obj: Source) -> str:
        run = obj.runs.exclude(outcome=SourceRun.Outcome.RUNNING).first() if obj.pk else None
        if run is None:
            return "-"
        lines = [run.error] if run.error else []
        lines += [f"{key}: {reason}" for key, reason in run.errors[:20]]
        if len(run.errors) > 20:
            lines.append(f"... and {len(run.errors) - 20} more (the runs below)")
        return "\n".join(lines) or "none"

    @admin.action(description="Sync the selected sources now")
    def sync_now(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))  # already limited to managed ones
        for pk in ids:
            transaction.on_commit(lambda pk=pk: source_sync_run.delay(pk))
        self.message_user(request, f"{len(ids)} source(s) queued for a sync.", messages.SUCCESS)
