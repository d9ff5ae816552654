"""Run inside a migrated copy of the fixture app (cwd = the copy, DATABASE_URL set): send SQL
injection payloads to the former holes and partial updates to every update endpoint, and check
the database. Prints one JSON object: {"failures": [...], "checked": N}."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("GATHERING_SCHEDULER_INTERVAL", "3600")
os.environ.setdefault("BCRYPT_ROUNDS", "4")
sys.path.insert(0, os.getcwd())

import psycopg
from fastapi.testclient import TestClient
from gathering.api.dependencies import close_db_service, init_db_service
from gathering.db.apply_schema import apply_schema
from psycopg.rows import dict_row

URL = os.environ["DATABASE_URL"]
apply_schema(URL, reset=True)
init_db_service(URL)

from gathering.api.main import app  # noqa: E402

failures: list[str] = []
checked = 0


def check(condition: bool, what: str) -> None:
    global checked
    checked += 1
    if not condition:
        failures.append(what)


def rows(query: str, *params: object) -> list[dict]:
    with psycopg.connect(URL, row_factory=dict_row, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def snapshot() -> dict:
    return {
        "tables": rows(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema IN ('agent', 'circle', 'auth', 'orchestration') ORDER BY 1, 2"
        ),
        "agents": rows("SELECT * FROM agent.agents ORDER BY id"),
        "circles": rows("SELECT * FROM circle.circles ORDER BY id"),
        "users": rows("SELECT id, email FROM auth.users ORDER BY id"),
    }


def only_changed(before: dict, after: dict, expected: set[str], what: str) -> None:
    ignore = {"updated_at", "next_run_at"}
    changed = {k for k in before if before[k] != after[k]} - ignore
    check(changed == expected, f"{what}: changed {sorted(changed)}, expected {sorted(expected)}")


SEARCH_PAYLOADS = [
    "' OR '1'='1",
    "'; DROP TABLE agent.agents; --",
    "x%' OR 1=1 --",
    "%' UNION SELECT 1 --",
]
KEY_PAYLOADS = [
    {"description = 'pwned'; DROP TABLE agent.agents; --": "x"},
    {"name = 'pwned', description": "x"},
    {"require_review = true WHERE 1=1; --": 1},
    {"' OR '1'='1": "x"},
]

with TestClient(app) as client:
    credentials = {"email": "probe@example.com", "name": "Probe", "password": "probe-password-1"}
    check(client.post("/auth/register", json=credentials).status_code == 201, "register")
    login = client.post("/auth/login/json", json=credentials)
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    analyst = client.post(
        "/agents", json={"name": "Data Analyst", "role": "analytics"}, headers=headers
    ).json()
    client.post("/agents", json={"name": "Coder", "role": "engineering"}, headers=headers)
    circle = client.post("/circles", json={"name": "Research"}, headers=headers).json()

    # Injection payloads to the former holes change nothing and never answer 5xx.
    before = snapshot()
    for payload in SEARCH_PAYLOADS:
        response = client.get("/agents/search", params={"q": payload}, headers=headers)
        check(response.status_code < 500, f"search {payload!r}: {response.status_code}")
        check(
            response.status_code != 200 or response.json() == [], f"search {payload!r} matched rows"
        )
    for body in KEY_PAYLOADS:
        response = client.patch(f"/circles/{circle['id']}/settings", json=body, headers=headers)
        check(400 <= response.status_code < 500, f"settings {body!r}: {response.status_code}")
    check(snapshot() == before, "an injection payload changed the database")
    found = client.get("/agents/search", params={"q": "data"}, headers=headers).json()
    check([a["name"] for a in found] == ["Data Analyst"], f"plain search broke: {found}")

    # Every partial update endpoint updates exactly the fields sent.
    agent_id = analyst["id"]
    old = rows("SELECT * FROM agent.agents WHERE id = %s", agent_id)[0]
    response = client.patch(f"/agents/{agent_id}", json={"role": "lead"}, headers=headers)
    check(response.status_code == 200, f"PATCH agent: {response.status_code}")
    only_changed(
        old,
        rows("SELECT * FROM agent.agents WHERE id = %s", agent_id)[0],
        {"role"},
        "PATCH /agents",
    )

    old = rows("SELECT * FROM circle.circles WHERE id = %s", circle["id"])[0]
    response = client.patch(
        f"/circles/{circle['id']}/settings",
        json={"max_agents": 3, "require_review": True},
        headers=headers,
    )
    check(response.status_code == 200, f"PATCH settings: {response.status_code}")
    new = rows("SELECT * FROM circle.circles WHERE id = %s", circle["id"])[0]
    only_changed(old, new, {"max_agents", "require_review"}, "PATCH /circles/settings")
    check(new["max_agents"] == 3 and new["require_review"] is True, "settings not written")

    pipeline = client.post("/pipelines", json={"name": "Digest"}, headers=headers).json()
    old = rows("SELECT * FROM circle.pipelines WHERE id = %s", pipeline["id"])[0]
    response = client.put(
        f"/pipelines/{pipeline['id']}", json={"description": "weekly"}, headers=headers
    )
    check(response.status_code == 200, f"PUT pipeline: {response.status_code}")
    new = rows("SELECT * FROM circle.pipelines WHERE id = %s", pipeline["id"])[0]
    only_changed(old, new, {"description"}, "PUT /pipelines")

    action = client.post(
        "/scheduled-actions",
        json={
            "name": "Nightly",
            "action_type": "emit_event",
            "schedule_type": "interval",
            "interval_seconds": 3600,
            "parameters": {"event": "digest.requested"},
        },
        headers=headers,
    ).json()
    old = rows("SELECT * FROM orchestration.scheduled_actions WHERE id = %s", action["id"])[0]
    response = client.put(
        f"/scheduled-actions/{action['id']}", json={"description": "d"}, headers=headers
    )
    check(response.status_code == 200, f"PUT action: {response.status_code}")
    new = rows("SELECT * FROM orchestration.scheduled_actions WHERE id = %s", action["id"])[0]
    only_changed(old, new, {"description"}, "PUT /scheduled-actions")

close_db_service()
print(json.dumps({"failures": failures, "checked": checked}))
