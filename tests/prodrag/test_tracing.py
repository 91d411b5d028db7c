"""Tracing: request -> retrieval SQL -> LLM spans, a task's span under the request that queued
it, and spans exported over OTLP/HTTP when an endpoint is configured (a no-op otherwise)."""

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.config import BASE_DIR
from core.tracing import tracer
from documents.tasks import documents_requeue
from prodrag.celery import _task_headers_add
from tests.api import api_client, sse


@pytest.fixture(scope="session")
def exporter():
    """The process's tracer provider, recording in memory (set once: OpenTelemetry allows no
    second global provider)."""
    recorded = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    trace.set_tracer_provider(provider)
    return recorded


@pytest.fixture
def spans(exporter):
    exporter.clear()
    return exporter


@pytest.mark.django_db
def test_an_answer_traces_request_retrieval_sql_and_llm_under_one_trace(
    handbook, llm_endpoint, spans
):
    owner = handbook["leave.md"].owner
    response = api_client(owner, scope="write").post(
        "/api/v1/ask/",
        {"question": "How many days of annual leave?", "stream": True},
        format="json",
        HTTP_TRACEPARENT="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    assert response.status_code == 200
    assert sse(response)[-1][0] == "done"
    finished = {span.name: span for span in spans.get_finished_spans()}
    request = finished["POST api/v1/ask/"]
    assert request.attributes["http.response.status_code"] == 200
    # The caller's trace is continued.
    assert format(request.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert request.parent.span_id == 0xB7AD6B7169203331
    for name in ("retrieval.sql", "llm.stream"):
        assert finished[name].context.trace_id == request.context.trace_id, name
        assert finished[name].parent.span_id == request.context.span_id, name


@pytest.mark.django_db
def test_a_task_s_span_is_a_child_of_the_span_that_queued_it(spans):
    with tracer.start_as_current_span("upload") as upload:
        headers: dict = {}
        _task_headers_add(headers=headers)
    documents_requeue.apply(headers=headers)
    (task,) = [s for s in spans.get_finished_spans() if s.name.startswith("task ")]
    assert task.name == "task documents.tasks.documents_requeue"
    assert task.context.trace_id == upload.context.trace_id
    assert task.parent.span_id == upload.context.span_id


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, int]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_spans_are_exported_over_otlp_http_when_an_endpoint_is_set():
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    code = (
        "from opentelemetry import trace; from core.tracing import tracer, tracing_setup; "
        "assert tracing_setup(service='test'); "
        "tracer.start_span('probe').end(); trace.get_tracer_provider().force_flush()"
    )
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}"}
    try:
        subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, check=True, timeout=60)
    finally:
        server.shutdown()
    assert [path for path, size in _Collector.received if size > 0] == ["/v1/traces"]


def test_without_an_endpoint_tracing_is_not_set_up():
    code = "from core.tracing import tracing_setup; print(tracing_setup(service='test'))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "False"
