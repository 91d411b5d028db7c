"""Label-free calibration of hybrid search per collection: measured from the collection's own
passages, stored, measured again after a large change; search uses a collection's share once
a manager sets it."""

import random
from collections import Counter

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from guardian.shortcuts import assign_perm

from documents.models import Chunk
from retrieval import calibration
from retrieval.calibration import (
    SHARES,
    collection_calibrate,
    collections_stale,
    pseudo_query,
)
from retrieval.selectors import fusion_default, ranking
from retrieval.tasks import collections_calibrate
from retrieval.types import DENSE, FULLTEXT, HYBRID, Filters
from tests.accounts.factories import UserFactory
from tests.documents.factories import CollectionFactory
from tests.handbook import ingest

TOPICS = [
    (
        "Invoices",
        "Invoices are approved by the finance team.",
        "Approved invoices are paid within five working days.",
    ),
    (
        "Data centre",
        "The data centre in Frankfurt runs the customer database.",
        "Three replicas of the customer database run in separate rooms.",
    ),
    (
        "New hires",
        "New hires receive a laptop and a badge on their first day.",
        "Each new hire meets a mentor during the first week.",
    ),
    (
        "Parking",
        "Parking spaces in the basement are reserved for car sharing.",
        "On Fridays the basement spaces are free for visitors.",
    ),
    (
        "Reports",
        "The quarterly report lists revenue by region.",
        "Product lines are compared in the appendix of the report.",
    ),
    (
        "Fire drills",
        "Fire drills take place every March.",
        "Everyone assembles at the north gate during a drill.",
    ),
    (
        "Code review",
        "Code reviews need two approvals.",
        "Only reviewed changes are merged into the main branch.",
    ),
    (
        "Complaints",
        "Customer complaints are answered within one business day.",
        "The support team logs every complaint in the ticket system.",
    ),
    (
        "Cafeteria",
        "The cafeteria offers a vegan menu every day.",
        "A gluten-free menu is served at the cafeteria as well.",
    ),
    (
        "Conferences",
        "Travel to conferences is booked through the travel desk.",
        "Conference fees are paid by the department budget.",
    ),
    (
        "Passwords",
        "Passwords rotate every ninety days.",
        "Each password needs sixteen characters and a symbol.",
    ),
    (
        "Interns",
        "Interns present their project in their last week.",
        "The department votes for the best intern project.",
    ),
]


@pytest.fixture
def topics(db, monkeypatch):
    """Twelve documents of two passages each on different subjects; calibration takes them
    all (24 pseudo-queries)."""
    monkeypatch.setattr(calibration, "MIN_QUERIES", 10)
    collection = CollectionFactory(
        name="Topics",
        owner=UserFactory(username="keeper"),
        chunking="tokens",
        chunk_tokens=16,
        chunk_overlap=0,
    )
    for number, (title, first, second) in enumerate(TOPICS):
        ingest(collection, f"topic-{number}.md", f"# {title}\n\n{first}\n\n{second}\n")
    return collection


def test_a_pseudo_query_is_one_sentence_without_short_words_and_numbers():
    text = "Short one. The finance team approves all 12 invoices in five days. Too short too."
    assert (
        pseudo_query(text, random.Random(3)) == "The finance team approves all invoices five days"
    )


def test_calibration_measures_every_share_on_the_collection_and_stores_its_choice(topics):
    """Every share is measured; the stored one is the nearest to an even split among those
    within TOLERANCE of the best; one pseudo-query per passage of a document of two or more."""
    result = collection_calibrate(topics)
    topics.refresh_from_db()
    assert result is not None
    assert topics.calibrated_dense_weight == result.dense_weight
    mrr = {float(share): value for share, value in topics.calibration["mrr"].items()}
    assert set(mrr) == set(SHARES) and max(mrr.values()) > 0
    near = [share for share in SHARES if mrr[share] >= max(mrr.values()) - calibration.TOLERANCE]
    assert result.dense_weight == min(near, key=lambda share: (abs(share - 0.5), share))
    per_document = Counter(
        Chunk.objects.filter(document__collection=topics).values_list("document_id", flat=True)
    )
    assert topics.calibration["passages"] == sum(per_document.values())
    assert topics.calibration["pseudo_queries"] == sum(n for n in per_document.values() if n > 1)
    assert topics.calibration["pseudo_queries"] >= 20
    assert topics.calibration["documents"] == 12
    # The default fusion (each query's own share) on the same pseudo-queries, beside them.
    assert 0 < topics.calibration["default_mrr"] <= 1


def test_the_admin_shows_the_calibration_beside_the_default(topics, client):
    """The collection's change page: the calibrated share, its MRR@10 and the default's."""
    collection_calibrate(topics)
    topics.refresh_from_db()
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    page = client.get(reverse("admin:documents_collection_change", args=[topics.pk]))
    share = f"{topics.calibrated_dense_weight:.1f}"
    assert (
        f"{share}, measured {topics.calibration['at'][:16]} on "
        f"{topics.calibration['pseudo_queries']} pseudo-queries"
    ) in page.text
    assert (
        f"MRR@10 there {topics.calibration['mrr'][share]}, against "
        f"{topics.calibration['default_mrr']} for each query&#x27;s own share"
    ) in page.text


def test_a_viewer_who_reads_one_document_sees_no_figure_of_the_calibration(topics, client):
    """GIVEN staff who may read one document of the collection (view-only on its admin page)
    WHEN they open the collection THEN no count or score measured over its other documents
    shows; given a read grant on the whole collection, they see it."""
    collection_calibrate(topics)
    topics.refresh_from_db()
    viewer = UserFactory(username="partial", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_collection"))
    assign_perm("view_document", viewer, topics.documents.first())
    client.force_login(viewer)
    url = reverse("admin:documents_collection_change", args=[topics.pk])

    page = client.get(url).content.decode()

    assert "shown to those who may read every document of the collection" in page
    passages = f"{topics.calibration['passages']} passages"
    for figure in (passages, "pseudo-queries", "MRR@10", topics.calibration["at"][:16]):
        assert figure not in page
    assign_perm("view_document", viewer, topics)
    assert f"from its {topics.calibration['passages']} passages" in client.get(url).text


def test_calibration_leaves_a_collection_it_cannot_measure_unchanged(db, monkeypatch):
    """Documents of one passage give no pseudo-query: the document must be found through a
    passage other than the one the query came from."""
    monkeypatch.setattr(calibration, "MIN_QUERIES", 1)
    collection = CollectionFactory(name="Tiny")
    for number in range(3):
        ingest(collection, f"{number}.txt", f"Passage number {number} stands alone here.")
    assert collection_calibrate(collection) is None
    collection.refresh_from_db()
    assert collection.calibrated_dense_weight is None and collection.calibration == {}


def test_calibration_stores_nothing_when_no_pseudo_query_finds_its_document(topics):
    """An owner who was deactivated reads nothing: every share scores 0, which measures
    nothing, so nothing is stored."""
    type(topics.owner).objects.filter(pk=topics.owner_id).update(is_active=False)
    topics.refresh_from_db()
    assert collection_calibrate(topics) is None
    topics.refresh_from_db()
    assert topics.calibrated_dense_weight is None and topics.calibration == {}


QUERY = "who approves invoices and how fast"


def _ranked(collection, *, mode: str = HYBRID, share: float | None = None) -> list[int]:
    """The collection's passages for QUERY: by the collection's share (None) or this one."""
    fusion = fusion_default() if share is None else fusion_default().at_share(share)
    passages = ranking(
        user=collection.owner,
        query=QUERY,
        k=30,
        mode=mode,
        filters=Filters(collections=(collection.pk,)),
        fusion=fusion,
        collapse=False,
    )
    return [passage.chunk_id for passage in passages]


def test_default_search_uses_the_share_set_by_hand_over_the_calibrated_one(topics):
    """GIVEN a calibrated collection WHEN a manager sets its share to 0 (full text only) or 1
    (vectors only) THEN default hybrid search ranks its passages as that branch does."""
    collection_calibrate(topics)
    for share, mode in ((0.0, FULLTEXT), (1.0, DENSE)):
        topics.fusion_dense_weight = share
        topics.save(update_fields=["fusion_dense_weight"])
        branch = _ranked(topics, mode=mode)
        # The branch's last passage scores 0, as do the other branch's: compare those before.
        compared = max(1, len(branch) - 1)
        assert _ranked(topics)[:compared] == branch[:compared]


def test_default_search_leaves_the_calibrated_share_to_the_manager(topics):
    """The calibrated share is a measurement: until a manager sets a share, search ranks by
    each query's own, whatever was measured."""
    before = _ranked(topics)
    assert before != _ranked(topics, share=0.0)
    type(topics).objects.filter(pk=topics.pk).update(calibrated_dense_weight=0.0)
    assert _ranked(topics) == before
    topics.fusion_dense_weight = 0.0
    topics.save(update_fields=["fusion_dense_weight"])
    assert _ranked(topics) == _ranked(topics, share=0.0)


def test_a_collection_is_calibrated_again_after_a_large_change_only(topics):
    assert topics in collections_stale()
    assert collections_calibrate() == 1
    assert topics not in collections_stale()
    ingest(topics, "extra-1.txt", "The library lends books for four weeks.")
    assert topics not in collections_stale()  # one in thirteen: less than a fifth
    for number in range(2, 4):
        ingest(topics, f"extra-{number}.txt", f"Meeting room {number} seats twelve people.")
    assert topics in collections_stale()
    assert collections_calibrate() == 1
    topics.refresh_from_db()
    assert topics.calibration["documents"] == 15


def test_the_calibrate_command_reports_the_share_and_a_share_set_by_hand(topics, capsys):
    topics.fusion_dense_weight = 0.3
    topics.save(update_fields=["fusion_dense_weight"])
    call_command("calibrate", "--collection", "Topics")
    out = capsys.readouterr().out
    topics.refresh_from_db()
    assert f"Topics: vector share {topics.calibrated_dense_weight:.1f}" in out
    assert f"{topics.calibration['pseudo_queries']} pseudo-queries" in out
    assert "the share set by hand: 0.3" in out
    assert f"the default fusion, without a share: {topics.calibration['default_mrr']:.3f}" in out
