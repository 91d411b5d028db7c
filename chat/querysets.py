from __future__ import annotations

from django.db import models


class ConversationQuerySet(models.QuerySet):
    def of(self, user) -> ConversationQuerySet:
        """The user's own conversations: the only ones anyone, superusers included, sees in
        the chat pages."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)
