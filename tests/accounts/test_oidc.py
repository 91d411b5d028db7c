"""OpenID Connect sign-in against a real provider in its own process
(tests/accounts/provider: django-oauth-toolkit): the redirect flow in headless Chromium, the
flow over HTTP for the refusals, and the ID token checks on tokens the provider issued or that
were signed with its key."""

import base64
import hashlib
import html
import json
import re
import secrets
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.urls import reverse
from guardian.shortcuts import assign_perm
from playwright.sync_api import sync_playwright
from pytest_django.live_server_helper import LiveServer

from accounts.models import AuditEvent, ExternalIdentity, User
from accounts.oidc import OpenIdBackend, SigninRefused
from tests.accounts.factories import UserFactory
from tests.accounts.provider.process import CLIENT_ID, CLIENT_SECRET, Provider
from tests.api import api_client
from tests.documents.factories import CollectionFactory
from tests.handbook import ingest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PEOPLE = {
    "anna": {"password": "anna-idp-pw", "groups": ["finance", "engineering", "unmapped-club"]},
    "odd": {"password": "odd-idp-pw", "groups": "finance"},  # a string, not a list
    "root": {"password": "root-idp-pw", "groups": []},
}
SEARCH = {"query": "quarterly budget", "mode": "hybrid"}


def _start(settings, root: Path, redirect_uris: list[str]) -> Provider:
    provider = Provider(root)
    provider.start(PEOPLE, redirect_uris)
    provider.settings(settings)
    settings.DIRECTORY_GROUPS = re.compile(r"(?!unmapped-).+")
    return provider


@pytest.fixture
def provider(db, settings, tmp_path):
    provider = _start(settings, tmp_path / "idp", ["http://testserver/accounts/oidc/callback/"])
    yield provider
    provider.stop()


def at_the_provider(client, username: str, password: str) -> str:
    """The browser's part, over HTTP: start at prodrag, sign in at the provider; the URL the
    provider sends the browser back to."""
    start = client.get(reverse("oidc-start"))
    assert start.status_code == 302, start.content
    return _provider_login(start["Location"], username, password)


def _provider_login(authorize_url: str, username: str, password: str) -> str:
    browser = requests.Session()
    login = browser.get(authorize_url, allow_redirects=False)
    login_url = urljoin(authorize_url, login.headers["Location"])
    browser.get(login_url)
    signed_in = browser.post(
        login_url,
        data={"username": username, "password": password,
              "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        allow_redirects=False,
    )  # fmt: skip
    authorized = browser.get(
        urljoin(login_url, signed_in.headers["Location"]), allow_redirects=False
    )
    return authorized.headers["Location"]


def back_at_prodrag(client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def refusal(response) -> str:
    assert response.status_code == 403
    shown = re.search(r"Single sign-on refused: (.*?)\.</p>", response.content.decode()).group(1)
    return html.unescape(shown)


def test_sign_in_sets_the_claims_groups_and_the_next_sign_in_follows_the_provider(provider, client):
    """GIVEN anna in finance and engineering at the provider
    WHEN she signs in, then the provider takes her out of finance and she signs in again
    THEN her prodrag groups follow, and finance's documents leave her search."""
    boss = UserFactory(is_superuser=True)
    collection = CollectionFactory(owner=boss)
    ingest(collection, "plan.md", "# Finance plan\n\nThe quarterly budget is eleven million.")

    response = back_at_prodrag(client, at_the_provider(client, "anna", "anna-idp-pw"))

    assert response.status_code == 302 and response["Location"] == reverse("chat:home")
    anna = User.objects.get(username="anna")
    assert int(client.session["_auth_user_id"]) == anna.pk
    assert (anna.email, anna.first_name, anna.has_usable_password()) == (
        "anna@idp.example",
        "Anna",
        False,
    )
    assert set(anna.groups.values_list("name", flat=True)) == {"finance", "engineering"}
    assert not Group.objects.filter(name="unmapped-club").exists()
    assert ExternalIdentity.objects.get(user=anna).directory == "oidc"
    assert AuditEvent.objects.get(action="signin").details == {"method": "oidc"}
    assign_perm("view_document", Group.objects.get(name="finance"), collection)
    api = api_client(anna)
    assert api.post(reverse("v1:search"), SEARCH, format="json").json()["passages"]

    provider.groups_set("anna", ["engineering"])
    client.logout()
    back_at_prodrag(client, at_the_provider(client, "anna", "anna-idp-pw"))

    assert set(anna.groups.values_list("name", flat=True)) == {"engineering"}
    assert api.post(reverse("v1:search"), SEARCH, format="json").json()["passages"] == []
    removed = AuditEvent.objects.get(action="membership.remove")
    assert removed.details == {"group": "finance", "directory": "oidc"}


def test_a_replayed_or_foreign_callback_is_refused(provider, client):
    callback = at_the_provider(client, "anna", "anna-idp-pw")
    assert back_at_prodrag(client, callback).status_code == 302
    client.logout()

    assert refusal(back_at_prodrag(client, callback)) == (
        "this sign-in was not started here, or is already used"
    )
    client.get(reverse("oidc-start"))  # a sign-in of this browser, with another state
    state = parse_qs(urlsplit(callback).query)["state"][0]
    forged = client.get(reverse("oidc-callback"), {"code": "x", "state": state})
    assert refusal(forged) == "this sign-in was not started here, or is already used"
    denied = client.get(reverse("oidc-callback"), {"error": "access_denied", "state": "s"})
    assert refusal(denied) == "the provider refused: access_denied"
    assert "_auth_user_id" not in client.session
    reasons = [e.details["reason"] for e in AuditEvent.objects.filter(action="signin.failed")]
    assert len(reasons) == 3 and all(e for e in reasons)


def test_a_code_used_once_is_refused_by_the_provider_the_second_time(provider, client):
    callback = at_the_provider(client, "anna", "anna-idp-pw")
    assert back_at_prodrag(client, callback).status_code == 302
    client.logout()
    client.get(reverse("oidc-start"))
    [state] = client.session["oidc_states"]  # this browser's new sign-in, with the old code
    code = parse_qs(urlsplit(callback).query)["code"][0]
    response = client.get(reverse("oidc-callback"), {"code": code, "state": state})
    assert refusal(response).startswith("the provider refused the sign-in code (invalid_grant")


def test_a_groups_claim_of_the_wrong_type_refuses_the_sign_in_and_creates_nothing(provider, client):
    response = back_at_prodrag(client, at_the_provider(client, "odd", "odd-idp-pw"))

    assert refusal(response) == "the 'groups' claim is not a list of group names"
    assert not User.objects.filter(username="odd").exists()
    assert not Group.objects.exists()


def test_a_local_account_is_not_taken_over_and_a_deactivated_user_is_refused(provider, client):
    UserFactory(username="root", is_superuser=True)
    taken = back_at_prodrag(client, at_the_provider(client, "root", "root-idp-pw"))
    assert "local account named 'root' exists" in refusal(taken)
    assert not ExternalIdentity.objects.exists()

    back_at_prodrag(client, at_the_provider(client, "anna", "anna-idp-pw"))
    client.logout()
    User.objects.filter(username="anna").update(is_active=False)
    refused = back_at_prodrag(client, at_the_provider(client, "anna", "anna-idp-pw"))
    assert refusal(refused) == "the account is deactivated"


def test_an_unreachable_provider_is_said_so_on_the_sign_in_page(provider, client):
    provider.stop()
    response = client.get(reverse("oidc-start"))
    assert refusal(response).startswith("the sign-in provider did not answer")


# --- the ID token checks ------------------------------------------------------------------------


def _id_token(provider: Provider, nonce: str) -> str:
    """An ID token the provider issues to prodrag's client, for a flow run here by hand."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect = "http://testserver/accounts/oidc/callback/"
    authorize = f"{provider.issuer}/authorize/?" + urlencode(
        {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect,
         "scope": "openid", "state": "s", "nonce": nonce, "code_challenge_method": "S256",
         "code_challenge": challenge.decode().rstrip("=")}
    )  # fmt: skip
    code = parse_qs(urlsplit(_provider_login(authorize, "anna", "anna-idp-pw")).query)["code"]
    tokens = requests.post(
        f"{provider.issuer}/token/",
        data={"grant_type": "authorization_code", "code": code[0], "redirect_uri": redirect,
              "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "code_verifier": verifier},
        timeout=10,
    )  # fmt: skip
    assert tokens.status_code == 200, tokens.text
    return tokens.json()["id_token"]


def _verify(token: str, nonce: str):
    backend = OpenIdBackend()
    backend.OIDC_OP_JWKS_ENDPOINT = f"{django_settings.OIDC_ISSUER}/.well-known/jwks.json"
    return backend.verify_token(token, nonce=nonce)


def _signed(provider: Provider, token: str, **changes) -> str:
    """The provider's own token with claims changed, signed again with the provider's key."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False}) | changes
    return jwt.encode(claims, provider.key, algorithm="RS256", headers={"kid": header["kid"]})


def test_the_id_token_must_be_for_this_client_from_this_issuer_fresh_and_signed(provider, settings):
    token = _id_token(provider, nonce="n-1")
    assert _verify(token, "n-1")["preferred_username"] == "anna"  # the real token passes

    refusals = {}
    for case, check in {
        "replayed nonce": lambda: _verify(token, "n-2"),
        "expired": lambda: _verify(_signed(provider, token, exp=int(time.time()) - 3600), "n-1"),
        "no expiry": lambda: _verify(_signed(provider, token, exp=None), "n-1"),
        "other audience": lambda: _verify(_signed(provider, token, aud="another-app"), "n-1"),
        "other issuer": lambda: _verify(_signed(provider, token, iss="http://evil.example"), "n-1"),
        "tampered": lambda: _verify(_tampered(token), "n-1"),
        "unsigned": lambda: _verify(_unsigned(token), "n-1"),
    }.items():
        with pytest.raises(SigninRefused) as refused:
            check()
        refusals[case] = str(refused.value)
    assert "Nonce" in refusals["replayed nonce"]
    assert refusals["expired"] == "the ID token has expired"
    assert "exp" in refusals["no expiry"]
    assert refusals["other audience"] == "the ID token was issued to another client (audience)"
    assert refusals["other issuer"] == "the ID token comes from another issuer"
    assert refusals["tampered"] == "the ID token's signature is not valid"
    assert refusals["unsigned"] == "the ID token was refused: Could not find a valid JWKS."
    settings.OIDC_RP_CLIENT_ID = "another-app"  # the same real token, for another client
    with pytest.raises(SigninRefused, match="another client"):
        _verify(token, "n-1")


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def _unsigned(token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    return jwt.encode(claims, None, algorithm="none", headers={"kid": kid})


# --- in a browser ---------------------------------------------------------------------------------


def test_a_person_signs_in_through_the_provider_in_a_browser(
    transactional_db, settings, tmp_path, monkeypatch
):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: `make test` installs it.")
    site = LiveServer("localhost")
    provider = _start(settings, tmp_path / "idp", [f"{site.url}/accounts/oidc/callback/"])
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in this thread
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"{site.url}/chat/")
            page.click("#single-sign-on")
            page.fill("#idp-username", "anna")
            page.fill("#idp-password", "anna-idp-pw")
            page.click("#idp-submit")
            page.wait_for_selector("#id_question")
            assert page.url == f"{site.url}/chat/"
            assert page.inner_text(".who") == "anna"
            page.goto(f"{site.url}/admin/login/?next=/admin/")
            assert page.inner_text("#single-sign-on") == settings.OIDC_BUTTON
            browser.close()
    finally:
        provider.stop()
        site.stop()
    anna = User.objects.get(username="anna")
    assert set(anna.groups.values_list("name", flat=True)) == {"finance", "engineering"}
