import os

from celery import Celery
from celery.signals import celeryd_init

from prodrag.config import cpu_count

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")

app = Celery("prodrag")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
def _torch_threads_share(*, options: dict, **_kwargs) -> None:
    """Give each worker process its share of the CPUs as torch threads. The worker's main
    process never imports torch, and its pool processes inherit this environment. Single-
    threaded processes side by side encode about 15% more per second than one process with
    two threads (docs/benchmarks.md), and more threads than CPUs in all only thrash. An
    explicit OMP_NUM_THREADS wins."""
    processes = options.get("concurrency") or app.conf.worker_concurrency
    share = cpu_count() // processes
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, share)))
