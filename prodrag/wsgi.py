import os

from django.core.wsgi import get_wsgi_application

from prodrag.checks import system_checks_pass

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")

application = get_wsgi_application()
system_checks_pass()
