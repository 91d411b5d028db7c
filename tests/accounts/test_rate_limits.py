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
