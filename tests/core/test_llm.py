"""The LLM client against a local server speaking the OpenAI protocol: retries, timeouts,
malformed answers, broken streams and the circuit breaker."""

import time

import pytest

from core import llm
from core.llm import LLMUnavailable, llm_complete, llm_stream
from tests.fake_openai import MALFORMED, Broken, FakeOpenAI, Slow


def test_a_completion_and_a_stream_return_the_models_text(llm_endpoint):
    FakeOpenAI.replies = ["Twenty-seven days [1].", "Streamed in small pieces [2]."]

    assert llm_complete(system="s", user="q") == "Twenty-seven days [1]."
    pieces = list(llm_stream(system="s", user="q"))

    assert len(pieces) > 1 and "".join(pieces) == "Streamed in small pieces [2]."
    assert FakeOpenAI.requests[1]["stream"] is True


def test_a_429_is_retried_after_retry_after_and_then_succeeds(llm_endpoint):
    FakeOpenAI.failures = [429, 503]
    FakeOpenAI.replies = ["fine"]

    assert llm_complete(system="s", user="q") == "fine"
    assert len(FakeOpenAI.requests) == 3
    assert llm.breaker.failures == 0


def test_a_stream_is_retried_until_its_first_words(llm_endpoint):
    FakeOpenAI.failures = [429, 502]
    FakeOpenAI.replies = ["Streamed after two failures."]

    assert "".join(llm_stream(system="s", user="q")) == "Streamed after two failures."
    assert len(FakeOpenAI.requests) == 3


def test_retries_stop_after_the_configured_number(llm_endpoint, settings):
    settings.LLM_RETRIES = 2
    FakeOpenAI.failures = [500] * 5

    with pytest.raises(LLMUnavailable, match="500"):
        llm_complete(system="s", user="q")
    assert len(FakeOpenAI.requests) == 3


def test_a_client_error_is_not_retried(llm_endpoint):
    FakeOpenAI.failures = [400]

    with pytest.raises(LLMUnavailable):
        llm_complete(system="s", user="q")
    assert len(FakeOpenAI.requests) == 1


def test_a_timeout_is_retried_then_given_up(llm_endpoint, settings):
    settings.LLM_TIMEOUT, settings.LLM_RETRIES = 0.3, 1
    llm._client.cache_clear()
    # Replies a minute late: only the client's timeout can end the call within the bound,
    # which is far from both the 0.6 s the two tries take and the minute they would wait.
    FakeOpenAI.replies = [Slow(60, "late"), Slow(60, "late")]

    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="timed out"):
        llm_complete(system="s", user="q")

    assert len(FakeOpenAI.requests) == 2
    assert time.monotonic() - started < 30


def test_a_malformed_response_fails_cleanly(llm_endpoint):
    FakeOpenAI.replies = [MALFORMED]

    with pytest.raises(LLMUnavailable):
        llm_complete(system="s", user="q")


def test_a_stream_broken_after_its_first_words_raises_after_yielding_them(llm_endpoint):
    FakeOpenAI.replies = [Broken("The first words arrive")]

    received = []
    with pytest.raises(LLMUnavailable, match="broke off"):
        for piece in llm_stream(system="s", user="q"):
            received.append(piece)
    assert "".join(received) == "The first words arrive"
    assert len(FakeOpenAI.requests) == 1  # text had been shown: not retried


def test_the_circuit_opens_after_repeated_failures_and_closes_after_a_good_trial(
    llm_endpoint, settings
):
    settings.LLM_RETRIES, settings.LLM_BREAKER_FAILURES, settings.LLM_BREAKER_SECONDS = 0, 2, 60
    FakeOpenAI.failures = [500, 500]
    for _ in range(2):
        with pytest.raises(LLMUnavailable, match="500"):
            llm_complete(system="s", user="q")
    assert llm.breaker.state == "open"

    with pytest.raises(LLMUnavailable, match="circuit open"):
        llm_complete(system="s", user="q")
    assert len(FakeOpenAI.requests) == 2  # the open circuit sent nothing

    _breaker_seconds_pass(61)
    FakeOpenAI.replies = ["back"]
    assert llm_complete(system="s", user="q") == "back"
    assert llm.breaker.state == "closed"


def test_a_failed_trial_opens_the_circuit_again_at_once(llm_endpoint, settings):
    settings.LLM_RETRIES, settings.LLM_BREAKER_FAILURES, settings.LLM_BREAKER_SECONDS = 0, 1, 60
    FakeOpenAI.failures = [500, 500]
    with pytest.raises(LLMUnavailable, match="500"):
        llm_complete(system="s", user="q")
    _breaker_seconds_pass(61)

    with pytest.raises(LLMUnavailable, match="500"):
        llm_complete(system="s", user="q")  # the trial
    with pytest.raises(LLMUnavailable, match="circuit open"):
        llm_complete(system="s", user="q")
    assert len(FakeOpenAI.requests) == 2


def _breaker_seconds_pass(seconds: float) -> None:
    """The breaker's clock moved on by `seconds` (it opened that much earlier): no sleeping,
    and no machine too busy to call again within the open time."""
    llm.breaker.opened_at -= seconds
