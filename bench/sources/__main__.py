"""Source syncs at 10,000 files: what an unchanged re-sync costs, how long one edited file
takes to be searchable, and how long a revocation in a mirrored folder keeps reading.

    .venv/bin/python -m bench.sources [--files 10000] [--interval 60]

prodrag runs on an embedded database of its own (var/bench-sources-pgdata), emptied of
sources first. `--files` small Markdown files (a few hundred bytes each, all different) are
written to a folder, and committed to a git repository served by `git daemon` on loopback
(tests/sources/gitd.py). For the folder and for git, the bench prints:

- the first sync (every file a new document; ingestion is not run for them: they stay
  pending, which no sync reads);
- a re-sync with nothing changed: seconds, SQL statements (and how many wrote), rows
  written, and how many versions were made (must be none: nothing parsed or embedded); for
  git, by its diff since the last synced commit, then listing the whole branch (as the sync
  after a run with a failed item does);
- one file edited (in the folder; a commit pushed for git): seconds from the edit to the
  first search that finds its new text, by a sync, the ingestion of what it queued and a
  search every 50 ms (what the worker does, run here in one process, with the embedding model
  loaded beforehand as a running worker has it).

Then a mirror-mode folder of `--files` files, readable by a group: a reader in the group
finds one of them; the file's group loses read access (chmod), and a thread runs the
permission pass every `--interval` seconds (as the worker's beat does every
`permission_minutes`); the latency is from the chmod to the reader's first search without the
document, and each pass's duration is printed.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARSER = argparse.ArgumentParser()
PARSER.add_argument("--files", type=int, default=10_000)
PARSER.add_argument("--interval", type=float, default=60.0)
ARGS = PARSER.parse_args()
os.environ.setdefault("PRODRAG_PGDATA", str(ROOT / "var" / "bench-sources-pgdata"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from bench.writes import measured  # noqa: E402
from documents.models import Collection, Document, DocumentVersion  # noqa: E402
from documents.services.ingestion import documents_ingest  # noqa: E402
from retrieval.selectors import passages_search  # noqa: E402
from retrieval.types import Filters  # noqa: E402
from sources.models import Source  # noqa: E402
from sources.services import source_permissions_sync, source_save, source_sync  # noqa: E402
from tests.sources.gitd import GitDaemon  # noqa: E402

WORDS = [
    "rota", "shift", "plant", "safety", "ladder", "audit", "invoice", "contract", "leave",
    "travel", "expense", "policy", "review", "budget", "supplier", "quality", "training",
    "onboarding", "laptop", "badge", "canteen", "parking", "report", "meeting", "board", "risk",
    "incident", "customer", "release", "backup", "archive", "retention",
]  # fmt: skip


def files(count: int) -> dict[str, str]:
    rng = random.Random(11)
    return {
        f"area-{n % 50:02d}/note-{n:05d}.md": f"# Note {n}\n\n"
        + " ".join(rng.choice(WORDS) for _ in range(60))
        + f"\n\nReference number {n}."
        for n in range(count)
    }


def found(user: User, query: str, collection: Collection) -> bool:
    result = passages_search(user=user, query=query, k=5, mode="fulltext",
                             filters=Filters(collections=[collection.pk]), collapse=False,
                             expand=False)  # fmt: skip
    return bool(result.passages)


def searchable_after_edit(source: Source, edit, reader: User, query: str) -> float:
    """Seconds from `edit()` to the first search that finds `query`: syncs, ingests what the
    sync queued (the edited file's new version), and searches every 50 ms, as the worker and
    a reader would."""
    since = timezone.now()
    started = time.perf_counter()
    edit()
    while True:
        source_sync(source=source)
        queued = Document.objects.filter(collection=source.collection, status="pending",
                                         updated_at__gte=since)  # fmt: skip
        documents_ingest(document_ids=list(queued.values_list("pk", flat=True)))
        if found(reader, query, source.collection):
            return time.perf_counter() - started
        time.sleep(0.05)


def content_source(kind: str, location: str, owner: User, edit) -> None:
    collection = Collection.objects.create(name=f"bench {kind}", owner=owner)
    source = source_save(source=Source(name=f"bench-{kind}", kind=kind, location=location,
                                       collection=collection, owner=owner, branch="main"),
                         folders_checked=False)  # fmt: skip
    with measured() as cost:
        run = source_sync(source=source)
    print(f"{kind} first sync of {run.seen} files: {cost}; added {run.added}")
    versions = DocumentVersion.objects.count()
    with measured() as cost:
        run = source_sync(source=source)
    made = DocumentVersion.objects.count() - versions
    print(f"{kind} re-sync, nothing changed: {cost}; unchanged {run.unchanged}, "
          f"versions made {made}")  # fmt: skip
    if kind == "git":  # a diff above; the whole branch listed, as after a run with a failure
        Source.objects.filter(pk=source.pk).update(checkpoint={})
        source.refresh_from_db()
        with measured() as cost:
            run = source_sync(source=source)
        made = DocumentVersion.objects.count() - versions
        print(f"git re-sync listing the whole branch, nothing changed: {cost}; unchanged "
              f"{run.unchanged}, versions made {made}")  # fmt: skip
    # The model loads once, as in a running worker: not part of the latency below.
    documents_ingest(
        document_ids=[collection.documents.order_by("pk").values_list("pk", flat=True)[1]]
    )
    latency = searchable_after_edit(source, edit, owner, "zeppelin quartermaster")
    print(f"{kind} one file edited to searchable: {latency:.2f} s")


def mirror(owner: User, root: Path, texts: dict[str, str]) -> None:
    share = root / "mirror"
    for name, text in texts.items():
        path = share / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, 0o640)
        os.chown(path, 0, 4)  # root, group adm
    reader = User.objects.create(username="bench-reader")
    Group.objects.get_or_create(name="adm")[0].user_set.add(reader)
    collection = Collection.objects.create(name="bench mirror", owner=owner)
    source = source_save(source=Source(name="bench-mirror", kind="folder", location=str(share),
                                       collection=collection, owner=owner,
                                       permission_mode="mirror"),
                         folders_checked=False)  # fmt: skip
    with measured() as cost:
        run = source_sync(source=source)
    print(f"mirror first sync of {run.seen} files (readers set with each): {cost}")
    target = next(iter(texts))
    document = Document.objects.get(collection=collection, source=source.address(target))
    documents_ingest(document_ids=[document.pk])
    query = f"Reference number {target.rsplit('-', 1)[1].removesuffix('.md').lstrip('0') or 0}"
    assert found(reader, query, collection), "the reader should find the document first"
    with measured() as cost:
        source_permissions_sync(source=source)
    print(f"mirror permission pass with nothing changed: {cost}")

    stop = threading.Event()
    passes: list[float] = []

    def beat():
        try:
            while not stop.wait(ARGS.interval):
                started = time.perf_counter()
                source_permissions_sync(source=source)
                passes.append(time.perf_counter() - started)
        finally:
            connection.close()

    thread = threading.Thread(target=beat)
    thread.start()
    time.sleep(random.Random(3).uniform(0, ARGS.interval))  # the change lands mid-interval
    changed = time.perf_counter()
    os.chmod(share / target, 0o600)
    while found(reader, query, collection):
        time.sleep(0.05)
    latency = time.perf_counter() - changed
    stop.set()
    thread.join()
    print(
        f"mirror revocation to the reader's first search without it: {latency:.2f} s "
        f"(passes every {ARGS.interval:g} s took {', '.join(f'{p:.2f}' for p in passes)} s)"
    )


def main() -> None:
    call_command("migrate", verbosity=0)
    Source.objects.all().delete()
    Document.objects.filter(collection__name__startswith="bench ").delete()
    Collection.objects.filter(name__startswith="bench ").delete()
    User.objects.filter(username__startswith="bench-").delete()
    owner = User.objects.create(username="bench-owner")
    texts = files(ARGS.files)
    edited = "\n\nThe zeppelin quartermaster signs every delivery note."
    first = next(iter(texts))
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        folder = root / "folder"
        for name, text in texts.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        content_source("folder", str(folder), owner,
                       lambda: (folder / first).write_text(texts[first] + edited))  # fmt: skip
        server = GitDaemon(root / "git")
        server.start()
        try:
            started = time.perf_counter()
            server.commit(texts, "the notes")
            print(f"git repository of {len(texts)} files committed in "
                  f"{time.perf_counter() - started:.1f} s")  # fmt: skip
            content_source(
                "git", server.url, owner,
                lambda: server.commit({first: texts[first] + edited}, "an edit"),
            )  # fmt: skip
        finally:
            server.stop()
        mirror(owner, root, texts)


main()
