"""A small company handbook, indexed for real (parse, chunk, embed with the bundled model):
the corpus the retrieval and chat tests ask about."""

from django.core.files.base import ContentFile

from documents.services.ingestion import documents_ingest
from documents.services.uploads import document_create

HANDBOOK = {
    "leave.md": "# Leave policy\n\n## Annual leave\n\nEvery employee gets 27 days of paid annual "
    "leave per calendar year.\n\n## Sick leave\n\nReport sickness to your manager before 9am.",
    "travel.md": "# Travel policy\n\n## Booking\n\nBook flights through the travel desk at least "
    "two weeks ahead.\n\n## Expenses\n\nHotel costs are refunded up to 150 euros a night.",
    "security.md": "# Security rules\n\n## Passwords\n\nPasswords have at least 14 characters and "
    "are never shared.\n\n## Laptops\n\nLock your laptop whenever you leave your desk.",
    "canteen.txt": "The canteen serves vegetarian lunch every day from noon to two.",
}


def ingest(collection, name, text, **extra):
    document, _ = document_create(
        collection=collection,
        owner=collection.owner,
        upload=ContentFile(text.encode(), name=name),
        enqueue=False,
        **extra,
    )
    documents_ingest(document_ids=[document.pk])
    document.refresh_from_db()
    assert document.status == "ready", document.error
    return document
