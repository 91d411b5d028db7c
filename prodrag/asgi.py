import os

from django.core.asgi import get_asgi_application

from prodrag.checks import system_checks_pass

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")

application = get_asgi_application()
system_checks_pass()
