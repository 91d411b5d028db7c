"""Structured logs: JSON lines with the request, task and user ids; query text masked. (The
request id followed into a worker's lines: tests/documents/test_ingestion_worker.py.)"""

import json
import logging

import pytest

from core.logs import ContextFilter, JsonFormatter
from tests.api import api_client


@pytest.fixture
def records(caplog):
    caplog.set_level(logging.INFO, logger="prodrag")
    caplog.handler.addFilter(ContextFilter())
    return caplog


@pytest.mark.django_db
def test_a_search_logs_one_json_line_with_its_ids_and_the_query_masked(handbook, records):
    owner = handbook["leave.md"].owner
    response = api_client(owner).post(
        "/api/v1/search/",
        {"query": "annual leave, write to jane.doe@example.com", "k": 3},
        format="json",
        HTTP_X_REQUEST_ID="req-7f3a",
    )
    assert response["X-Request-ID"] == "req-7f3a"
    (record,) = [r for r in records.records if r.name == "prodrag.retrieval"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-7f3a"
    assert line["user_id"] == owner.pk
    assert line["level"] == "INFO" and line["logger"] == "prodrag.retrieval"
    assert "[email]" in line["message"] and "jane.doe" not in line["message"]


@pytest.mark.django_db
def test_an_unusable_request_id_is_replaced_by_a_new_one(boss):
    response = api_client(boss).get("/api/v1/collections/", HTTP_X_REQUEST_ID="bad id\x7f" * 10)
    generated = response["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
