from rest_framework import permissions

from accounts.models import ApiToken


class TokenScope(permissions.BasePermission):
    """A token's scope bounds what its user may do through it: reading needs `read`, any
    change `write`; a view may ask for more with `required_scope`. A signed-in browser session
    carries no token and is bounded only by the user's own permissions."""

    message = "This token's scope does not allow this request."

    def has_permission(self, request, view):
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        reading = request.method in permissions.SAFE_METHODS
        needed = getattr(view, "required_scope", None) or (
            ApiToken.Scope.READ if reading else ApiToken.Scope.WRITE
        )
        if token.allows(needed):
            return True
        self.message = f"This token's scope ({token.scope}) does not allow this; it needs {needed}."
        return False
