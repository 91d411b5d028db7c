from django.core.management.base import BaseCommand

from accounts.services import admin_bootstrap


class Command(BaseCommand):
    help = "Create the first admin user with a generated password, printed once."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        password = admin_bootstrap(username=username)
        if password is None:
            self.stdout.write(
                f"login: {username} (password shown when it was created; to set a new one: "
                f".venv/bin/python manage.py changepassword {username})"
            )
        else:
            self.stdout.write(f"login: {username}  password: {password}  (shown only this once)")
