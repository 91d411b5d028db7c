import os
from pathlib import Path

from celery import Celery, bootsteps
from celery.beat import PersistentScheduler
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    before_task_publish,
    celeryd_init,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_ready,
)

from core.config import cpu_count
from core.health import readiness_check_register
from core.liveness import ALIVE_INTERVAL

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prodrag.settings")

# Seconds between a pool process's checks that its worker still runs.
ORPHAN_CHECK_INTERVAL = 1


class AliveFile(bootsteps.StartStopStep):
    """While the worker consumes from the broker, it touches settings.WORKER_ALIVE_FILE every
    ALIVE_INTERVAL seconds; it removes the file when it stops consuming (shutdown, or a lost
    broker connection until it reconnects). `manage.py worker_health` reads the file's age:
    a container probe that needs no broker round trip, which kombu's database transport
    could not answer anyway (it has no broadcast for `celery inspect ping`)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs):
        from django.conf import settings

        super().__init__(parent, **kwargs)
        self.path = Path(settings.WORKER_ALIVE_FILE)
        self.timer = None

    def start(self, parent):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self.timer = parent.timer.call_repeatedly(ALIVE_INTERVAL, self.path.touch)

    def stop(self, parent):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.path.unlink(missing_ok=True)

    shutdown = stop


class AliveScheduler(PersistentScheduler):
    """Celery beat's scheduler, touching settings.BEAT_ALIVE_FILE on every tick (at least
    every beat_max_loop_interval) and removing it when beat stops: `manage.py worker_health
    --beat` reads its age, which shows that the scheduling loop runs, not only the process."""

    def setup_schedule(self):
        from django.conf import settings

        self.alive_file = Path(settings.BEAT_ALIVE_FILE)
        self.alive_file.parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()

    def tick(self, *args, **kwargs):
        self.alive_file.touch()
        return super().tick(*args, **kwargs)

    def close(self):
        super().close()
        self.alive_file.unlink(missing_ok=True)


app = Celery("prodrag")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.steps["consumer"].add(AliveFile)

# A readiness probe waits at most this long for the broker (seconds).
BROKER_TIMEOUT = 3


def _broker_ready() -> str:
    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
        return broker.as_uri()  # without the password


readiness_check_register("broker", _broker_ready)


@worker_init.connect
def _system_checks(**_kwargs) -> None:
    from django.core.management.base import SystemCheckError

    from prodrag.checks import system_checks_pass

    try:
        system_checks_pass()
    except SystemCheckError as error:
        # Celery logs and swallows a signal handler's exception; this ends the worker.
        raise SystemExit(str(error)) from None


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


@worker_ready.connect
def _metrics_serve(**_kwargs) -> None:
    from django.conf import settings

    from core.metrics import worker_metrics_serve

    if settings.WORKER_METRICS_PORT:
        worker_metrics_serve(settings.WORKER_METRICS_PORT)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _logs_format(*, logger, **_kwargs) -> None:
    """The worker's log handlers write prodrag's format, with the request, task and user ids."""
    from django.conf import settings

    from core.logs import ContextFilter, formatter

    for handler in logger.handlers:
        handler.setFormatter(formatter(settings.LOG_FORMAT))
        handler.addFilter(ContextFilter())


@worker_process_init.connect
def _orphan_guard(**_kwargs) -> None:
    """A pool process dies with its worker, and only then.

    celery has each pool process ask Linux for SIGKILL when its parent dies
    (PR_SET_PDEATHSIG). But Linux sends it when the *thread* that forked the process ends: a
    pool process that replaced a lost one (killed, out of memory) was forked by billiard's
    supervisor thread, which stops when a warm shutdown begins, so SIGTERM killed that
    process's task in flight instead of letting it finish (it was then delivered again).
    Every pool process therefore drops that signal and watches its parent itself: once the
    worker is gone (the process was handed to another parent), it exits."""
    import threading
    import time

    from billiard.util import set_pdeathsig

    parent = os.getppid()
    set_pdeathsig(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_INTERVAL)
        os._exit(1)

    threading.Thread(target=watch, name="orphan-guard", daemon=True).start()


@worker_process_init.connect
def _tracing_setup(**_kwargs) -> None:
    from core.tracing import tracing_setup

    tracing_setup(service="prodrag-worker")


@before_task_publish.connect
def _task_headers_add(*, headers, **_kwargs) -> None:
    """A queued task carries the request's ids (logs) and trace context (spans)."""
    from core.logs import task_headers
    from core.tracing import trace_headers

    headers.update(task_headers() | trace_headers())


# What each running task set up (its id: the log context's tokens and its span).
_task_contexts: dict[str, tuple] = {}


@task_prerun.connect
def _task_context_enter(*, task_id, task, **_kwargs) -> None:
    from core.logs import REQUEST_HEADER, USER_HEADER, task_context_enter
    from core.tracing import task_span_start

    def header(key: str):
        # A worker's message puts custom headers on the request; an eager apply() keeps them
        # in request.headers.
        return task.request.get(key) or (task.request.get("headers") or {}).get(key)

    logs = task_context_enter(tid=task_id, rid=header(REQUEST_HEADER), uid=header(USER_HEADER))
    _task_contexts[task_id] = logs, task_span_start(name=task.name, headers_of=header)


@task_postrun.connect
def _task_done(*, task_id, task, state=None, **_kwargs) -> None:
    from core.logs import task_context_exit
    from core.metrics import TASKS
    from core.tracing import task_span_end

    TASKS.labels(task=task.name, outcome=(state or "unknown").lower()).inc()
    if (entered := _task_contexts.pop(task_id, None)) is not None:
        logs, span = entered
        task_span_end(span, state=state)
        task_context_exit(logs)
