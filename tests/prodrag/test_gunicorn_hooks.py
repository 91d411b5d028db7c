"""gunicorn's hooks (prodrag/gunicorn.conf.py), called as gunicorn calls them."""

import logging
import runpy
import time

import documents.embedding
from prodrag.config import BASE_DIR


class _Worker:
    """What a hook may use of gunicorn's worker: notify(), its heartbeat to the arbiter."""

    def __init__(self) -> None:
        self.heartbeats = 0

    def notify(self) -> None:
        self.heartbeats += 1


def test_a_web_process_keeps_its_heartbeat_while_the_model_loads(monkeypatch, caplog):
    """GIVEN a model that takes 2.5 s to load WHEN a web process starts THEN it tells the
    arbiter it is alive every second meanwhile (so that a slow load outlasting gunicorn's
    timeout does not get it killed), and says when the model is ready."""
    hooks = runpy.run_path(str(BASE_DIR / "prodrag" / "gunicorn.conf.py"))
    loaded = documents.embedding.embedder()

    def slow_load():
        time.sleep(2.5)
        return loaded

    monkeypatch.setattr(documents.embedding, "embedder_warm", slow_load)
    worker = _Worker()
    with caplog.at_level(logging.INFO, logger="prodrag.web"):
        hooks["post_worker_init"](worker)

    assert worker.heartbeats >= 3
    assert f"embedding model {loaded.model} ready in 2." in caplog.text


def test_a_model_that_fails_to_load_is_logged_and_the_process_starts(monkeypatch, caplog):
    hooks = runpy.run_path(str(BASE_DIR / "prodrag" / "gunicorn.conf.py"))

    def broken_load():
        raise OSError("no weights at /models/missing")

    monkeypatch.setattr(documents.embedding, "embedder_warm", broken_load)
    with caplog.at_level(logging.INFO, logger="prodrag.web"):
        hooks["post_worker_init"](_Worker())

    assert "the embedding model did not load" in caplog.text
    assert "no weights at /models/missing" in caplog.text
