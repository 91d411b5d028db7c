"""Overload answers fast: a search that finds every slot of its process taken for
PRODRAG_SEARCH_QUEUE_SECONDS is refused with 503 and Retry-After, not queued until a timeout."""

import threading
import time

import pytest
from django.urls import reverse

from chat.models import Conversation
from core import metrics
from core.admission import WAITING_PER_SLOT, Overloaded, _slots, search_admitted
from tests.api import api_client


def test_a_search_beyond_the_process_s_slots_is_refused_fast_with_retry_after(
    people, settings, client
):
    settings.SEARCH_CONCURRENCY = 1
    settings.SEARCH_QUEUE_SECONDS = 0.2
    reader = api_client(people["member"])
    shed = metrics.SEARCHES_SHED._value.get()

    with search_admitted():  # the one slot, taken by another search
        started = time.monotonic()
        refused = reader.post("/api/v1/search/", {"query": "annual leave"}, format="json")
        waited = time.monotonic() - started
        client.force_login(people["member"])
        page = client.post(reverse("chat:ask"), {"question": "How much annual leave?"})
        asked = reader.post("/api/v1/ask/", {"question": "How much annual leave?"}, format="json")

    assert refused.status_code == 503
    assert refused["Retry-After"] == "2"
    assert refused.json()["error"]["code"] == "overloaded"
    assert 0.2 <= waited < 5
    assert page.status_code == 503 and page["Retry-After"] == "2"
    assert "answering as many questions as it can" in page.content.decode()
    assert asked.status_code == 503 and asked.json()["error"]["code"] == "overloaded"
    # Refused before any answer: neither question is left behind, nor an empty conversation.
    assert not Conversation.objects.filter(owner=people["member"]).exists()
    assert metrics.SEARCHES_SHED._value.get() == shed + 3
    assert (
        reader.post("/api/v1/search/", {"query": "annual leave"}, format="json").status_code == 200
    )


def test_a_search_waits_for_a_slot_freed_within_the_queue_time(people, settings):
    settings.SEARCH_CONCURRENCY = 1
    settings.SEARCH_QUEUE_SECONDS = 5
    slot_taken = threading.Event()

    def other_search():
        with search_admitted():
            slot_taken.set()
            time.sleep(0.3)

    other = threading.Thread(target=other_search)
    other.start()
    slot_taken.wait()
    response = api_client(people["member"]).post(
        "/api/v1/search/", {"query": "annual leave"}, format="json"
    )
    other.join()

    assert response.status_code == 200


def test_a_search_that_finds_the_waiting_line_full_is_refused_without_waiting(settings):
    """GIVEN one slot, taken, and WAITING_PER_SLOT searches in line for it
    WHEN one more search comes THEN it is refused at once; the ones in line get the slot."""
    settings.SEARCH_CONCURRENCY = 1
    settings.SEARCH_QUEUE_SECONDS = 5
    served = []

    def waiter(n):
        with search_admitted():
            served.append(n)

    slots = _slots(1)
    with search_admitted():
        line = [threading.Thread(target=waiter, args=(n,)) for n in range(WAITING_PER_SLOT)]
        for thread in line:
            thread.start()
        # Each waiter is in line once the slots count it: the one slot's holder and each of them.
        deadline = time.monotonic() + 10
        while slots.taken_or_awaited < 1 + WAITING_PER_SLOT:
            assert time.monotonic() < deadline, "the waiters never got in line"
            time.sleep(0.001)
        started = time.monotonic()
        with pytest.raises(Overloaded), search_admitted():
            pass
        refused_in = time.monotonic() - started
        assert served == []
    for thread in line:
        thread.join()

    assert refused_in < 0.5
    assert sorted(served) == list(range(WAITING_PER_SLOT))
