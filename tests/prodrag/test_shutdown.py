"""The web server on SIGTERM (what `docker stop` sends): the request in flight is answered in
full before gunicorn exits. gunicorn runs the Dockerfile's own command (its address, pid and
log file changed), which no Docker engine here can run."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from accounts.services import token_create
from tests.fake_openai import FakeOpenAI, Slow
from tests.processes import free_port, process_env


@pytest.mark.django_db(transaction=True)
def test_sigterm_lets_the_request_in_flight_finish(handbook, openai_endpoint, tmp_path):
    """GIVEN gunicorn answering a question while the LLM takes 3 seconds
    WHEN gunicorn gets SIGTERM in the middle of it
    THEN the answer still arrives, whole, and gunicorn then exits cleanly.
    (And the web process loaded the embedding model before it answered anything.)"""
    FakeOpenAI.replies = [Slow(3, "Every employee gets 27 days of paid annual leave [1].")]
    token = token_create(user=handbook["leave.md"].owner, scope="read")[1]
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "gunicorn") if word == "gunicorn" else word
        for word in _dockerfile_command()
    ]
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    command[command.index("--pid") + 1] = str(tmp_path / "web.pid")
    command[command.index("--error-logfile") + 1] = str(tmp_path / "web.log")
    server = subprocess.Popen(
        command,
        env=process_env(PRODRAG_LLM_API_BASE=openai_endpoint, PRODRAG_WEB_WORKERS="1"),
        cwd=settings.BASE_DIR,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        # The process loaded the model before it took its first request.
        log = (tmp_path / "web.log").read_text()
        assert "embedding model ready in" in log
        assert "all-MiniLM-L6-v2 runs in ONNX Runtime, unquantised" in log

        answers = []
        asking = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{base}/api/v1/ask/",
                    json={"question": "How many days of annual leave?", "stream": False},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )
            )
        )
        asking.start()
        while not FakeOpenAI.requests:  # the question has reached the LLM
            assert time.monotonic() < deadline + 30, (tmp_path / "web.log").read_text()
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        asking.join(timeout=60)
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
    (answer,) = answers
    assert answer.status_code == 201, answer.text
    assert answer.json()["answer"]["mode"] == "generated"
    assert "27 days" in answer.json()["answer"]["text"]


def _dockerfile_command() -> list[str]:
    dockerfile = (settings.BASE_DIR / "Dockerfile").read_text().replace("\\\n", "")
    (line,) = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    return json.loads(line.removeprefix("CMD "))
