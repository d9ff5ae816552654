"""`verify --init-profile`: a first profile drafted from the running app's OpenAPI document.

The draft fills what the document shows (health path, register/login/me/logout and their payload
shapes, the user response's fields and JSON types as the recorded contract, GET endpoints to
load, the login path for the rate limit) and leaves the rest as commented hints: a human reviews
it before it becomes the contract."""

from __future__ import annotations

import json
import re
from typing import Any

from gathering_consolidate.verify.profile import Profile

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    return json.dumps(str(value))


def toml_key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def resolve_schema(
    doc: dict[str, Any], schema: dict[str, Any] | None, depth: int = 0
) -> dict[str, Any]:
    """An OpenAPI schema with its `$ref`s followed in `doc` and `allOf`/`anyOf`/`oneOf` read as
    their first non-null option; shared by the profile draft and the injection check. Bounded:
    20 `$ref` hops per level and 20 levels, so a self-referencing schema ends (as `{}`)."""
    if depth > 20:
        return {}
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 20:
        ref = str(schema["$ref"]).removeprefix("#/").split("/")
        node: Any = doc
        for part in ref:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema, seen = node, seen + 1
    if isinstance(schema, dict):
        for key in ("allOf", "anyOf", "oneOf"):
            options = [
                resolve_schema(doc, s, depth + 1)
                for s in schema.get(key, [])
                if isinstance(s, dict) and s.get("type") != "null"
            ]
            if options and "properties" not in schema:
                return options[0]
    return schema if isinstance(schema, dict) else {}


def json_type_of(doc: dict[str, Any], schema: dict[str, Any]) -> str | list[str]:
    schema = schema or {}
    if "$ref" in schema:
        return "object"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            types = []
            for option in schema[key]:
                kind = json_type_of(doc, option)
                types.extend(kind if isinstance(kind, list) else [kind])
            unique = list(dict.fromkeys(types))
            return unique[0] if len(unique) == 1 else unique
    return str(schema.get("type", "object"))


def _operations(doc: dict[str, Any]):
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, op


def _body(doc: dict[str, Any], op: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    content = op.get("requestBody", {}).get("content", {})
    for media, kind in (
        ("application/json", "json"),
        ("application/x-www-form-urlencoded", "form"),
    ):
        if media in content:
            return kind, resolve_schema(doc, content[media].get("schema"))
    return None, {}


def _example(name: str, schema: dict[str, Any]) -> Any:
    lowered = name.lower()
    if "mail" in lowered or lowered == "username":
        return "{email}"
    if "password" in lowered:
        return "{password}"
    kind = schema.get("type")
    if kind == "integer":
        return 1
    if kind == "boolean":
        return True
    return "Verify User"


def draft_from_openapi(doc: dict[str, Any], *, app: str, base: Profile | None = None) -> str:
    ops = list(_operations(doc))
    lines = [
        "# Drafted by `gathering-consolidate verify --init-profile` from the app's OpenAPI.",
        "# Review every value: this file becomes the contract verify holds the app to.",
        "",
        "[target]",
        f"app = {toml_value(app)}",
    ]
    health = sorted(
        (p for p, m, op in ops if m == "get" and "health" in p.lower() and "{" not in p), key=len
    )
    lines.append(f"health = {toml_value(health[0] if health else '/health')}")
    openapi_path = base.openapi_path if base else "/openapi.json"
    lines += [f"openapi = {toml_value(openapi_path)}", "", "[database]",
              '# schema = ["schema/*.sql"]            # SQL files applied in order, or',
              '# setup = [["{python}", "-m", "alembic", "upgrade", "head"]]', "",
              "[env]", 'DATABASE_URL = "{database_url}"', ""]  # fmt: skip

    def find(method: str, *words: str) -> tuple[str, dict[str, Any]] | None:
        for path, m, op in ops:
            if m == method and any(re.search(w, path, re.IGNORECASE) for w in words):
                return path, op
        return None

    lines.append("[auth]")
    register = find("post", r"register", r"signup", r"sign-up")
    login = find("post", r"login/access-token", r"/login$", r"token$", r"login")
    me = find("get", r"/me$")
    logout = find("post", r"logout")
    if register:
        _kind, schema = _body(doc, register[1])
        required = schema.get("required") or list(schema.get("properties", {}))
        body = {k: _example(k, schema.get("properties", {}).get(k, {})) for k in required}
        lines.append(f"register = {toml_value({'path': register[0], 'json': body})}")
    else:
        lines.append(
            '# register = { path = "/auth/register", json = { email = "{email}", password = "{password}" } }'
        )
    if login:
        kind, schema = _body(doc, login[1])
        fields = {"username": "{email}", "password": "{password}"}
        if kind == "json":
            fields = {k: _example(k, v) for k, v in schema.get("properties", {}).items()
                      if k in (schema.get("required") or [])}  # fmt: skip
        spec = {"path": login[0], kind or "form": fields, "token_field": "access_token"}
        lines.append(f"login = {toml_value(spec)}")
    else:
        lines.append(
            '# login = { path = "/auth/login", form = { username = "{email}", password = "{password}" } }'
        )
    lines.append(f"me = {toml_value(me[0])}" if me else '# me = "/auth/me"')
    lines.append(f"logout = {toml_value(logout[0])}" if logout else "# logout: none in the OpenAPI")
    lines += [
        "reject_status = [401]",
        '# jwt_secret_env = "SECRET_KEY"   # to try an expired token',
        "",
    ]
    if me:
        response = me[1].get("responses", {}).get("200", {}).get("content", {})
        schema = resolve_schema(doc, response.get("application/json", {}).get("schema"))
        if schema.get("properties"):
            lines.append("[auth.contract]  # the user response as recorded today")
            for name, prop in schema["properties"].items():
                lines.append(f"{toml_key(name)} = {toml_value(json_type_of(doc, prop))}")
            lines.append("")
    lines += ["[auth.messages]", 'expired = "expired"', 'revoked = "revoked"',
              'invalid = "invalid|could not validate"', ""]  # fmt: skip

    candidates = [
        p for p, m, op in ops
        if m == "get" and "{" not in p and "health" not in p.lower() and "openapi" not in p
        and not any(param.get("required") for param in op.get("parameters", []))
    ][:3]  # fmt: skip
    lines += ["[load]", "# DB-heavy endpoints (auth = true sends the test user's token)"]
    endpoints = [{"path": p, "auth": True} for p in candidates]
    lines.append(f"endpoints = {toml_value(endpoints)}")
    lines += ["users = 20", "run_time = 8", "", "[injection]",
              'skip = ["DELETE *"]', "writes = true", ""]  # fmt: skip
    pipelines = [p for p, m, op in ops if "pipeline" in p.lower()]
    schedules = [p for p, m, op in ops if "schedul" in p.lower()]
    lines.append("# [pipelines]  create / run / status / cancel paths and bodies; seen: "
                 + (", ".join(sorted(set(pipelines))[:6]) or "none"))  # fmt: skip
    lines.append("# [schedules]  create / body / lock_table / started_sql / executions_sql; seen: "
                 + (", ".join(sorted(set(schedules))[:6]) or "none"))  # fmt: skip
    if login:
        lines += ["", "[rate_limit]", f"path = {toml_value(login[0])}",
                  'form = { username = "{email}", password = "wrong-password" }', "burst = 30"]  # fmt: skip
    lines += [
        "",
        "# [startup_guard]",
        '# env = { ENVIRONMENT = "production", DISABLE_AUTH = "1" }',
        "",
    ]
    return "\n".join(lines)
