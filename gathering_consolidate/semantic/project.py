"""The project-wide semantic model: one symbol table and one name resolution for every analysis
that crosses files (the exception flow, the call graph), as ruff's SemanticModel is for its rules.

`ProjectModel` holds what the project binds where:

* `modules`: module name -> its facts (packages included: `pkg` for `pkg/__init__.py`);
* `functions`, `classes`: project functions and classes by qualified name;
* `variables`: `module.name` -> what a module-level assignment binds;
* `aliases`: `module.local` -> the qualified name an import binds (`from .a import x` in `pkg.b`
  makes `pkg.b.x -> pkg.a.x`): re-exports are followed through them;
* `class_attrs`: class -> attribute -> what the class body or `self.x = ...` binds.

and answers, with the same rules for every engine:

* `resolve(dotted)`: what a dotted name is bound to: the longest prefix the project binds (a
  function, a class, a module-level variable, a module or an import alias), then attribute by
  attribute; a package re-exporting a name of a same-named submodule binds both (an import path
  into the module names what the module binds, the package's re-export is everything else); a name a module does not visibly bind (a star import,
  `setattr`) is unknown; a name the project does not bind at all is external (after
  `resolve_source_roots`, a name written from a source root below the audited directory,
  `app.db` for `backend/app/db.py`, is the project's);
* `class_member(cls, attr)`: an attribute through the MRO (a base outside the project answers
  for itself where it comes);
* `mro(cls)`: the classes a class inherits from in Python's C3 order, bases outside the
  project marked `lib:` (`project_mro` and `external_bases` split them).

Entities are tuples: `("func", q)`, `("class", q)`, `("module", q)` for the project and
`(external, dotted)` outside it; what a variable or an attribute holds is the engine's to
evaluate (`bound_value`), as is attribute access on anything but modules and classes. `None` is
unknown, never "nothing".

Every walk terminates: resolution is memoised with a cycle guard (a name that reaches itself
through aliases is unknown) and a depth bound (`max_depth`; deeper is unknown, recorded in
`incomplete`, and not memoised, so a shallower evaluation may still resolve it); an MRO holds
at most `MAX_MRO` classes; `tick()` lets an engine charge each step to a budget.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

Entity = tuple[Any, ...] | None

#: At most this many classes in one MRO.
MAX_MRO = 64
#: How an MRO names a base outside the project (`lib:pydantic.BaseModel`).
LIB = "lib:"
#: Unresolvable evaluations kept as evidence (`ProjectModel.incomplete`).
_MAX_INCOMPLETE = 20
_UNBOUND = object()


class ProjectModel:
    """The symbol table of a project and name resolution over it (see the module docstring).
    Engines fill the tables from their per-file facts and supply `bound_value` (what a binding
    evaluates to) and `bases` (a class's bases as entities)."""

    #: The tag of an entity outside the project.
    external: str = "ext"
    #: Nested resolutions deeper than this are unknown.
    max_depth: int = 80

    def __init__(self) -> None:
        self.modules: dict[str, Any] = {}
        self.functions: dict[str, Any] = {}
        self.classes: dict[str, Any] = {}
        self.variables: dict[str, Any] = {}
        self.aliases: dict[str, str] = {}
        self.class_attrs: dict[str, dict[str, Any]] = {}
        #: Values whose evaluation hit the depth bound (bounded, for the evidence of findings).
        self.incomplete: list[Any] = []
        self._names: dict[str, Entity] = {}
        self._mro: dict[str, list[str]] = {}
        self._suffixes: dict[str, str | None] = {}
        self._active: set[Any] = set()
        self._depth = 0

    # -- what engines supply ---------------------------------------------------------------------
    def bound_value(self, binding: Any, depth: int) -> Entity:
        """The entity a variable or class attribute binding holds (None: unknown)."""
        raise NotImplementedError

    def bases(self, cls: str) -> Iterable[Entity]:
        """The bases of the project class `cls`, evaluated."""
        raise NotImplementedError

    def method(self, qualname: str, instance: bool) -> Entity:
        """What looking up the project function `qualname` on a class (or, `instance`, on an
        instance of it) gives: the function itself, unless an engine reads properties."""
        return ("func", qualname)

    def tick(self) -> None:
        """One resolution step (an engine with a step budget raises past it)."""

    # -- recursion guard -----------------------------------------------------------------------
    def guarded(
        self, memo: dict[Any, Entity], key: Any, active: Any, compute: Callable[[], Entity]
    ) -> Entity:
        """`memo[key]`, computed once; a cycle back into the same computation (`active` is in
        progress) answers None instead of recursing; past `max_depth` nested computations the
        answer is None and is not memoised."""
        if key in memo:
            return memo[key]
        if active in self._active:
            return None
        if self._depth >= self.max_depth:
            if len(self.incomplete) < _MAX_INCOMPLETE:
                self.incomplete.append(key)
            return None
        self._active.add(active)
        self._depth += 1
        try:
            result = compute()
        finally:
            self._active.discard(active)
            self._depth -= 1
        memo[key] = result
        return result

    # -- names ---------------------------------------------------------------------------------
    def resolve(self, dotted: str, depth: int = 0) -> Entity:
        """What the project binds `dotted` to (see the module docstring). `depth` is the
        caller's own nesting, handed on to `bound_value` and `attribute` for engines that bound
        it themselves."""
        return self.guarded(
            self._names, dotted, ("resolve", dotted), lambda: self._resolve(dotted, depth)
        )

    def _resolve(self, dotted: str, depth: int) -> Entity:
        self.tick()
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            rest = parts[i:]
            entity = self._bound(prefix, rest, depth)
            if entity is _UNBOUND:
                continue
            if (
                entity is not None
                and entity[0] == "module"
                and rest
                and not self.binds(prefix, rest[0])
            ):
                return None  # a name the module does not visibly bind (star import, setattr)
            for attr in rest:
                entity = self.attribute(entity, attr, depth + 1)
                if entity is None:
                    return None
            return entity
        for i in range(len(parts), 0, -1):
            module = self._suffixes.get(".".join(parts[:i]))
            if module is not None:
                return self.resolve(".".join([module, *parts[i:]]), depth + 1)
        return (self.external, dotted)

    def _bound(self, prefix: str, rest: list[str], depth: int) -> Any:
        """What `prefix` is bound to, or `_UNBOUND` when the project binds nothing there."""
        if prefix in self.functions:
            return ("func", prefix)
        if prefix in self.classes:
            return ("class", prefix)
        if prefix in self.variables:
            return self.bound_value(self.variables[prefix], depth + 1)
        target = self.aliases.get(prefix)
        # `pkg/events/__init__.py` re-exporting `event_bus` from its submodule `event_bus` makes
        # `pkg.events.event_bus` both a module and a name of the package. An import path into the
        # module (`pkg.events.event_bus.EventBus`) names something the module binds; anything
        # else, the name itself included, is the package's binding, as in Python: importing the
        # submodule sets the package attribute to the module, and the package's own import then
        # rebinds it (`from pkg.events import event_bus` and `pkg.events.event_bus` give that).
        if prefix in self.modules and (target is None or (rest and self.binds(prefix, rest[0]))):
            return ("module", prefix)
        if target is not None and target != prefix:
            return self.resolve(target, depth + 1)
        return _UNBOUND

    def binds(self, module: str, name: str) -> bool:
        """Whether `module` visibly binds `name` (a definition, an assignment, an import or a
        submodule)."""
        qual = f"{module}.{name}"
        return (
            qual in self.functions
            or qual in self.classes
            or qual in self.variables
            or qual in self.aliases
            or qual in self.modules
        )

    def resolve_source_roots(self) -> None:
        """Let imports written relative to a source root below the audited directory (`app.db`
        for `backend/app/db.py`) resolve through module-name suffixes that only one module has;
        a lone module name (`utils`) is too likely a third-party one, and a standard-library
        name stays the standard library's."""
        packages = {m.rsplit(".", 1)[0] for m in self.modules if "." in m}
        for name in self.modules:
            parts = name.split(".")
            for i in range(1, len(parts)):
                suffix = ".".join(parts[i:])
                if suffix in self.modules or parts[i] in sys.stdlib_module_names:
                    continue
                if i == len(parts) - 1 and name not in packages:
                    continue
                known = self._suffixes.get(suffix, name)
                self._suffixes[suffix] = name if known == name else None

    # -- attributes ----------------------------------------------------------------------------
    def attribute(self, entity: Entity, name: str, depth: int = 0) -> Entity:
        """Attribute `name` of a module, a project class or an external entity; engines extend
        it to their other entities (instances, containers, unions)."""
        if entity is None:
            return None
        kind, dotted = entity[0], entity[1]
        if kind == "module":
            return self.resolve(f"{dotted}.{name}", depth + 1)
        if kind == "class":
            return self.class_member(dotted, name, depth, instance=False)
        if kind == self.external:
            return (self.external, f"{dotted}.{name}")
        return None

    def class_member(self, cls: str, name: str, depth: int = 0, *, instance: bool) -> Entity:
        """`name` looked up on the project class `cls` (or an instance of it) along its MRO: the
        first project class that defines it as a method or nested class, or binds it (to what
        that binding holds: unknown when the tool cannot tell, never a later class's value, which
        Python would not reach); a base outside the project first met answers for itself
        (`lib.Base.name`); else unknown."""
        for klass in self.mro(cls):
            if klass.startswith(LIB):
                return (self.external, f"{klass[len(LIB) :]}.{name}")
            qualname = f"{klass}.{name}"
            if qualname in self.functions:
                return self.method(qualname, instance)
            binding = self.class_attrs.get(klass, {}).get(name)
            if binding is not None:
                return self.bound_value(binding, depth + 1)
            if qualname in self.classes:
                return ("class", qualname)
        return None

    # -- classes -------------------------------------------------------------------------------
    def mro(self, cls: str) -> list[str]:
        """The classes `cls` inherits from, itself first, in Python's C3 order: project classes
        by qualified name, bases outside the project as `lib:<dotted name>` (their own bases are
        not known). A hierarchy C3 rejects keeps each base's order, depth first; at most
        `MAX_MRO` classes; a cycle of bases or a chain deeper than `max_depth` stops there."""
        if cls in self._mro:
            return self._mro[cls]
        self._mro[cls] = [cls]  # guards against cycles while computing
        order = [cls]
        if cls in self.classes and self._depth < self.max_depth:
            self._depth += 1
            try:
                parents: list[str] = []
                for entity in self.bases(cls):
                    if entity is not None and entity[0] == "class" and entity[1] != cls:
                        parents.append(entity[1])
                    elif entity is not None and entity[0] == self.external:
                        parents.append(f"{LIB}{entity[1]}")
                # A cycle of bases leaves `cls` in a base's (partial) line: it is first already.
                lines = [
                    [parent] if parent.startswith(LIB) else self.mro(parent) for parent in parents
                ]
                lines = [[c for c in line if c != cls] for line in lines]
            finally:
                self._depth -= 1
            order += _c3([*lines, parents]) or _depth_first(lines)
        self._mro[cls] = order[:MAX_MRO]
        return self._mro[cls]

    def project_mro(self, cls: str) -> list[str]:
        """The project classes of `mro(cls)`, in order."""
        return [c for c in self.mro(cls) if not c.startswith(LIB)]

    def external_bases(self, cls: str) -> list[str]:
        """The dotted names of the bases outside the project, in MRO order."""
        return [c[len(LIB) :] for c in self.mro(cls) if c.startswith(LIB)]


def _c3(lines: list[list[str]]) -> list[str] | None:
    """The C3 merge of base linearisations (None when the hierarchy has no consistent order)."""
    pending = [list(line) for line in lines if line]
    merged: list[str] = []
    while pending:
        for line in pending:
            head = line[0]
            if not any(head in other[1:] for other in pending):
                break
        else:
            return None
        merged.append(head)
        if len(merged) >= MAX_MRO:
            return merged
        pending = [[c for c in line if c != head] for line in pending]
        pending = [line for line in pending if line]
    return merged


def _depth_first(lines: list[list[str]]) -> list[str]:
    merged: list[str] = []
    for line in lines:
        merged += [c for c in line if c not in merged]
    return merged
