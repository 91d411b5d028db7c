from django.contrib import admin, messages
from django.db import transaction

from documents.authority import may_manage_collection
from documents.models import Collection
from retrieval.evaluation_runs import evaluation_sets_visible_to
from retrieval.models import EvaluationRun, EvaluationSet
from retrieval.tasks import evaluation_set_run


@admin.register(EvaluationSet)
class EvaluationSetAdmin(admin.ModelAdmin):
    """Judged queries and their schedule. A viewer sees the sets of collections they may read
    in or manage (sets over every collection: superusers only), and changes or runs those of
    collections they manage. Sets are registered by `manage.py evaluate DIR` and
    `manage.py feedback_evaluation_set`; their runs are charted on the Quality page."""

    list_display = ["name", "collection", "source", "query_count", "modes", "schedule_hours"]
    list_filter = ["source"]
    search_fields = ["name"]
    fields = ["name", "collection", "source", "origin", "query_count", "modes", "schedule_hours"]
    readonly_fields = ["name", "collection", "source", "origin", "query_count"]
    actions = ["run_now"]

    def get_queryset(self, request):
        return evaluation_sets_visible_to(request.user).select_related("collection")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return super().has_change_permission(request)
        return _may_manage(request.user, obj.collection)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    @admin.display(description="Queries")
    def query_count(self, evaluation_set):
        return len(evaluation_set.queries)

    @admin.action(description="Run now (in the background)", permissions=["change"])
    def run_now(self, request, queryset):
        allowed = [s for s in queryset if _may_manage(request.user, s.collection)]
        for evaluation_set in allowed:
            transaction.on_commit(
                lambda pk=evaluation_set.pk: evaluation_set_run.delay(
                    pk, EvaluationRun.Trigger.ADMIN
                )
            )
        self.message_user(
            request,
            f"{len(allowed)} set(s) queued; their runs appear on the Quality page when done.",
            messages.SUCCESS,
        )
        if skipped := len(queryset) - len(allowed):
            self.message_user(
                request, f"{skipped} set(s) of collections you do not manage left alone.",
                messages.WARNING,
            )  # fmt: skip


def _may_manage(user, collection: Collection | None) -> bool:
    if collection is None:
        return user.is_active and user.is_superuser
    return may_manage_collection(user, collection)
