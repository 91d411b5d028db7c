"""What every embedding provider shares: the interface, its errors, normalised rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class EmbeddingError(Exception):
    """The embedding provider rejected the input or answered nonsense; retrying will not help."""


class EmbeddingUnavailable(Exception):
    """The embedding endpoint is down, slow or rate-limiting; a later try may succeed."""


class Embedder(Protocol):
    model: str
    dimensions: int
    # What made the vectors, recorded on each document version: `onnx`, `torch` or `endpoint`,
    # and `int8` or `none`.
    runtime: str
    quantize: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised row per text, shape (len(texts), dimensions)."""


def normalised(vectors: np.ndarray, *, model: str, dimensions: int) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dimensions:
        raise EmbeddingError(
            f"{model} returned vectors of shape {vectors.shape}; PRODRAG_EMBEDDING_DIMENSIONS "
            f"is {dimensions}."
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)
