"""The chat page in real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): sign in, ask, watch the answer stream in, follow a citation, give feedback.
With PRODRAG_SCREENSHOT=1 in the environment, the answered page is saved as
docs/chat-answer.png for the README (a plain run leaves the tracked picture alone)."""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import sync_playwright
from pytest_django.live_server_helper import LiveServer

from chat.models import Feedback
from tests.accounts.factories import UserFactory
from tests.fake_openai import FakeOpenAI

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(django_settings.BASE_DIR) / "docs" / "chat-answer.png"
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
