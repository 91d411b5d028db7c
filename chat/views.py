"""The chat pages. Asking works as a plain form post (the answer is made, then the page
reloads at it) and, when the page's script asks for `text/event-stream`, as a stream of
server-sent events carrying the answer as it is written."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.api.throttles import ChatAskThrottle, throttled
from accounts.replicas import page_reads_from_replica
from chat.forms import AskForm, FeedbackForm
from chat.gaps import SHOWN, gaps_grouped, gaps_table
from chat.models import Conversation, Message
from chat.quality import (
    MOST_WEEKS,
    WEEKS,
    Table,
    answers_weekly,
    collection_chosen,
    feedback_by_collection,
    feedback_collections,
    feedback_weekly,
    ingestion_summary,
    runs_by_set,
    runs_table,
    weeks_ending,
)
from chat.selectors import access_answer, access_conversation, answers_withhold, cited_source
from chat.services import (
    QuestionError,
    answer_create,
    feedback_record,
    question_prepare,
    question_search,
    question_store,
)
from chat.streams import answer_sse, sse_headers
from core.charts import Series, Stack, bar_chart, line_chart
from core.spreadsheets import SpreadsheetWriter


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
            question = question_prepare(
                conversation=found,
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
    # As the user may see the question now: a query withheld with the answer it was rewritten
    # from is not searched again; the question's own words are.
    [question] = answers_withhold(request.user, [previous.question])
    return _answer(request, question, previous.generation.get("task", "answer"))


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
    """Answer a question: a new one (prepared, not stored yet) or one asked before
    (Regenerate). The search comes first: refused as overloaded, it raises before anything is
    stored (the middleware answers 503), so a refusal leaves every earlier row as it was."""
    retrieved = question_search(question=question, user=request.user)
    if question.pk is None:
        question = question_store(question=question, owner=request.user)
    if _streaming(request):
        events = answer_sse(
            question=question,
            user=request.user,
            task=task,
            retrieved=retrieved,
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
    answer = answer_create(question=question, user=request.user, task=task, retrieved=retrieved)
    return redirect(f"{reverse('chat:conversation', args=[question.conversation_id])}#m{answer.pk}")


# --- the admin's Quality page ---------------------------------------------------------------


def quality(request: HttpRequest) -> HttpResponse:
    """Evaluation runs, feedback, answers, knowledge gaps and ingestion, as charts with their
    tables (chat.quality; every number limited to what the viewer may see). Needs the
    `retrieval.view_quality` permission (superusers have it)."""
    _quality_allowed(request)
    view = _QualityView(request)
    runs = view.runs()
    feedback = view.table("feedback")
    answers = view.table("answers")
    statuses, failures = ingestion_summary(request.user)
    context = {
        **admin.site.each_context(request),
        "title": "Quality",
        "weeks": view.weeks,
        "collections": feedback_collections(request.user),
        "collection": view.collection,
        "run_charts": [
            (
                name,
                line_chart(
                    title=f"nDCG@10 of {name} over time",
                    series=[
                        Series(
                            name=mode,
                            points=[(r.created_at, r.ndcg_at_10) for r in series],
                            marked=frozenset(
                                i for i, r in enumerate(series) if r.regressed_from is not None
                            ),
                        )
                        for mode, series in modes.items()
                    ],
                    y_label="nDCG@10 (0 to 1)",
                    x_label="time of the run (UTC)",
                    y_max=1.0,
                    mark_label=f"fell more than {settings.QUALITY_DROP:g}",
                ),
            )
            for name, modes in runs.items()
        ],
        "runs": runs_table(runs),
        "regressions": sum(
            r.regressed_from is not None for m in runs.values() for s in m.values() for r in s
        ),
        "feedback": feedback,
        "feedback_chart": _weekly_chart(
            feedback,
            "Helpful and not helpful ratings per week",
            ("#009e73", "#d55e00"),
        )
        if any(sum(row[1:]) for row in feedback.rows)
        else None,
        "feedback_by_collection": view.table("feedback-by-collection"),
        "answers": answers,
        "answers_chart": _weekly_chart(
            answers, "Answers per week by kind", ("#0072b2", "#e69f00", "#999")
        )
        if any(sum(row[1:]) for row in answers.rows)
        else None,
        "gaps": view.gaps()[:SHOWN],
        "gap_count": len(view.gaps()),
        "statuses": statuses,
        "statuses_chart": bar_chart(
            title="Documents by ingestion status",
            columns=[row[0] for row in statuses.rows],
            stacks=[Stack("documents", [row[1] for row in statuses.rows])],
            y_label="documents",
            x_label="status",
        )
        if any(row[1] for row in statuses.rows)
        else None,
        "failures": failures,
        "query": request.GET.urlencode(),
    }
    return render(request, "admin/quality.html", context)


def quality_csv(request: HttpRequest, name: str) -> HttpResponse:
    """One of the Quality page's tables as CSV, with the page's ?weeks and ?collection."""
    _quality_allowed(request)
    view = _QualityView(request)
    if name not in QUALITY_TABLES:
        raise Http404("No such table.")
    table = view.table(name)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="quality-{name}.csv"'
    writer = SpreadsheetWriter(response)
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return response


QUALITY_TABLES = (
    "runs", "feedback", "feedback-by-collection", "answers", "gaps", "ingestion", "failures",
)  # fmt: skip


def _quality_allowed(request: HttpRequest) -> None:
    if not request.user.has_perm("retrieval.view_quality"):
        raise PermissionDenied("The Quality page needs the view_quality permission.")


class _QualityView:
    """The page's parameters and the tables built from them (the gaps grouped once)."""

    def __init__(self, request: HttpRequest) -> None:
        self.user = request.user
        raw = request.GET.get("weeks", "")
        self.weeks = min(MOST_WEEKS, max(1, int(raw))) if raw.isdigit() else WEEKS
        self.mondays = weeks_ending(timezone.now(), self.weeks)
        self.collection = collection_chosen(request.user, request.GET.get("collection"))
        self._gaps = None

    def runs(self):
        return runs_by_set(self.user)

    def gaps(self):
        if self._gaps is None:
            self._gaps = gaps_grouped(self.user, since=self.mondays[0])
        return self._gaps

    def table(self, name: str) -> Table:
        if name == "runs":
            return runs_table(self.runs())
        if name == "feedback":
            chosen = self.collection.pk if self.collection else None
            return feedback_weekly(self.user, weeks=self.mondays, collection=chosen)
        if name == "feedback-by-collection":
            return feedback_by_collection(self.user, since=self.mondays[0])
        if name == "answers":
            return answers_weekly(self.user, weeks=self.mondays)
        if name == "gaps":
            return gaps_table(self.gaps())
        statuses, failures = ingestion_summary(self.user)
        return statuses if name == "ingestion" else failures


def _weekly_chart(table: Table, title: str, colours: tuple[str, ...]):
    return bar_chart(
        title=title,
        columns=[row[0][5:] for row in table.rows],  # MM-DD of each week's Monday
        stacks=[
            Stack(name, [row[i] for row in table.rows], colour)
            for i, (name, colour) in enumerate(zip(table.header[1:], colours, strict=True), 1)
        ],
        y_label=f"{table.caption.split()[0].lower()} per week",
        x_label="week starting (month-day)",
    )
