"""SCIM endpoints: parse the request, call one service, answer in SCIM's format. Every answer,
errors included, is `application/scim+json`; without PRODRAG_SCIM_TOKEN the endpoints do not
exist (404)."""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from accounts.models import AuditEvent
from accounts.scim import services
from accounts.scim.resources import (
    LIST_SCHEMA,
    ScimError,
    filter_eq,
    group_fields,
    group_patched,
    invalid,
    patch_operations,
    user_fields,
    user_patched,
)
from accounts.services import AuditOrigin, audit_origin

_MAX_BODY = 1_000_000
_MAX_COUNT = 1000


def _answer(body: dict, status: int = 200) -> JsonResponse:
    return JsonResponse(body, status=status, content_type="application/scim+json")


@method_decorator(csrf_exempt, name="dispatch")
class ScimView(View):
    """Bearer-token check, JSON body, SCIM errors and the audit origin, for every endpoint."""

    http_method_names = ["get", "post", "put", "patch", "delete"]

    def dispatch(self, request, *args, **kwargs):
        if not settings.SCIM_TOKEN:
            raise Http404("SCIM is not configured.")
        try:
            self._authenticate(request)
            with audit_origin(AuditOrigin(via=AuditEvent.Via.SCIM, request=request)):
                return super().dispatch(request, *args, **kwargs)
        except ScimError as exc:
            response = _answer(exc.body(), exc.status)
            if exc.status == 401:
                response["WWW-Authenticate"] = 'Bearer realm="scim"'
            return response

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise ScimError(405, f"{request.method} is not supported here.")

    @staticmethod
    def _authenticate(request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), settings.SCIM_TOKEN.encode()
        ):
            raise ScimError(401, "A valid bearer token is required (PRODRAG_SCIM_TOKEN).")

    @staticmethod
    def body(request) -> dict:
        if len(request.body) > _MAX_BODY:
            raise ScimError(413, f"The body is larger than {_MAX_BODY} bytes.")
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid(f"The body is not JSON: {exc}", "invalidSyntax") from exc
        if not isinstance(body, dict):
            raise invalid("The body must be a JSON object.", "invalidSyntax")
        return body

    @staticmethod
    def page(request, queryset, render) -> JsonResponse:
        try:
            start = max(1, int(request.GET.get("startIndex", 1)))
            count = min(_MAX_COUNT, max(0, int(request.GET.get("count", 100))))
        except ValueError as exc:
            raise invalid("startIndex and count must be integers.") from exc
        total = queryset.count()
        items = queryset[start - 1 : start - 1 + count]
        return _answer(
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": total,
                "startIndex": start,
                "itemsPerPage": len(items),
                "Resources": [render(item) for item in items],
            }
        )


def _location(request, kind: str, pk: int) -> str:
    return request.build_absolute_uri(f"/scim/v2/{kind}/{pk}")


class Users(ScimView):
    def get(self, request):
        users = services.scim_users()
        if expression := request.GET.get("filter"):
            field, value = filter_eq(
                expression,
                {"username": "username__iexact", "externalid": "identities__subject",
                 "id": "pk"},
            )  # fmt: skip
            if field == "pk" and not value.isdigit():
                users = users.none()
            elif field == "identities__subject":
                # One filter() call: the subject of the SCIM identity, not of another one.
                users = users.filter(identities__directory=services.SCIM, **{field: value})
            else:
                users = users.filter(**{field: value})
        return self.page(
            request, users, lambda u: services.user_resource(u, _location(request, "Users", u.pk))
        )

    def post(self, request):
        user = services.scim_user_create(fields=user_fields(self.body(request)))
        return _answer(services.user_resource(user, _location(request, "Users", user.pk)), 201)


class OneUser(ScimView):
    def _user(self, pk: int):
        user = services.scim_users().filter(pk=pk).first()
        if user is None:
            raise ScimError(404, f"No user {pk}.")
        return user

    def _render(self, request, user):
        return _answer(services.user_resource(user, _location(request, "Users", user.pk)))

    def get(self, request, pk):
        return self._render(request, self._user(pk))

    def put(self, request, pk):
        user = self._user(pk)
        fields = user_fields(self.body(request))
        return self._render(request, services.scim_user_replace(user=user, fields=fields))

    def patch(self, request, pk):
        user = self._user(pk)
        current = services.user_resource(user, "")
        patched = user_patched(current, patch_operations(self.body(request)))
        fields = user_fields(patched)
        return self._render(request, services.scim_user_replace(user=user, fields=fields))

    def delete(self, request, pk):
        services.scim_user_delete(user=self._user(pk))
        return HttpResponse(status=204)


def _group_render(request, group, *, members: bool = True) -> dict:
    return services.group_resource(group, _location(request, "Groups", group.pk), members=members)


def _members_wanted(request) -> bool:
    excluded = request.GET.get("excludedAttributes", "")
    return "members" not in {a.strip().lower() for a in excluded.split(",")}


class Groups(ScimView):
    def get(self, request):
        groups = services.scim_groups().select_related("directory")
        if expression := request.GET.get("filter"):
            field, value = filter_eq(
                expression,
                {"displayname": "name", "externalid": "directory__external_id", "id": "pk"},
            )
            groups = (
                groups.none()
                if field == "pk" and not value.isdigit()
                else groups.filter(**{field: value})
            )
        members = _members_wanted(request)
        return self.page(request, groups, lambda g: _group_render(request, g, members=members))

    def post(self, request):
        group = services.scim_group_create(fields=group_fields(self.body(request)))
        return _answer(_group_render(request, group), 201)


class OneGroup(ScimView):
    def _group(self, pk: int):
        group = services.scim_groups().select_related("directory").filter(pk=pk).first()
        if group is None:
            raise ScimError(404, f"No group {pk}.")
        return group

    def get(self, request, pk):
        return _answer(_group_render(request, self._group(pk), members=_members_wanted(request)))

    def put(self, request, pk):
        group = self._group(pk)
        fields = group_fields(self.body(request))
        services.scim_group_replace(group=group, fields=fields)
        return _answer(_group_render(request, self._group(pk)))

    def patch(self, request, pk):
        group = self._group(pk)
        current = group_fields(_group_render(request, group))
        fields = group_patched(current, patch_operations(self.body(request)))
        services.scim_group_replace(group=group, fields=fields)
        return HttpResponse(status=204)

    def delete(self, request, pk):
        services.scim_group_delete(group=self._group(pk))
        return HttpResponse(status=204)


class ServiceProviderConfig(ScimView):
    def get(self, request):
        return _answer(
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "documentationUri": "docs/identity.md",
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": _MAX_COUNT},
                "changePassword": {"supported": False},
                "sort": {"supported": False},
                "etag": {"supported": False},
                "authenticationSchemes": [
                    {
                        "type": "oauthbearertoken",
                        "name": "Bearer token",
                        "description": "PRODRAG_SCIM_TOKEN",
                    }
                ],
            }
        )
