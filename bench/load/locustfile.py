"""The load benchmark's users (run by bench.load through `locust --headless`): staff who search
(every mode), ask, read their conversations and, a few of them, upload. Each virtual user is
one of bench.load's API users, with its own token and what it may read.

Read from the environment: LOAD_PLAN (the JSON file bench.load writes: users, queries) and
LOAD_MAX_REQUESTS (the run stops after that many requests even before its time is up).

A response is a success when its status is the endpoint's success status. 429 and 503 with a
Retry-After header are counted apart from errors, as "shed" (the server refused quickly on
purpose); anything else, a timeout included, is an error.
"""

import itertools
import json
import os
import random
import uuid
from pathlib import Path

import gevent
from locust import HttpUser, between, events, task

PLAN = json.loads(Path(os.environ["LOAD_PLAN"]).read_text())
MAX_REQUESTS = int(os.environ.get("LOAD_MAX_REQUESTS", "0"))
QUERIES = PLAN["queries"]
ACCOUNTS = itertools.cycle(PLAN["users"])
_sent = itertools.count(1)
_environment = None


@events.init.add_listener
def _remember(environment, **kwargs):
    global _environment
    _environment = environment


@events.request.add_listener
def _stop_at_the_bound(**kwargs):
    if next(_sent) == MAX_REQUESTS:
        gevent.spawn(_environment.runner.quit)


class Staff(HttpUser):
    wait_time = between(1, 3)  # a person reads between requests

    def on_start(self):
        self.account = next(ACCOUNTS)
        self.client.headers["Authorization"] = f"Bearer {self.account['token']}"

    def _call(self, method: str, path: str, name: str, expected: int, **kwargs):
        with self.client.request(
            method, path, name=name, catch_response=True, timeout=60, **kwargs
        ) as response:
            if response.status_code == expected:
                response.success()
            elif response.status_code in (429, 503) and response.headers.get("Retry-After"):
                response.failure(f"shed {response.status_code}")
            else:
                response.failure(f"error {response.status_code or type(response.error).__name__}")
            return response

    def _search(self, mode: str):
        self._call(
            "POST",
            "/api/v1/search/",
            f"search {mode}",
            200,
            json={"query": random.choice(QUERIES), "mode": mode, "k": 10},
        )

    @task(4)
    def search_hybrid(self):
        self._search("hybrid")

    @task(1)
    def search_dense(self):
        self._search("dense")

    @task(1)
    def search_fulltext(self):
        self._search("fulltext")

    @task(2)
    def ask(self):
        self._call("POST", "/api/v1/ask/", "ask", 201, json={"question": random.choice(QUERIES)})

    @task(2)
    def conversation_read(self):
        listing = self._call("GET", "/api/v1/conversations/", "conversations list", 200)
        if listing.status_code == 200 and listing.json()["results"]:
            first = listing.json()["results"][0]["id"]
            self._call(
                "GET", f"/api/v1/conversations/{first}/messages/", "conversation messages", 200
            )

    @task(1)
    def upload(self):
        collection = self.account.get("collection")
        if collection is None:
            return  # only the uploaders upload
        name = f"note-{uuid.uuid4().hex[:12]}.txt"
        text = f"# Shift note {name}\n\n{random.choice(QUERIES)} The rota is posted weekly."
        self._call(
            "POST",
            "/api/v1/documents/",
            "upload",
            201,
            data={"collection": collection},
            files={"file": (name, text.encode(), "text/plain")},
        )
