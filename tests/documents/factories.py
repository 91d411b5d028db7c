import hashlib

import factory
from django.conf import settings

from documents.models import Chunk, ChunkEmbedding, Collection, Document, DocumentVersion
from tests.accounts.factories import UserFactory


class CollectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Collection

    name = factory.Sequence(lambda n: f"Collection {n}")
    owner = factory.SubFactory(UserFactory)


class DocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Document

    collection = factory.SubFactory(CollectionFactory)
    owner = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Document {n}")
    source = factory.LazyAttribute(lambda doc: f"{doc.title}.txt")
    sha256 = factory.LazyAttribute(lambda doc: hashlib.sha256(doc.title.encode()).hexdigest())
    content_type = "text/plain"


class DocumentVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DocumentVersion

    document = factory.SubFactory(DocumentFactory)
    number = factory.Sequence(lambda n: n + 1)
    sha256 = factory.LazyAttribute(lambda version: version.document.sha256)
    size = 0
    file = factory.django.FileField(filename="original.txt", data=b"text")


class ChunkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Chunk

    version = factory.SubFactory(DocumentVersionFactory)
    document = factory.SelfAttribute("version.document")
    ordinal = factory.Sequence(lambda n: n)
    text = "A passage."
    token_count = 3


class ChunkEmbeddingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChunkEmbedding

    chunk = factory.SubFactory(ChunkFactory)
    document = factory.SelfAttribute("chunk.document")
    embedding_model = factory.LazyFunction(lambda: settings.EMBEDDING_MODEL)
    embedding = factory.LazyFunction(lambda: [1.0] + [0.0] * (settings.EMBEDDING_DIMENSIONS - 1))
