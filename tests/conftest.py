import pytest
from django.core.cache import cache

from tests.fake_openai import fake_openai_serve


@pytest.fixture(autouse=True)
def test_settings(settings, tmp_path_factory):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Not under tmp_path: tests load whole directories from there.
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    # The manifest storage needs `collectstatic`; pages render the same without it.
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    settings.WHITENOISE_AUTOREFRESH = True
    # The local-memory cache outlives a test's database rows (e.g. search's cached count of
    # documents embedded by another model).
    cache.clear()


@pytest.fixture
def openai_endpoint():
    """Base URL of a fake OpenAI-compatible server (script it through
    tests.fake_openai.FakeOpenAI.replies and .failures)."""
    url, server = fake_openai_serve()
    yield url
    server.shutdown()


@pytest.fixture
def llm_endpoint(settings, openai_endpoint):
    """The fake server configured as the LLM."""
    from retrieval import llm

    settings.LLM_API_BASE = openai_endpoint
    llm._client.cache_clear()
    yield openai_endpoint
    llm._client.cache_clear()
