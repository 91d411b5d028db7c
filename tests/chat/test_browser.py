"""The chat page in real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): sign in, ask, watch the answer stream in, follow a citation, give feedback.
With PRODRAG_SCREENSHOT=1 in the environment, the answered page is saved as
docs/chat-answer.png for the README (a plain run leaves the tracked picture alone); the admin's
Quality page likewise as docs/quality.png."""

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import sync_playwright
from pytest_django.live_server_helper import LiveServer

from chat.models import Feedback
from retrieval.models import EvaluationRun, EvaluationSet
from tests.accounts.factories import UserFactory
from tests.chat.test_quality import answered
from tests.fake_openai import FakeOpenAI

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(django_settings.BASE_DIR) / "docs" / "chat-answer.png"
QUALITY_SCREENSHOT = Path(django_settings.BASE_DIR) / "docs" / "quality.png"
LEAVE = "How many days of annual leave does an employee get?"
ANSWER = (
    "Every employee gets 27 days of paid annual leave per calendar year [1]. Sickness is "
    "reported to the manager before 9am [1]."
)


@pytest.fixture
def browser(monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: `make test` installs it.")
    # Playwright's sync API runs an event loop in this thread, and Django then refuses ORM
    # calls here; they are plain blocking calls from the test, not from a coroutine.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def site(transactional_db):
    """The app served on a free port, for this test only (pytest-django's `live_server` lives
    for the whole session, and its connections outlive the test database)."""
    server = LiveServer("localhost")
    yield server
    server.stop()


def test_a_staff_member_asks_watches_the_answer_stream_follows_a_citation_and_rates_it(
    browser, site, handbook, llm_endpoint
):
    collection = handbook["leave.md"].collection
    collection.open_to_staff = True
    collection.save()
    UserFactory(username="ada", password="a long passphrase")
    FakeOpenAI.replies, FakeOpenAI.stream_pause = [ANSWER], 0.05
    page = browser.new_page(viewport={"width": 1200, "height": 800})

    page.goto(f"{site.url}/chat/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "a long passphrase")
    page.click("form button[type=submit]")
    page.wait_for_selector("#id_question")
    # Record what the answer bubble shows while the answer is being written.
    page.evaluate(
        """() => {
          window.seen = [];
          new MutationObserver(() => {
            const text = document.querySelector('.answer.streaming .text');
            if (text) window.seen.push(text.textContent);
          }).observe(document.getElementById('messages'),
                     {subtree: true, childList: true, characterData: true});
        }"""
    )
    page.fill("#id_question", LEAVE)
    page.click("#ask button[type=submit]")
    page.wait_for_selector("article.answer:not(.streaming) a.cite", timeout=30_000)

    shown = page.inner_text("article.answer .text")
    assert "27 days of paid annual leave" in shown
    partial = [text for text in page.evaluate("window.seen") if 0 < len(text) < len(ANSWER)]
    assert any(ANSWER.startswith(text) for text in partial), "no partial answer was shown"
    assert "/chat/" in page.url and page.url.rstrip("/").split("/")[-1].isdigit()
    assert LEAVE in page.inner_text(".conversations li.current")
    if os.environ.get("PRODRAG_SCREENSHOT") == "1":
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.click("article.answer a.cite >> nth=0")
    page.wait_for_selector("mark#passage")
    assert "27 days of paid annual leave" in page.inner_text("mark#passage")
    page.go_back()

    page.fill("article.answer .feedback input[name=comment]", "Clear and cited")
    page.click("article.answer .feedback button[value='1']")
    page.wait_for_selector("text=Thanks for your feedback.")
    vote = Feedback.objects.get()
    assert (vote.helpful, vote.comment, vote.user.username) == (True, "Clear and cited", "ada")


COVERED = [
    "How many days of annual leave do I get?",
    "When do I have to report sickness?",
    "How far ahead must I book flights?",
    "How much may a hotel cost per night?",
]
NOT_COVERED = [
    "Where can I park my bicycle at the office?",
    "Is there bike parking near the building?",
    "Can I bring my dog to the office?",
    "Are pets allowed at work?",
]


def test_a_knowledge_manager_opens_quality_from_the_admin_and_reads_its_charts(
    browser, site, handbook
):
    """Runs, ratings and answers over six weeks, and gaps: each chart is drawn as an SVG with
    one point (or bar) per value, and its numbers are in the table under it. With
    PRODRAG_SCREENSHOT=1, the page is saved as docs/quality.png."""
    manager = UserFactory(username="km", password="a long passphrase", is_superuser=True,
                          is_staff=True)  # fmt: skip
    collection = handbook["leave.md"].collection
    leave = handbook["leave.md"]
    evaluation_set = EvaluationSet.objects.create(
        name="Handbook questions", collection=collection, source="sample", queries={}, qrels={}
    )
    scores = {"hybrid": [0.81, 0.83, 0.84, 0.79], "dense": [0.74, 0.76, 0.75, 0.70]}
    for mode, series in scores.items():
        for week, score in enumerate(series):
            run = EvaluationRun.objects.create(
                evaluation_set=evaluation_set, mode=mode, queries=15, ndcg_at_10=score,
                recall_at_100=1, mrr_at_10=score, latency_p50_ms=9, latency_p95_ms=20,
                embedding_model="all-MiniLM-L6-v2", embedding_runtime="onnx", trigger="schedule",
                regressed_from=series[week - 1] if week == 3 else None,
            )  # fmt: skip
            EvaluationRun.objects.filter(pk=run.pk).update(
                created_at=timezone.now() - timedelta(weeks=3 - week)
            )
    kinds = {"generated": 3, "extractive": 2, "not_covered": 1}
    for week in range(6):
        for kind, count in kinds.items():
            for n in range(count + week % 2):
                covered = kind != "not_covered"
                asked = (COVERED if covered else NOT_COVERED)[(week + n) % 4]
                answered(manager, asked, mode=kind, days_ago=7 * week,
                         documents=[leave.pk] if covered else [],
                         helpful=(n % 2 == 0) if covered else None)  # fmt: skip

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{site.url}/admin/")
    page.fill("#id_username", "km")
    page.fill("#id_password", "a long passphrase")
    page.click("input[type=submit]")
    page.click("#quality-link a >> nth=0")
    page.wait_for_selector("svg.chart")

    assert page.locator("#runs svg.chart circle.point").count() == 8
    assert page.locator("#runs svg.chart circle.point.marked").count() == 2
    # One bar per non-zero value: every week has all three kinds of answer.
    assert page.locator("#answers svg.chart rect.bar").count() == 3 * 6
    assert page.locator("#feedback svg.chart rect.bar").count() == 2 * 6
    assert page.locator("#ingestion svg.chart rect.bar").count() == 1  # all ready
    page.click("#answers details summary")
    assert page.locator("#answers table.numbers tbody tr").count() == 12  # weeks shown
    gaps = page.locator("#gaps ol.gaps li.gap strong").all_inner_texts()
    assert len(gaps) >= 2 and set(gaps) <= set(COVERED + NOT_COVERED)
    title = page.locator("#runs svg.chart title >> nth=0").text_content()
    assert title == "nDCG@10 of Handbook questions over time"
    if os.environ.get("PRODRAG_SCREENSHOT") == "1":
        page.screenshot(path=str(QUALITY_SCREENSHOT), full_page=True)
