from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.selectors import TokenRejected, token_authenticate
from accounts.services import token_used


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer prd_…`: the request acts as the token's user; `request.auth`
    is the token, whose scope the permission classes check."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected `Bearer <token>`."
            )
        try:
            token = token_authenticate(plain=header[1])
        except TokenRejected as rejected:
            raise exceptions.AuthenticationFailed(str(rejected)) from None
        token_used(token=token)
        return token.user, token

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes BearerTokenAuthentication."""

    target_class = BearerTokenAuthentication
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `manage.py create_token USERNAME --scope read`.",
        }
