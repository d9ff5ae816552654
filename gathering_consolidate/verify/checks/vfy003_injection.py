"""VFY003 injection: SQL-injection payloads in every string parameter of the app's OpenAPI cause
no server error and change no data.

What: reads the app's OpenAPI document and, for every operation the profile does not skip, puts
each of our payloads into each string parameter (path, query, top-level JSON body fields and
form fields), one at a time, the other parameters holding plain valid values (integers 1, so the
profile's `[injection] seed` requests create the rows those ids point at). Read operations (GET)
run first: a catalog snapshot (every table, its row count and a checksum of its rows) must be
identical before and after. Write operations (POST/PUT/PATCH, with `writes = true`) legitimately
add rows, so around them the set of tables, the canary table verify planted
(`public.gc_verify_canary`, the payloads' target) and the profile's `key_tables` must be
unchanged; the row counts they changed are listed. No response may be a 5xx.

The payloads are ours (quote breaking, tautologies, stacked DELETE/UPDATE/DROP on the canary,
UNION and cast errors, LIKE-context and comment tricks). They are destructive when they work, so
they run only on a database verify created, or one given with `--disposable`.

Why: a value formatted into SQL text (f-string, `%` or `+`) runs as SQL: a 500 is the visible
half, a deleted table the other.

Fix: `gathering-consolidate migrate parameterise-sql` (bound parameters; identifiers composed
with psycopg's `sql.Identifier`), then review the SQL findings it left.
"""

from __future__ import annotations

import fnmatch
from typing import Any
from urllib.parse import quote

from gathering_consolidate.verify.catalog import CANARY_TABLE, snapshot
from gathering_consolidate.verify.checks import Outcome
from gathering_consolidate.verify.context import NotApplicable, VerifyContext, short
from gathering_consolidate.verify.draft import resolve_schema

ID = "VFY003"
NAME = "injection"
SECTION = "injection"  # the profile section it reads

C = CANARY_TABLE
PAYLOADS = (
    "'",
    "' OR '1'='1",
    "' OR 1=1 --",
    f"'; DELETE FROM {C}; --",
    f"%'; DELETE FROM {C}; --",
    f"x'); DROP TABLE {C}; --",
    f"1; UPDATE {C} SET v = 'injected'; --",
    f"' || (SELECT string_agg(v, ',') FROM {C}) || '",
    "' UNION SELECT NULL, NULL, NULL --",
    "' AND 1=CAST((SELECT version()) AS int) --",
    '") OR ("1"="1',
    f"\\'; TRUNCATE {C}; --",
    f"$$; DELETE FROM {C}; --",
)
READ_METHODS = ("get",)
WRITE_METHODS = ("post", "put", "patch")
MAX_SERVER_ERRORS_SHOWN = 8


_MAX_SCHEMA_DEPTH = 20  # a self-referencing schema (the app's OpenAPI is its own) ends here


def _string_schema(doc: dict[str, Any], schema: dict[str, Any] | None, depth: int = 0) -> bool:
    schema = schema or {}
    if depth > _MAX_SCHEMA_DEPTH:
        return False
    if "$ref" in schema:
        return _string_schema(doc, resolve_schema(doc, schema), depth + 1)
    if schema.get("type") == "string" and "enum" not in schema:
        return schema.get("format") not in ("date-time", "date", "uuid", "email", "uri", "binary")
    return any(
        _string_schema(doc, s, depth + 1)
        for s in schema.get("anyOf", []) + schema.get("oneOf", [])
        if isinstance(s, dict)
    )


def _value(doc: dict[str, Any], schema: dict[str, Any] | None, name: str, depth: int = 0) -> Any:
    if depth > _MAX_SCHEMA_DEPTH:
        return None
    schema = resolve_schema(doc, schema) if schema and "$ref" in schema else (schema or {})
    for key in ("anyOf", "oneOf"):
        options = [
            s for s in schema.get(key, []) if isinstance(s, dict) and s.get("type") != "null"
        ]
        if options:
            return _value(doc, options[0], name, depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    fmt = schema.get("format")
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return max(1.0, float(schema.get("minimum", 1)))
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object" or "properties" in schema:
        return {
            key: _value(doc, sub, key, depth + 1)
            for key, sub in schema.get("properties", {}).items()
            if key in schema.get("required", [])
        }
    if fmt == "date-time":
        return "2030-01-01T00:00:00Z"
    if fmt == "email" or "email" in name.lower():
        return "probe@example.com"
    if fmt == "uuid":
        return "00000000-0000-0000-0000-000000000001"
    return f"probe-{name}"[: max(1, int(schema.get("maxLength", 64)))]


def _operations(ctx: VerifyContext, doc: dict[str, Any], skip: list[str]):
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in READ_METHODS + WRITE_METHODS:
                continue
            label = f"{method.upper()} {path}"
            if any(fnmatch.fnmatch(label, pattern) for pattern in skip):
                continue
            yield path, method, op


def _probes(doc: dict[str, Any], path: str, method: str, op: dict[str, Any]):
    """(description, path, query, body kind, body) for each payload in each string slot."""
    params = [p for p in op.get("parameters", []) if p.get("in") in ("path", "query")]
    base_path: dict[str, Any] = {}
    base_query: dict[str, Any] = {}
    slots: list[tuple[str, str]] = []
    for param in params:
        schema = param.get("schema", {})
        name = param["name"]
        if param["in"] == "path":
            base_path[name] = _value(doc, schema, name)
        elif param.get("required"):
            base_query[name] = _value(doc, schema, name)
        if _string_schema(doc, schema):
            slots.append((param["in"], name))
    kind, body_schema = None, {}
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        kind, body_schema = "json", resolve_schema(doc, content["application/json"].get("schema"))
    elif "application/x-www-form-urlencoded" in content:
        kind = "form"
        body_schema = resolve_schema(
            doc, content["application/x-www-form-urlencoded"].get("schema")
        )
    base_body: dict[str, Any] = {}
    if kind:
        props = body_schema.get("properties", {})
        required = set(body_schema.get("required", []))
        for name, schema in props.items():
            if name in required or _string_schema(doc, schema):
                base_body[name] = _value(doc, schema, name)
            if _string_schema(doc, schema):
                slots.append(("body", name))
    for where, name in slots:
        for payload in PAYLOADS:
            path_values = dict(base_path)
            query = dict(base_query)
            body = dict(base_body)
            if where == "path":
                path_values[name] = payload
            elif where == "query":
                query[name] = payload
            else:
                body[name] = payload
            url = path
            for key, value in path_values.items():
                url = url.replace("{" + key + "}", quote(str(value), safe=""))
            yield f"{method.upper()} {path} {where} {name}={payload!r}", url, query, kind, body


def _send(ctx: VerifyContext, method: str, url: str, query, kind, body, headers):
    kwargs: dict[str, Any] = {"params": query}
    if kind == "json":
        kwargs["json"] = body
    elif kind == "form":
        kwargs["data"] = body
    return ctx.request(method.upper(), url, headers=headers, **kwargs)


def run(ctx: VerifyContext, out: Outcome):
    cfg = ctx.profile.section("injection")
    doc = ctx.openapi()
    if not doc.get("paths"):
        raise NotApplicable("the app's OpenAPI document lists no paths")
    headers = ctx.auth_headers()
    for spec in cfg.get("seed", []):
        response = ctx.send(spec, headers=headers)
        out.note(f"seed {spec.get('path')}: {response.status_code}")
    skip = [str(s) for s in cfg.get("skip", [])]
    ops = list(_operations(ctx, doc, skip))
    limit = int(cfg.get("max_operations", 400))
    ops = ops[:limit]
    reads = [op for op in ops if op[1] in READ_METHODS]
    writes = [op for op in ops if op[1] in WRITE_METHODS] if cfg.get("writes", True) else []
    key_tables = [str(t) for t in cfg.get("key_tables", [])] + [CANARY_TABLE]
    ignore = [str(s) for s in ctx.profile.get("database", "schemas_ignored", [])]

    server_errors: list[str] = []
    sent = 0
    slots = 0

    def probe_all(operations) -> None:
        nonlocal sent, slots
        for path, method, op in operations:
            for description, url, query, kind, body in _probes(doc, path, method, op):
                sent += 1
                if description.endswith(repr(PAYLOADS[0])):
                    slots += 1
                response = _send(ctx, method, url, query, kind, body, headers)
                if response.status_code >= 500:
                    server_errors.append(
                        f"{description} -> {response.status_code} {short(response.text, 80)}"
                    )

    before = snapshot(ctx.database_url, ignore=ignore)
    ctx.say(f"injection: {len(reads)} read operations")
    probe_all(reads)
    after = snapshot(ctx.database_url, ignore=ignore)
    read_sent, read_slots = sent, slots
    out.note(f"read operations: {len(reads)}, string slots {read_slots}, requests {read_sent}")
    for line in before.differences(after):
        out.problem(f"data changed by read operations: {line}")
    if not before.differences(after):
        out.note(f"catalog identical after the read probes ({len(after.tables)} tables, checksums)")

    if writes:
        ctx.say(f"injection: {len(writes)} write operations")
        before_w = snapshot(ctx.database_url, checksum=key_tables, ignore=ignore)
        probe_all(writes)
        after_w = snapshot(ctx.database_url, checksum=key_tables, ignore=ignore)
        out.note(
            f"write operations: {len(writes)}, string slots {slots - read_slots}, "
            f"requests {sent - read_sent}"
        )
        for line in before_w.differences(after_w, counts=False):
            out.problem(f"data changed by write probes: {line}")
        written = before_w.count_changes(after_w)
        if written:
            out.note("rows the write operations added legitimately: " + ", ".join(written[:12]))
    else:
        out.note("write operations not probed ([injection] writes = false)")

    out.metrics.update({"requests": sent, "slots": slots, "operations": len(reads) + len(writes),
                        "server_errors": len(server_errors)})  # fmt: skip
    for line in server_errors[:MAX_SERVER_ERRORS_SHOWN]:
        out.problem(f"server error: {line}")
    if len(server_errors) > MAX_SERVER_ERRORS_SHOWN:
        out.note(f"... and {len(server_errors) - MAX_SERVER_ERRORS_SHOWN} more server errors")
    if slots == 0:
        raise NotApplicable("the app's OpenAPI has no string parameter to probe (after skips)")
    if server_errors and len(out.problems) == len(server_errors[:MAX_SERVER_ERRORS_SHOWN]):
        first = server_errors[0]
        return "fail", f"{len(server_errors)} payloads caused a server error, first: {first}"
    return out.verdict(
        f"{sent} payload requests on {slots} string slots: no 5xx, catalog unchanged"
    )
