"""/api/v1/search/: permissions inside the search, validation, and the error shape."""

import pytest

from tests.api import api_client

pytestmark = pytest.mark.django_db

URL = "/api/v1/search/"
QUESTION = {"query": "How many days of annual leave?", "k": 5}


@pytest.mark.parametrize(
    "who, sources",
    [
        ("owner", {"leave.md"}),
        ("member", {"leave.md"}),
        ("stranger", set()),
        ("superuser", {"leave.md", "minutes.md"}),
    ],
)
def test_search_returns_only_passages_the_user_may_read(people, who, sources):
    response = api_client(people[who]).post(URL, QUESTION, format="json")

    assert response.status_code == 200
    passages = response.json()["passages"]
    found = {p["source"] for p in passages}
    assert sources <= found
    if who != "superuser":
        assert "minutes.md" not in found
    if who == "stranger":
        assert passages == []


def test_a_passage_carries_what_a_citation_needs(people):
    passages = api_client(people["member"]).post(URL, QUESTION, format="json").json()["passages"]

    best = passages[0]
    assert best["source"] == "leave.md" and best["heading_path"][-1] == "Annual leave"
    assert best["version"] == 1 and best["collection"] == "Handbook"
    assert "27 days" in best["text"] and best["score"] > 0


def test_a_hybrid_passage_says_how_its_score_was_fused(people):
    """The vector share and full text's coverage of the query; neither in a single mode."""
    client = api_client(people["member"])
    hybrid = client.post(URL, QUESTION, format="json").json()["passages"]
    assert all(0 < p["dense_share"] < 1 and 0 < p["fulltext_coverage"] <= 1 for p in hybrid)
    assert len({p["dense_share"] for p in hybrid}) == 1  # one query, one collection
    dense = client.post(URL, QUESTION | {"mode": "dense"}, format="json").json()["passages"]
    assert dense and all(p["dense_share"] is p["fulltext_coverage"] is None for p in dense)


def test_filters_narrow_the_search(people):
    client = api_client(people["superuser"])
    only_board = {**QUESTION, "filters": {"collections": [people["board"].pk]}}

    passages = client.post(URL, only_board, format="json").json()["passages"]

    assert {p["source"] for p in passages} == {"minutes.md"}


def test_a_read_token_may_search_though_search_is_a_post(people):
    response = api_client(people["member"], scope="read").post(URL, QUESTION, format="json")

    assert response.status_code == 200


@pytest.mark.parametrize(
    "body, field",
    [
        ({"query": "", "k": 5}, "query"),
        ({"query": "leave", "k": 0}, "k"),
        ({"query": "leave", "mode": "psychic"}, "mode"),
        ({"query": "leave", "filters": {"created_after": "yesterday"}}, "filters"),
        # jsonb cannot hold NUL: found by schemathesis as a 500
        ({"query": "leave", "filters": {"metadata": {"team": ["h\u0000r"]}}}, "filters"),
        ({"k": 5}, "query"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(people, body, field):
    response = api_client(people["member"]).post(URL, body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert error["message"].startswith(f"{field}:")


def test_a_body_that_is_not_json_is_a_400_with_the_parser_message(people):
    response = api_client(people["member"]).post(URL, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_an_unexpected_failure_is_logged_and_answered_in_the_same_json_shape(
    people, monkeypatch, caplog
):
    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("retrieval.api.views.search_perform", broken)

    response = api_client(people["member"]).post(URL, QUESTION, format="json")

    assert response.status_code == 500
    assert response.json() == {
        "error": {"status": 500, "code": "server_error", "message": "Internal error."}
    }
    assert "disk on fire" in caplog.text


def test_a_body_over_the_limit_is_a_413_before_it_is_read(people, settings, monkeypatch):
    settings.API_MAX_BODY_BYTES = 1000
    searched = []
    monkeypatch.setattr("retrieval.api.views.search_perform", searched.append)

    response = api_client(people["member"]).post(URL, {"query": "leave " * 300}, format="json")

    assert response.status_code == 413 and searched == []
    assert response.json()["error"]["code"] == "too_large"
    assert "PRODRAG_API_MAX_BODY_BYTES" in response.json()["error"]["message"]
