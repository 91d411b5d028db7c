"""Rate limits: per API token, and per user across all their tokens and their session. Counted
in the cache all web processes share (settings.CACHES["shared"]); beyond a limit, DRF answers
429 with Retry-After."""

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken


class _SharedRateThrottle(SimpleRateThrottle):
    cache = caches["shared"]

    def get_rate(self):
        # Read per request, not once at import: a changed setting applies at once.
        return getattr(settings, f"API_RATE_{self.scope.upper()}")


class TokenRateThrottle(_SharedRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class UserRateThrottle(_SharedRateThrottle):
    scope = "user"

    def get_cache_key(self, request, view):
        if not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
