"""Tiers from what a broad handler protects, not from where its file lives (issue 9).

* **1** when the try body or the handler reaches, directly or through the project's own
  functions, authentication, tokens or secrets, crypto, a database write (vector stores
  included) or money, or when the enclosing function's own name says it handles one of them
  (`verify_access_key`, `save_document_to_vector_store`), or when the try body reads a setting
  whose name says it is a secret (`get_config("AWS_SECRET_ACCESS_KEY")`);
* **2** when the handler runs on a request path (in a route handler, or in a function that one
  reaches) or in background work (a task, a scheduled job, a function handed to a thread or a
  task queue);
* **3** in agent tools and skills (the methods of a class derived from a tool or skill base, and
  what only they reach) unless a request path reaches them too, in command-line code, at import,
  and always in tests and migrations.

Entry points are followed in that order of precedence: what a route reaches is on the request
path even when a tool or a task also reaches it; what a tool reaches is tool code even when
background work runs the tool.

A path glob in the project's own `[tool.gathering-consolidate.tiers]` overrides all of this. The
vocabulary (which library calls handle credentials, which methods write to a database, which
words in a function name mean "auth") is rule data: the `[meaning]` table of `rules/tiers.toml`.

Every walk here is bounded: a visited set, a depth limit and the world's step budget.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from ...config import load_rule_data, path_matches
from .flow import FunctionFacts, HandlerFacts, Site, World

_MAX_DEPTH = 8
_MAX_REACHABLE = 50_000
_MAX_BY_NAME = 4  # a method name more classes define says nothing about the receiver
_BUILTIN_METHODS = frozenset(
    name for kind in (dict, list, set, str, bytes, tuple, frozenset, object) for name in dir(kind)
)
_COMMON_METHODS = _BUILTIN_METHODS | {
    "get",
    "run",
    "execute",
    "call",
    "close",
    "open",
    "read",
    "write",
    "send",
    "start",
    "stop",
}


@dataclass(frozen=True)
class Meaning:
    """The `[meaning]` table of `rules/tiers.toml`."""

    auth_calls: tuple[re.Pattern[str], ...]
    money_calls: tuple[re.Pattern[str], ...]
    db_write_methods: frozenset[str]
    db_receivers: tuple[str, ...]
    db_packages: frozenset[str]
    db_upsert_methods: frozenset[str]
    db_write_verbs: frozenset[str]
    db_store_nouns: frozenset[str]
    tool_bases: tuple[re.Pattern[str], ...]
    sensitive_words: frozenset[str]
    not_sensitive_with: frozenset[str]
    tier3_paths: tuple[str, ...]

    @classmethod
    def load(cls) -> Meaning:
        table = load_rule_data("tiers").get("meaning", {})

        def patterns(key: str) -> tuple[re.Pattern[str], ...]:
            return tuple(_call_pattern(p) for p in table.get(key, []))

        return cls(
            auth_calls=patterns("auth-calls"),
            money_calls=patterns("money-calls"),
            db_write_methods=frozenset(table.get("db-write-methods", [])),
            db_receivers=tuple(table.get("db-receivers", [])),
            db_packages=frozenset(table.get("db-packages", [])),
            db_upsert_methods=frozenset(table.get("db-upsert-methods", [])),
            db_write_verbs=frozenset(table.get("db-write-verbs", [])),
            db_store_nouns=frozenset(table.get("db-store-nouns", [])),
            tool_bases=patterns("tool-bases"),
            sensitive_words=frozenset(table.get("sensitive-words", [])),
            not_sensitive_with=frozenset(table.get("not-sensitive-with", [])),
            tier3_paths=tuple(table.get("tier3-paths", [])),
        )


def _call_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")) + r"\Z")


@functools.cache
def default_meaning() -> Meaning:
    return Meaning.load()


def _last(dotted: str) -> str:
    """The last name of a receiver label: `self.db` -> `db`, `get_db()` -> `get_db`."""
    return dotted.rpartition(".")[2].removesuffix("()")


def _words(name: str) -> list[str]:
    """`verify_access_token` -> verify, access, token; `getSecretValue` -> get, secret, value."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


class Tiers:
    """The tier of each broad handler, with the reason, over one `World`."""

    def __init__(self, world: World, meaning: Meaning | None = None) -> None:
        self.world = world
        self.meaning = meaning or default_meaning()
        self._reach: dict[str, str | None] = {}
        self._on_path: dict[str, str] | None = None
        self._by_name: dict[str, tuple[str, ...]] | None = None
        self._called_names: set[str] | None = None
        self._subclasses: dict[str, list[str]] | None = None

    # -- public ------------------------------------------------------------------------------
    def tier(
        self, path: str, handler: HandlerFacts, override: int | None = None
    ) -> tuple[int, str]:
        """(tier, why) for one handler."""
        if override is not None:
            return override, "the project's tier for this path"
        if path_matches(path, self.meaning.tier3_paths):
            return 3, "test or migration code"
        reached = self._handler_reaches(path, handler)
        if reached is not None:
            return 1, reached
        own = handler.scope.split("#")[0].rpartition(".")[2]
        named = None if own == "<module>" else self._name_says(own)
        if named is not None:
            return 1, f"its function {named}"
        if handler.scope.endswith(".<module>"):
            return 3, "runs once, at import"
        facts = self.world.files.get(path)
        if facts is not None and facts.script:
            return 3, "a command-line script"
        entry = self._entry_of(handler.scope)
        if entry is not None:
            if entry.startswith(("in a command", "in an agent tool")):
                return 3, entry
            return 2, entry
        if self._uncalled(handler.scope):
            return 3, "nothing in the project calls it"
        # Calls through plugins, registries and untyped receivers are not all resolved: a
        # function no entry point is seen to reach may still run on one ("unknown" is not "no").
        return 2, "not proven off the request path (its callers are not all resolved)"

    # -- tier 1 ------------------------------------------------------------------------------
    def _handler_reaches(self, path: str, handler: HandlerFacts) -> str | None:
        world = self.world
        scope = world.functions.get(handler.scope)
        if scope is None or handler.try_index >= len(scope.tries):
            return None
        for site in scope.sites:
            in_try = handler.try_index in site.guards
            in_handler = handler.line < site.line <= handler.body_end
            if not (in_try or in_handler) or site.kind != "call" or site.hint == "spawned":
                continue
            found = self._site_reaches(site, path, 0, frozenset())
            if found is not None:
                return found
        return None

    def _site_reaches(
        self, site: Site, path: str, depth: int, visited: frozenset[str]
    ) -> str | None:
        here = f"{site.label}() at {path}:{site.line}"
        direct = self._sensitive_call(site, direct=depth == 0)
        if direct is not None:
            return f"{here}: {direct}"
        callee = self.world.callee(site)
        if callee is None and depth < _MAX_DEPTH:
            return self._by_name_reaches(site, here, depth, visited)
        if callee is None or depth >= _MAX_DEPTH or callee in visited:
            return None
        callee_name = callee.rpartition(".")[2].split("#")[0]
        name_says = self._name_says(callee_name)
        if name_says is not None:
            return f"{here}: {name_says}"
        inner = self._function_reaches(callee, depth + 1, visited | {callee})
        return None if inner is None else f"{here} -> {inner}"

    def _by_name_reaches(
        self, site: Site, here: str, depth: int, visited: frozenset[str]
    ) -> str | None:
        """A method call on a receiver of unknown type (`plugin.instance.consume(...)`) may run
        any project method of that name: when few do and the name is not a builtin container's
        or string's method, each is followed (tier 1 is a priority, so "may write" counts)."""
        name_says = self._name_says(site.label.rpartition(".")[2])
        for candidate in self._candidates(site, _COMMON_METHODS):
            if candidate in visited:
                continue
            if name_says is not None:
                return f"{here}, which may run {candidate}: {name_says}"
            inner = self._function_reaches(candidate, depth + 1, visited | {candidate})
            if inner is not None:
                return f"{here}, which may run {candidate} -> {inner}"
        return None

    def _overrides(self, function: str) -> list[str]:
        """The project methods overriding `function` in subclasses of its class."""
        cls, _, name = function.rpartition(".")
        if cls not in self.world.classes:
            return []
        if self._subclasses is None:
            subclasses: dict[str, list[str]] = {}
            for klass in sorted(self.world.classes):
                for base in self.world.mro(klass)[1:]:
                    subclasses.setdefault(base, []).append(klass)
            self._subclasses = subclasses
        found = (f"{sub}.{name}" for sub in self._subclasses.get(cls, ()))
        return [key for key in found if key in self.world.functions]

    def _candidates(self, site: Site, too_common: frozenset[str]) -> tuple[str, ...]:
        """The project methods an unresolved method call may run, by its name: none when the
        name is too common or more than a few classes define it."""
        receiver, _, method = site.label.rpartition(".")
        if site.kind != "call" or not receiver or not method.isidentifier() or method in too_common:
            return ()
        candidates = self._methods_named().get(method, ())
        return candidates if len(candidates) <= _MAX_BY_NAME else ()

    def _methods_named(self) -> dict[str, tuple[str, ...]]:
        """Project methods by their name."""
        if self._by_name is None:
            found: dict[str, list[str]] = {}
            for key in sorted(self.world.functions):
                owner, _, name = key.rpartition(".")
                if "#" not in key and owner in self.world.classes:
                    found.setdefault(name, []).append(key)
            self._by_name = {name: tuple(keys) for name, keys in found.items()}
        return self._by_name

    def _function_reaches(self, function: str, depth: int, visited: frozenset[str]) -> str | None:
        if function in self._reach:
            return self._reach[function]
        self._reach[function] = None  # cycle guard
        self.world.tick()
        facts = self.world.functions.get(function)
        path = self.world.function_paths.get(function, "?")
        found = None
        if facts is not None:
            for site in facts.sites:
                if site.kind != "call" or site.hint == "spawned":
                    continue
                found = self._site_reaches(site, path, depth, visited)
                if found is not None:
                    break
        self._reach[function] = found
        return found

    def _sensitive_call(self, site: Site, *, direct: bool) -> str | None:
        """What a call does that makes a handler tier 1, if anything: a credentials or crypto
        library, a payment library, a database write; judged by the callee's type where the
        tool knows it, by the names in the call (`db_session.commit()`) where it does not.
        Reading a secret (`get_secret_value()`, an API-key object) counts only in the try body
        or the handler itself (`direct`): a helper that builds a client from a stored key
        protects the client, not the credential."""
        meaning = self.meaning
        if site.hint.startswith("key:") and direct:
            setting = site.hint.removeprefix("key:")
            said = self._sensitive_name(setting)
            if said is not None:
                return f"reads the setting {setting}: {said}"
        resolved = self.world.value(site.ref)
        receiver, _, method = site.label.rpartition(".")
        # A statement that writes; one built at run time (a query runner) may write, and counts
        # in the try body itself: deeper, the caller's statement decides.
        writes = bool(receiver) and (
            method in meaning.db_write_methods
            or site.hint == "sql-write"
            or (site.hint == "sql" and direct)
        )
        if site.hint == "sql-write":
            return "a database write (a statement that writes)"
        if receiver and method in meaning.db_upsert_methods:
            return f"a database write (`{method}`)"
        if resolved is None:
            if writes and any(w in meaning.db_receivers for w in _words(_last(receiver))):
                return "a database write"
            if method == "get_secret_value":
                return "a secret" if direct else None
            return self._name_says(method)
        if resolved[0] not in ("lib", "itemfn"):
            return None
        name = resolved[1]
        if any(p.match(name) for p in meaning.auth_calls):
            return f"credentials or crypto (`{name}`)"
        if any(p.match(name) for p in meaning.money_calls):
            return f"payments (`{name}`)"
        if writes and name.split(".")[0] in meaning.db_packages:
            return f"a database write (`{name}`)"
        # `request.state.db.rollback()`: a receiver the library leaves untyped (an attribute of
        # a namespace object) is judged by its name, as an unresolved one is.
        if writes and any(w in meaning.db_receivers for w in _words(_last(receiver))):
            return "a database write"
        return self._sensitive_name(name.replace("()", "")) if direct else None

    def _sensitive_name(self, name: str) -> str | None:
        words = _words(name)
        if any(w in self.meaning.not_sensitive_with for w in words):
            return None
        candidates = [*words, *(a + b for a, b in itertools.pairwise(words))]
        hit = next((w for w in candidates if w in self.meaning.sensitive_words), None)
        return None if hit is None else f"`{name}` handles {hit}"

    def _name_says(self, name: str) -> str | None:
        """What a function's name says it handles: credentials and the like, or writes."""
        return self._sensitive_name(name) or self._write_name(name)

    def _write_name(self, name: str) -> str | None:
        """A name that says it writes to a store: a write verb and a store noun
        (`delete_embeddings_from_vector_db`, `save_document_to_vector_store`, `update_record`)."""
        words = set(_words(name))
        verb = words & self.meaning.db_write_verbs
        noun = words & self.meaning.db_store_nouns
        if not verb or not noun:
            return None
        return f"`{name}` writes to a database ({min(verb)} {min(noun)})"

    # -- tier 2 ------------------------------------------------------------------------------
    def _entry_of(self, scope_key: str) -> str | None:
        on_path = self._paths()
        key = scope_key.split("#")[0]
        while key:
            if key in on_path:
                return on_path[key]
            key = key.rpartition(".")[0]  # a nested function runs where its parent does
            if key in self.world.modules:
                return None
        return None

    def _paths(self) -> dict[str, str]:
        """Every project function reachable from an entry point, with the entry that reaches
        it ("on the request path of GET /x", "in an agent tool (X)", "in background work
        (task)"), entries taken in order of precedence: routes, tools, background work, commands.
        """
        if self._on_path is not None:
            return self._on_path
        world = self.world
        routes: list[tuple[str, str]] = []
        tools: list[tuple[str, str]] = []
        background: list[tuple[str, str]] = []
        commands: list[tuple[str, str]] = []
        for key, facts in sorted(world.functions.items()):
            if facts.entry is None:
                tool = self._tool_class(key)
                if tool is not None:
                    tools.append((key, f"in an agent tool ({tool})"))
            elif facts.entry.startswith("route "):
                routes.append((key, _entry_words(facts)))
            elif facts.entry == "cli":
                commands.append((key, _entry_words(facts)))
            else:
                background.append((key, _entry_words(facts)))
        background += [
            (key, "in background work (handed to a thread or task queue)")
            for key in self._handed_functions()
        ]
        found: dict[str, str] = {}
        serving: set[str] = set()  # the classes holding a function on a request path
        for seeds in (routes, tools, background, commands):
            if seeds is tools:
                owners = {owner for key in found for owner in _owners(key)}
                serving = owners & self.world.classes.keys()
            queue = deque(seeds)
            while queue and len(found) < _MAX_REACHABLE:
                key, why = queue.popleft()
                if key in found:
                    continue
                if seeds is tools and key.split("#")[0].rpartition(".")[0] in serving:
                    continue  # a helper class that also serves requests is request-path code
                found[key] = why
                world.tick()
                facts = world.functions.get(key)
                if facts is None:
                    continue
                for site in facts.sites:
                    callee = world.callee(site)
                    if callee is not None:
                        queue.append((callee, why))
                        # a method runs as the override of the receiver's class, too
                        queue.extend((o, why) for o in self._overrides(callee))
                    elif seeds is routes:
                        # what a request may run through a receiver of unknown type
                        # (`skill.execute(params)`) is on its path: tier 2 is the safer answer
                        queue.extend((c, why) for c in self._candidates(site, _BUILTIN_METHODS))
        self._on_path = found
        return found

    def _uncalled(self, scope_key: str) -> bool:
        """An undecorated method of a class with no base outside the project, whose name no
        call in the project uses, resolved or not (`self.extractor.extract_with_lxml(...)`
        would use it) and no code hands on: dead code, or called by name through `getattr`.
        A framework calls methods through a base class or a decorator, which it does not have.
        """
        function = scope_key.split("#")[0]
        cls, _, name = function.rpartition(".")
        world = self.world
        facts = world.functions.get(function)
        if cls not in world.classes or name.startswith("__") or facts is None or facts.decorated:
            return False
        if any(base.startswith("lib:") for base in world.mro(cls)):
            return False
        if self._called_names is None:
            names = {
                site.label.rpartition(".")[2].removesuffix("()")
                for item in world.functions.values()
                for site in item.sites
                if site.kind == "call"
            }
            # `Thread(target=self.poll)`: handed on, not called
            names |= {key.rpartition(".")[2] for key in self._handed_functions()}
            self._called_names = names
        return name not in self._called_names

    def _tool_class(self, function: str) -> str | None:
        """The class of a method of an agent tool or skill: a project class with a base (not
        the class itself) whose name the `tool-bases` patterns match (`BaseTool`, `BaseSkill`)."""
        cls = function.split("#")[0].rpartition(".")[0]
        if cls not in self.world.classes:
            return None
        for base in self.world.mro(cls)[1:]:
            name = base.removeprefix("lib:").rpartition(".")[2]
            if any(p.match(name) for p in self.meaning.tool_bases):
                return cls.rpartition(".")[2]
        return None

    def _handed_functions(self) -> list[str]:
        """The project functions handed to a thread, a queue or a task (`FileFacts.entries`)."""
        keys = []
        for item in self.world.files.values():
            for ref in item.entries:
                resolved = self.world.value(ref)
                if resolved is not None and resolved[0] == "func":
                    keys.append(resolved[1])
        return keys


def _owners(key: str) -> list[str]:
    """The dotted names holding a function: `m.C.f` -> `m`, `m.C`."""
    parts = key.split("#")[0].split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _entry_words(facts: FunctionFacts) -> str:
    entry = facts.entry or ""
    if entry.startswith("route "):
        return f"on the request path of {entry.removeprefix('route ')}"
    if entry == "cli":
        return f"in a command-line command ({facts.qualname})"
    return f"in background work ({entry})"


def tiers_for(world: World, overrides: Mapping[str, int]) -> dict[tuple[str, int], tuple[int, str]]:
    """(path, handler line) -> (tier, why) for every broad handler of the world."""
    model = Tiers(world)
    out: dict[tuple[str, int], tuple[int, str]] = {}
    for path, item in sorted(world.files.items()):
        for handler in item.handlers:
            out[path, handler.line] = model.tier(path, handler, overrides.get(path))
    return out
