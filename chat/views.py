"""The chat pages. Asking works as a plain form post (the answer is made, then the page
reloads at it) and, when the page's script asks for `text/event-stream`, as a stream of
server-sent events carrying the answer as it is written."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.api.throttles import ChatAskThrottle, throttled
from accounts.replicas import page_reads_from_replica
from chat.forms import AskForm, FeedbackForm
from chat.models import Conversation, Message
from chat.selectors import access_answer, access_conversation, answers_withhold, cited_source
from chat.services import (
    QuestionError,
    answer_create,
    conversation_start,
    feedback_record,
    question_add,
)
from chat.streams import answer_sse, sse_headers


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return _page(request, None, AskForm(user=request.user))


@login_required
@page_reads_from_replica
def conversation(request: HttpRequest, pk: int) -> HttpResponse:
    found = access_conversation(request.user, pk)
    form = AskForm(user=request.user, initial={"conversation": found.pk, **_last_scope(found)})
    return _page(request, found, form)


@login_required
@require_POST
@throttled(ChatAskThrottle)
def ask(request: HttpRequest) -> HttpResponse:
    form = AskForm(request.POST, user=request.user)
    found = None
    if form.is_valid():
        pk = form.cleaned_data["conversation"]
        found = access_conversation(request.user, pk) if pk else None
        try:
            question = question_add(
                conversation=found or conversation_start(owner=request.user),
                user=request.user,
                text=form.cleaned_data["question"],
                scope=[c.pk for c in form.cleaned_data["scope"]],
            )
        except QuestionError as exc:
            form.add_error("question", str(exc))
        else:
            return _answer(request, question, form.cleaned_data["task"] or "answer")
    if _streaming(request):
        return JsonResponse({"errors": form.errors}, status=400)
    return _page(request, found, form, status=400)


@login_required
@require_POST
@throttled(ChatAskThrottle)
def regenerate(request: HttpRequest, pk: int) -> HttpResponse:
    previous = access_answer(request.user, pk)
    return _answer(request, previous.question, previous.generation.get("task", "answer"))


@login_required
@require_POST
def feedback(request: HttpRequest, pk: int) -> HttpResponse:
    answer = access_answer(request.user, pk)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        if _wants_json(request):
            return JsonResponse({"errors": form.errors}, status=400)
        return _page(request, answer.conversation, AskForm(user=request.user), status=400)
    feedback_record(
        answer=answer,
        user=request.user,
        helpful=form.cleaned_data["helpful"],
        comment=form.cleaned_data["comment"],
    )
    if _wants_json(request):
        return JsonResponse({"saved": True})
    return redirect(f"{reverse('chat:conversation', args=[answer.conversation_id])}#m{pk}")


@login_required
@page_reads_from_replica
def source(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    return render(
        request,
        "chat/source.html",
        {"cited": cited_source(request.user, answer_pk=pk, number=number)},
    )


def _page(request, found: Conversation | None, form: AskForm, status: int = 200) -> HttpResponse:
    messages = answers_withhold(
        request.user,
        found.messages.select_related("question").prefetch_related("feedback")
        if found is not None
        else Message.objects.none(),
    )
    return render(
        request,
        "chat/conversation.html",
        {
            "conversation": found,
            "conversations": Conversation.objects.of(request.user)[:50],
            "messages": messages,
            "form": form,
        },
        status=status,
    )


def _last_scope(found: Conversation) -> dict:
    last = found.messages.filter(role=Message.Role.USER).order_by("-created_at", "-id").first()
    return {"scope": last.scope} if last is not None and last.scope else {}


def _streaming(request: HttpRequest) -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _answer(request: HttpRequest, question: Message, task: str) -> HttpResponse:
    if _streaming(request):
        events = answer_sse(
            question=question,
            user=request.user,
            task=task,
            opening={
                "conversation": reverse("chat:conversation", args=[question.conversation_id]),
                "title": question.conversation.title,
                "html": render_to_string("chat/_question.html", {"message": question}, request),
            },
            sources=lambda described: {"count": len(described)},
            done=lambda answer: {
                "id": answer.pk,
                "html": render_to_string("chat/_answer.html", {"message": answer}, request),
            },
        )
        return sse_headers(StreamingHttpResponse(events, content_type="text/event-stream"))
    answer = answer_create(question=question, user=request.user, task=task)
    return redirect(f"{reverse('chat:conversation', args=[question.conversation_id])}#m{answer.pk}")
