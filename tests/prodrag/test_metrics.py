"""/metrics: django-prometheus's metrics and prodrag's own, moving with searches, answers and
ingestion; closed in production unless the scraper brings the token."""

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from chat.services import answer_create
from documents.models import Document
from documents.services.ingestion import documents_ingest
from documents.services.uploads import document_create
from retrieval.selectors import passages_search
from tests.chat.asking import question_add
from tests.documents.factories import CollectionFactory
from tests.handbook import ingest

pytestmark = pytest.mark.django_db


def scrape(client=None, **headers) -> dict[tuple[str, tuple], float]:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_search_answer_and_ingestion_move_their_metrics(
    handbook, boss, django_capture_on_commit_callbacks
):
    before = scrape()
    passages_search(user=boss, query="annual leave", k=3)
    question = question_add(conversation=None, user=boss, text="Annual leave?", scope=())
    answer_create(question=question, user=boss)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(CollectionFactory(owner=boss), "gym.md", "# Gym\n\nThe gym opens at six.")
    Client().get("/api/v1/collections/")
    after = scrape()

    # Two searches: the one above and the answer's own.
    searched = value(after, "prodrag_search_seconds_count", mode="hybrid")
    assert searched == value(before, "prodrag_search_seconds_count", mode="hybrid") + 2
    extractive = ("prodrag_answers_total", {"mode": "extractive"})
    assert (
        value(after, extractive[0], **extractive[1])
        == value(before, extractive[0], **extractive[1]) + 1
    )
    for stage in ("parse", "chunk", "embed", "store"):
        stage_count = value(after, "prodrag_ingestion_stage_seconds_count", stage=stage)
        assert (
            stage_count == value(before, "prodrag_ingestion_stage_seconds_count", stage=stage) + 1
        ), stage
    ready = Document.objects.filter(status=Document.Status.READY).count()
    assert value(after, "prodrag_documents", status="ready") == ready == len(handbook) + 1
    assert value(after, "prodrag_ingestion_queue_depth") == 0
    # django-prometheus's own (probes and scrapes are answered before it counts).
    requests = "django_http_requests_total_by_method_total"
    assert value(after, requests, method="GET") == value(before, requests, method="GET") + 1


def test_a_failed_document_counts_against_its_stage(boss, django_capture_on_commit_callbacks):
    before = scrape()
    document, _ = document_create(
        collection=CollectionFactory(owner=boss),
        owner=boss,
        upload=ContentFile(b"", name="empty.txt"),
        enqueue=False,
    )
    with django_capture_on_commit_callbacks(execute=True):
        documents_ingest(document_ids=[document.pk])
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    after = scrape()
    failures = "prodrag_ingestion_failures_total"
    assert sum(v for (n, _), v in after.items() if n == failures) == 1 + sum(
        v for (n, _), v in before.items() if n == failures
    )


def test_metrics_need_the_token_when_one_is_set(settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics").status_code == 404
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer guess")
    assert wrong.status_code == 404
    assert scrape(HTTP_AUTHORIZATION="Bearer scrape-secret")


def test_metrics_are_off_in_production_without_a_token(settings):
    settings.PRODUCTION = True
    settings.METRICS_TOKEN = None
    assert Client().get("/metrics").status_code == 404
