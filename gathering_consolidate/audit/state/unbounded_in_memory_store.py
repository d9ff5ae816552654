from __future__ import annotations

from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import Invalid, Valid
from .helpers import Analysis, StateCheck, describe, finding


class UnboundedInMemoryStore(StateCheck):
    """A module-level, class-level or process-wide container that functions grow without bound.

    ## Why is this bad?
    A dict of users, a list of every event, a cache keyed by request parameters: each call adds an
    entry and nothing caps the total, so memory grows with traffic until the process is killed.
    Removing entries on some path (a logout, an expiry sweep, `clear()`) does not cap it: between
    two sweeps, the size is still set by the traffic.

    A container is a module-level or class-level assignment of a dict, set, list, `defaultdict`,
    `OrderedDict`, `Counter` or `deque` (literal, comprehension or constructor), or one assigned
    to `self.<name>` in `__init__` of a class with a process-wide instance (created at module
    level, stored in a `global`, on `app.state`, or returned by an `@lru_cache` getter). It grows
    when a function (not the module body, not the owner's `__init__`), in any file of the
    project, calls `.append/.add/.extend/.insert/.update/.setdefault/...` on it or on one of its
    values (`store[key].append(x)`), assigns `store[key] = value`, or rebinds it to itself plus
    more through `global`.

    Bounded, so not reported: `deque(maxlen=...)`, `cachetools` caches (`TTLCache`,
    `LRUCache`, ...), weak containers, containers whose size some function compares
    (`if len(store) >= MAX: ...`) or truncates (`del store[:-100]`, `store = store[-100:]`),
    registries of callables (handlers, callbacks, hooks: bounded by the code, not the traffic),
    subscriber lists (a container named `*listeners`, `*subscribers`, `*handlers`, `*callbacks`,
    `*hooks`, `*observers`), catalogues and counters under keys fixed by the code
    (`stats["requests"] += 1`, `.setdefault("runs", 0)`, `.update(runs=1)`, an `UPPER_CASE`
    constant or `Kind.MEMBER` as the key), containers filled only by functions registered for
    SQLAlchemy configuration events (`event.listen(mapper, "instrument_class", fn)`,
    `@event.listens_for(Model, "after_create")`: once per mapped class or table), live
    connections and sockets (a container named `*connections`, `*sockets`, `*websockets`,
    `*peers`, `*channels`) that some function removes entries from when they close, and
    containers that are only read (constant mappings). `@functools.lru_cache(maxsize=N)` is not a
    container assignment and is not reported.
    Evidence: `container`, `kind`, `scope`, `bounded` (False), `reasons` (how it grows).

    ## Known problems
    An instance container is followed through `self.<name>` only; a store reached through another
    object (`registry._items.append(...)` from outside the class) is not seen growing.
    """

    id, name = "MEM001", "unbounded-in-memory-store"
    severity = Severity.MEDIUM
    VALID = [
        Valid("""
            DEFAULT_LIMITS = {"max_chars": 200_000, "top_n": 10}

            def limit(name):
                return DEFAULT_LIMITS[name]
        """),
        Valid("""
            from collections import deque
            from cachetools import TTLCache

            _recent = deque(maxlen=1000)
            _avatars = TTLCache(maxsize=512, ttl=300)

            def remember(event):
                _recent.append(event)

            def avatar(user_id, fetch):
                if user_id not in _avatars:
                    _avatars[user_id] = fetch(user_id)
                return _avatars[user_id]
        """),
        Valid("""
            MAX_ENTRIES = 256
            _trees = {}

            def tree(key, build):
                if key not in _trees:
                    if len(_trees) >= MAX_ENTRIES:
                        _trees.pop(next(iter(_trees)))
                    _trees[key] = build(key)
                return _trees[key]
        """),
        Valid("""
            _history = []

            def record(event):
                global _history
                _history.append(event)
                _history = _history[-500:]
        """),
        Valid("""
            from collections import defaultdict
            from collections.abc import Callable

            class EventBus:
                def __init__(self):
                    self._subscribers = defaultdict(list)

                def subscribe(self, event_type: str, handler: Callable) -> None:
                    self._subscribers[event_type].append(handler)

            bus = EventBus()
        """),
        Valid("""
            _routes = {}
            _routes["health"] = "/health"

            class Report:
                def __init__(self):
                    self.lines = []

                def add(self, line):
                    self.lines.append(line)

            def build(rows):
                report = Report()
                for row in rows:
                    report.add(row)
                return report
        """),
        Valid("""
            from sqlalchemy import event, orm

            class SearchManager:
                def __init__(self):
                    self.processed_columns = []
                    self.listeners = []

                def process_mapper(self, mapper, cls):
                    for column in mapper.columns:
                        if column not in self.processed_columns:
                            self.processed_columns.append(column)

                def add_listener(self, args):
                    self.listeners.append(args)
                    event.listen(*args)

            search_manager = SearchManager()

            def make_searchable(manager=search_manager):
                event.listen(orm.Mapper, "instrument_class", manager.process_mapper)
        """),
        Valid("""
            _stats = {}
            STARTED = "started"

            def count_request():
                _stats["requests"] = _stats.get("requests", 0) + 1

            def count_start():
                _stats.setdefault(STARTED, 0)
                _stats[STARTED] += 1
        """),
        Valid("""
            from fastapi import WebSocket

            class ConnectionManager:
                def __init__(self):
                    self.active_connections: dict[str, WebSocket] = {}

                async def connect(self, client_id: str, websocket: WebSocket):
                    await websocket.accept()
                    self.active_connections[client_id] = websocket

                def disconnect(self, client_id: str):
                    self.active_connections.pop(client_id, None)

            manager = ConnectionManager()
        """),
        Valid("""
            import functools

            @functools.lru_cache(maxsize=128)
            def file_tree(root):
                return sorted(root.iterdir())
        """),
    ]
    INVALID = [
        Invalid(
            """
            from typing import Any

            # email -> user record
            _users_store: dict[str, dict[str, Any]] = {}

            def create_user(email, user):
                _users_store[email] = user

            def delete_user(email):
                del _users_store[email]
            """,
            line=4,
            evidence={
                "container": "_users_store",
                "kind": "dict",
                "scope": "module",
                "bounded": False,
                "reasons": ["[key] = value in app.module.create_user"],
            },
            message="_users_store",
        ),
        Invalid(
            """
            class EventBus:
                def __init__(self):
                    self._history = []

                def emit(self, event):
                    self._history.append(event)

            event_bus = EventBus()
            """,
            line=3,
            evidence={"container": "_history", "kind": "list", "scope": "instance"},
        ),
        Invalid(
            """
            class Scheduler:
                def __init__(self):
                    self._running = set()

                async def trigger(self, action_id):
                    self._running.add(action_id)
                    self._running.discard(action_id)

            _scheduler = None

            def get_scheduler():
                global _scheduler
                if _scheduler is None:
                    _scheduler = Scheduler()
                return _scheduler
            """,
            line=3,
            evidence={"container": "_running", "kind": "set"},
        ),
        Invalid(
            """
            from collections import deque
            _queue = deque()

            class Registry:
                items = {}

                @classmethod
                def register(cls, name, item):
                    cls.items[name] = item

            def push(job):
                _queue.append(job)
            """,
            count=2,
        ),
        Invalid(
            """
            revoked = set()
            """,
            path="app/auth/store.py",
            files={
                "app/api/auth.py": """
                    from app.auth import store

                    def logout(token):
                        store.revoked.add(token)
                """,
            },
            line=1,
            evidence={"reasons": [".add() in app.api.auth.logout"]},
        ),
        Invalid(
            """
            _connections = {}
            _counters = {}

            def on_connect(user_id, websocket):
                _connections[user_id] = websocket

            def count(event_name):
                _counters[event_name] = _counters.get(event_name, 0) + 1
            """,
            count=2,
        ),
        Invalid(
            """
            _events = []

            def record(event):
                global _events
                _events = _events + [event]
            """,
            evidence={"reasons": ["rebound to itself plus more in app.module.record"]},
        ),
    ]

    def judge(self, analysis: Analysis) -> Iterator[Finding]:
        grows = analysis.grows
        if not grows or analysis.bounds():
            return
        c = analysis.container
        yield finding(
            self,
            analysis,
            f"`{c.name}` ({c.kind}, {c.scope} scope) grows with every call and nothing bounds it",
            {"bounded": False, "reasons": describe(grows)},
        )
