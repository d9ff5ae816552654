"""The node types a pipeline may use and the configuration each one requires.

The default schema is GatheRing's: the node types of `gathering/api/schemas/pipelines.py`
(`trigger`, `agent`, `skill`, `condition`, `transform`, `output`) with the configuration their
executors need. A node's configuration is its `config` mapping (GatheRing stores it as `data`; both
are read). Other applications pass their own mapping, or a file read by `load_node_types`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: JSON type names a config field may declare; a field may accept several ("integer|string").
JSON_TYPES = ("string", "integer", "number", "boolean", "object", "array", "any")


@dataclass(frozen=True, slots=True)
class NodeType:
    """One node type: `required` and `optional` map a config key to its accepted JSON types.

    `entry`: nodes of this type start a run (a trigger); when a pipeline has any, every other node
    must be reachable from them. `max_count`: how many nodes of this type one pipeline may hold
    (None: any number). A required string that is empty counts as missing.
    """

    name: str
    required: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    optional: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    entry: bool = False
    description: str = ""
    max_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "required": {k: "|".join(v) for k, v in self.required.items()},
            "optional": {k: "|".join(v) for k, v in self.optional.items()},
            "entry": self.entry,
            "description": self.description,
            "max_count": self.max_count,
        }


# Keys every node type may carry: a display label, its own visit limit (graphs that allow loops)
# and a per-node timeout.
COMMON_OPTIONAL: dict[str, tuple[str, ...]] = {
    "label": ("string",),
    "max_visits": ("integer",),
    "timeout_seconds": ("number",),
}


def _node_type(
    name: str,
    description: str,
    *,
    entry: bool = False,
    max_count: int | None = None,
    **fields: str,
) -> NodeType:
    required = {
        key: tuple(spec.split("|")) for key, spec in fields.items() if not key.startswith("opt_")
    }
    optional = dict(COMMON_OPTIONAL)
    optional.update(
        {key[4:]: tuple(spec.split("|")) for key, spec in fields.items() if key.startswith("opt_")}
    )
    return NodeType(name, required, optional, entry, description, max_count)


DEFAULT_NODE_TYPES: Mapping[str, NodeType] = {
    t.name: t
    for t in (
        _node_type(
            "trigger",
            "Starts a run (manual, webhook or schedule); one per pipeline.",
            entry=True,
            max_count=1,
            opt_event="string",
        ),
        _node_type(
            "agent", "Hands the input to an agent.", agent_id="integer|string", opt_prompt="string"
        ),
        _node_type("skill", "Runs a skill by name.", skill="string", opt_params="object"),
        _node_type("condition", "Routes on a boolean expression.", expression="string"),
        _node_type(
            "transform",
            "Reshapes the data between nodes.",
            opt_template="string",
            opt_expression="string",
        ),
        _node_type("output", "Collects the run's result.", opt_format="string"),
    )
}


class NodeTypesError(ValueError):
    """A node-types definition is malformed (the message names the type and key at fault)."""


def _types(spec: Any, where: str) -> tuple[str, ...]:
    if not isinstance(spec, str) or not spec:
        raise NodeTypesError(f"{where}: expected a JSON type name such as 'string', got {spec!r}")
    names = tuple(part.strip() for part in spec.split("|"))
    for name in names:
        if name not in JSON_TYPES:
            raise NodeTypesError(f"{where}: unknown type {name!r} (one of {', '.join(JSON_TYPES)})")
    return names


def node_types_from_data(data: Any) -> dict[str, NodeType]:
    """Build node types from plain data, as read from JSON or YAML:

    ```yaml
    agent: {required: {agent_id: integer|string}, optional: {prompt: string}}
    trigger: {entry: true, max_count: 1}
    ```
    A list of field names is accepted for `required` (any type). The common optional keys
    (`label`, `max_visits`, `timeout_seconds`) are added to every type.
    """
    if not isinstance(data, Mapping) or not data:
        raise NodeTypesError("node types: expected a mapping of type name to its definition")
    result: dict[str, NodeType] = {}
    for name, spec in data.items():
        if not isinstance(name, str) or not name:
            raise NodeTypesError(f"node types: type names must be strings, got {name!r}")
        spec = {} if spec is None else spec
        if not isinstance(spec, Mapping):
            raise NodeTypesError(f"node type {name!r}: expected a mapping, got {spec!r}")
        unknown = set(spec) - {"required", "optional", "entry", "description", "max_count"}
        if unknown:
            raise NodeTypesError(
                f"node type {name!r}: unknown key(s) {', '.join(sorted(map(str, unknown)))}"
                " (allowed: required, optional, entry, max_count, description)"
            )
        fields: dict[str, dict[str, tuple[str, ...]]] = {}
        for part in ("required", "optional"):
            raw = spec.get(part) or {}
            if isinstance(raw, list):
                raw = dict.fromkeys(raw, "any")
            if not isinstance(raw, Mapping):
                raise NodeTypesError(f"node type {name!r}: {part} must be a mapping or a list")
            fields[part] = {
                str(key): _types(value, f"node type {name!r}: {part}.{key}")
                for key, value in raw.items()
            }
        entry = spec.get("entry", False)
        if not isinstance(entry, bool):
            raise NodeTypesError(f"node type {name!r}: entry must be true or false")
        max_count = spec.get("max_count")
        if max_count is not None and (
            not isinstance(max_count, int) or isinstance(max_count, bool) or max_count < 1
        ):
            raise NodeTypesError(f"node type {name!r}: max_count must be a positive integer")
        optional = dict(COMMON_OPTIONAL)
        optional.update(fields["optional"])
        result[name] = NodeType(
            name,
            fields["required"],
            optional,
            entry,
            str(spec.get("description", "")),
            max_count,
        )
    return result


def json_type_of(value: Any) -> str:
    """The JSON type name of a decoded value (`bool` is not an integer)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return "null" if value is None else type(value).__name__


def matches(value: Any, types: tuple[str, ...]) -> bool:
    actual = json_type_of(value)
    return "any" in types or actual in types or (actual == "integer" and "number" in types)
