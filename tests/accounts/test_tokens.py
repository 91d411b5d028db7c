"""API tokens: stored as digests, scoped, expiring, revocable; the create_token command."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from accounts.models import ApiToken
from accounts.selectors import TokenRejected, token_authenticate
from accounts.services import token_create, token_revoke
from tests.accounts.factories import UserFactory
from tests.api import api_client

pytestmark = pytest.mark.django_db


def test_only_a_digest_of_the_token_is_stored_and_the_token_authenticates_its_user():
    user = UserFactory()
    token, plain = token_create(user=user, scope="write", name="help desk")

    assert plain.startswith("prd_") and len(plain) > 40
    stored = ApiToken.objects.get()
    assert plain not in {stored.digest, stored.prefix, stored.name}
    assert token_authenticate(plain=plain) == token
    assert token_authenticate(plain=plain).user == user


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (lambda token, plain: plain[:-2] + "xx", "Invalid token."),
        (lambda token, plain: "prd_nothing_here", "Invalid token."),
        (lambda token, plain: plain.removeprefix("prd_"), "Invalid token."),
        (lambda token, plain: token_revoke(token=token) or plain, "revoked"),
        (
            lambda token, plain: (
                ApiToken.objects.filter(pk=token.pk).update(
                    expires_at=timezone.now() - timedelta(seconds=1)
                )
                and plain
            ),
            "expired",
        ),
        (
            lambda token, plain: type(token.user).objects.update(is_active=False) and plain,
            "inactive",
        ),
    ],
    ids=["wrong secret", "unknown prefix", "no marker", "revoked", "expired", "inactive user"],
)
def test_a_token_that_is_wrong_revoked_expired_or_of_an_inactive_user_is_rejected(spoil, reason):
    token, plain = token_create(user=UserFactory(), days=30)
    presented = spoil(token, plain)

    with pytest.raises(TokenRejected, match=reason):
        token_authenticate(plain=presented)


def test_scopes_include_the_ones_below_them():
    user = UserFactory()
    read, _ = token_create(user=user, scope="read")
    admin, _ = token_create(user=user, scope="admin")

    assert read.allows("read") and not read.allows("write") and not read.allows("admin")
    assert admin.allows("read") and admin.allows("write") and admin.allows("admin")
    with pytest.raises(ValueError, match="Unknown scope 'root'"):
        token_create(user=user, scope="root")


def test_create_token_prints_a_working_token_once_and_refuses_bad_input():
    UserFactory(username="desk")
    out, err = StringIO(), StringIO()

    call_command("create_token", "desk", "--scope", "write", "--days", "7", stdout=out, stderr=err)

    token = token_authenticate(plain=out.getvalue().strip())
    assert token.user.username == "desk" and token.scope == "write"
    assert timedelta(days=6) < token.expires_at - timezone.now() <= timedelta(days=7)
    assert "not shown again" in err.getvalue()
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("create_token", "nobody", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="at least one day"):
        call_command("create_token", "desk", "--days", "0", stdout=StringIO(), stderr=StringIO())


def test_a_manager_revokes_tokens_from_the_admin_and_sees_no_secret_there(client):
    manager = UserFactory(is_staff=True, is_superuser=True)
    token, plain = token_create(user=UserFactory())
    client.force_login(manager)

    listing = client.get("/admin/accounts/apitoken/")
    client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    assert token.prefix in listing.content.decode()
    assert plain not in listing.content.decode() and token.digest not in listing.content.decode()
    with pytest.raises(TokenRejected, match="revoked"):
        token_authenticate(plain=plain)


def test_each_token_and_each_user_has_a_rate_limit_answered_with_retry_after(settings):
    """GIVEN limits of 3 requests per token and 5 per user WHEN a user spends them THEN the
    next request gets a 429 with Retry-After, in the API's error shape. (A request one limit
    refuses still counts against the other.)"""
    settings.API_RATE_TOKEN, settings.API_RATE_USER = "3/minute", "5/minute"
    user = UserFactory()
    first, second = api_client(user), api_client(user)

    first_answers = [first.get("/api/v1/collections/").status_code for _ in range(4)]
    second_answers = [second.get("/api/v1/collections/").status_code for _ in range(2)]
    limited = second.get("/api/v1/collections/")
    other_user = api_client(UserFactory()).get("/api/v1/collections/")

    assert first_answers == [200, 200, 200, 429]  # the token's own limit
    assert second_answers == [200, 429]  # the user's limit, shared by both tokens
    assert limited.status_code == 429 and 0 < int(limited["Retry-After"]) <= 60
    assert limited.json()["error"]["code"] == "throttled"
    assert other_user.status_code == 200
    with connection.cursor() as cursor:  # counted where every web process sees it
        cursor.execute("SELECT count(*) FROM prodrag_cache WHERE cache_key LIKE %s", ["%throttle%"])
        assert cursor.fetchone()[0] >= 3
