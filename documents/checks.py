"""What the documents app needs of its settings, as Django system checks: run by `manage.py`
commands, and at the start of the web server and the worker (prodrag.checks), so a process
that cannot parse or embed stops at start, not at its first upload."""

from pathlib import Path

from django.conf import settings
from django.core import checks


@checks.register()
def embedding_model_present(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.EMBEDDING_PROVIDER == "openai":
        if settings.EMBEDDING_API_BASE:
            return []
        return [
            checks.Error(
                "PRODRAG_EMBEDDING_PROVIDER=openai needs PRODRAG_EMBEDDING_API_BASE.",
                id="documents.E001",
            )
        ]
    expected = Path(settings.EMBEDDING_MODEL_PATH) / "config.json"
    if expected.exists():
        return []
    return [
        checks.Error(
            f"PRODRAG_EMBEDDING_MODEL={settings.EMBEDDING_MODEL!r}: no sentence-transformers "
            f"model directory there (expected {expected}); models are never downloaded at run "
            "time.",
            id="documents.E002",
        )
    ]


@checks.register()
def layout_models_present(app_configs, **kwargs) -> list[checks.CheckMessage]:
    artifacts = settings.DOCLING_ARTIFACTS_PATH
    if settings.PDF_PIPELINE != "layout" or (artifacts and Path(artifacts).is_dir()):
        return []
    return [
        checks.Error(
            "PRODRAG_PDF_PIPELINE=layout needs docling's layout models in a directory named by "
            "PRODRAG_DOCLING_ARTIFACTS_PATH (download them with `docling-tools models download` "
            "on a machine with internet access); they are never downloaded at run time.",
            id="documents.E003",
        )
    ]
