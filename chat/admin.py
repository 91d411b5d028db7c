from django.contrib import admin

from chat.models import Feedback
from chat.selectors import feedback_visible_to


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """What staff thought of the answers: for knowledge managers tending the documents.
    Conversations themselves stay private to their owners and are not listed here. A viewer
    sees only the feedback on answers all of whose documents they may read (superusers see
    all), so questions, answers and their search match nothing else
    (chat.selectors.feedback_visible_to)."""

    list_display = ["created_at", "helpful", "question", "comment", "user"]
    list_filter = ["helpful", "created_at"]
    search_fields = ["comment", "message__text", "message__question__text"]
    readonly_fields = [
        "message",
        "user",
        "helpful",
        "comment",
        "answer",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields

    def get_queryset(self, request):
        return feedback_visible_to(request.user).select_related("message__question", "user")

    @admin.display(description="Question")
    def question(self, feedback):
        return feedback.message.question.text[:120] if feedback.message.question else ""

    @admin.display(description="Answer")
    def answer(self, feedback):
        return feedback.message.text

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
