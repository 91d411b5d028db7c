import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from documents.embedding import embedder, onnx
from documents.models import Document, DocumentVersion, embedding_index
from tests.accounts.factories import GroupFactory, UserFactory
from tests.documents.factories import CollectionFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_ingest_reports_every_outcome_and_every_file_left_out(tmp_path):
    UserFactory(username="boss", is_superuser=True)
    GroupFactory(name="hr")
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# A\n\nAlpha text.")
    (tmp_path / "sub" / "b.txt").write_text("Beta text.")
    (tmp_path / "bad.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.md").write_text("# Hidden")

    out = run(
        "ingest",
        str(tmp_path),
        "--collection",
        "HR",
        "--recursive",
        "--grant-group",
        "hr",
        "--sync",
    )

    assert "Created collection 'HR' (owner boss)." in out
    assert "Summary: 3 created, 0 unchanged, 0 new version, 1 failed, 1 skipped." in out
    assert "bad.txt: The text is not valid UTF-8" in out
    assert "photo.png: unsupported type .png" in out
    assert Document.objects.filter(status="ready").count() == 2
    assert not Document.objects.filter(source__endswith=".hidden.md").exists()

    (tmp_path / "a.md").write_text("# A\n\nAlpha text, revised.")
    out = run("ingest", str(tmp_path), "--collection", "HR", "--recursive", "--sync")
    assert "Summary: 0 created, 2 unchanged, 1 new version, 1 failed, 1 skipped." in out
    assert "bad.txt: unchanged since it failed: The text is not valid UTF-8" in out


def test_ingest_refuses_an_unknown_group_before_loading_anything(tmp_path):
    UserFactory(is_superuser=True)
    (tmp_path / "a.txt").write_text("text")
    with pytest.raises(CommandError, match="No group named 'nobody'"):
        run("ingest", str(tmp_path), "--collection", "X", "--grant-group", "nobody")
    assert not Document.objects.exists()


def test_import_beir_keeps_ids_and_titles_and_reports_bad_rows(tmp_path):
    UserFactory(is_superuser=True)
    rows = [
        {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces fever."},
        {"_id": "d2", "title": "", "text": "Untitled row."},
    ]
    (tmp_path / "corpus.jsonl").write_text(
        "\n".join(json.dumps(row) for row in rows) + "\n{not json\n"
    )
    out = run("import_beir", str(tmp_path), "--collection", "beir", "--sync")
    assert "Summary: 2 created, 0 unchanged, 0 new version, 1 failed, 0 skipped." in out
    assert "corpus.jsonl:3: not a BEIR corpus row" in out
    aspirin = Document.objects.get(external_id="d1")
    assert aspirin.title == "Aspirin" and aspirin.status == "ready"
    assert aspirin.chunks.get().text == "Aspirin reduces fever."
    assert Document.objects.get(external_id="d2").title == "d2"


def test_rebuild_failed_requeues_only_failed_documents(
    tmp_path, django_capture_on_commit_callbacks, queued
):
    UserFactory(is_superuser=True)
    (tmp_path / "good.txt").write_text("Good.")
    (tmp_path / "bad.txt").write_bytes(b"\xe9")
    run("ingest", str(tmp_path), "--collection", "C", "--sync")

    with django_capture_on_commit_callbacks(execute=True):
        out = run("rebuild", "--collection", "C", "--failed")

    bad = Document.objects.get(source__endswith="bad.txt")
    assert "1 document(s) of 'C' queued" in out
    assert queued == [[bad.pk]]
    assert queued.queues == ["ingestion"]
    assert bad.status == "pending" and bad.attempts == 0 and bad.error == ""
    with pytest.raises(CommandError, match="No collection named 'nope'"):
        run("rebuild", "--collection", "nope")


def test_reembed_picks_the_documents_embedded_by_another_model(
    tmp_path, django_capture_on_commit_callbacks, queued
):
    collection = CollectionFactory(name="C")
    for name in ("one.txt", "two.txt"):
        (tmp_path / name).write_text(f"Text of {name}.")
    run("ingest", str(tmp_path), "--collection", "C", "--sync")
    old = Document.objects.get(source__endswith="one.txt")
    DocumentVersion.objects.filter(pk=old.indexed_version_id).update(embedding_model="old-model")

    with django_capture_on_commit_callbacks(execute=True):
        out = run("reembed", "--collection", collection.name)

    assert "1 document(s) of 'C' queued for re-embedding." in out
    assert queued == [[old.pk]]
    assert queued.queues == ["maintenance"]


@pytest.fixture
def int8_configured(settings):
    """The embedder as configured with int8 (the default is unquantised)."""
    settings.EMBEDDING_QUANTIZE = "int8"
    embedder.cache_clear()
    yield
    embedder.cache_clear()


def test_reembed_picks_the_documents_embedded_with_another_quantisation(
    tmp_path, django_capture_on_commit_callbacks, queued, int8_configured
):
    """GIVEN int8 configured, one document embedded unquantised by PyTorch, one unquantised
    by ONNX Runtime WHEN reembed runs THEN both are queued, the int8 one is not."""
    collection = CollectionFactory(name="C")
    for name in ("one.txt", "two.txt", "three.txt"):
        (tmp_path / name).write_text(f"Text of {name}.")
    run("ingest", str(tmp_path), "--collection", "C", "--sync")
    one, two = (Document.objects.get(source__endswith=name) for name in ("one.txt", "two.txt"))
    for document, runtime in ((one, "torch"), (two, "onnx")):
        DocumentVersion.objects.filter(pk=document.indexed_version_id).update(
            embedding_runtime=runtime, embedding_quantize="none"
        )

    with django_capture_on_commit_callbacks(execute=True):
        out = run("reembed", "--collection", collection.name)

    assert "2 document(s) of 'C' queued for re-embedding." in out
    assert sorted(queued[0]) == sorted([one.pk, two.pk])


def test_after_a_fallback_reembed_leaves_what_the_embedder_itself_makes(
    tmp_path, monkeypatch, django_capture_on_commit_callbacks, queued, int8_configured
):
    """GIVEN int8 configured but refused on this CPU (the embedder runs unquantised) WHEN
    reembed runs THEN documents embedded unquantised, by either runtime, are not stale: a
    change of runtime alone changes no vector."""
    collection = CollectionFactory(name="C")
    for name in ("one.txt", "two.txt"):
        (tmp_path / name).write_text(f"Text of {name}.")
    run("ingest", str(tmp_path), "--collection", "C", "--sync")
    one = Document.objects.get(source__endswith="one.txt")
    DocumentVersion.objects.filter(pk=one.indexed_version_id).update(
        embedding_runtime="torch", embedding_quantize="none"
    )
    monkeypatch.setitem(onnx.MIN_MEAN_COSINE, "int8", 1.01)
    embedder.cache_clear()
    assert embedder().quantize == "none"
    with django_capture_on_commit_callbacks(execute=True):
        out = run("reembed", "--collection", collection.name)

    two = Document.objects.get(source__endswith="two.txt")
    assert "1 document(s) of 'C' queued for re-embedding." in out
    assert queued == [[two.pk]]


def test_reembed_first_builds_the_configured_models_hnsw_index(settings, queued):
    """GIVEN the configured embedding model changed since the migrations built the first
    model's index WHEN reembed runs THEN the new model's index exists, built once."""
    collection = CollectionFactory(name="C")
    settings.EMBEDDING_MODEL = "another-model"
    index = embedding_index(model_name="another-model", dimensions=settings.EMBEDDING_DIMENSIONS)

    first = run("reembed", "--collection", collection.name)
    second = run("reembed", "--collection", collection.name)

    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "documents_chunkembedding")
    assert indexes[index.name]["type"] == "hnsw"
    assert "Built the HNSW index for another-model (384 dimensions)." in first
    assert "Built" not in second


@pytest.mark.django_db(transaction=True)
def test_import_beir_queues_each_full_task_while_the_rest_still_loads(
    tmp_path, monkeypatch, settings
):
    """Outside a test transaction, as in real use: each upload commits, so its queueing runs."""
    settings.INGEST_BATCH_SIZE = 2
    UserFactory(is_superuser=True)
    rows = [{"_id": f"d{n}", "title": "", "text": f"Row {n}."} for n in range(5)]
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    queued = []
    seen_when_queued = []

    def apply_async(args, queue):
        queued.append(args[0])
        seen_when_queued.append(Document.objects.count())

    monkeypatch.setattr("documents.tasks.documents_process.apply_async", apply_async)

    out = run("import_beir", str(tmp_path), "--collection", "beir")

    ids = list(Document.objects.order_by("pk").values_list("pk", flat=True))
    assert queued == [ids[0:2], ids[2:4], ids[4:5]]
    assert seen_when_queued == [2, 4, 5]
    assert "5 document(s) queued" in out


def test_embedding_prepare_makes_the_local_models_variant_before_any_query(settings, tmp_path):
    settings.EMBEDDING_ONNX_DIR = tmp_path
    embedder.cache_clear()
    try:
        out = run("embedding_prepare")
    finally:
        embedder.cache_clear()

    assert f"{settings.EMBEDDING_MODEL} runs in ONNX Runtime, unquantised: vectors at " in out
    assert "of real passages' 10 nearest neighbours, on this CPU" in out
    assert len(list(tmp_path.glob("*.onnx"))) == 1
    assert len(list(tmp_path.glob("*-none.check.json"))) == 1
