"""Schemathesis against the API's own OpenAPI schema, in process (WSGI): generated requests,
valid and invalid, to every operation. No request may end in a 5xx, responses must match
the schema (status codes, content types, bodies), and an operation that needs a token must
refuse the request without one."""

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import token_create
from prodrag.wsgi import application

pytestmark = pytest.mark.django_db


def _schema():
    """The schema as /api/schema/ serves it, generated in process (no request, no database, so
    it can be built while tests are collected); requests then go to the WSGI app itself."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(generated)))
    loaded.app = application
    return loaded


schema = _schema()


@pytest.fixture(autouse=True)
def connection_kept():
    """As Django's test client does: the test's database connection, and its transaction,
    survive the end of each request that goes straight to the WSGI app."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_generated_request_breaks_the_api(case, people, settings):
    """As the superuser with an admin token, so that every operation runs its full path."""
    settings.API_RATE_TOKEN = settings.API_RATE_USER = "100000/minute"
    token = token_create(user=people["superuser"], scope="admin")[1]

    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        checks=[
            not_a_server_error,
            ignored_auth,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
