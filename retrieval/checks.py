"""What search needs of its settings, as Django system checks (see documents.checks)."""

from pathlib import Path

from django.conf import settings
from django.core import checks


@checks.register()
def reranker_present(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.RERANKER == "llm" and not settings.LLM_API_BASE:
        return [
            checks.Error("PRODRAG_RERANKER=llm needs PRODRAG_LLM_API_BASE.", id="retrieval.E001")
        ]
    if settings.RERANKER in ("", "llm") or (Path(settings.RERANKER) / "config.json").exists():
        return []
    return [
        checks.Error(
            f"PRODRAG_RERANKER={settings.RERANKER!r}: no cross-encoder model directory there "
            "(expected config.json); models are never downloaded at run time.",
            id="retrieval.E002",
        )
    ]
