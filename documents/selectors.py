from __future__ import annotations

from django.http import Http404

from documents.models import Document


def access_document(user, pk: int) -> Document:
    """The document if the user may read it; 404 both when it is missing and when it is
    forbidden, so that its existence does not leak."""
    try:
        return Document.objects.visible_to(user).select_related("collection").get(pk=pk)
    except (Document.DoesNotExist, ValueError, TypeError):
        raise Http404("No such document.") from None
