from rest_framework import serializers

from chat.models import Conversation, Message
from chat.prompts import TASKS
from chat.services import MAX_QUESTION_CHARS


class MessageSerializer(serializers.ModelSerializer):
    mode = serializers.ChoiceField(
        choices=[("", "none: a question"), *Message.Mode.choices],
        read_only=True,
        help_text="How an answer was made; empty for a question.",
    )
    withheld = serializers.SerializerMethodField(
        help_text="True if a document the answer drew on is no longer readable by the user: "
        "then its text is a notice, and its sources and citations are empty. For a question: "
        "its query was rewritten from such an answer, and is empty."
    )

    def get_withheld(self, message) -> bool:
        return getattr(message, "withheld", False)

    class Meta:
        model = Message
        fields = [
            "id",
            "role",
            "question",
            "text",
            "query",
            "scope",
            "mode",
            "sources",
            "cited",
            "citations_dropped",
            "links_removed",
            "notice",
            "withheld",
            "model",
            "seconds",
            "created_at",
        ]
        read_only_fields = fields


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = ["id", "title", "created_at", "updated_at"]
        read_only_fields = fields


class AskSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=MAX_QUESTION_CHARS)
    conversation = serializers.IntegerField(
        required=False, help_text="Continue this conversation of yours; omitted: a new one."
    )
    scope = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        default=list,
        help_text="Collection ids to answer from; empty: every collection the user may read.",
    )
    task = serializers.ChoiceField(choices=list(TASKS), default="answer")
    stream = serializers.BooleanField(
        default=False, help_text="Answer as server-sent events while it is written."
    )


class FeedbackSerializer(serializers.Serializer):
    helpful = serializers.BooleanField()
    comment = serializers.CharField(required=False, default="", allow_blank=True, max_length=4000)


class AskResponseSerializer(serializers.Serializer):
    conversation = serializers.IntegerField()
    question = MessageSerializer()
    answer = MessageSerializer()
