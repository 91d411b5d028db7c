"""The LDAP directory against a real slapd (tests/accounts/slapd.py): the sync mirrors users,
nested groups and disabled accounts for everyone; a change in the directory reaches prodrag at
the next sync even for people who never sign in; a directory that does not answer, or answers
with far fewer memberships, removes nobody; sign-in by bind, and the local break-glass account
when the directory is down."""

import re
import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse
from guardian.shortcuts import assign_perm

from accounts.directory_sync import directory_sync
from accounts.ldap import DirectoryUnavailable
from accounts.models import (
    AuditEvent,
    DirectoryGroup,
    DirectorySync,
    ExternalIdentity,
    PermissionMark,
    User,
)
from accounts.tasks import directory_sync_run
from core import metrics
from tests.accounts.factories import UserFactory
from tests.accounts.slapd import Slapd, Tree, group_dn, person_dn
from tests.api import api_client
from tests.documents.factories import CollectionFactory
from tests.handbook import ingest

pytestmark = pytest.mark.django_db

PASSWORDS = {"anna": "anna-pw", "bert": "bert-pw", "carl": "carl-pw", "dora": "dora-pw",
             "erik": "erik-pw"}  # fmt: skip


def company() -> Tree:
    """engineering holds anna and the platform group (bert); all-staff holds engineering and
    finance (carl); dora is disabled; erik is only in a group PRODRAG_DIRECTORY_GROUPS leaves
    out."""
    return Tree(
        people=dict(PASSWORDS),
        disabled={"dora"},
        groups={
            "platform": (["bert"], []),
            "engineering": (["anna"], ["platform"]),
            "finance": (["carl", "dora"], []),
            "all-staff": ([], ["engineering", "finance"]),
            "unmapped-poker-club": (["erik"], []),
        },
    )


@pytest.fixture
def directory(settings, tmp_path):
    server = Slapd(tmp_path / "slapd")
    server.start(company())
    settings.LDAP = server.settings()
    settings.DIRECTORY_GROUPS = re.compile(r"(?!unmapped-).+")
    settings.LDAP_MAX_REMOVAL_SHARE = 0.1
    settings.LDAP_REMOVALS_ALWAYS_ALLOWED = 3
    yield server
    server.stop()


def groups_of(username: str) -> set[str]:
    return set(Group.objects.filter(user__username=username).values_list("name", flat=True))


def test_the_sync_mirrors_people_nested_groups_and_disabled_accounts(directory):
    run = directory_sync()

    assert run.outcome == DirectorySync.Outcome.DONE
    assert (run.users_seen, run.groups_seen, run.users_created) == (5, 5, 5)
    assert groups_of("anna") == {"engineering", "all-staff"}
    assert groups_of("bert") == {"platform", "engineering", "all-staff"}  # two levels up
    assert groups_of("carl") == {"finance", "all-staff"}
    assert groups_of("erik") == set()  # the unmapped group grants nothing, and is not created
    assert not Group.objects.filter(name__startswith="unmapped").exists()
    assert not User.objects.get(username="dora").is_active
    anna = User.objects.get(username="anna")
    assert (anna.email, anna.first_name, anna.has_usable_password()) == (
        "anna@example.org",
        "Anna",
        False,
    )
    assert set(DirectoryGroup.objects.values_list("directory", flat=True)) == {"ldap"}
    added = AuditEvent.objects.filter(action=AuditEvent.Action.MEMBERSHIP_ADD, via="sync")
    assert added.count() == run.memberships_added == 2 + 3 + 2 + 2  # dora's too
    assert {"group": "platform", "directory": "ldap"} in [e.details for e in added]
    # A second run with nothing changed writes nothing.
    again = directory_sync()
    assert (again.users_created, again.users_updated, again.memberships_added) == (0, 0, 0)
    assert again.memberships_removed == 0


@pytest.mark.django_db(transaction=True)  # the permission mark moves once per transaction
def test_leaving_a_group_in_the_directory_takes_its_documents_away_at_the_next_sync(directory):
    """GIVEN carl, who never signs in, reads the finance plan through the directory group
    WHEN the directory's administrators take him out of finance and the sync runs
    THEN his search no longer finds it, and the permission mark that keeps read replicas
    honest has moved."""
    directory_sync()
    boss = UserFactory(is_superuser=True)
    collection = CollectionFactory(owner=boss)
    ingest(collection, "plan.md", "# Finance plan\n\nThe quarterly budget is eleven million.")
    assign_perm("view_document", Group.objects.get(name="finance"), collection)
    carl = User.objects.get(username="carl")
    search = {"query": "quarterly budget", "mode": "hybrid"}
    client = api_client(carl)
    assert client.post(reverse("v1:search"), search, format="json").json()["passages"]
    mark = PermissionMark.objects.get().position

    directory.member_remove("finance", person_dn("carl"))
    run = directory_sync()

    assert run.memberships_removed == 2  # finance, and all-staff through it
    assert groups_of("carl") == set()
    assert client.post(reverse("v1:search"), search, format="json").json()["passages"] == []
    assert PermissionMark.objects.get().position > mark
    removed = AuditEvent.objects.filter(action=AuditEvent.Action.MEMBERSHIP_REMOVE)
    assert {(e.target_repr, e.details["group"]) for e in removed} == {
        ("carl", "finance"),
        ("carl", "all-staff"),
    }


def test_disabled_or_deleted_in_the_directory_ends_sessions_and_tokens_at_the_next_sync(
    directory, client
):
    directory_sync()
    carl, erik = User.objects.get(username="carl"), User.objects.get(username="erik")
    client.force_login(carl)
    assert client.get(reverse("chat:home")).status_code == 200
    tokens = {name: api_client(user) for name, user in (("carl", carl), ("erik", erik))}
    for api in tokens.values():
        assert api.get(reverse("v1:document-list")).status_code == 200

    directory.disable("carl")
    directory.delete(person_dn("erik"))
    run = directory_sync()

    assert run.users_deactivated == 2
    assert not User.objects.get(username="carl").is_active
    assert not User.objects.get(username="erik").is_active
    response = client.get(reverse("chat:home"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    for api in tokens.values():
        refused = api.get(reverse("v1:document-list"))
        assert refused.status_code == 401
        assert "revoked" in str(refused.data).lower()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.TOKEN_REVOKE).count() == 2

    directory.member_add("finance", person_dn("erik"))  # erik's entry is gone: a dangling DN
    with directory.connection() as connection:
        connection.modify(person_dn("carl"), {"employeeType": [("MODIFY_DELETE", [])]})
    assert directory_sync().users_reactivated == 1
    assert User.objects.get(username="carl").is_active


def test_a_group_renamed_in_the_directory_keeps_its_grants_under_the_new_name(directory):
    directory_sync()
    everyone = Group.objects.get(name="all-staff")  # no group lists it: its DN may change
    with directory.connection() as connection:
        connection.modify_dn(group_dn("all-staff"), "cn=everyone")

    run = directory_sync()

    assert (run.groups_created, run.memberships_removed) == (0, 0)
    assert Group.objects.get(pk=everyone.pk).name == "everyone"
    renamed = AuditEvent.objects.get(action=AuditEvent.Action.GROUP_UPDATE)
    assert renamed.details == {"name": ["all-staff", "everyone"], "directory": "ldap"}
    assert renamed.via == "sync"


@pytest.mark.django_db(transaction=True)
def test_two_syncs_at_once_make_each_change_once(directory):
    """GIVEN beat's sync and a manual one started together
    WHEN both have read the directory
    THEN the second waits for the first and then finds nothing left to change."""
    runs = []

    def sync():
        try:
            runs.append(directory_sync())
        finally:
            connection.close()

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [run.outcome for run in runs] == [DirectorySync.Outcome.DONE] * 2
    assert sorted(run.users_created for run in runs) == [0, 5]
    assert sorted(run.memberships_added for run in runs) == [0, 9]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.MEMBERSHIP_ADD).count() == 9


def test_a_directory_answering_with_far_fewer_memberships_is_held_and_changes_nothing(directory):
    directory_sync()
    before = set(User.groups.through.objects.values_list("user_id", "group_id"))
    held = metrics.DIRECTORY_SYNCS.labels("held")._value.get()
    for name in ("all-staff", "engineering", "finance", "platform"):
        directory.delete(group_dn(name))  # an empty group list, as a broken directory sends

    run = directory_sync()

    assert run.outcome == DirectorySync.Outcome.HELD
    assert "PRODRAG_LDAP_MAX_REMOVAL_SHARE" in run.error and "--allow-removals" in run.error
    assert set(User.groups.through.objects.values_list("user_id", "group_id")) == before
    assert metrics.DIRECTORY_SYNCS.labels("held")._value.get() == held + 1
    applied = directory_sync(allow_removals=True)
    assert applied.outcome == DirectorySync.Outcome.DONE
    assert applied.memberships_removed == len(before)


def test_an_unreachable_directory_is_recorded_retried_and_removes_nobody(directory, caplog):
    directory_sync()
    before = set(User.groups.through.objects.values_list("user_id", "group_id"))
    failures = metrics.DIRECTORY_SYNCS.labels("failed")._value.get()
    directory.stop()

    with pytest.raises(DirectoryUnavailable):
        directory_sync()
    result = directory_sync_run.apply()  # eager: its retries run at once, one after another

    assert result.state == "FAILURE"
    failed = DirectorySync.objects.filter(outcome=DirectorySync.Outcome.FAILED)
    assert failed.count() == 1 + 1 + directory_sync_run.max_retries
    assert "Connection refused" in failed.first().error
    assert metrics.DIRECTORY_SYNCS.labels("failed")._value.get() == failures + failed.count()
    logged = [r for r in caplog.records if r.name == "prodrag.accounts.directory_sync"]
    assert len(logged) == failed.count() and all(r.levelname == "ERROR" for r in logged)
    assert "nothing changed" in logged[0].getMessage()
    assert set(User.groups.through.objects.values_list("user_id", "group_id")) == before
    assert User.objects.filter(identities__directory="ldap", is_active=True).count() == 4


def test_the_directory_is_reached_over_ldaps_or_starttls_and_its_certificate_is_checked(
    settings, tmp_path
):
    server = Slapd(tmp_path / "tls", tls=True)
    server.start(company())
    settings.DIRECTORY_GROUPS = re.compile(r"(?!unmapped-).+")
    checked = server.settings() | {"url": server.ldaps_url, "ca_file": str(server.ca_file)}
    try:
        settings.LDAP = checked
        assert directory_sync().users_created == 5
        settings.LDAP = checked | {"url": server.url, "start_tls": True}
        assert directory_sync().outcome == DirectorySync.Outcome.DONE
        settings.LDAP = checked | {"ca_file": ""}  # the system's CAs do not know this one
        with pytest.raises(DirectoryUnavailable, match=r"(?i)certificate"):
            directory_sync()
    finally:
        server.stop()


def test_a_local_account_is_never_taken_over_by_a_directory_user_of_its_name(directory, client):
    local = UserFactory(username="bert", is_superuser=True)
    run = directory_sync()

    assert run.conflicts == ["bert"]
    assert not ExternalIdentity.objects.filter(user=local).exists()
    assert groups_of("bert") == set()
    client.post(reverse("login"), {"username": "bert", "password": PASSWORDS["bert"]})
    assert "_auth_user_id" not in client.session
    refused = AuditEvent.objects.get(action=AuditEvent.Action.SIGNIN_FAILED)
    assert refused.details["method"] == "ldap"
    assert "local account" in refused.details["reason"]


def test_sign_in_by_directory_password_sets_the_groups_of_that_moment(directory, client):
    response = client.post(reverse("login"), {"username": "anna", "password": "anna-pw"})

    assert response.status_code == 302
    anna = User.objects.get(username="anna")
    assert int(client.session["_auth_user_id"]) == anna.pk
    assert groups_of("anna") == {"engineering", "all-staff"}
    signin = AuditEvent.objects.get(action=AuditEvent.Action.SIGNIN)
    assert (signin.actor, signin.details) == (anna, {"method": "ldap"})


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("anna", "wrong", "wrong username or password"),
        ("nobody", "anna-pw", "wrong username or password"),
        ("dora", "dora-pw", "the account is disabled in the directory"),
        ("anna*", "anna-pw", "wrong username or password"),  # no filter injection
    ],
)
def test_a_refused_directory_sign_in_says_why_in_the_audit_trail(
    directory, client, username, password, reason
):
    response = client.post(reverse("login"), {"username": username, "password": password})

    assert response.status_code == 200 and "_auth_user_id" not in client.session
    refused = AuditEvent.objects.get(action=AuditEvent.Action.SIGNIN_FAILED)
    assert refused.details == {"method": "ldap", "username": username, "reason": reason}


def test_with_the_directory_down_its_users_are_refused_and_the_break_glass_account_signs_in(
    directory, client
):
    UserFactory(username="rescue", is_superuser=True, is_staff=True)
    directory.stop()

    client.post(reverse("login"), {"username": "anna", "password": "anna-pw"})
    assert "_auth_user_id" not in client.session
    refused = AuditEvent.objects.get(action=AuditEvent.Action.SIGNIN_FAILED)
    assert refused.details["reason"] == "the directory did not answer"

    response = client.post(
        reverse("admin:login"), {"username": "rescue", "password": "correct horse battery"}
    )
    assert response.status_code == 302 and "_auth_user_id" in client.session
    assert AuditEvent.objects.get(action=AuditEvent.Action.SIGNIN).details == {"method": "password"}


def test_the_admin_refuses_hand_changes_to_a_directory_groups_members(directory, client):
    directory_sync()
    boss = UserFactory(is_superuser=True, is_staff=True)
    hand = Group.objects.create(name="hand-made")
    anna = User.objects.get(username="anna")
    client.force_login(boss)
    url = reverse("admin:accounts_user_change", args=[anna.pk])
    page = client.get(url)
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "groups"}
    data |= {"date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
             "identities-TOTAL_FORMS": 1, "identities-INITIAL_FORMS": 1,
             "identities-0-id": anna.identities.get().pk, "identities-0-user": anna.pk}  # fmt: skip
    data.pop("date_joined", None), data.pop("last_login", None)

    dropped = client.post(url, data | {"groups": [hand.pk]})  # leaves engineering, all-staff
    assert dropped.status_code == 200
    assert "is a directory group" in dropped.content.decode()
    assert groups_of("anna") == {"engineering", "all-staff"}

    kept = client.post(url, data | {"groups": [*anna.groups.values_list("pk", flat=True), hand.pk]})
    assert kept.status_code == 302, kept.content.decode()[:2000]
    assert groups_of("anna") == {"engineering", "all-staff", "hand-made"}
    engineering = Group.objects.get(name="engineering")
    delete = client.get(reverse("admin:auth_group_delete", args=[engineering.pk]))
    assert delete.status_code == 403
    change = reverse("admin:auth_group_change", args=[engineering.pk])
    assert client.get(change).status_code == 200
    client.post(change, {"name": "renamed-by-hand", "permissions": []})
    assert Group.objects.filter(name="engineering").exists()  # the name is the directory's
    listing = client.get(reverse("admin:auth_group_changelist")).content.decode()
    assert "LDAP / Active Directory (members set by it)" in listing and "by hand" in listing
