"""Rate limits: per API token, and per user across all their tokens and their session (DRF
answers 429 with Retry-After); and, for pages (accounts.throttled), sign-in attempts per client
address and per username, and chat questions per user. Counted in the cache all web processes
share (settings.CACHES["shared"])."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import caches
from django.http import HttpResponse
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken
from accounts.signin import username_normalize
from core.clients import client_address


class _SharedRateThrottle(SimpleRateThrottle):
    cache = caches["shared"]
    setting = ""

    def get_ident(self, request):
        # Not DRF's: it believes any X-Forwarded-For unless NUM_PROXIES is set.
        return client_address(request) or "unknown"

    def get_rate(self):
        # Read per request, not once at import: a changed setting applies at once.
        return getattr(settings, self.setting or f"API_RATE_{self.scope.upper()}")


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


class LoginAddressThrottle(_SharedRateThrottle):
    scope, setting = "login-address", "LOGIN_RATE"

    def get_cache_key(self, request, view):
        if request.method != "POST":
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameThrottle(_SharedRateThrottle):
    """Per username, from any address: guessing one person's password from many machines."""

    scope, setting = "login-username", "LOGIN_RATE"

    def get_cache_key(self, request, view):
        raw = request.POST.get("username", "") if request.method == "POST" else ""
        username = username_normalize(raw)
        if not username:
            return None
        ident = hashlib.sha256(username.casefold().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ChatAskThrottle(_SharedRateThrottle):
    scope, setting = "chat-ask", "CHAT_RATE"

    def get_cache_key(self, request, view):
        if not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


def throttled(*throttles: type[_SharedRateThrottle]) -> Callable:
    """A page view limited by these throttles: over any of them, 429 with Retry-After (and the
    request is not handled)."""

    def decorate(view):
        @wraps(view)
        def limited(request, *args, **kwargs):
            waits = []
            for throttle_class in throttles:
                throttle = throttle_class()
                if not throttle.allow_request(request, view):
                    waits.append(throttle.wait() or 1)
            if waits:
                wait = max(1, round(max(waits)))
                response = HttpResponse(
                    f"Too many requests; try again in {wait} seconds.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(wait)
                return response
            return view(request, *args, **kwargs)

        return limited

    return decorate
