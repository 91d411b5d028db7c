import os

import psycopg
import pytest
from django.core.cache import cache
from django.db import connection
from guardian.shortcuts import assign_perm
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.accounts.factories import GroupFactory, UserFactory
from tests.documents.factories import CollectionFactory
from tests.fake_openai import fake_openai_serve
from tests.handbook import HANDBOOK, ingest
from tests.migrating import migrate

# One profile for every property test: no per-example deadline (a database round trip on a
# busy 2-core machine is no failure); in CI (CI=true), the same examples every run, so that a
# red build is reproducible and not a draw. Each test sets its own example count.
hypothesis_settings.register_profile(
    "prodrag", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
hypothesis_settings.register_profile(
    "prodrag-ci", parent=hypothesis_settings.get_profile("prodrag"), derandomize=True
)
hypothesis_settings.load_profile("prodrag-ci" if os.environ.get("CI") == "true" else "prodrag")


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
    """The fake server configured as the LLM, with fast retries and a closed circuit."""
    from core import llm

    settings.LLM_API_BASE = openai_endpoint
    settings.LLM_BACKOFF = 0.001
    llm._client.cache_clear()
    llm.breaker.succeeded()
    yield openai_endpoint
    llm._client.cache_clear()
    llm.breaker.succeeded()


@pytest.fixture
def handbook(db):
    """The handbook (tests.handbook) in a collection owned by "hr", indexed: name -> document."""
    collection = CollectionFactory(name="Handbook", owner=UserFactory(username="hr"))
    return {name: ingest(collection, name, text) for name, text in HANDBOOK.items()}


@pytest.fixture
def boss(db):
    return UserFactory(is_superuser=True)


@pytest.fixture
def people(handbook, boss):
    """The API's permission matrix over the handbook: its owner ("hr"), a member of a group
    granted the handbook collection, a stranger (another user, no grants), and a superuser.
    Another collection, "Board", only the superuser may read."""
    handbook_collection = handbook["leave.md"].collection
    readers = GroupFactory(name="readers")
    member = UserFactory(username="member")
    member.groups.add(readers)
    assign_perm("view_document", readers, handbook_collection)
    board = CollectionFactory(name="Board", owner=boss)
    ingest(board, "minutes.md", "# Board minutes\n\nThe board approved 30 days of annual leave.")
    return {
        "owner": handbook_collection.owner,
        "member": member,
        "stranger": UserFactory(username="stranger"),
        "superuser": boss,
        "handbook": handbook_collection,
        "board": board,
    }


@pytest.fixture
def chunks_vacuumed():
    """HNSW keeps the entries of rolled-back rows until VACUUM, and nearly every test rolls
    back the handbook's passages: late in a run the graph around these vectors is mostly dead
    copies of them, which a walk can exhaust before it meets a live one. A test that asserts
    what the index path returns vacuums first, from a session of its own (the test's
    transaction is already open), so that it sees the index as a maintained database has it."""
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as session:
        session.execute("VACUUM documents_chunk, documents_chunkembedding")


@pytest.fixture
def migrated_back_and_forth(transactional_db):
    """For a test that migrates the database back: it ends migrated to the latest again."""
    yield
    migrate()
