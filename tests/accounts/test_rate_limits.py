"""Rate limits outside the API: sign-in attempts (chat's and the admin's login pages) per
client address and per username, and questions asked in the chat pages per user. Counted in
the shared cache, as the API's limits are."""

import pytest
from django.urls import reverse

from chat.models import Message
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("login_page", ["login", "admin:login"])
def test_password_guessing_is_slowed_down_per_address(client, settings, login_page):
    settings.LOGIN_RATE = "3/minute"
    UserFactory(username="anna")
    url = reverse(login_page)
    statuses = [
        client.post(url, {"username": "anna", "password": f"guess {n}"}).status_code
        for n in range(4)
    ]

    assert statuses == [200, 200, 200, 429]  # wrong passwords show the form again, then 429
    refused = client.post(url, {"username": "anna", "password": "correct horse battery"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session  # not even the right password gets through


def test_guessing_one_users_password_from_many_addresses_is_limited_too(client, settings):
    settings.LOGIN_RATE = "2/minute"
    UserFactory(username="anna")
    statuses = [
        client.post(
            reverse("login"),
            {"username": "Anna", "password": "guess"},
            REMOTE_ADDR=f"127.0.0.{n + 1}",
        ).status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_signing_in_within_the_limit_works(client, settings):
    settings.LOGIN_RATE = "3/minute"
    UserFactory(username="anna")
    response = client.post(
        reverse("login"), {"username": "anna", "password": "correct horse battery"}
    )
    assert response.status_code == 302 and "_auth_user_id" in client.session


def test_chat_questions_are_limited_per_user(client, settings, handbook):
    settings.CHAT_RATE = "2/minute"
    user = UserFactory()
    client.force_login(user)
    statuses = [
        client.post(reverse("chat:ask"), {"question": "How much annual leave?"}).status_code
        for _ in range(3)
    ]
    assert statuses == [302, 302, 429]
    assert Message.objects.filter(role="user").count() == 2  # the refused one stored nothing


def test_a_forwarded_for_header_from_an_undeclared_proxy_changes_no_limit(client, settings):
    """GIVEN no declared proxies WHEN one machine sends a new X-Forwarded-For on each attempt,
    at a new account each time THEN its address is still limited: the header is its own."""
    settings.LOGIN_RATE = "3/minute"
    settings.TRUSTED_PROXIES = []
    statuses = [
        client.post(
            reverse("login"),
            {"username": f"user{n}", "password": "guess"},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_behind_a_declared_proxy_each_client_has_its_own_limit(client, settings):
    """GIVEN a declared proxy network WHEN requests come through it THEN the address the proxy
    saw is limited (whatever the client wrote to the left of it), and another client is not."""
    settings.LOGIN_RATE = "2/minute"
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    def attempt(n: int, forwarded: str) -> int:
        return client.post(
            reverse("login"),
            {"username": f"user{n}", "password": "guess"},
            REMOTE_ADDR="10.1.2.3",
            HTTP_X_FORWARDED_FOR=forwarded,
        ).status_code

    spoofed = [attempt(n, f"192.0.2.{n}, 203.0.113.7, 10.9.9.9") for n in range(3)]
    assert spoofed == [200, 200, 429]
    assert attempt(9, "203.0.113.8") == 200  # another client behind the same proxy


@pytest.mark.parametrize("variant", [" anna", "anna ", "\tanna", "\uff41\uff4e\uff4e\uff41"])
def test_spellings_of_one_username_count_against_one_limit(client, settings, variant):
    """GIVEN spellings the login form signs in to the same account WHEN guesses alternate
    between them, from many addresses THEN they share the account's one limit."""
    settings.LOGIN_RATE = "2/minute"
    UserFactory(username="anna")
    signed_in = client.post(
        reverse("login"), {"username": variant, "password": "correct horse battery"}
    )
    assert signed_in.status_code == 302  # the form does take it for anna
    client.logout()
    statuses = [
        client.post(
            reverse("login"),
            {"username": name, "password": "guess"},
            REMOTE_ADDR=f"127.0.0.{n + 2}",
        ).status_code
        for n, name in enumerate(["anna", variant])
    ]
    assert statuses == [200, 429]
