"""Classify each test as `stub`, `contract`, `integration` or `unit`, with the evidence.

* `stub`: the test pins behaviour the audit marks as a stub or fake, so it breaks the day the
  stub becomes real: it patches or reads an in-memory store (MEM001/MEM002: `_users_store`), it
  drives a route or calls a function the audit marks as fake (STB001 fake completion, STB002
  log-only action, STB003 unimplemented route) and asserts its answer, or it asserts a
  `completed`-like status right after starting the work, with no wait or poll.
* `contract`: it drives HTTP endpoints through TestClient / httpx (ASGI transport included).
* `integration`: it uses a real database, the network or a subprocess (directly, or through a
  fixture that does).
* `unit`: none of these.

The first that applies wins, in that order. A tag the test already carries as a mark
(`@pytest.mark.stub` on it or its class; a module's `pytestmark`) is kept: a hand-written mark is
a reviewed verdict, and the classifier reports when its own evidence says otherwise. Entries of
`test-tags.toml` (`overrides`) come first of all.

Evidence is per test and names the finding it rests on ("patches `_users_store`, an in-memory
user store, MEM002 at gathering/api/auth.py:39").
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .inventory import Fixture, Inventory, ModuleInfo, TestItem
from .overrides import OVERRIDES_FILE, TAGS, Override, load_overrides

HTTP_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "request", "stream"}
)
_CLIENT_TYPES = (
    "fastapi.testclient.TestClient",
    "starlette.testclient.TestClient",
    "httpx.AsyncClient",
    "httpx.Client",
    "httpx.ASGITransport",
    "httpx.WSGITransport",
    "async_asgi_testclient.TestClient",
    "flask.testing.FlaskClient",
    "django.test.Client",
    "rest_framework.test.APIClient",
)
_CLIENT_NAMES = re.compile(
    r"^(?:client|test_client|api_client|async_client|http_client|ac|\w+_client)$"
)
_DB_CALLS = (
    "psycopg.connect",
    "psycopg.Connection",
    "psycopg.AsyncConnection",
    "psycopg2.connect",
    "psycopg_pool.",
    "asyncpg.connect",
    "asyncpg.create_pool",
    "sqlalchemy.create_engine",
    "sqlalchemy.ext.asyncio.create_async_engine",
    "sqlalchemy.orm.Session",
    "sqlalchemy.orm.sessionmaker",
    "sqlmodel.Session",
    "sqlmodel.create_engine",
    "sqlite3.connect",
    "pymongo.",
    "motor.",
    "redis.",
    "aiomysql.",
    "pymysql.",
    "databases.Database",
    "testcontainers.",
    "sqlalchemy_utils.create_database",
    "sqlalchemy_utils.drop_database",
    "sqlalchemy_utils.database_exists",
    "pgserver.",
)
_NETWORK_CALLS = (
    "requests.get",
    "requests.post",
    "requests.put",
    "requests.patch",
    "requests.delete",
    "requests.head",
    "requests.request",
    "requests.Session",
    "urllib.request.urlopen",
    "socket.socket",
    "socket.create_connection",
    "aiohttp.ClientSession",
    "httpx.get",
    "httpx.post",
    "httpx.put",
    "httpx.delete",
    "httpx.request",
    "websockets.connect",
)
_PROCESS_CALLS = ("subprocess.", "os.system", "os.popen", "asyncio.create_subprocess_")
_DB_FIXTURE_NAMES = frozenset(
    {"db", "db_session", "session", "dbsession", "database", "connection", "conn", "engine",
     "db_conn", "db_connection", "postgresql", "postgres", "pg"}
)  # fmt: skip
_COMPLETED = frozenset(
    {"completed", "complete", "done", "finished", "success", "succeeded", "successful",
     "triggered"}
)  # fmt: skip
_STARTS = re.compile(
    r"(?:^|[/_.-])(?:run|runs|trigger|execute|start|launch|dispatch|kick)(?:$|[/_.-])"
)
_WAITS = re.compile(r"(?:sleep|wait|poll|until|retry|eventually)", re.IGNORECASE)


@dataclass
class Verdict:
    """The tag of one test function (every parametrized case of it shares it)."""

    test: str  # path::name
    path: str
    name: str
    line: int
    tag: str
    source: str  # override | marked | inferred
    inferred: str
    evidence: list[str] = field(default_factory=list)
    declared: list[str] = field(default_factory=list)  # tag marks already on it
    nodeids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "path": self.path,
            "line": self.line,
            "tag": self.tag,
            "source": self.source,
            "inferred": self.inferred,
            "declared": self.declared,
            "evidence": self.evidence,
            "cases": len(self.nodeids),
        }


@dataclass
class Classification:
    verdicts: list[Verdict]
    overrides_file: str | None = None
    unused_overrides: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    def by_tag(self) -> dict[str, int]:
        """Collected tests (cases) per tag."""
        counts = dict.fromkeys(TAGS, 0)
        for verdict in self.verdicts:
            counts[verdict.tag] += len(verdict.nodeids)
        return counts

    def tag_of(self) -> dict[str, str]:
        """node id -> tag."""
        return {n: v.tag for v in self.verdicts for n in v.nodeids}

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_tag": self.by_tag(),
            "overrides_file": self.overrides_file,
            "unused_overrides": self.unused_overrides,
            "disagreements": self.disagreements,
            "limits": self.limits,
            "tests": [v.to_dict() for v in self.verdicts],
        }


# -- what the audit knows -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Store:
    container: str
    module: str  # dotted module of the finding
    scope: str  # module | instance | class
    rule: str
    where: str  # path:line (rootdir-relative)
    state: str  # "user store", "running jobs", ...


@dataclass(frozen=True)
class _Fake:
    rule: str
    symbol: str
    route: str | None  # "POST /pipelines/{pipeline_id}/pause"
    where: str
    what: str  # a short description
    status: str | None = None  # the outcome a fake completion claims ("completed")


_RULE_WORDS = {
    "STB001": "fakes completion",
    "STB002": "only logs the action it promises",
    "STB003": "is not implemented",
    "STB004": "returns placeholder values instead of real ones",
    "STB005": "has a stubbed branch",
}


def _facts(result: Any, inventory: Inventory) -> tuple[list[_Store], list[_Fake]]:
    from ..semantic.context import module_name

    audit_root = Path(result.root).resolve()
    stores: dict[tuple[str, str], _Store] = {}
    fakes: list[_Fake] = []
    for finding in result.findings:
        absolute = audit_root / finding.location.path
        try:
            shown = absolute.relative_to(inventory.root).as_posix()
        except ValueError:
            shown = finding.location.path
        where = f"{shown}:{finding.location.line}"
        evidence = finding.evidence or {}
        if finding.rule in ("MEM001", "MEM002"):
            container = str(evidence.get("container") or "")
            if not container:
                continue
            module = module_name(finding.location.path)
            key = (module, container)
            if finding.rule == "MEM002":
                state = f"an in-memory {_singular(str(evidence.get('state') or 'state'))} store"
            else:
                state = f"an unbounded in-memory {evidence.get('kind', 'container')}"
            if key not in stores or finding.rule == "MEM002":
                stores[key] = _Store(
                    container, module, str(evidence.get("scope") or "module"), finding.rule,
                    where, state,
                )  # fmt: skip
        elif finding.rule.startswith("STB"):
            route = evidence.get("route")
            fakes.append(
                _Fake(
                    finding.rule,
                    finding.symbol,
                    str(route) if route else None,
                    where,
                    _RULE_WORDS.get(finding.rule, "is a stub"),
                    str(evidence["status"]) if evidence.get("status") else None,
                )
            )
    return list(stores.values()), fakes


def _singular(state: str) -> str:
    return {"users": "user", "tokens": "token", "schedules": "schedule"}.get(state, state)


# -- reading test code ----------------------------------------------------------------------------
def _qualify(expr: ast.AST, module: ModuleInfo) -> str | None:
    from ..semantic import imports

    return imports.qualify(expr, module.imports)


def _route_regex(route: str) -> tuple[str, re.Pattern[str]]:
    method, _, path = route.partition(" ")
    parts = [
        re.escape(p) if not p.startswith("{") else r"[^/]+" for p in path.strip("/").split("/")
    ]
    return method.upper(), re.compile("^/" + "/".join(parts) + "/?$")


def _url_text(node: ast.expr | None) -> str | None:
    """A request path as written; f-string holes become `X`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.split("?", 1)[0]
    if isinstance(node, ast.JoinedStr):
        text = "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "X"
            for v in node.values
        )
        return text.split("?", 1)[0]
    return None


@dataclass
class _Scan:
    """What one test (with its fixtures and helpers) does."""

    http: list[str] = field(default_factory=list)  # "POST /auth/register"
    stub: list[str] = field(default_factory=list)
    real: list[str] = field(default_factory=list)  # DB, network, subprocess


class _Reader:
    def __init__(self, inventory: Inventory, stores: list[_Store], fakes: list[_Fake]):
        self.inventory = inventory
        self.stores = stores
        self.fakes = fakes
        self.routes = [(f, *_route_regex(f.route)) for f in fakes if f.route]
        self._fixture_memo: dict[tuple[str, str], tuple[list[str], list[str], bool]] = {}

    # - fixtures: (stub evidence, real evidence, gives an HTTP client)
    def fixture_facts(
        self, fixture: Fixture, fixtures: dict[str, Fixture], depth: int = 0
    ) -> tuple[list[str], list[str], bool]:
        key = (fixture.path, fixture.name)
        if key in self._fixture_memo:
            return self._fixture_memo[key]
        self._fixture_memo[key] = ([], [], False)  # cycles
        stub: list[str] = []
        real: list[str] = []
        client = False
        body = [fixture.node, *self.helpers(fixture.node, fixture.module)]
        for node in body:
            stub += self.store_uses(node, fixture.module)
            real += self.real_calls(node, fixture.module)
            client = client or self.constructs_client(node, fixture.module)
        if depth < 8:
            for dep in fixture.depends:
                other = fixtures.get(dep)
                if other is None or other is fixture:
                    continue
                s, r, c = self.fixture_facts(other, fixtures, depth + 1)
                stub += [f"{e} (through fixture `{dep}`)" if "fixture" not in e else e for e in s]
                real += [e if "fixture" in e else f"{e} (through fixture `{dep}`)" for e in r]
                client = client or c
        facts = (list(dict.fromkeys(stub)), list(dict.fromkeys(real)), client)
        self._fixture_memo[key] = facts
        return facts

    def helpers(self, node: ast.AST, module: ModuleInfo, depth: int = 0) -> list[ast.AST]:
        """Module-local functions `node` calls (two levels deep)."""
        found: list[ast.AST] = []
        if depth > 1:
            return found
        for call in ast.walk(node):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
                target = module.functions.get(call.func.id)
                if target is not None and target is not node and target not in found:
                    found.append(target)
                    found += self.helpers(target, module, depth + 1)
        return found

    def constructs_client(self, node: ast.AST, module: ModuleInfo) -> bool:
        for call in ast.walk(node):
            if isinstance(call, ast.Call) and (_qualify(call.func, module) or "") in _CLIENT_TYPES:
                return True
        returns = getattr(node, "returns", None)
        if returns is not None:
            text = ast.unparse(returns)
            if "TestClient" in text or "AsyncClient" in text:
                return True
        return False

    def real_calls(self, node: ast.AST, module: ModuleInfo) -> list[str]:
        found = []
        for call in ast.walk(node):
            if not isinstance(call, ast.Call):
                continue
            name = _qualify(call.func, module) or ""
            for prefixes, what in (
                (_DB_CALLS, "a real database"),
                (_NETWORK_CALLS, "the network"),
                (_PROCESS_CALLS, "a subprocess"),
            ):
                if any(name == p or name.startswith(p) for p in prefixes):
                    if name.endswith("Session") and not (call.args or call.keywords):
                        break  # an unbound session (a test double's argument), no database
                    found.append(f"uses {what} (`{name}` at {module.path}:{call.lineno})")
                    break
        return found

    def store_uses(self, node: ast.AST, module: ModuleInfo) -> list[str]:
        """Patches or reads of in-memory stores the audit found."""
        found = []
        by_name: dict[str, list[_Store]] = {}
        for store in self.stores:
            by_name.setdefault(store.container, []).append(store)
        if not by_name:
            return found
        for sub in ast.walk(node):
            verb = store = None
            if isinstance(sub, ast.Call):
                name = _qualify(sub.func, module) or ""
                tail = name.rsplit(".", 1)[-1]
                args = sub.args
                if tail == "setattr" and len(args) >= 2:
                    # monkeypatch.setattr(obj, "name", value) / setattr(obj, "name", value)
                    if isinstance(args[1], ast.Constant) and isinstance(args[1].value, str):
                        store = self.match(args[1].value, args[0], module, by_name)
                    elif isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                        store = self.match_dotted(args[0].value, by_name)
                    verb = "patches"
                elif tail in ("patch", "dict") and args and isinstance(args[0], ast.Constant):
                    if isinstance(args[0].value, str):
                        store = self.match_dotted(args[0].value, by_name)
                        verb = "patches"
                elif tail == "object" and len(args) >= 2 and isinstance(args[1], ast.Constant):
                    store = self.match(str(args[1].value), args[0], module, by_name)
                    verb = "patches"
            elif isinstance(sub, ast.Attribute) and sub.attr in by_name:
                store = self.match(sub.attr, sub.value, module, by_name)
                verb = "patches" if isinstance(sub.ctx, ast.Store) else "reads"
            elif isinstance(sub, ast.Name) and sub.id in by_name:
                qualified = module.imports.get(sub.id)
                if qualified:
                    store = self.match_dotted(qualified, by_name)
                    verb = "patches" if isinstance(sub.ctx, ast.Store) else "reads"
            if store is not None and verb is not None:
                found.append(
                    f"{verb} `{store.container}`, {store.state}, {store.rule} at {store.where}"
                )
        return found

    def match(
        self, attr: str, obj: ast.expr, module: ModuleInfo, by_name: dict[str, list[_Store]]
    ) -> _Store | None:
        candidates = by_name.get(attr, [])
        owner = _qualify(obj, module)
        for store in candidates:
            if store.scope == "module":
                if owner == store.module or (owner or "").endswith("." + store.module):
                    return store
            elif attr.startswith("_") or len(candidates) == 1:
                # an instance attribute: matched by its (distinctive) name
                return store
        return None

    def match_dotted(self, dotted: str, by_name: dict[str, list[_Store]]) -> _Store | None:
        module, _, attr = dotted.rpartition(".")
        for store in by_name.get(attr, []):
            if store.scope == "module" and (
                module == store.module or module.endswith(store.module)
            ):
                return store
        return None

    # - HTTP use and stub routes
    def http_calls(
        self, func: ast.AST, module: ModuleInfo, clients: set[str]
    ) -> list[tuple[str, str | None, ast.Call]]:
        """(METHOD, path or None, call) for each request made on a client object."""
        found = []
        local = set(clients)
        for node in ast.walk(func):
            if isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if (
                        isinstance(item.context_expr, ast.Call)
                        and (_qualify(item.context_expr.func, module) or "") in _CLIENT_TYPES
                        and isinstance(item.optional_vars, ast.Name)
                    ):
                        local.add(item.optional_vars.id)
            elif (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and (_qualify(node.value.func, module) or "") in _CLIENT_TYPES
            ):
                local.update(t.id for t in node.targets if isinstance(t, ast.Name))
        for node in ast.walk(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in HTTP_METHODS
            ):
                owner = node.func.value
                base = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
                if base in local or (isinstance(owner, ast.Attribute) and owner.attr == "client"):
                    method = node.func.attr.upper()
                    url_node = node.args[0] if node.args else None
                    if method in ("REQUEST", "STREAM") and len(node.args) > 1:
                        first = node.args[0]
                        if isinstance(first, ast.Constant) and isinstance(first.value, str):
                            method = first.value.upper()
                        url_node = node.args[1]
                    for keyword in node.keywords:
                        if keyword.arg == "url":
                            url_node = keyword.value
                    found.append((method, _url_text(url_node), node))
        return found

    def stub_routes(
        self, func: ast.AST, module: ModuleInfo, calls: list[tuple[str, str | None, ast.Call]]
    ) -> list[str]:
        found = []
        if not self.routes:
            return found
        asserted = _asserted_calls(func)
        statuses = _asserted_statuses(func)
        for method, url, call in calls:
            if url is None:
                continue
            for fake, route_method, pattern in self.routes:
                if method not in route_method.split(",") or not pattern.match(url):
                    continue
                if fake.status and statuses and fake.status not in statuses:
                    # it expects another outcome than the fake one: a test of the real thing
                    continue
                how = asserted.get(id(call))
                if how is None:
                    continue
                found.append(
                    f"{how} `{method} {url}`, a route that {fake.what}"
                    f" ({fake.rule} at {fake.where})"
                )
        return found

    def stub_functions(self, func: ast.AST, module: ModuleInfo) -> list[str]:
        found = []
        symbols = {f.symbol: f for f in self.fakes}
        if not symbols:
            return found
        asserted = _asserted_calls(func)
        for node in ast.walk(func):
            if isinstance(node, ast.Call) and id(node) in asserted:
                name = _qualify(node.func, module) or ""
                fake = symbols.get(name)
                if fake is not None:
                    found.append(
                        f"{asserted[id(node)]} `{name.rsplit('.', 1)[1]}()`, which {fake.what}"
                        f" ({fake.rule} at {fake.where})"
                    )
        return found


def _asserted_statuses(func: ast.AST) -> set[str]:
    """String constants a test compares a `status`/`state` with."""
    found: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare):
            left = ast.unparse(node.test.left)
            if "status" in left or "state" in left:
                found.update(
                    c.value
                    for c in node.test.comparators
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                )
    return found


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _asserted_calls(func: ast.AST) -> dict[int, str]:
    """Calls whose result reaches an assertion (through the variables it is stored in), or that
    run inside `pytest.raises`: id(call) -> how ("asserts the answer of", ...). A result only
    checked for an error status (`status_code == 404`) does not count: the error path is not
    the stub."""
    tainted: dict[str, set[int]] = {}
    calls_in: dict[int, ast.Call] = {}
    result: dict[int, str] = {}
    body = getattr(func, "body", [])
    for stmt in _statements(body):
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
            sources = _sources(stmt.value, tainted, calls_in)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for name in _names(target):
                    tainted[name] = tainted.get(name, set()) | sources
        elif isinstance(stmt, ast.For):
            sources = _sources(stmt.iter, tainted, calls_in)
            for name in _names(stmt.target):
                tainted[name] = tainted.get(name, set()) | sources
        elif isinstance(stmt, ast.Assert):
            if _error_status_only(stmt.test):
                continue
            for call_id in _sources(stmt.test, tainted, calls_in):
                result.setdefault(call_id, "asserts the answer of")
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            raises = any(
                isinstance(i.context_expr, ast.Call)
                and ast.unparse(i.context_expr.func).endswith("raises")
                for i in stmt.items
            )
            if raises:
                for node in ast.walk(ast.Module(body=stmt.body, type_ignores=[])):
                    if isinstance(node, ast.Call):
                        result.setdefault(id(node), "expects an error from")
    return result


def _statements(body: Sequence[ast.stmt]) -> Iterable[ast.stmt]:
    for stmt in body:
        yield stmt
        for name in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(stmt, name, None)
            if isinstance(inner, list) and not isinstance(stmt, (ast.With, ast.AsyncWith)):
                yield from _statements([s for s in inner if isinstance(s, ast.stmt)])
            elif isinstance(inner, list) and isinstance(stmt, (ast.With, ast.AsyncWith)):
                yield from _statements(inner)


def _sources(expr: ast.AST, tainted: dict[str, set[int]], calls: dict[int, ast.Call]) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(expr):
        if isinstance(node, ast.Call):
            found.add(id(node))
            calls[id(node)] = node
        elif isinstance(node, ast.Name) and node.id in tainted:
            found |= tainted[node.id]
    return found


def _error_status_only(test: ast.expr) -> bool:
    """`x.status_code == 404` (any 4xx/5xx constant), alone."""
    if not isinstance(test, ast.Compare) or len(test.comparators) != 1:
        return False
    left, right = test.left, test.comparators[0]
    text = ast.unparse(left)
    return (
        text.endswith("status_code")
        and isinstance(right, ast.Constant)
        and isinstance(right.value, int)
        and right.value >= 400
    )


def _instant_completion(func: ast.AST, calls: list[tuple[str, str | None, ast.Call]]) -> str | None:
    """Asserts a `completed`-like status right after starting work through the API (an endpoint
    that runs, triggers or executes), with no wait or poll. A plain function that does the work
    synchronously and returns its status is not a stub, so only HTTP calls count."""
    starts = [f"{m} {u}" for m, u, _ in calls if u and _STARTS.search(u)]
    if not starts:
        return None
    for node in ast.walk(func):
        if isinstance(node, ast.While):
            return None
        if isinstance(node, ast.Call) and _WAITS.search(ast.unparse(node.func)):
            return None
    for node in ast.walk(func):
        if not isinstance(node, ast.Assert) or not isinstance(node.test, ast.Compare):
            continue
        left = ast.unparse(node.test.left)
        if "status" not in left and "state" not in left:
            continue
        for right in node.test.comparators:
            if (
                isinstance(right, ast.Constant)
                and isinstance(right.value, str)
                and right.value.lower() in _COMPLETED
            ):
                return (
                    f"asserts `{left} == {right.value!r}` right after `{starts[0]}`, with no"
                    " wait or poll: an instant outcome"
                )
    return None


# -- classification -------------------------------------------------------------------------------
def classify(
    inventory: Inventory,
    *,
    audit_result: Any | None = None,
    overrides: list[Override] | None = None,
    overrides_path: str | os.PathLike[str] | None = None,
) -> Classification:
    """Tag every test of `inventory`. `audit_result`: an `AuditResult` with STB and MEM findings
    (default: the audit of the inventory's root, `select=["STB", "MEM"]`); `overrides`: reviewed
    verdicts (default: `test-tags.toml` at the rootdir, or `overrides_path`)."""
    if audit_result is None:
        from .. import audit

        audit_result = audit(inventory.root, select=["STB", "MEM"])
    path = Path(overrides_path) if overrides_path else inventory.root / OVERRIDES_FILE
    if overrides is None:
        overrides = load_overrides(path)
    stores, fakes = _facts(audit_result, inventory)
    reader = _Reader(inventory, stores, fakes)
    groups: dict[str, list[TestItem]] = {}
    for item in inventory.items:
        groups.setdefault(item.function_id, []).append(item)
    verdicts: list[Verdict] = []
    used: set[str] = set()
    disagreements: list[str] = []
    for function_id, items in groups.items():
        first = items[0]
        module = inventory.modules.get(first.path)
        inferred, evidence = ("unit", ["no HTTP client, database, network or subprocess"])
        if module is not None:
            inferred, evidence = _infer(reader, inventory, module, first)
        declared_direct = [
            m.name for m in first.marks if m.name in TAGS and m.level in ("function", "class")
        ]
        declared_module = [m.name for m in first.marks if m.name in TAGS and m.level == "module"]
        declared = list(dict.fromkeys(declared_direct + declared_module))
        best: tuple[int, Override] | None = None
        for override in overrides:
            score = max(override.matches(i.nodeid, function_id) for i in items)
            if score and (best is None or score > best[0]):
                best = (score, override)
        if best is not None:
            used.add(best[1].test)
            tag, source = best[1].tag, "override"
            evidence = [f"override in {path.name}: {best[1].reason}", *evidence]
        elif "stub" in declared_direct or "stub" in declared_module:
            tag, source = "stub", "marked"
        elif inferred == "stub":
            tag, source = "stub", "inferred"
        elif declared_direct or declared_module:
            tag = _first_tag(declared_direct) or _first_tag(declared_module) or inferred
            source = "marked"
        else:
            tag, source = inferred, "inferred"
        if source == "marked":
            evidence = [f"marked `{tag}` in the source", *evidence]
            if inferred != tag:
                disagreements.append(
                    f"{function_id}: marked `{tag}`, the evidence says `{inferred}`"
                    f" ({evidence[1] if len(evidence) > 1 else ''})"
                )
        verdicts.append(
            Verdict(
                test=function_id,
                path=first.path,
                name=first.name,
                line=first.line,
                tag=tag,
                source=source,
                inferred=inferred,
                evidence=evidence,
                declared=declared,
                nodeids=[i.nodeid for i in items],
            )
        )
    unused = [o.test for o in overrides if o.test not in used]
    return Classification(
        verdicts,
        overrides_file=path.name if overrides else None,
        unused_overrides=unused,
        disagreements=disagreements,
        limits=list(inventory.limits),
    )


def _first_tag(names: list[str]) -> str | None:
    for tag in TAGS:
        if tag in names:
            return tag
    return None


def _infer(
    reader: _Reader, inventory: Inventory, module: ModuleInfo, item: TestItem
) -> tuple[str, list[str]]:
    func = _function_node(module, item)
    if func is None:
        return "unit", ["the test's code was not found"]
    fixtures = inventory.fixtures_for(item.path)
    stub: list[str] = []
    real: list[str] = []
    clients: set[str] = set()
    for name in item.fixtures:
        fixture = fixtures.get(name)
        if fixture is None:
            if name in _DB_FIXTURE_NAMES:
                real.append(f"uses fixture `{name}` (a database, by its name; defined elsewhere)")
            if _CLIENT_NAMES.match(name):
                clients.add(name)
            continue
        s, r, c = reader.fixture_facts(fixture, fixtures)
        stub += [e if "fixture" in e else f"{e} (through fixture `{name}`)" for e in s]
        real += r
        if c:
            clients.add(name)
    for name, value in module.constants.items():  # `client = TestClient(app)` at module level
        if isinstance(value, ast.Call) and (_qualify(value.func, module) or "") in _CLIENT_TYPES:
            clients.add(name)
    annotations = {
        a.arg: ast.unparse(a.annotation)
        for a in [*func.args.args, *func.args.kwonlyargs]
        if a.annotation is not None
    }
    for arg, text in annotations.items():
        if "TestClient" in text or "AsyncClient" in text:
            clients.add(arg)
    helpers = reader.helpers(func, module)
    bodies = [func, *helpers]
    calls: list[tuple[str, str | None, ast.Call]] = []
    for body in bodies:
        stub += reader.store_uses(body, module)
        real += reader.real_calls(body, module)
        helper_clients = set(clients)
        if body is not func:
            helper_clients |= {
                a.arg
                for a in body.args.args  # type: ignore[attr-defined]
                if _CLIENT_NAMES.match(a.arg)
                or "Client" in ast.unparse(a.annotation or ast.Name(""))
            }
        calls += reader.http_calls(body, module, helper_clients)
    own_calls = reader.http_calls(func, module, clients)
    stub += reader.stub_routes(func, module, own_calls)
    stub += reader.stub_functions(func, module)
    instant = _instant_completion(func, own_calls)
    if instant:
        stub.append(instant)
    if stub:
        return "stub", list(dict.fromkeys(stub))
    if calls:
        shown = list(dict.fromkeys(f"{m} {u or '…'}" for m, u, _ in calls))
        more = f" (+{len(shown) - 3} more)" if len(shown) > 3 else ""
        return "contract", [f"drives {', '.join(shown[:3])}{more} through an HTTP test client"]
    if real:
        return "integration", list(dict.fromkeys(real))[:3]
    return "unit", ["no HTTP client, database, network, subprocess or stub code"]


def _function_node(
    module: ModuleInfo, item: TestItem
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    parts = item.name.split("::")
    body: list[ast.stmt] = module.tree.body
    for part in parts[:-1]:
        cls = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == part), None)
        if cls is None:
            break
        body = cls.body
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == parts[-1]:
            return node
    # an inherited method: any function of that name in the file
    for node in ast.walk(module.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == parts[-1]:
            return node
    return None
