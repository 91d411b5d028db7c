import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")

app = Celery("prodrag")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
