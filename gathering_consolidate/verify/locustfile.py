"""The locust user verify runs (a file locust loads with `-f`; no toolkit import, so a worker on
another host needs only locust and this file).

The plan comes from the environment variable `GC_LOCUST_PLAN` (JSON):
`{"endpoints": [{"name", "method", "path", "weight", "json"}], "headers": {...}, "seed": 1}`.
Each user picks endpoints by weight with its own `random.Random(seed + user number)`, so a run is
repeatable, and sends them back to back (no think time): the load is bounded by the number of
users, the run time and, when set, `GC_LOCUST_MAX_REQUESTS` per user.
"""

from __future__ import annotations

import itertools
import json
import os
import random

from locust import HttpUser, constant, task
from locust.exception import StopUser

PLAN = json.loads(os.environ.get("GC_LOCUST_PLAN") or '{"endpoints": []}')
ENDPOINTS = PLAN.get("endpoints") or [{"name": "root", "method": "GET", "path": "/"}]
HEADERS = dict(PLAN.get("headers") or {})
SEED = int(PLAN.get("seed", 1))
MAX_REQUESTS = int(os.environ.get("GC_LOCUST_MAX_REQUESTS") or 0)
_numbers = itertools.count()


class VerifyUser(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random(SEED + next(_numbers))
        self.sent = 0
        self.weights = [float(e.get("weight", 1)) for e in ENDPOINTS]

    @task
    def hit(self) -> None:
        if MAX_REQUESTS and self.sent >= MAX_REQUESTS:
            raise StopUser()
        endpoint = self.rng.choices(ENDPOINTS, weights=self.weights)[0]
        self.sent += 1
        self.client.request(
            endpoint.get("method", "GET"), endpoint["path"], name=endpoint.get("name"),
            headers=HEADERS, json=endpoint.get("json"), timeout=30,
        )  # fmt: skip
