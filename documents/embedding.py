"""Embedding providers: a local sentence-transformers model or an OpenAI-compatible endpoint.

Both return L2-normalised float32 rows, so cosine distance in pgvector is a dot product, and
both are batched (PRODRAG_EMBEDDING_BATCH_SIZE texts per call).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from django.conf import settings


class EmbeddingError(Exception):
    """The embedding provider rejected the input or answered nonsense; retrying will not help."""


class EmbeddingUnavailable(Exception):
    """The embedding endpoint is down, slow or rate-limiting; a later try may succeed."""


class Embedder(Protocol):
    model: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised row per text, shape (len(texts), dimensions)."""


def _normalised(vectors: np.ndarray, *, model: str, dimensions: int) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dimensions:
        raise EmbeddingError(
            f"{model} returned vectors of shape {vectors.shape}; PRODRAG_EMBEDDING_DIMENSIONS "
            f"is {dimensions}."
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class LocalEmbedder:
    """A sentence-transformers model read from a local directory (never downloaded)."""

    def __init__(self, *, model: str, path: Path, dimensions: int, batch_size: int) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.transformer = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        actual = self.transformer.get_embedding_dimension()
        if actual != dimensions:
            raise EmbeddingError(
                f"{model} makes {actual}-dimensional vectors; PRODRAG_EMBEDDING_DIMENSIONS is "
                f"{dimensions}."
            )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self.transformer.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return _normalised(vectors, model=self.model, dimensions=self.dimensions)


class OpenAIEmbedder:
    """Any endpoint speaking OpenAI's `/embeddings` (OpenAI, Azure, vLLM, Ollama, TEI)."""

    def __init__(
        self, *, model: str, base_url: str, api_key: str | None, dimensions: int, batch_size: int
    ) -> None:
        import openai

        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        # Retries are the ingestion task's (with backoff across minutes), not the client's.
        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=60, max_retries=0
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            try:
                response = self.client.embeddings.create(model=self.model, input=batch)
            except (
                openai.APIConnectionError,
                openai.APITimeoutError,
                openai.RateLimitError,
                openai.InternalServerError,
            ) as exc:
                raise EmbeddingUnavailable(f"embedding endpoint: {exc}") from exc
            except openai.APIError as exc:
                raise EmbeddingError(f"embedding endpoint refused the input: {exc}") from exc
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(batch):
                raise EmbeddingError(
                    f"embedding endpoint returned {len(data)} vectors for {len(batch)} texts"
                )
            rows.extend(item.embedding for item in data)
        if not rows:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return _normalised(np.array(rows), model=self.model, dimensions=self.dimensions)


@functools.cache
def embedder() -> Embedder:
    """The configured provider, built once per process (loading a model takes seconds)."""
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
    )
