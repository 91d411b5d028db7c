"""gunicorn settings for `make up`, read from the same layered configuration as Django."""

from core.config import BASE_DIR, Config

_config = Config()

bind = _config["PRODRAG_BIND"]
workers = _config["PRODRAG_WEB_WORKERS"]
# Threads, so that streamed answers (each holding a thread while the model writes) do not
# block other requests.
worker_class = "gthread"
threads = _config["PRODRAG_WEB_THREADS"]
wsgi_app = "prodrag.wsgi:application"
# X-Forwarded-Proto is believed only from the declared proxies (none: only from this machine,
# gunicorn's default); the client's address is read the same way (core.clients).
forwarded_allow_ips = ",".join(_config["PRODRAG_TRUSTED_PROXIES"]) or "127.0.0.1,::1"
chdir = str(BASE_DIR)
pidfile = str(BASE_DIR / "var" / "run" / "web.pid")
accesslog = str(BASE_DIR / "var" / "log" / "web-access.log")
errorlog = str(BASE_DIR / "var" / "log" / "web.log")
graceful_timeout = 30
# Idle keep-alive connections wait in the poller, holding no thread. Kept open longer than a
# person pauses between requests: a server that closes an idle connection just as its client
# sends on it makes a connection error (measured by bench.load with the default 2 s).
keepalive = 75
# The app's own log lines (JSON on stderr) go to the error log too, also when daemonised.
capture_output = True
# Load the app before forking, so a configuration error stops start-up with its message.
preload_app = True


def post_fork(server, worker):
    """Each web process exports its own spans (see core.tracing)."""
    from core.tracing import tracing_setup

    tracing_setup(service="prodrag-web")


def post_worker_init(worker):
    """Each web process loads the embedding model before it takes requests (after the fork:
    neither torch's nor ONNX Runtime's threads survive one); the first search would
    otherwise wait about 4 s for it. The load runs in a thread while this one tells the
    arbiter every second that the process is alive: on a busy machine it can take longer
    than gunicorn's `timeout`, after which the arbiter would kill the process and start
    another, again and again. A model that fails to load is logged, and searches fall back
    to full text, as they would at their own first attempt."""
    import threading

    loading = threading.Thread(target=_embedding_model_load, daemon=True)
    loading.start()
    while loading.is_alive():
        worker.notify()
        loading.join(timeout=1)


def _embedding_model_load() -> None:
    import logging
    import time

    from documents.embedding import LocalEmbedder, embedder_warm

    log = logging.getLogger("prodrag.web")
    started = time.monotonic()
    try:
        provider = embedder_warm()
    except Exception:
        log.exception("the embedding model did not load")
        return
    if isinstance(provider, LocalEmbedder):
        log.info(
            "embedding model ready in %.1f s: %s",
            time.monotonic() - started, provider.describe(),
        )  # fmt: skip
