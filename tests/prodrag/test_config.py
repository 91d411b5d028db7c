"""Configuration layering: built-in defaults < TOML file < environment; secrets only from env."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.config import BASE_DIR, SETTINGS, Config, settings_table


@pytest.fixture
def toml(tmp_path):
    def write(text: str) -> dict[str, str]:
        path = tmp_path / "prodrag.toml"
        path.write_text(text)
        return {"PRODRAG_CONFIG": str(path)}

    return write


def test_defaults_apply_when_nothing_is_set(toml):
    config = Config(toml(""))
    assert config["PRODRAG_FTS_CONFIG"] == "english"
    assert config["PRODRAG_EMBEDDING_DIMENSIONS"] == 384
    assert config["PRODRAG_PGDATA"] == "var/pgdata"
    assert config["DATABASE_URL"] is None


def test_file_overrides_default_and_environment_overrides_file(toml):
    env = toml('fts_config = "simple"\nembedding_dimensions = 768\nallowed_hosts = ["a", "b"]\n')
    from_file = Config(env)
    assert from_file["PRODRAG_FTS_CONFIG"] == "simple"
    assert from_file["PRODRAG_EMBEDDING_DIMENSIONS"] == 768
    assert from_file["PRODRAG_ALLOWED_HOSTS"] == ["a", "b"]
    from_env = Config(env | {"PRODRAG_FTS_CONFIG": "german", "PRODRAG_ALLOWED_HOSTS": "c, d"})
    assert from_env["PRODRAG_FTS_CONFIG"] == "german"
    assert from_env["PRODRAG_ALLOWED_HOSTS"] == ["c", "d"]
    assert from_env["PRODRAG_EMBEDDING_DIMENSIONS"] == 768


def test_secret_in_the_file_is_refused(toml):
    with pytest.raises(ImproperlyConfigured, match="PRODRAG_SECRET_KEY"):
        Config(toml('secret_key = "abc"\n'))


def test_unknown_key_in_the_file_is_refused(toml):
    with pytest.raises(ImproperlyConfigured, match="unknown setting 'embeding_model'"):
        Config(toml('embeding_model = "typo"\n'))


def test_invalid_toml_is_reported_with_its_path(toml):
    with pytest.raises(ImproperlyConfigured, match="not valid TOML"):
        Config(toml("debug = \n"))


def test_named_config_file_must_exist(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="does not exist"):
        Config({"PRODRAG_CONFIG": str(tmp_path / "missing.toml")})


def test_secret_from_a_file_variable(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("s3cret-value\n")
    assert Config({"PRODRAG_SECRET_KEY_FILE": str(secret)})["PRODRAG_SECRET_KEY"] == "s3cret-value"
    # The variable itself wins over the file.
    both = {"PRODRAG_SECRET_KEY_FILE": str(secret), "PRODRAG_SECRET_KEY": "direct"}
    assert Config(both)["PRODRAG_SECRET_KEY"] == "direct"


def test_unreadable_secret_file_is_a_clear_error(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL_FILE: cannot read"):
        Config({"DATABASE_URL_FILE": str(tmp_path / "nope")})["DATABASE_URL"]


def test_bad_values_name_the_setting_and_origin():
    with pytest.raises(ImproperlyConfigured, match=r"PRODRAG_DEBUG \(from the environment\)"):
        Config({"PRODRAG_DEBUG": "maybe"})["PRODRAG_DEBUG"]
    with pytest.raises(ImproperlyConfigured, match="PRODRAG_ENV"):
        Config({"PRODRAG_ENV": "staging"})["PRODRAG_ENV"]


def test_the_settings_page_lists_every_setting_once_as_rendered():
    """docs/settings.md holds the table `python -m core.config` prints."""
    page = (BASE_DIR / "docs" / "settings.md").read_text()
    assert settings_table() in page
    for setting in SETTINGS:
        assert page.count(f"| `{setting.name}` |") == 1


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRODRAG_SECRET")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_secret_key_and_hosts():
    result = _manage("check", PRODRAG_ENV="production")
    assert result.returncode != 0
    assert "PRODRAG_SECRET_KEY and PRODRAG_ALLOWED_HOSTS" in result.stderr


def test_production_deploy_check_reports_nothing():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "DEBUG",
        PRODRAG_ENV="production",
        PRODRAG_SECRET_KEY="x7#Lq" * 12,
        PRODRAG_ALLOWED_HOSTS="rag.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    "env",
    [
        {"PRODRAG_REPLICAS": "2", "PRODRAG_DB_NAME": "handbook"},
        {
            "DATABASE_URL": "postgresql://app:pw@primary:5432/handbook",
            "PRODRAG_DATABASE_REPLICA_URLS": "postgresql://app:pw@replica-a/handbook,"
            "postgresql://app:pw@replica-b:5433/handbook",
        },
    ],
)
def test_replicas_are_databases_of_the_same_name_read_only_in_tests(env):
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings as s; import json; print(json.dumps("
        "{a: [d['NAME'], d['HOST'], d['PORT'], d.get('TEST', {}).get('MIRROR')]"
        " for a, d in s.DATABASES.items()} | {'replicas': s.DATABASE_REPLICAS}))",
        **env,
    )
    assert result.returncode == 0, result.stderr
    databases = json.loads(result.stdout.strip().splitlines()[-1])
    assert databases.pop("replicas") == ["replica1", "replica2"]
    assert {name for name, *_ in databases.values()} == {"handbook"}
    assert [mirror for *_, mirror in databases.values()] == [None, "default", "default"]
    if "DATABASE_URL" in env:
        assert [(host, str(port)) for _, host, port, _ in databases.values()] == [
            ("primary", "5432"),
            ("replica-a", ""),
            ("replica-b", "5433"),
        ]


def test_the_directory_sync_is_scheduled_only_with_a_directory_and_an_interval():
    show = (
        "from django.conf import settings as s; print(s.CELERY_BEAT_SCHEDULE.get('sync-directory'))"
    )
    directory = {"PRODRAG_LDAP_URL": "ldaps://dc1", "PRODRAG_LDAP_USER_BASE": "ou=p",
                 "PRODRAG_LDAP_GROUP_BASE": "ou=g", "PRODRAG_LDAP_SYNC_SECONDS": "120"}  # fmt: skip
    scheduled = _manage("shell", "-c", show, **directory)
    assert "'accounts.tasks.directory_sync_run', 'schedule': 120.0" in scheduled.stdout
    assert _manage("shell", "-c", show).stdout.strip().endswith("None")
    off = _manage("shell", "-c", show, **directory | {"PRODRAG_LDAP_SYNC_SECONDS": "0"})
    assert off.stdout.strip().endswith("None")


def test_database_url_of_another_kind_is_refused_with_a_message():
    result = _manage("check", DATABASE_URL="mysql://root@localhost/prodrag")
    assert result.returncode != 0
    assert "DATABASE_URL must start with postgresql://" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PRODRAG_PDF_PIPELINE": "layout"}, "needs docling's layout models"),
        ({"PRODRAG_EMBEDDING_MODEL": "models/nowhere"}, "no sentence-transformers model"),
        ({"PRODRAG_EMBEDDING_PROVIDER": "openai"}, "needs PRODRAG_EMBEDDING_API_BASE"),
        ({"PRODRAG_PII_MASK": "email,passport"}, "PRODRAG_PII_MASK: unknown kind(s) passport"),
        ({"PRODRAG_PII_EXTRA": "EMP-(\\d+"}, "PRODRAG_PII_EXTRA is not a valid regular"),
        ({"PRODRAG_DIRECTORY_GROUPS": "prodrag-(.*"}, "PRODRAG_DIRECTORY_GROUPS is not a"),
        ({"PRODRAG_OIDC_ISSUER": "https://idp.example"}, "needs PRODRAG_OIDC_CLIENT_ID"),
        ({"PRODRAG_LDAP_URL": "ldaps://dc1"}, "needs PRODRAG_LDAP_USER_BASE and _GROUP_BASE"),
        ({"PRODRAG_OIDC_SIGN_ALGORITHM": "HS256"}, "PRODRAG_OIDC_SIGN_ALGORITHM (from the"),
    ],
)
def test_settings_that_cannot_work_are_refused_at_start(env, message):
    result = _manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_no_missing_migrations():
    result = _manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_development_secret_key_is_made_at_first_use_and_kept():
    """GIVEN no PRODRAG_SECRET_KEY WHEN two processes sign the same value THEN they sign it
    alike: the key was made once, by the first that needed it, readable only by its owner."""
    key_file = Path(BASE_DIR / "var" / "secret_key")
    sign = "from django.core import signing; print(signing.Signer().sign('probe'))"
    first, second = (_manage("shell", "--no-imports", "-c", sign) for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("probe:") and first.stdout == second.stdout
    assert len(key_file.read_text()) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600


# Run in a fresh interpreter: records every file opened for writing, directory made and
# process started while Django sets up (settings, apps, the Celery app).
_SETUP_TOUCHES = """
import os, sys
touched = []
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT
def audit(event, args):
    if event == "open" and args[2] & WRITE or event in ("os.mkdir", "subprocess.Popen"):
        touched.append(f"{event} {args[0]}")
sys.addaudithook(audit)
import django
django.setup()
from django.conf import settings
settings.DATABASES, settings.CELERY_BROKER_URL
import prodrag.celery
print(touched)
"""


def test_setting_django_up_starts_no_server_and_writes_no_file(tmp_path):
    """GIVEN no DATABASE_URL and no PRODRAG_SECRET_KEY WHEN a process imports the settings,
    sets Django up and loads the Celery app THEN it has started nothing and written nothing:
    the embedded server starts at the first connection, the key at its first use."""
    pgdata = tmp_path / "pgdata"
    environment = {k: v for k, v in os.environ.items() if k not in ("PRODRAG_SECRET_KEY",)}
    environment |= {
        "PRODRAG_PGDATA": str(pgdata),
        "DJANGO_SETTINGS_MODULE": "prodrag.settings",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    environment.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", _SETUP_TOUCHES],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert not pgdata.exists()


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-c", "import prodrag.wsgi"],
        [sys.executable, "-c", "import prodrag.asgi"],
        [sys.executable, "-m", "celery", "-A", "prodrag", "worker", "--pool", "solo"],
    ],
    ids=["wsgi", "asgi", "worker"],
)
def test_servers_refuse_to_start_with_settings_that_cannot_work(command):
    """gunicorn and the Celery worker run no system checks of their own: the application and
    the worker run them at start, and stop with the check's message."""
    environment = os.environ | {"PRODRAG_EMBEDDING_MODEL": "models/nowhere"}
    result = subprocess.run(
        command, cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "(documents.E002) PRODRAG_EMBEDDING_MODEL='models/nowhere'" in result.stderr


def test_trusted_proxies_are_checked_networks():
    assert Config({"PRODRAG_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,fd00::/8"})[
        "PRODRAG_TRUSTED_PROXIES"
    ] == ["10.0.0.0/8", "127.0.0.1", "fd00::/8"]
    with pytest.raises(ImproperlyConfigured, match="PRODRAG_TRUSTED_PROXIES"):
        Config({"PRODRAG_TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"})["PRODRAG_TRUSTED_PROXIES"]
