from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person or integration that reads documents; knowledge managers are staff users."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class ApiToken(models.Model):
    """A user's credential for the API. Only a SHA-256 digest of the secret is stored: the token
    itself is shown once, when it is created. Acts as its user, narrowed by its scope."""

    class Scope(models.TextChoices):
        # Ordered: each scope includes the ones before it.
        READ = "read", "read (search, ask, give feedback; list and read what the user may read)"
        WRITE = "write", "write (also upload, change, reprocess and delete documents)"
        ADMIN = "admin", "admin (also manage collections and permissions)"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What it is for.")
    prefix = models.CharField(
        max_length=12, unique=True, help_text="The token's public part: identifies it in lists."
    )
    digest = models.CharField(max_length=64, help_text="SHA-256 of the whole token.")
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user}, {self.scope})"

    def allows(self, scope: str) -> bool:
        order = list(self.Scope.values)
        return order.index(self.scope) >= order.index(scope)
