import pytest


@pytest.fixture(autouse=True)
def test_settings(settings, tmp_path_factory):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Not under tmp_path: tests load whole directories from there.
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    # The manifest storage needs `collectstatic`; pages render the same without it.
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    settings.WHITENOISE_AUTOREFRESH = True
