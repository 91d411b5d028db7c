"""gunicorn's hooks (prodrag/gunicorn.conf.py), called as gunicorn calls them."""

import logging
import runpy
import threading

import documents.embedding
from core.config import BASE_DIR


class _Worker:
    """What a hook may use of gunicorn's worker: notify(), its heartbeat to the arbiter. Sets
    `beaten` once it has had `enough` heartbeats."""

    def __init__(self, enough: int = 0) -> None:
        self.heartbeats = 0
        self.enough = enough
        self.beaten = threading.Event()

    def notify(self) -> None:
        self.heartbeats += 1
        if self.heartbeats >= self.enough:
            self.beaten.set()


def test_a_web_process_keeps_its_heartbeat_while_the_model_loads(monkeypatch, caplog):
    """GIVEN a model whose load lasts until the process has told the arbiter three times that
    it is alive WHEN a web process starts THEN it keeps telling it while the model loads (so
    that a slow load outlasting gunicorn's timeout does not get it killed), and says when the
    model is ready. (A load that blocked the heartbeat would never end: the test's bound.)"""
    hooks = runpy.run_path(str(BASE_DIR / "prodrag" / "gunicorn.conf.py"))
    loaded = documents.embedding.embedder()
    worker = _Worker(enough=3)

    def slow_load():
        assert worker.beaten.wait(timeout=60), "no heartbeat while the model loaded"
        return loaded

    monkeypatch.setattr(documents.embedding, "embedder_warm", slow_load)
    with caplog.at_level(logging.INFO, logger="prodrag.web"):
        hooks["post_worker_init"](worker)

    assert worker.heartbeats >= 3
    assert "embedding model ready in" in caplog.text
    assert f"{loaded.model} runs in ONNX Runtime, unquantised" in caplog.text


def test_a_model_that_fails_to_load_is_logged_and_the_process_starts(monkeypatch, caplog):
    hooks = runpy.run_path(str(BASE_DIR / "prodrag" / "gunicorn.conf.py"))

    def broken_load():
        raise OSError("no weights at /models/missing")

    monkeypatch.setattr(documents.embedding, "embedder_warm", broken_load)
    with caplog.at_level(logging.INFO, logger="prodrag.web"):
        hooks["post_worker_init"](_Worker())

    assert "the embedding model did not load" in caplog.text
    assert "no weights at /models/missing" in caplog.text
