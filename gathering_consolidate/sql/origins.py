"""Where does an interpolated value come from? Origin tracing on the stdlib `ast`.

Inside one function (and one level into its callers in the same module) an expression's value is
traced to one or more `Origin`s, from the safest to the worst:

| kind           | meaning                                                                        |
| -------------- | ------------------------------------------------------------------------------ |
| `constant`     | a literal, a module/class constant, or code-built text with no input in it      |
| `validated`    | a number or other scalar: `int(...)`, `len(...)`, a route parameter typed `int` |
| `allowlisted`  | drawn from, or checked against, a hardcoded collection (`x in ALLOWED`)         |
| `model_fields` | a key of `model.model_dump()` of a pydantic model that does not allow extras   |
| `unknown`      | anything the tracer cannot follow (attributes, call results, DB rows)          |
| `parameter`    | a parameter of a plain function whose callers are not in the module            |
| `request`      | FastAPI path/query/body data, or keys of a model that allows extra keys        |

Three kinds are resolved later, once every file's classes are known (`resolve`): `model_keys` (keys
of a model's dump: `model_fields` or `request` depending on its `extra` setting), `annotated`
(a route parameter typed with a class: an Enum is `allowlisted`, anything else `request`) and
`imported` (a name imported from another module, or `module.NAME`: `constant` when that module
binds it once to a string literal, re-exports followed, else `unknown`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..semantic.project import ProjectModel

CONSTANT = "constant"
VALIDATED = "validated"
ALLOWLISTED = "allowlisted"
MODEL_FIELDS = "model_fields"
UNKNOWN = "unknown"
PARAMETER = "parameter"
REQUEST = "request"
MODEL_KEYS = "model_keys"  # deferred
ANNOTATED = "annotated"  # deferred
IMPORTED = "imported"  # deferred: a name imported from a project module (`ref`)

RANK = {
    CONSTANT: 0,
    VALIDATED: 0,
    ALLOWLISTED: 1,
    MODEL_FIELDS: 2,
    UNKNOWN: 3,
    PARAMETER: 4,
    REQUEST: 5,
}
SAFE = frozenset({CONSTANT, VALIDATED, ALLOWLISTED, MODEL_FIELDS})


@dataclass(frozen=True, slots=True, order=True)
class Origin:
    kind: str
    detail: str = ""
    ref: str = ""  # a class's qualified name, for the deferred kinds


def worst(origins: Iterable[Origin]) -> Origin:
    items = list(origins)
    if not items:
        return Origin(CONSTANT, "code-built text")
    return max(items, key=lambda o: (RANK.get(o.kind, 3), o.detail))


def is_safe(origins: Iterable[Origin]) -> bool:
    return all(o.kind in SAFE for o in origins)


# -- classes, for the deferred kinds -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ClassFact:
    """A class defined in a file: enough to tell a pydantic model's `extra` policy and an Enum."""

    qualname: str
    bases: tuple[str, ...]
    extra: str | None  # "allow" / "forbid" / "ignore" when set on this class
    fields: tuple[str, ...]  # annotated class attributes, in order


_BASE_MODELS = {"pydantic.BaseModel", "pydantic.main.BaseModel", "sqlmodel.SQLModel"}
_ENUMS = {"enum.Enum", "enum.StrEnum", "enum.IntEnum", "enum.Flag", "enum.IntFlag"}


class ClassIndex(ProjectModel):
    """Every collected class and module string constant, resolved by the project model (the
    one name resolution: re-exports such as `from .agents import AgentUpdate` in a package
    `__init__`, a module imported under another name, cycles and depth bounded)."""

    def __init__(
        self,
        classes: Iterable[ClassFact],
        aliases: Mapping[str, str],
        constants: Iterable[str] = (),
    ):
        super().__init__()
        self.classes = {c.qualname: c for c in classes}
        self.aliases = dict(aliases)
        # `module.NAME` bound once to a string literal
        self.variables = {name: name for name in constants}

    def bound_value(self, binding: Any, depth: int) -> Any:
        return ("const", binding)

    def bases(self, cls: str) -> Iterable[Any]:
        return [self.resolve(base) for base in self.classes[cls].bases]

    def is_constant(self, name: str) -> bool:
        """`name` (qualified) is a module string constant, through re-exports."""
        entity = self.resolve(name)
        return entity is not None and entity[0] == "const"

    def find(self, name: str) -> ClassFact | None:
        entity = self.resolve(name)
        return self.classes.get(entity[1]) if entity is not None and entity[0] == "class" else None

    def _resolve_name(self, name: str) -> str:
        """The class or outside name `name` is bound to (itself when the project cannot tell)."""
        entity = self.resolve(name)
        if entity is not None and entity[0] in ("class", self.external):
            return str(entity[1])
        return name

    def extra_policy(self, name: str, depth: int = 0) -> str | None:
        """ "allow" / "forbid" / "ignore" for a pydantic model (inherited, default "ignore");
        None when `name` is not known to be a pydantic model."""
        name = self._resolve_name(name)
        if name in _BASE_MODELS:
            return "ignore"
        cls = self.classes.get(name)
        if cls is None or depth > 20:
            return None
        if cls.extra is not None:
            return cls.extra if self._is_model(cls, depth) else None
        for base in cls.bases:
            policy = self.extra_policy(base, depth + 1)
            if policy is not None:
                return policy
        return None

    def _is_model(self, cls: ClassFact, depth: int) -> bool:
        return any(self.extra_policy(b, depth + 1) is not None for b in cls.bases)

    def is_enum(self, name: str, depth: int = 0) -> bool:
        name = self._resolve_name(name)
        if name in _ENUMS:
            return True
        cls = self.classes.get(name)
        if cls is None or depth > 20:
            return False
        return any(self.is_enum(b, depth + 1) for b in cls.bases)

    def fields(self, name: str, depth: int = 0) -> list[str]:
        """Declared fields of a model, inherited ones first."""
        cls = self.find(name)
        if cls is None or depth > 20:
            return []
        out: list[str] = []
        for base in cls.bases:
            for f in self.fields(base, depth + 1):
                if f not in out:
                    out.append(f)
        out += [f for f in cls.fields if f not in out]
        return out


def resolve(origin: Origin, classes: ClassIndex) -> Origin:
    """Turn a deferred origin into a final one."""
    if origin.kind == MODEL_KEYS:
        policy = classes.extra_policy(origin.ref)
        short = origin.ref.rsplit(".", 1)[-1]
        if policy in ("ignore", "forbid"):
            return Origin(
                MODEL_FIELDS, f"{origin.detail}: declared fields of {short} (extra={policy!r})"
            )
        if policy == "allow":
            return Origin(
                REQUEST,
                f"{origin.detail}: {short} allows extra keys, so the client chooses them",
            )
        return Origin(UNKNOWN, f"{origin.detail}: {short} is not a known pydantic model")
    if origin.kind == IMPORTED:
        if classes.is_constant(origin.ref):
            return Origin(CONSTANT, f"module constant {origin.ref}")
        return Origin(UNKNOWN, origin.detail)
    if origin.kind == ANNOTATED:
        if classes.is_enum(origin.ref):
            return Origin(ALLOWLISTED, f"{origin.detail} (an Enum, validated by FastAPI)")
        return Origin(REQUEST, origin.detail)
    return origin


def collect_classes(tree: ast.Module, module: str, qualify: Any) -> list[ClassFact]:
    """Module-level (and nested) classes with their bases resolved through `qualify(expr)`."""
    found: list[ClassFact] = []
    _collect_classes(tree.body, module, qualify, found)
    return found


def _collect_classes(body: list[ast.stmt], prefix: str, qualify: Any, found: list) -> None:
    # A module-level function, not a recursive closure: a closure that calls itself is a
    # reference cycle, which would keep the file's tree alive until the cyclic collector runs.
    for node in body:
        if isinstance(node, ast.ClassDef):
            qual = f"{prefix}.{node.name}"
            bases = tuple(b for b in (qualify(base) for base in node.bases) if b)
            found.append(ClassFact(qual, bases, _extra_setting(node), _fields(node)))
            _collect_classes(node.body, qual, qualify, found)


def _fields(node: ast.ClassDef) -> tuple[str, ...]:
    names = []
    for item in node.body:
        if (
            isinstance(item, ast.AnnAssign)
            and isinstance(item.target, ast.Name)
            and not item.target.id.startswith("_")
            and item.target.id != "model_config"
            and not (
                isinstance(item.annotation, ast.Subscript)
                and isinstance(item.annotation.value, ast.Name)
                and item.annotation.value.id == "ClassVar"
            )
        ):
            names.append(item.target.id)
    return tuple(names)


def _extra_value(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and node.attr in ("allow", "forbid", "ignore"):
        return node.attr  # Extra.allow (pydantic v1)
    return None


def _extra_setting(node: ast.ClassDef) -> str | None:
    for keyword in node.keywords:  # class M(BaseModel, extra="allow")
        if keyword.arg == "extra":
            return _extra_value(keyword.value)
    for item in node.body:
        if isinstance(item, (ast.Assign, ast.AnnAssign)):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            if not any(isinstance(t, ast.Name) and t.id == "model_config" for t in targets):
                continue
            value = item.value
            if isinstance(value, ast.Call):
                for keyword in value.keywords:
                    if keyword.arg == "extra":
                        return _extra_value(keyword.value)
            if isinstance(value, ast.Dict):
                for key, val in zip(value.keys, value.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "extra":
                        return _extra_value(val)
        if isinstance(item, ast.ClassDef) and item.name == "Config":  # pydantic v1
            for sub in item.body:
                if isinstance(sub, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "extra" for t in sub.targets
                ):
                    return _extra_value(sub.value)
    return None


@dataclass
class Env:
    """Names bound by a comprehension or by a helper's parameters, to their origins."""

    names: dict[str, tuple[Origin, ...]] = field(default_factory=dict)

    def child(self, **bound: tuple[Origin, ...]) -> Env:
        return Env({**self.names, **bound})
