"""The verify pieces that need no process or database: profiles, placeholders, the user-shape
contract, percentiles, check selection, the OpenAPI draft, the injection probe generator, the
blocking-site parser, catalog differences, locust's CSV and the result contract (D)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from gathering_consolidate.verify import checks
from gathering_consolidate.verify.blocking import parse_records
from gathering_consolidate.verify.catalog import CANARY_TABLE, Snapshot
from gathering_consolidate.verify.checks.vfy001_auth_contract import shape_problems
from gathering_consolidate.verify.checks.vfy002_event_loop import percentile
from gathering_consolidate.verify.checks.vfy003_injection import PAYLOADS, _probes
from gathering_consolidate.verify.draft import draft_from_openapi
from gathering_consolidate.verify.load import read_stats
from gathering_consolidate.verify.profile import (
    ProfileError,
    available_profiles,
    fill,
    load_profile,
)
from gathering_consolidate.verify.results import CheckResult, VerifyResult


def test_shipped_profiles_load_and_name_their_app():
    names = available_profiles()
    assert "gathering_app" in names
    for name in names:
        profile = load_profile(name)
        assert ":" in profile.get("target", "app"), name


def test_unknown_profile_keys_and_names_are_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[auth]\nregistr = "/x"\n')
    with pytest.raises(ProfileError, match=r"unknown key.*registr"):
        load_profile(bad)
    (tmp_path / "sec.toml").write_text("[nope]\n")
    with pytest.raises(ProfileError, match=r"unknown section \[nope\]"):
        load_profile(tmp_path / "sec.toml")
    with pytest.raises(ProfileError, match="no profile named 'missing'"):
        load_profile("missing")


def test_fill_keeps_types_of_whole_placeholders_and_formats_the_rest():
    values = {"pipeline_id": 7, "email": "a@b.c"}
    body = {"target_id": "{pipeline_id}", "path": "/p/{pipeline_id}/run", "who": ["{email}"]}
    assert fill(body, values) == {"target_id": 7, "path": "/p/7/run", "who": ["a@b.c"]}


def test_user_shape_contract_names_missing_added_and_retyped_fields():
    contract = {"id": "string", "email": "string", "created_at": ["string", "null"]}
    assert shape_problems({"id": "u1", "email": "e", "created_at": None}, contract) == []
    problems = shape_problems({"id": 5, "email": "e", "extra": 1}, contract)
    assert "field 'id' is integer (5), recorded as string" in problems
    assert "field 'created_at' is missing" in problems
    assert "field 'extra' is not in the recorded contract" in problems


def test_percentile_is_nearest_rank():
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 95) == 95.0
    assert percentile([3.0], 99) == 3.0


def test_check_selection_by_id_or_name():
    chosen = checks.select(["vfy003", "auth-contract"])
    assert [m.NAME for m in chosen] == ["auth-contract", "injection"]  # run order kept
    with pytest.raises(ValueError, match="unknown check 'nope'"):
        checks.select(["nope"])
    assert [c[0] for c in checks.catalogue()] == [f"VFY00{i}" for i in range(1, 8)]


OPENAPI = {
    "openapi": "3.1.0",
    "paths": {
        "/health": {"get": {}},
        "/auth/register": {
            "post": {
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/U"}}}
                }
            }
        },
        "/auth/login": {
            "post": {
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "properties": {
                                    "username": {"type": "string"},
                                    "password": {"type": "string"},
                                },
                                "required": ["username", "password"],
                            }
                        }
                    }
                }
            }
        },
        "/auth/me": {
            "get": {
                "responses": {
                    "200": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Out"}}
                        }
                    }
                }
            }
        },
        "/items/{item_id}": {
            "get": {
                "parameters": [
                    {
                        "name": "item_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                    {
                        "name": "q",
                        "in": "query",
                        "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    },
                    {
                        "name": "sort",
                        "in": "query",
                        "schema": {"enum": ["a", "b"], "type": "string"},
                    },
                ]
            }
        },
    },
    "components": {
        "schemas": {
            "U": {
                "properties": {
                    "email": {"type": "string", "format": "email"},
                    "password": {"type": "string"},
                    "name": {"type": "string"},
                },
                "required": ["email", "password", "name"],
            },
            "Out": {
                "properties": {
                    "id": {"type": "string"},
                    "email": {"type": "string"},
                    "age": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                }
            },
        }
    },
}


def test_draft_profile_from_openapi_is_a_loadable_profile(tmp_path):
    text = draft_from_openapi(OPENAPI, app="pkg.main:app")
    path = tmp_path / "draft.toml"
    path.write_text(text)
    profile = load_profile(path)
    auth = profile.section("auth")
    assert auth["register"]["path"] == "/auth/register"
    assert auth["register"]["json"] == {
        "email": "{email}",
        "password": "{password}",
        "name": "Verify User",
    }
    assert auth["login"]["form"] == {"username": "{email}", "password": "{password}"}
    assert auth["me"] == "/auth/me"
    assert auth["contract"] == {"id": "string", "email": "string", "age": ["integer", "null"]}
    assert profile.health_path == "/health"


def test_injection_probes_cover_string_slots_only_with_every_payload():
    probes = list(
        _probes(OPENAPI, "/items/{item_id}", "get", OPENAPI["paths"]["/items/{item_id}"]["get"])
    )
    assert len(probes) == len(PAYLOADS)  # q only: item_id is an integer, sort an enum
    _description, url, query, kind, _body = probes[3]
    assert url == "/items/1" and kind is None and query == {"q": PAYLOADS[3]}
    login = OPENAPI["paths"]["/auth/login"]["post"]
    form = list(_probes(OPENAPI, "/auth/login", "post", login))
    assert len(form) == 2 * len(PAYLOADS)
    assert {p[3] for p in form} == {"form"}


def test_blocking_sites_are_the_async_frames_the_audit_flagged(tmp_path):
    target = tmp_path / "app"
    records = [
        {"call": "psycopg.Cursor.execute", "stack": [
            ["/usr/lib/python3/asyncio/events.py", 80, "_run"],
            [f"{target}/pkg/routes.py", 12, "handler"],
            [f"{target}/pkg/db.py", 40, "execute"],
            [f"{target}/.venv/lib/python3.11/site-packages/psycopg/cursor.py", 700, "execute"],
        ]},
        {"call": "time.sleep", "stack": [[f"{target}/pkg/other.py", 3, "nap"]]},
    ]  # fmt: skip
    finding = SimpleNamespace(
        rule="ASY001", location=SimpleNamespace(path="pkg/routes.py", line=11, end_line=13)
    )
    sites = parse_records(target, "\n".join(json.dumps(r) for r in records), [finding])
    assert [(s.path, s.line, s.rule) for s in sites] == [
        ("pkg/other.py", 3, None),
        ("pkg/routes.py", 12, "ASY001"),
    ]
    assert "Cursor.execute" in sites[1].describe() and "matches ASY001" in sites[1].describe()


def test_snapshot_differences():
    before = Snapshot({"a.t": 1, CANARY_TABLE: 5}, {CANARY_TABLE: "x"})
    after = Snapshot({"a.t": 2, "a.new": 0, CANARY_TABLE: 0}, {CANARY_TABLE: "y"})
    assert before.differences(after) == [
        "table a.new appeared",
        "a.t: 1 -> 2 rows",
        f"{CANARY_TABLE}: 5 -> 0 rows",
        f"{CANARY_TABLE}: contents changed (checksum)",
    ]
    assert before.differences(after, counts=False) == [
        "table a.new appeared",
        f"{CANARY_TABLE}: contents changed (checksum)",
    ]
    assert before.differences(before) == []


def test_locust_csv_is_read_back(tmp_path):
    header = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
              "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
              "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%")  # fmt: skip
    rows = [
        "GET,health-db,40,1,210,215,200,400,50,4.8,0.1,210,220,230,240,260,300,350,380,400,400,400",
        ",Aggregated,40,1,210,215,200,400,50,4.8,0.1,210,220,230,240,260,300,350,380,400,400,400",
    ]
    path = tmp_path / "stats_stats.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    endpoints, total = read_stats(path)
    assert [e.name for e in endpoints] == ["health-db"]
    assert (total.requests, total.failures, total.p95_ms, total.p99_ms, total.rps) == (
        40,
        1,
        300.0,
        380.0,
        4.8,
    )


def test_result_contract_d():
    ok = CheckResult("VFY001", "auth-contract", "pass", "fine", ["e"], {"m": 1}, 1.23456)
    na = CheckResult("VFY006", "rate-limit", "not-applicable", "no path")
    result = VerifyResult("t", "a:b", "p", "postgresql://u:***@h/db", [ok, na])
    data = result.to_dict()
    assert set(data) == {"target", "app", "profile", "database", "checks", "passed"}
    assert data["passed"] is True
    assert set(data["checks"][0]) == {
        "id",
        "name",
        "status",
        "summary",
        "evidence",
        "metrics",
        "duration_s",
    }
    assert data["checks"][0]["duration_s"] == 1.235
    result.checks.append(CheckResult("VFY002", "event-loop", "error", "crashed"))
    assert result.to_dict()["passed"] is False


def test_every_check_module_documents_what_why_fix():
    for module in checks.modules():
        doc = module.__doc__ or ""
        assert doc.startswith(f"{module.ID} {module.NAME}:"), module.__name__
        assert "Why:" in doc and "Fix:" in doc, module.__name__


def test_locustfile_imports_nothing_from_the_toolkit():
    source = (Path(checks.__file__).parent.parent / "locustfile.py").read_text()
    assert "gathering_consolidate" not in source.split('"""', 2)[2]


def test_draft_loads_only_endpoints_without_required_parameters():
    doc = {
        "paths": {
            "/things": {"get": {}},
            "/search": {"get": {"parameters": [{"name": "q", "in": "query", "required": True}]}},
        }
    }
    text = draft_from_openapi(doc, app="m:app")
    assert '{ path = "/things", auth = true }' in text
    assert "/search" not in text.split("[load]", 1)[1].split("[injection]", 1)[0]


def test_a_check_past_its_time_limit_is_stopped():
    import time

    from gathering_consolidate.verify.engine import CheckTimeout, _time_limit

    started = time.monotonic()
    with pytest.raises(CheckTimeout), _time_limit(0.2):
        time.sleep(5)
    assert time.monotonic() - started < 2
    with _time_limit(5):  # the timer is cancelled on the way out
        pass
    time.sleep(0.05)


def test_sql_scripts_split_on_semicolons_outside_quotes_and_comments():
    from gathering_consolidate.verify.catalog import split_statements

    script = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE t (v text DEFAULT 'a;b''c');\n"
        "/* block; /* nested; */ */ INSERT INTO t VALUES (E'x\\';y');\n"
        "DO $body$ BEGIN PERFORM 1; END $body$;\n"
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
        'SELECT "odd;name" FROM t;\n'
        "BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (v);\nCOMMIT;\n;\n-- trailing\n"
    )
    statements = split_statements(script)
    assert [line for line, _ in statements] == [2, 3, 4, 5, 6, 7, 8, 9]
    texts = [text for _, text in statements]
    assert texts[0] == "CREATE TABLE t (v text DEFAULT 'a;b''c')"
    assert texts[1].endswith("INSERT INTO t VALUES (E'x\\';y')")
    assert texts[2] == "DO $body$ BEGIN PERFORM 1; END $body$"
    assert texts[3].endswith("$$ SELECT 1; $$ LANGUAGE sql")
    assert texts[5:] == ["BEGIN", "CREATE INDEX CONCURRENTLY i ON t (v)", "COMMIT"]


def test_a_self_referencing_openapi_schema_resolves_and_ends():
    from gathering_consolidate.verify.draft import resolve_schema

    doc = {
        "components": {
            "schemas": {
                "Loop": {"anyOf": [{"$ref": "#/components/schemas/Loop"}, {"type": "null"}]},
                "Ping": {"$ref": "#/components/schemas/Pong"},
                "Pong": {"$ref": "#/components/schemas/Ping"},
                "Name": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            }
        }
    }
    assert resolve_schema(doc, {"$ref": "#/components/schemas/Loop"}) == {}
    assert isinstance(resolve_schema(doc, {"$ref": "#/components/schemas/Ping"}), dict)
    assert resolve_schema(doc, {"$ref": "#/components/schemas/Name"}) == {"type": "string"}


def test_the_injection_check_reads_a_self_referencing_schema_and_ends():
    from gathering_consolidate.verify.checks import vfy003_injection as injection

    doc = {
        "components": {
            "schemas": {
                "Ping": {"$ref": "#/components/schemas/Pong"},
                "Pong": {"$ref": "#/components/schemas/Ping"},
                "Tree": {
                    "type": "object",
                    "required": ["name", "child"],
                    "properties": {
                        "name": {"type": "string"},
                        "child": {"$ref": "#/components/schemas/Tree"},
                    },
                },
            }
        }
    }
    assert injection._string_schema(doc, {"$ref": "#/components/schemas/Ping"}) is False
    value = injection._value(doc, {"$ref": "#/components/schemas/Tree"}, "tree")
    assert value["name"] and isinstance(value["child"], dict)
