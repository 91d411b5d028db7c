from django.contrib.auth.models import AbstractUser, Group
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac


class User(AbstractUser):
    """A person or integration that reads documents; knowledge managers are staff users."""

    session_generation = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Raised to end every session of the user at once (accounts.directory).",
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def get_session_auth_hash(self) -> str:
        """Django checks each session's copy of this hash on every request, so changing it ends
        them all, in any session store. Generation 0 keeps Django's own hash: no session ended
        when this field came."""
        if not self.session_generation:
            return super().get_session_auth_hash()
        return salted_hmac(
            "prodrag.accounts.User.get_session_auth_hash",
            f"{self.password}:{self.session_generation}",
            algorithm="sha256",
        ).hexdigest()


class Directory(models.TextChoices):
    """Where users and groups come from besides the admin (docs/identity.md)."""

    LDAP = "ldap", "LDAP / Active Directory"
    OIDC = "oidc", "OpenID Connect"
    SCIM = "scim", "SCIM provisioning"


class ExternalIdentity(models.Model):
    """The user as a directory knows them. A user with one is directory-managed: the directory
    decides their groups of that directory (and, for LDAP and SCIM, whether they are active).
    A local account without one is never taken over by a directory user of the same name."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="identities")
    directory = models.CharField(max_length=4, choices=Directory.choices)
    subject = models.CharField(
        max_length=255,
        blank=True,
        help_text="LDAP: the entry's id attribute (entryUUID, objectGUID); OpenID Connect: "
        "`sub`; SCIM: `externalId` (may be empty).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "directory"], name="one_identity_per_directory"
            ),
            models.UniqueConstraint(
                fields=["directory", "subject"],
                condition=~models.Q(subject=""),
                name="unique_directory_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.get_directory_display()} ({self.subject or '-'})"


class DirectoryGroup(models.Model):
    """Marks a group as a directory's: its members are set by that directory (sync, SCIM or
    the sign-in's groups claim), not by hand. Grants to it work like grants to any group."""

    group = models.OneToOneField(
        Group, on_delete=models.CASCADE, primary_key=True, related_name="directory"
    )
    directory = models.CharField(max_length=4, choices=Directory.choices)
    external_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="LDAP: the entry's id attribute; OpenID Connect: the claim's value; SCIM: "
        "`externalId` (may be empty).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["directory", "external_id"],
                condition=~models.Q(external_id=""),
                name="unique_directory_group",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} ({self.get_directory_display()})"


class DirectorySync(models.Model):
    """One run of the LDAP directory sync (accounts.ldap): what it found and changed, or why
    it changed nothing."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed: the directory did not answer in full; nothing changed"
        HELD = "held", "held: more removals than PRODRAG_LDAP_MAX_REMOVAL_SHARE; nothing changed"

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.RUNNING)
    users_seen = models.PositiveIntegerField(default=0)
    groups_seen = models.PositiveIntegerField(default=0)
    users_created = models.PositiveIntegerField(default=0)
    users_updated = models.PositiveIntegerField(default=0)
    users_deactivated = models.PositiveIntegerField(default=0)
    users_reactivated = models.PositiveIntegerField(default=0)
    groups_created = models.PositiveIntegerField(default=0)
    memberships_added = models.PositiveIntegerField(default=0)
    memberships_removed = models.PositiveIntegerField(default=0)
    conflicts = models.JSONField(
        default=list,
        blank=True,
        help_text="Directory users skipped: a local account of the same username exists.",
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"directory sync {self.started_at:%Y-%m-%d %H:%M:%S}: {self.outcome}"


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


class AuditEvent(models.Model):
    """One thing a person or integration did that compliance must be able to trace: what they
    searched and were shown, what they changed. Written in the transaction of the change
    itself, so a change that rolls back leaves no record. Query and answer texts are stored
    desensitised (accounts.pii)."""

    class Action(models.TextChoices):
        SEARCH = "search", "search"
        ASK = "ask", "ask"
        DOCUMENT_CREATE = "document.create", "document created"
        DOCUMENT_UPDATE = "document.update", "document changed"
        DOCUMENT_DELETE = "document.delete", "document deleted"
        DOCUMENT_REPROCESS = "document.reprocess", "document queued for processing again"
        COLLECTION_CREATE = "collection.create", "collection created"
        COLLECTION_UPDATE = "collection.update", "collection changed"
        COLLECTION_DELETE = "collection.delete", "collection deleted"
        PERMISSION_GRANT = "permission.grant", "permission granted"
        PERMISSION_REVOKE = "permission.revoke", "permission revoked"
        USER_UPDATE = "user.update", "user's access flags changed"
        MEMBERSHIP_ADD = "membership.add", "user added to group"
        MEMBERSHIP_REMOVE = "membership.remove", "user removed from group"
        TOKEN_CREATE = "token.create", "API token created"
        TOKEN_REVOKE = "token.revoke", "API token revoked"
        SIGNIN = "signin", "signed in"
        SIGNIN_FAILED = "signin.failed", "sign-in refused"
        USER_CREATE = "user.create", "user created by a directory"
        USER_DEPROVISION = "user.deprovision", "user removed by a directory"
        GROUP_CREATE = "group.create", "directory group created"
        GROUP_UPDATE = "group.update", "directory group renamed"
        GROUP_DELETE = "group.delete", "directory group deleted"
        DIRECTORY_SYNC = "directory.sync", "directory sync"

    class Via(models.TextChoices):
        API = "api", "API"
        PAGE = "page", "chat pages"
        ADMIN = "admin", "admin"
        COMMAND = "command", "management command"
        SYSTEM = "system", "system (no person)"
        SCIM = "scim", "SCIM provisioning"
        SYNC = "sync", "directory sync"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(
        max_length=150, blank=True, help_text="The actor's username, kept if the user is deleted."
    )
    via = models.CharField(max_length=8, choices=Via.choices)
    token_prefix = models.CharField(
        max_length=12, blank=True, help_text="The API token the request came with."
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=24, choices=Action.choices)
    target_type = models.CharField(max_length=24, blank=True)
    target_id = models.BigIntegerField(null=True, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    query = models.TextField(blank=True)
    answer = models.TextField(blank=True)
    returned_documents = ArrayField(models.BigIntegerField(), default=list, blank=True)
    returned_chunks = ArrayField(models.BigIntegerField(), default=list, blank=True)
    cited_documents = ArrayField(models.BigIntegerField(), default=list, blank=True)
    cited_chunks = ArrayField(models.BigIntegerField(), default=list, blank=True)
    details = models.JSONField(
        default=dict,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text="For a change, {field: [before, after]}; for a search or ask, its settings.",
    )

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["action", "-at"]),
            models.Index(fields=["actor", "-at"]),
            models.Index(fields=["target_type", "target_id"]),
            # "Who was shown this document?"
            GinIndex(fields=["returned_documents"]),
            GinIndex(fields=["cited_documents"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action}"


class PermissionMark(models.Model):
    """One row: a number that grows with every committed transaction that can narrow what
    someone may read (a grant revoked, a group left, a user deactivated, a document deleted or
    moved). Database triggers keep it (migration accounts 0005 and documents 0010), so no path
    of writing can forget it. A read replica whose copy of the row is older than the
    primary's has not replayed some such change, and accounts.replicas does not read from it."""

    position = models.BigIntegerField(
        help_text="The primary's WAL insert position (bytes) when the last change was written."
    )

    def __str__(self) -> str:
        return f"permissions changed at WAL byte {self.position}"


class WriteMark(models.Model):
    """Where the primary's WAL was after a user's last write request: a replica serves that
    user's reads only once it has replayed this far (read-your-writes; accounts.replicas)."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="+")
    position = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.user} last wrote at WAL byte {self.position}"
