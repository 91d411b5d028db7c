"""Directory sync at company size, and how long a removed membership keeps reading.

    .venv/bin/python -m bench.directory [--users 10000] [--groups 1000] [--interval 5]

A real slapd (Debian's, as `make test` installs it; tests/accounts/slapd.py) is loaded with
`--users` people and `--groups` groups: nine in ten groups are teams of people (each person in
three teams), the rest are departments whose members are teams (nested). prodrag runs on a
separate embedded database (var/bench-directory-pgdata), emptied of directory users and groups
first. The bench prints:

- the first sync (everyone created, every membership added) and a sync after 1% of the people
  changed (half of them left a team, a quarter joined one, a quarter were disabled): seconds,
  SQL statements (and how many wrote), and rows written (inserted, updated and deleted, from
  PostgreSQL's table statistics);
- revocation latency: a document is granted to a team; one of its members searches for it
  every 50 ms while the directory takes them out of the team. Through SCIM, the latency is
  from the PATCH call to the first search without the document. Through LDAP, a thread syncs
  every `--interval` seconds, as Celery beat would every PRODRAG_LDAP_SYNC_SECONDS, and the
  latency is from the change in slapd to the first search without the document.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARSER = argparse.ArgumentParser()
PARSER.add_argument("--users", type=int, default=10_000)
PARSER.add_argument("--groups", type=int, default=1_000)
PARSER.add_argument("--interval", type=float, default=5.0)
ARGS = PARSER.parse_args()
os.environ.setdefault("PRODRAG_PGDATA", str(ROOT / "var" / "bench-directory-pgdata"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from guardian.shortcuts import assign_perm  # noqa: E402

from accounts.directory_sync import directory_sync  # noqa: E402
from accounts.models import (  # noqa: E402
    AuditEvent,
    DirectoryGroup,
    DirectorySync,
    ExternalIdentity,
    User,
)
from bench.writes import measured  # noqa: E402
from documents.models import Collection  # noqa: E402
from retrieval.selectors import passages_search  # noqa: E402
from retrieval.types import Filters  # noqa: E402
from tests.accounts.slapd import Slapd, Tree, person_dn  # noqa: E402
from tests.handbook import ingest  # noqa: E402


def company(users: int, groups: int) -> Tree:
    rng = random.Random(7)
    people = [f"p{n:05d}" for n in range(users)]
    departments = max(1, groups // 10)
    teams = groups - departments
    members: dict[str, list[str]] = {f"team{t:04d}": [] for t in range(teams)}
    names = list(members)
    for person in people:
        for team in rng.sample(names, k=min(3, teams)):
            members[team].append(person)
    tree = Tree(people=dict.fromkeys(people, "pw"))
    for team, its_people in members.items():
        tree.groups[team] = (its_people or [people[0]], [])
    for d in range(departments):
        tree.groups[f"dept{d:03d}"] = ([], names[d::departments])
    return tree


def measured_sync(label: str) -> DirectorySync:
    with measured() as cost:
        run = directory_sync(allow_removals=True)
    print(
        f"{label}: {cost}; users created {run.users_created}, "
        f"deactivated {run.users_deactivated}; memberships added {run.memberships_added}, "
        f"removed {run.memberships_removed}; outcome {run.outcome}"
    )
    return run


def change_one_percent(server: Slapd, tree: Tree) -> None:
    rng = random.Random(11)
    changed = rng.sample(list(tree.people), k=max(4, len(tree.people) // 100))
    quarter = len(changed) // 4
    teams = [name for name in tree.groups if name.startswith("team")]
    leaving, joining = changed[: 2 * quarter], changed[2 * quarter : 3 * quarter]
    disabled = changed[3 * quarter :]
    for person in leaving:
        team = next(t for t in teams if person in tree.groups[t][0] and len(tree.groups[t][0]) > 1)
        tree.groups[team][0].remove(person)
        server.member_remove(team, person_dn(person))
    for person in joining:
        team = next(t for t in teams if person not in tree.groups[t][0])
        tree.groups[team][0].append(person)
        server.member_add(team, person_dn(person))
    for person in disabled:
        server.disable(person)


def can_read(user: User) -> bool:
    found = passages_search(
        user=user, query="harbour lighthouse keys", k=5, mode="fulltext", filters=Filters(),
        collapse=False, expand=False,
    )  # fmt: skip
    return bool(found.passages)


def first_miss(user: User, since: float, timeout: float) -> float:
    while time.perf_counter() - since < timeout:
        if not can_read(user):
            return time.perf_counter() - since
        time.sleep(0.05)
    raise SystemExit(f"the document was still found after {timeout} s")


def revocation(server: Slapd, tree: Tree) -> None:
    boss = User.objects.filter(is_superuser=True).first() or User.objects.create_superuser(
        "bench-boss", password=None
    )
    collection = Collection.objects.create(name=f"bench-directory-{time.time_ns()}", owner=boss)
    ingest(collection, "keys.md", "# Harbour\n\nThe lighthouse keys hang in the harbour office.")
    team = next(
        t for t, (people, _) in tree.groups.items() if t.startswith("team") and len(people) > 2
    )
    assign_perm("view_document", Group.objects.get(name=team), collection)
    reader_uid = tree.groups[team][0][0]
    reader = User.objects.get(username=reader_uid)
    assert can_read(reader), "the team's member does not read the team's document"

    stop = threading.Event()

    def beat():
        while not stop.wait(ARGS.interval):
            directory_sync(allow_removals=True)
            connection.close()

    ticker = threading.Thread(target=beat, daemon=True)
    ticker.start()
    time.sleep(random.Random(3).uniform(0, ARGS.interval))  # a change at any point of the cycle
    since = time.perf_counter()
    server.member_remove(team, person_dn(reader_uid))
    ldap_latency = first_miss(reader, since, timeout=10 * ARGS.interval + 60)
    stop.set()
    ticker.join()
    print(f"revocation through LDAP (sync every {ARGS.interval:g} s): {ldap_latency:.2f} s")

    settings.SCIM_TOKEN = "bench-" + "x" * 26
    other = tree.groups[team][0][1]
    scim_reader = User.objects.get(username=other)
    group = Group.objects.get(name=team)
    # The team passes to SCIM, with its people, as when a company moves its provisioning.
    DirectoryGroup.objects.filter(group=group).update(directory="scim")
    ExternalIdentity.objects.bulk_create(
        ExternalIdentity(user=user, directory="scim", subject=user.username)
        for user in group.user_set.all()
    )
    assert can_read(scim_reader)
    body = (
        '{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": '
        f'[{{"op": "remove", "path": "members[value eq \\"{scim_reader.pk}\\"]"}}]}}'
    )
    since = time.perf_counter()
    response = Client().patch(
        f"/scim/v2/Groups/{group.pk}", body, content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {settings.SCIM_TOKEN}", HTTP_HOST="localhost",
    )  # fmt: skip
    assert response.status_code == 204, response.status_code
    scim_latency = first_miss(scim_reader, since, timeout=60)
    print(f"revocation through SCIM: {scim_latency * 1000:.0f} ms (the call and the first search)")


def main() -> None:
    call_command("migrate", verbosity=0)
    User.objects.filter(identities__directory="ldap").delete()
    Group.objects.filter(directory__isnull=False).delete()
    AuditEvent.objects.all().delete()
    settings.DIRECTORY_GROUPS = re.compile(".+")
    settings.LDAP_MAX_REMOVAL_SHARE = 1.0
    tree = company(ARGS.users, ARGS.groups)
    with tempfile.TemporaryDirectory() as root:
        server = Slapd(Path(root) / "slapd")
        started = time.perf_counter()
        server.start(tree)
        print(
            f"slapd loaded with {len(tree.people)} people and {len(tree.groups)} groups in "
            f"{time.perf_counter() - started:.1f} s"
        )
        settings.LDAP = server.settings()
        try:
            measured_sync("first sync")
            change_one_percent(server, tree)
            measured_sync("sync after 1% changed")
            measured_sync("sync with nothing changed")
            revocation(server, tree)
        finally:
            server.stop()


main()
