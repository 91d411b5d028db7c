"""OpenTelemetry tracing: a span per HTTP request, with the retrieval statement and each LLM
attempt inside it, and a span per Celery task whose parent is the request that queued it (the
trace context travels in the task's message headers).

Exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, with the other standard OTEL_* variables
(headers, service name) honoured by the SDK. Without an endpoint no provider is installed and
the API's tracer is a no-op: spans cost a function call and are never recorded or sent.

Each process sets up its own exporter after it starts (gunicorn's post_fork, Celery's
worker_process_init): the exporter's background thread does not survive a fork.
"""

from __future__ import annotations

import os

from opentelemetry import context, propagate, trace

tracer = trace.get_tracer("prodrag")


def tracing_setup(*, service: str) -> bool:
    """Install an OTLP exporter if an endpoint is configured; True if one was installed."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


class RequestSpan:
    """Middleware: the request's span, continuing a caller's trace (`traceparent`) if any."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The propagator looks for lower-case names; Django's headers are title-cased.
        parent = propagate.extract({k.lower(): v for k, v in request.headers.items()})
        with tracer.start_as_current_span(
            f"{request.method} {request.path}", context=parent, kind=trace.SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("url.path", request.path)
            if rid := getattr(request, "id", None):
                span.set_attribute("prodrag.request_id", rid)
            response = self.get_response(request)
            if match := getattr(request, "resolver_match", None):
                span.update_name(f"{request.method} {match.route}")
                span.set_attribute("http.route", match.route)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(trace.StatusCode.ERROR)
        return response


def trace_headers() -> dict:
    """The current trace context as message headers (W3C traceparent)."""
    carrier: dict = {}
    propagate.inject(carrier)
    return carrier


def task_span_start(*, name: str, headers_of) -> tuple:
    """Start a task's span under the trace its message carries; returns what task_span_end
    needs. `headers_of(key)` reads one message header."""
    carrier = {key: value for key in ("traceparent", "tracestate") if (value := headers_of(key))}
    span = tracer.start_span(
        f"task {name}", context=propagate.extract(carrier), kind=trace.SpanKind.CONSUMER
    )
    token = context.attach(trace.set_span_in_context(span))
    return span, token


def task_span_end(started: tuple, *, state: str | None) -> None:
    span, token = started
    if state and state != "SUCCESS":
        span.set_status(trace.StatusCode.ERROR, state)
    context.detach(token)
    span.end()
