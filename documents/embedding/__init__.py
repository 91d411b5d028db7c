"""Embedding providers: a local sentence-transformers model or an OpenAI-compatible endpoint.

Both return L2-normalised float32 rows, so cosine distance in pgvector is a dot product, and
both are batched (PRODRAG_EMBEDDING_BATCH_SIZE texts per call).
"""

from __future__ import annotations

import functools

from django.conf import settings

from documents.embedding.base import Embedder, EmbeddingError, EmbeddingUnavailable
from documents.embedding.endpoint import OpenAIEmbedder
from documents.embedding.local import LocalEmbedder

__all__ = [
    "Embedder",
    "EmbeddingError",
    "EmbeddingUnavailable",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "embedder",
    "embedder_warm",
]


@functools.cache
def embedder() -> Embedder:
    """The configured provider, built once per process (loading a model takes seconds; the
    first time on a machine, making its ONNX variant takes a minute)."""
    if settings.EMBEDDING_PROVIDER == "openai":
        return OpenAIEmbedder(
            model=settings.EMBEDDING_MODEL,
            base_url=settings.EMBEDDING_API_BASE,
            api_key=settings.EMBEDDING_API_KEY,
            dimensions=settings.EMBEDDING_DIMENSIONS,
            batch_size=settings.EMBEDDING_BATCH_SIZE,
        )
    return LocalEmbedder(
        model=settings.EMBEDDING_MODEL,
        path=settings.EMBEDDING_MODEL_PATH,
        dimensions=settings.EMBEDDING_DIMENSIONS,
        batch_size=settings.EMBEDDING_BATCH_SIZE,
        runtime=settings.EMBEDDING_RUNTIME,
        quantize=settings.EMBEDDING_QUANTIZE,
        onnx_dir=settings.EMBEDDING_ONNX_DIR,
    )


def embedder_warm() -> Embedder:
    """The configured provider, and a local model run once on a text: its weights, tokenizer
    and session are then ready before a reader waits for them. An endpoint is not called."""
    provider = embedder()
    if isinstance(provider, LocalEmbedder):
        provider.embed(["A first query."])
    return provider
