from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiToken
from accounts.replicas import ApiReadsFromReplica
from chat.api.serializers import (
    AskResponseSerializer,
    AskSerializer,
    ConversationSerializer,
    FeedbackSerializer,
    MessageSerializer,
)
from chat.models import Conversation, Message
from chat.selectors import access_answer, access_conversation, answers_withhold
from chat.services import (
    QuestionError,
    answer_create,
    feedback_record,
    question_prepare,
    question_search,
    question_store,
)
from chat.streams import answer_sse, sse_headers


class AskView(APIView):
    """POST: ask a question, in a new conversation or one of the user's own. The answer rests
    only on passages the user may read and cites them. With `stream`, server-sent events."""

    required_scope = ApiToken.Scope.READ  # asking changes no document

    @extend_schema(
        request=AskSerializer,
        responses={
            201: AskResponseSerializer,
            (200, "text/event-stream"): OpenApiResponse(
                description="With `stream`: events question, sources, delta, reset, done "
                "(the answer, as in the 201 body), error."
            ),
        },
    )
    def post(self, request):
        given = AskSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        conversation = (
            access_conversation(request.user, data["conversation"])
            if "conversation" in data
            else None
        )
        try:
            question = question_prepare(
                conversation=conversation,
                user=request.user,
                text=data["question"],
                scope=data["scope"],
            )
        except QuestionError as error:
            raise exceptions.ValidationError(str(error)) from error
        # Searched before anything is stored: refused as overloaded (503), the ask leaves
        # nothing behind.
        retrieved = question_search(question=question, user=request.user)
        question = question_store(question=question, owner=request.user)
        if data["stream"]:
            events = answer_sse(
                question=question,
                user=request.user,
                task=data["task"],
                retrieved=retrieved,
                opening={
                    "conversation": question.conversation_id,
                    "question": MessageSerializer(question).data,
                },
                sources=lambda described: {"sources": described},
                done=lambda answer: MessageSerializer(answer).data,
            )
            return sse_headers(StreamingHttpResponse(events, content_type="text/event-stream"))
        answer = answer_create(
            question=question, user=request.user, task=data["task"], retrieved=retrieved
        )
        return Response(
            {
                "conversation": question.conversation_id,
                "question": MessageSerializer(question).data,
                "answer": MessageSerializer(answer).data,
            },
            status=status.HTTP_201_CREATED,
        )


class ConversationViewSet(ApiReadsFromReplica, viewsets.ReadOnlyModelViewSet):
    """The user's own conversations; anyone else's answers 404, superusers' included."""

    serializer_class = ConversationSerializer

    def get_queryset(self):
        return Conversation.objects.of(self.request.user)

    def get_object(self):
        return access_conversation(self.request.user, self.kwargs["pk"])

    @extend_schema(responses=MessageSerializer(many=True))
    @action(detail=True, methods=["get"])
    def messages(self, request, pk=None):
        conversation = self.get_object()
        page = self.paginate_queryset(conversation.messages.order_by("created_at", "id"))
        page = answers_withhold(request.user, page)
        return self.get_paginated_response(MessageSerializer(page, many=True).data)


class AnswerViewSet(ApiReadsFromReplica, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """An answer in one of the user's conversations, and feedback on it."""

    serializer_class = MessageSerializer
    queryset = Message.objects.none()  # objects come from access_answer; this types the id
    required_scope = None  # by method, except where an action says otherwise

    def get_object(self):
        return access_answer(self.request.user, self.kwargs["pk"])

    @extend_schema(request=FeedbackSerializer, responses={201: FeedbackSerializer})
    @action(detail=True, methods=["post"], required_scope=ApiToken.Scope.READ)
    def feedback(self, request, pk=None):
        """Thumbs up or down, with an optional comment: one per user and answer (a second
        replaces the first)."""
        answer = self.get_object()
        given = FeedbackSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        feedback_record(answer=answer, user=request.user, **given.validated_data)
        return Response(given.validated_data, status=status.HTTP_201_CREATED)
