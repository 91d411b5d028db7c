"""An embedding model served by any endpoint speaking OpenAI's `/embeddings`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from documents.embedding.base import EmbeddingError, EmbeddingUnavailable, normalised


class OpenAIEmbedder:
    """Any endpoint speaking OpenAI's `/embeddings` (OpenAI, Azure, vLLM, Ollama, TEI)."""

    runtime = "endpoint"
    quantize = "none"  # whatever the endpoint does is its model's, under the model's name

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
        return normalised(np.array(rows), model=self.model, dimensions=self.dimensions)
