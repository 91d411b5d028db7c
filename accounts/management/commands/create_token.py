from django.core.management.base import CommandError

from accounts.management.audited import AuditedCommand
from accounts.models import ApiToken, User
from accounts.services import token_create


class Command(AuditedCommand):
    help = "Create an API token for a user and print it (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--scope", choices=ApiToken.Scope.values, default=ApiToken.Scope.READ)
        parser.add_argument(
            "--days", type=int, help="Valid for this many days (default: until revoked)."
        )
        parser.add_argument("--name", default="", help="What the token is for.")

    def handle(self, *args, username, scope, days, name, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive: a token would not work.")
        try:
            token, plain = token_create(user=user, scope=scope, days=days, name=name)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        until = (
            f"until {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "until revoked"
        )
        self.stdout.write(plain)
        self.stderr.write(f"{scope} token for {username}, valid {until}; it is not shown again.")
