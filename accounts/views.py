"""Sign-in pages: the sign-in form (local and directory passwords) with the single sign-on
button, and the OpenID Connect flow's two ends (accounts.oidc). A refused single sign-on comes
back to the sign-in page, saying why, and is audited."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.shortcuts import render
from django.views import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from accounts.oidc import OIDC, SigninRefused, provider_configuration
from accounts.signin import signin_record


def single_sign_on(request) -> dict:
    """Context processor: the single sign-on button's label, when a provider is configured."""
    return {"single_sign_on": settings.OIDC_BUTTON if settings.OIDC_ISSUER else ""}


def _refused(request, reason: str):
    signin_record(method=OIDC, reason=reason)
    return render(
        request,
        "registration/login.html",
        {"refusal": reason, "form": AuthenticationForm(request)},
        status=403,
    )


class SingleSignOnStart(OIDCAuthenticationRequestView):
    """Sends the browser to the provider, with a fresh state, nonce and PKCE challenge."""

    def __init__(self, **kwargs):
        # The parent reads the provider's endpoint from settings here; it is discovered.
        View.__init__(self, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request):
        if not settings.OIDC_ISSUER:
            raise Http404("No single sign-on is configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = provider_configuration()["authorization_endpoint"]
        except SigninRefused as exc:
            return _refused(request, str(exc))
        return super().get(request)


class SingleSignOnDone(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back: the code is exchanged and checked."""

    def get(self, request):
        if not settings.OIDC_ISSUER:
            raise Http404("No single sign-on is configured.")
        if request.GET.get("error"):
            states = request.session.get("oidc_states", {})
            if states.pop(request.GET.get("state"), None) is not None:
                request.session.save()  # a refused sign-in's state is not used again
            detail = request.GET.get("error_description") or request.GET["error"]
            return _refused(request, f"the provider refused: {detail}")
        if "oidc_states" not in request.session or "state" not in request.GET:
            return _refused(request, "this sign-in was not started here, or is already used")
        try:
            return super().get(request)
        except SuspiciousOperation:
            return _refused(request, "this sign-in was not started here, or is already used")
        except SigninRefused as exc:
            return _refused(request, str(exc))

    def login_failure(self):
        return _refused(self.request, "the provider did not confirm the sign-in")
