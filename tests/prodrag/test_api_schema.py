"""The OpenAPI schema and its documentation page."""

import re

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_schema_is_valid_openapi_and_generates_without_a_warning(tmp_path):
    target = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/search/", "/api/v1/ask/", "/api/v1/documents/"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    upload = schema["paths"]["/api/v1/documents/"]["post"]["requestBody"]["content"]
    reference = upload["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = schema["components"]["schemas"][reference]["properties"]
    assert fields["file"]["format"] == "binary" and "collection" in fields


def test_the_docs_page_loads_everything_from_this_server(client):
    page = client.get("/api/docs/")

    assert page.status_code == 200
    addresses = re.findall(r'(?:src|href)="([^"]+)"', page.content.decode())
    assert any("swagger-ui" in address for address in addresses)
    assert all(not re.match(r"(https?:)?//", address) for address in addresses), addresses
    assert client.get("/api/schema/").status_code == 200
