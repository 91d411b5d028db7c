import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_first_admin_gets_a_working_password_shown_once(capsys):
    call_command("admin_bootstrap")
    first = capsys.readouterr().out
    password = first.split("password: ")[1].split()[0]
    admin = authenticate(username="admin", password=password)
    assert admin is not None and admin.is_superuser and admin.is_staff

    call_command("admin_bootstrap")
    second = capsys.readouterr().out
    assert password not in second
    assert "changepassword admin" in second
    assert User.objects.filter(username="admin").count() == 1
