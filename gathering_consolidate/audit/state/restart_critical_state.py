from __future__ import annotations

from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import Invalid, Valid
from .helpers import Analysis, StateCheck, finding, restart_critical


class RestartCriticalState(StateCheck):
    """Users, tokens, sessions, running jobs, schedules or locks kept in process memory.

    The state must survive a restart or be shared by every instance of the app.

    ## Why is this bad?
    A restart (a deploy, a crash, an OOM kill) forgets every account, re-admits every revoked
    token and loses the record of what was running; with two replicas, each has its own copy, so
    a lock locks nothing and a "running" set does not stop the other replica from running the
    same job. The data belongs in PostgreSQL (or a shared store), whatever its size.

    The containers and mutations are those of MEM001 (a container that is only read is a
    constant, not state). The kind of state is read from the container's name
    (`_users_store`, `_token_blacklist`, `_sessions`, `_running_actions`, `_locks`); for a
    generic name (`_items`, `_data`), from its type annotation (`dict[int, ScheduledAction]`),
    the class that owns it (`Scheduler`), the values put in it (`asyncio.Lock()`,
    `create_task(...)`) and the names of the functions that fill it (`register_user`).

    Not reported: caches, histories, registries and subscriber lists (`*_cache`, `_history`,
    `_subscribers`, `_listeners`, `_registry`): losing them costs a recomputation, not data; live
    connections and sockets (`active_connections`, `_websockets`): they die with the process and
    the peers reconnect; containers whose entries all come from the code (keys fixed by the code,
    registered callables, SQLAlchemy configuration events): the same code fills them again; and
    "sessions" of terminals, processes, shells, databases or HTTP clients (`_terminal_sessions`,
    `_db_sessions`, a `_sessions` owned by `ProcessManager`): handles, not logins. A bounded
    container (a `TTLCache` of sessions) is still reported: the bound does not make it durable.
    Evidence: `container`, `kind`, `scope`, `state` (the first kind found), `reasons`, `bounded`.
    """

    id, name = "MEM002", "restart-critical-state"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            _user_cache = {}

            def user(user_id, load):
                if user_id not in _user_cache:
                    _user_cache[user_id] = load(user_id)
                return _user_cache[user_id]
        """),
        Valid("""
            ROLES = {"admin": 3, "member": 1}

            def level(user):
                return ROLES[user.role]
        """),
        Valid("""
            class EventBus:
                def __init__(self):
                    self._history = []
                    self._subscribers = {}

                def emit(self, event):
                    self._history.append(event)

                def subscribe(self, name, handler):
                    self._subscribers[name] = handler

            bus = EventBus()
        """),
        Valid("""
            import subprocess

            class TerminalManager:
                def __init__(self):
                    self._sessions = {}
                    self.active_connections = []

                def open(self, session_id, command):
                    self._sessions[session_id] = subprocess.Popen(command)

                def attach(self, websocket):
                    self.active_connections.append(websocket)

                def detach(self, websocket):
                    self.active_connections.remove(websocket)

            terminals = TerminalManager()
        """),
        Valid("""
            class TaskResult:
                def __init__(self):
                    self.tasks = []

                def add(self, task):
                    self.tasks.append(task)
        """),
    ]
    INVALID = [
        Invalid(
            """
            _token_blacklist: dict[str, float] = {}

            def blacklist_token(token, exp):
                _token_blacklist[token] = exp
            """,
            line=1,
            evidence={
                "container": "_token_blacklist",
                "state": "tokens",
                "reasons": ["name `_token_blacklist` holds tokens"],
            },
        ),
        Invalid(
            """
            import asyncio
            _guards = {}

            def guard_for(key):
                return _guards.setdefault(key, asyncio.Lock())
            """,
            line=2,
            evidence={"state": "locks", "reasons": ["stores lock objects: locks"]},
        ),
        Invalid(
            """
            from dataclasses import dataclass

            @dataclass
            class ScheduledAction:
                id: int

            class Scheduler:
                def __init__(self):
                    self._actions: dict[int, ScheduledAction] = {}

                def register_action(self, action):
                    self._actions[action.id] = action

            scheduler = Scheduler()
            """,
            line=9,
            evidence={"container": "_actions", "scope": "instance", "state": "schedules"},
        ),
        Invalid(
            """
            from cachetools import TTLCache
            _sessions = TTLCache(maxsize=10_000, ttl=3600)

            def login(session_id, user):
                _sessions[session_id] = user
            """,
            evidence={"state": "sessions", "bounded": True, "kind": "TTLCache"},
        ),
        Invalid(
            """
            class Scheduler:
                _running: set[int] = set()

                async def run(self, action_id):
                    self._running.add(action_id)
                    try:
                        await self.execute(action_id)
                    finally:
                        self._running.discard(action_id)
            """,
            line=2,
            evidence={"scope": "class", "state": "running jobs"},
        ),
    ]

    def judge(self, analysis: Analysis) -> Iterator[Finding]:
        categories, reasons = restart_critical(analysis)
        if not categories:
            return
        c = analysis.container
        yield finding(
            self,
            analysis,
            f"`{c.name}` keeps {', '.join(categories)} in process memory:"
            " lost on restart and not shared between instances",
            {
                "state": categories[0],
                "reasons": reasons,
                "bounded": bool(analysis.bounds()),
            },
        )
