"""OpenID Connect sign-in: the authorization code flow with PKCE, a nonce and a one-time
state, for the chat pages and the admin (docs/identity.md).

mozilla-django-oidc runs the flow. It was chosen over django-allauth because it is that flow
and nothing else: one authentication backend and two views, in a few hundred lines we can
read, where allauth brings its own account model, sign-up, e-mail verification and templates
that prodrag would have to switch off. What it leaves to its users, prodrag adds here:

- the provider's endpoints come from its discovery document (read on first use, kept an hour);
- an ID token must name this client as its audience and the configured issuer as its issuer,
  carry `exp`, `iat` and `sub`, be unexpired, and be signed with PRODRAG_OIDC_SIGN_ALGORITHM
  by a key of the provider's JWKS;
- a user is found by the provider's `sub`, never by e-mail; a local account is never taken
  over (accounts.directory);
- the groups claim (ID token or userinfo) must be a list of strings; its mapped groups become
  the user's OpenID directory groups at each sign-in;
- every refusal says why, on the sign-in page and in the audit trail.
"""

from __future__ import annotations

import logging
import threading
import time

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.directory import (
    IdentityRefused,
    directory_group_ensure,
    directory_memberships_set,
    directory_user_ensure,
    group_mapped,
)
from accounts.models import Directory, User

logger = logging.getLogger("prodrag.accounts.oidc")

OIDC = Directory.OIDC
_DISCOVERY_SECONDS = 3600
_discovered: dict[str, tuple[float, dict]] = {}
_discovering = threading.Lock()


class SigninRefused(Exception):
    """An OpenID sign-in that does not go through; the message says why."""


def provider_configuration() -> dict:
    """The provider's discovery document (cached an hour per process). Raises SigninRefused
    when it cannot be read or names another issuer."""
    issuer = settings.OIDC_ISSUER
    with _discovering:
        cached = _discovered.get(issuer)
        if cached is not None and time.monotonic() - cached[0] < _DISCOVERY_SECONDS:
            return cached[1]
        try:
            response = requests.get(
                f"{issuer}/.well-known/openid-configuration", timeout=settings.OIDC_TIMEOUT
            )
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise SigninRefused(f"the sign-in provider did not answer ({exc})") from exc
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise SigninRefused(
                f"the provider calls itself {document.get('issuer')!r}, not {issuer!r} "
                "(PRODRAG_OIDC_ISSUER)"
            )
        _discovered[issuer] = (time.monotonic(), document)
        return document


class OpenIdBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, with the checks the module docstring lists."""

    def __init__(self, *args, **kwargs):
        # The parent reads the endpoints from settings at construction; they are discovered.
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request, **kwargs):
        if not settings.OIDC_ISSUER or request is None or "code" not in request.GET:
            return None
        configuration = provider_configuration()
        self.OIDC_OP_TOKEN_ENDPOINT = configuration["token_endpoint"]
        self.OIDC_OP_JWKS_ENDPOINT = configuration["jwks_uri"]
        self.OIDC_OP_USER_ENDPOINT = configuration.get("userinfo_endpoint")
        try:
            return super().authenticate(request, **kwargs)
        except requests.HTTPError as exc:
            raise SigninRefused(_provider_error(exc.response)) from exc
        except requests.RequestException as exc:
            raise SigninRefused(f"the sign-in provider did not answer ({exc})") from exc

    def verify_token(self, token, **kwargs):
        try:
            return super().verify_token(token, **kwargs)
        except SuspiciousOperation as exc:
            # The parent's own checks: the nonce (a replayed or foreign token), the signing
            # key's presence in the provider's JWKS.
            raise SigninRefused(f"the ID token was refused: {exc}") from exc

    def _verify_jws(self, payload, key):
        try:
            return jwt.decode(
                payload,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_ISSUER,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=60,
            )
        except jwt.ExpiredSignatureError as exc:
            raise SigninRefused("the ID token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise SigninRefused("the ID token was issued to another client (audience)") from exc
        except jwt.InvalidIssuerError as exc:
            raise SigninRefused("the ID token comes from another issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise SigninRefused("the ID token's signature is not valid") from exc
        except jwt.PyJWTError as exc:
            raise SigninRefused(f"the ID token is not valid: {exc}") from exc

    def get_userinfo(self, access_token, id_token, payload):
        if not self.OIDC_OP_USER_ENDPOINT:
            return {}
        return super().get_userinfo(access_token, id_token, payload)

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo and userinfo.get("sub") != payload["sub"]:
            raise SigninRefused("the userinfo answer is about another subject than the ID token")
        claims = {**userinfo, **payload}
        groups = _groups_claim(claims)
        username = claims.get(settings.OIDC_USERNAME_CLAIM)
        if not isinstance(username, str) or not username.strip():
            raise SigninRefused(f"the provider sent no {settings.OIDC_USERNAME_CLAIM!r} claim")
        try:
            with transaction.atomic():
                user = directory_user_ensure(
                    directory=OIDC,
                    subject=str(payload["sub"]),
                    username=username.strip()[:150],
                    email=str(claims.get("email") or ""),
                    first_name=str(claims.get("given_name") or ""),
                    last_name=str(claims.get("family_name") or ""),
                )
                if not user.is_active:
                    raise SigninRefused("the account is deactivated")
                if settings.OIDC_GROUPS_CLAIM:
                    directory_memberships_set(
                        user=user,
                        directory=OIDC,
                        groups=[
                            directory_group_ensure(directory=OIDC, external_id=name, name=name)
                            for name in groups
                            if group_mapped(name)
                        ],
                    )
        except IdentityRefused as exc:
            raise SigninRefused(str(exc)) from exc
        except IntegrityError as exc:  # a sign-in of the same person created them meanwhile
            raise SigninRefused("another sign-in of this person was under way; try again") from exc
        return user

    def get_user(self, user_id):
        user = User.objects.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None


def _groups_claim(claims: dict) -> list[str]:
    name = settings.OIDC_GROUPS_CLAIM
    if not name:
        return []
    groups = claims.get(name, [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise SigninRefused(f"the {name!r} claim is not a list of group names")
    return groups


def _provider_error(response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error") or f"HTTP {response.status_code}"
    detail = body.get("error_description") or ""
    return f"the provider refused the sign-in code ({error}{': ' + detail if detail else ''})"
