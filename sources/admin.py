from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction

from documents.models import Collection
from sources.models import Source, SourceRun
from sources.services import source_location_check
from sources.tasks import source_sync_run


class SourceForm(forms.ModelForm):
    class Meta:
        model = Source
        fields = [
            "name",
            "kind",
            "location",
            "branch",
            "collection",
            "include",
            "exclude",
            "sync_minutes",
            "max_deletion_share",
        ]

    def clean(self):
        cleaned = super().clean()
        if "kind" in cleaned and "location" in cleaned:
            try:
                cleaned["location"] = source_location_check(
                    kind=cleaned["kind"], location=cleaned["location"]
                )
            except ValueError as exc:
                self.add_error("location", str(exc))
        return cleaned


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
    list_display = ["name", "kind", "collection", "sync_minutes", "last_outcome"]
    search_fields = ["name"]
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
        super().save_model(request, obj, form, change)

    @admin.display(description="last run")
    def last_outcome(self, obj: Source) -> str:
        run = obj.runs.first()
        return f"{run.get_outcome_display()} ({run.started_at:%Y-%m-%d %H:%M})" if run else "-"

    @admin.action(description="Sync the selected sources now")
    def sync_now(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))  # already limited to managed ones
        for pk in ids:
            transaction.on_commit(lambda pk=pk: source_sync_run.delay(pk))
        self.message_user(request, f"{len(ids)} source(s) queued for a sync.", messages.SUCCESS)
