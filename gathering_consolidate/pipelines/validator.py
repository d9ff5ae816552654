"""Structural validation of a pipeline graph (nodes and edges), on networkx.

What is rejected, each as a `PipelineProblem` with a code and a message naming the nodes at fault:

| code | problem |
| --- | --- |
| invalid-pipeline | `nodes` or `edges` is not a list |
| invalid-node | a node that is not an object, or has no string id |
| duplicate-node | two nodes share an id |
| too-many-nodes | more nodes than `max_nodes` (50 by default) |
| too-many-of-type | more nodes of a type than its `max_count` (one trigger by default) |
| unknown-node-type | a node type the schema does not define (or none given) |
| missing-config | a required config key absent or empty |
| invalid-config | a config key of the wrong JSON type, or a config that is not an object |
| invalid-edge | an edge that is not an object or lacks a string source/target |
| dangling-edge | an edge whose source or target is not a node |
| self-loop | an edge from a node to itself (when loops are not allowed) |
| cycle | a cycle, one problem per strongly connected component, the cycle spelled out |
| unbounded-loop | with loops allowed: a loop none of whose nodes has a visit limit |
| no-entry | no node can start a run (no trigger and every node has an incoming edge) |
| unreachable | a node no path from the entry nodes reaches |

Why: the GatheRing app stored graphs as drawn and only checked them on an explicit request; a
cycle or a dangling edge then surfaced as a run that never ends or crashes half-way. Validating at
creation (422 with these messages) and before each run keeps those graphs out.

Entry nodes are the nodes of an entry type (`trigger`) when the pipeline has any, otherwise the
nodes without an incoming edge from another node.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .node_types import DEFAULT_NODE_TYPES, NodeType, json_type_of, matches

CODES = (
    "invalid-pipeline",
    "invalid-node",
    "duplicate-node",
    "too-many-nodes",
    "too-many-of-type",
    "unknown-node-type",
    "missing-config",
    "invalid-config",
    "invalid-edge",
    "dangling-edge",
    "self-loop",
    "cycle",
    "unbounded-loop",
    "no-entry",
    "unreachable",
)


@dataclass(frozen=True, slots=True)
class PipelineProblem:
    """One problem: `code` (see `CODES`), a one-line `message` a user reads, the node ids at
    fault (in the order the pipeline lists them, or along the cycle)."""

    code: str
    message: str
    nodes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "nodes": list(self.nodes)}


@dataclass(frozen=True, slots=True)
class PipelineReport:
    """The outcome of `validate_pipeline`. `order` is a run order (topological, ties broken by the
    order the nodes were given in) when the graph is a valid DAG, else empty; `entry_nodes` are
    the nodes a run starts from."""

    problems: list[PipelineProblem] = field(default_factory=list)
    order: tuple[str, ...] = ()
    entry_nodes: tuple[str, ...] = ()
    node_count: int = 0
    edge_count: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def messages(self) -> list[str]:
        return [p.message for p in self.problems]

    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
            "order": list(self.order),
            "entry_nodes": list(self.entry_nodes),
            "node_count": self.node_count,
            "edge_count": self.edge_count,
        }


@dataclass(slots=True)
class _Collector:
    problems: list[PipelineProblem] = field(default_factory=list)

    def add(self, code: str, message: str, nodes: Iterable[str] = ()) -> None:
        self.problems.append(PipelineProblem(code, message, tuple(nodes)))


def _describe(value: Any) -> str:
    kind = json_type_of(value)
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _r(value: Any, limit: int = 60) -> str:
    """repr() cut to `limit` characters: ids and names come from stored data of any size."""
    text = repr(value)
    if len(text) <= limit:
        return text
    closing = text[0] if text[0] in "'\"" else ""
    return text[: limit - 3 - len(closing)] + "..." + closing


def _node_label(index: int, node_id: str | None) -> str:
    return f"node {_r(node_id)}" if node_id is not None else f"node {index + 1}"


def _edge_label(index: int, edge: Mapping[str, Any]) -> str:
    edge_id = edge.get("id")
    if isinstance(edge_id, str | int) and not isinstance(edge_id, bool) and edge_id != "":
        return f"edge {_r(edge_id)}"
    return f"edge {index + 1}"


def _endpoint(edge: Mapping[str, Any], keys: tuple[str, str]) -> tuple[Any, str | None]:
    """The value of the first key present (`from` before `source`) and a conflict message."""
    present = [k for k in keys if k in edge]
    if not present:
        return None, None
    values = {k: edge[k] for k in present}
    first, second = (values.get(k) for k in keys)
    if len(present) == 2 and first != second:
        return None, f"{keys[0]!r} and {keys[1]!r} disagree ({_r(first)} vs {_r(second)})"
    return values[present[0]], None


def _config_of(node: Mapping[str, Any]) -> Any:
    if "config" in node:
        return node["config"]
    return node.get("data", {})


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_config(
    out: _Collector, label: str, node_id: str, node_type: NodeType, config: Any
) -> None:
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        out.add(
            "invalid-config",
            f"{label} ({node_type.name}): config must be an object, got {_describe(config)}",
            [node_id],
        )
        return
    for key, types in node_type.required.items():
        value = config.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            state = "is empty" if key in config and value is not None else "is missing"
            out.add(
                "missing-config",
                f"{label} ({node_type.name}): required config {_r(key)} {state}",
                [node_id],
            )
        elif not matches(value, types):
            out.add(
                "invalid-config",
                f"{label} ({node_type.name}): config {_r(key)} must be {' or '.join(types)},"
                f" got {_describe(value)}",
                [node_id],
            )
    for key, types in node_type.optional.items():
        value = config.get(key)
        if value is not None and key not in node_type.required and not matches(value, types):
            out.add(
                "invalid-config",
                f"{label} ({node_type.name}): config {_r(key)} must be {' or '.join(types)},"
                f" got {_describe(value)}",
                [node_id],
            )
    visits = config.get("max_visits")
    if isinstance(visits, int) and not isinstance(visits, bool) and visits < 1:
        out.add(
            "invalid-config",
            f"{label} ({node_type.name}): config 'max_visits' must be at least 1, got {visits}",
            [node_id],
        )


def _shortest_cycle_through(graph: nx.DiGraph, start: str, rank: Mapping[str, int]) -> list[str]:
    """The shortest cycle through `start` in `graph` (a strongly connected subgraph), as a node
    path that begins and ends at `start`; successors are explored in pipeline order."""
    parents: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for nxt in sorted(graph.successors(current), key=rank.__getitem__):
            if nxt == start:
                if current == start:
                    continue  # a self-loop; a cycle through the other members is wanted
                path = [current]
                while path[-1] != start:
                    path.append(parents[path[-1]])  # type: ignore[arg-type]
                return [*reversed(path), start]
            if nxt not in parents:
                parents[nxt] = current
                queue.append(nxt)
    raise ValueError(f"{start!r} is on no cycle")  # unreachable for a strongly connected component


#: Longest list of node ids a message spells out; longer ones are elided in the middle.
MESSAGE_NODES = 30


_PLAIN_ID = re.compile(r"[\w.:@/+-]+")


def show(node_id: str) -> str:
    """A node id as it appears in a path or list: bare when plain, quoted (escapes visible, cut
    at 60 characters) when it holds spaces, arrows, commas or control characters or is long, so a
    message stays one unambiguous line."""
    return node_id if len(node_id) <= 60 and _PLAIN_ID.fullmatch(node_id) else _r(node_id)


def _cycle_text(path: list[str]) -> str:
    shown = [show(n) for n in path]
    if len(shown) > MESSAGE_NODES:
        hidden = len(shown) - MESSAGE_NODES
        shown = [*shown[: MESSAGE_NODES - 3], f"({hidden} more)", *shown[-3:]]
    return " -> ".join(shown)


def _names(ids: list[str]) -> str:
    shown = [show(n) for n in ids[:MESSAGE_NODES]]
    more = f" and {len(ids) - MESSAGE_NODES} more" if len(ids) > MESSAGE_NODES else ""
    return ", ".join(shown) + more


def _loops(graph: nx.DiGraph, rank: Mapping[str, int]) -> list[tuple[list[str], list[str]]]:
    """Each strongly connected component with more than one node: (its nodes in pipeline order,
    the shortest cycle through its first node)."""
    result = []
    for component in nx.strongly_connected_components(graph):
        if len(component) < 2:
            continue
        members = sorted(component, key=rank.__getitem__)
        sub = graph.subgraph(component)
        result.append((members, _shortest_cycle_through(sub, members[0], rank)))
    result.sort(key=lambda item: rank[item[0][0]])
    return result


def _topological_order(graph: nx.DiGraph, rank: Mapping[str, int]) -> list[str]:
    return list(nx.lexicographical_topological_sort(graph, key=rank.__getitem__))


def validate_pipeline(
    nodes: Any,
    edges: Any,
    *,
    node_types: Mapping[str, NodeType] | None = None,
    max_nodes: int = 50,
    allow_loops: bool = False,
    max_visits: int | None = None,
) -> PipelineReport:
    """Validate one pipeline graph and return every problem found (never raises on bad data).

    `nodes`: `[{"id": "a", "type": "agent", "config": {...}}]` (`data` is read when there is no
    `config`); `edges`: `[{"from": "a", "to": "b"}]` (`source`/`target` accepted too).
    `node_types`: the schema (default: GatheRing's node types). `allow_loops`: cycles are allowed,
    but each loop must be bounded, by `max_visits` (for every node) or by a node of the loop whose
    config has `max_visits`.
    """
    types = DEFAULT_NODE_TYPES if node_types is None else node_types
    out = _Collector()
    if max_visits is not None and not _positive_int(max_visits):
        raise ValueError(f"max_visits must be a positive integer, got {max_visits!r}")
    if not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"max_nodes must be a positive integer, got {max_nodes!r}")

    if nodes is None:
        nodes = []
    if edges is None:
        edges = []
    shape_ok = True
    if isinstance(nodes, tuple):
        nodes = list(nodes)
    if isinstance(edges, tuple):
        edges = list(edges)
    if not isinstance(nodes, list):
        out.add("invalid-pipeline", f"nodes must be a list, got {_describe(nodes)}")
        shape_ok = False
    if not isinstance(edges, list):
        out.add("invalid-pipeline", f"edges must be a list, got {_describe(edges)}")
        shape_ok = False
    if not shape_ok:
        return PipelineReport(list(out.problems))
    if not nodes:
        out.add("no-entry", "pipeline has no nodes")
        return PipelineReport(list(out.problems), edge_count=len(edges))

    # Nodes: ids, duplicates, types, config.
    graph = nx.DiGraph()
    rank: dict[str, int] = {}
    positions: dict[str, list[int]] = {}
    node_type_of: dict[str, NodeType] = {}
    for index, node in enumerate(nodes):
        if not isinstance(node, Mapping):
            out.add("invalid-node", f"node {index + 1}: expected an object, got {_describe(node)}")
            continue
        node_id = node.get("id")
        if not isinstance(node_id, str) or not node_id.strip():
            got = "no id" if node_id is None else f"id {_r(node_id)}"
            out.add("invalid-node", f"node {index + 1}: needs a non-empty string id, got {got}")
            continue
        positions.setdefault(node_id, []).append(index + 1)
        if node_id in rank:
            continue
        rank[node_id] = index
        graph.add_node(node_id)
        label = _node_label(index, node_id)
        type_name = node.get("type")
        known = _names(sorted(types))
        if type_name is None:
            out.add("unknown-node-type", f"{label} has no type (known types: {known})", [node_id])
            continue
        if not isinstance(type_name, str) or type_name not in types:
            out.add(
                "unknown-node-type",
                f"{label} has unknown type {_r(type_name)} (known types: {known})",
                [node_id],
            )
            continue
        node_type_of[node_id] = types[type_name]
        _check_config(out, label, node_id, types[type_name], _config_of(node))

    for node_id, where in positions.items():
        if len(where) > 1:
            out.add(
                "duplicate-node",
                f"node id {_r(node_id)} is used by {len(where)} nodes"
                f" (positions {', '.join(map(str, where))})",
                [node_id],
            )
    if len(nodes) > max_nodes:
        out.add(
            "too-many-nodes",
            f"pipeline has {len(nodes)} nodes; at most {max_nodes} are allowed",
        )
    by_type: dict[str, list[str]] = {}
    for node_id in node_type_of:
        by_type.setdefault(nodes[rank[node_id]]["type"], []).append(node_id)
    for type_name, members in by_type.items():
        limit = types[type_name].max_count
        if limit is not None and len(members) > limit:
            out.add(
                "too-many-of-type",
                f"pipeline has {len(members)} {type_name} nodes ({_names(members)});"
                f" at most {limit} {'is' if limit == 1 else 'are'} allowed",
                members,
            )

    # Edges: shape and ends.
    self_loops: list[tuple[str, str]] = []
    for index, edge in enumerate(edges):
        if not isinstance(edge, Mapping):
            out.add("invalid-edge", f"edge {index + 1}: expected an object, got {_describe(edge)}")
            continue
        label = _edge_label(index, edge)
        ends: list[str] = []
        for name, keys in (("source", ("from", "source")), ("target", ("to", "target"))):
            value, conflict = _endpoint(edge, keys)
            if conflict:
                out.add("invalid-edge", f"{label}: {conflict}")
            elif value is None:
                out.add("invalid-edge", f"{label}: no {name} ({keys[0]!r} or {keys[1]!r})")
            elif not isinstance(value, str) or not value:
                out.add(
                    "invalid-edge", f"{label}: {name} must be a node id string, got {_r(value)}"
                )
            else:
                ends.append(value)
        if len(ends) != 2:
            continue
        source, target = ends
        missing = [
            (name, end) for name, end in (("source", source), ("target", target)) if end not in rank
        ]
        if missing:
            detail = " and ".join(f"unknown {name} {_r(end)}" for name, end in missing)
            out.add(
                "dangling-edge",
                f"{label} ({show(source)} -> {show(target)}): {detail}",
                [end for end in (source, target) if end in rank],
            )
            continue
        if source == target:
            self_loops.append((label, source))
        graph.add_edge(source, target)

    # Loops.
    loops = _loops(graph, rank)
    if not allow_loops:
        for label, node_id in sorted(set(self_loops), key=lambda item: rank[item[1]]):
            out.add(
                "self-loop",
                f"self-loop on node {_r(node_id)} ({label}: {_cycle_text([node_id, node_id])})",
                [node_id],
            )
        for members, cycle in loops:
            on_cycle = set(cycle)
            others = [m for m in members if m not in on_cycle]
            extra = f" (the loop also runs through {_names(others)})" if others else ""
            out.add("cycle", f"cycle {_cycle_text(cycle)}{extra}", members)
    elif max_visits is None:
        _check_loop_bounds(out, graph, rank, nodes)

    # Reachability from the entry nodes.
    entries = [n for n in rank if n in node_type_of and node_type_of[n].entry]
    if not entries:
        entries = [
            n
            for n in sorted(rank, key=rank.__getitem__)
            if not any(p != n for p in graph.predecessors(n))
        ]
    entries.sort(key=rank.__getitem__)
    if not entries:
        out.add(
            "no-entry",
            "pipeline has no entry node: add a trigger, or a node without incoming edges",
        )
    else:
        reached: set[str] = set(entries)
        queue = deque(entries)
        while queue:
            for nxt in graph.successors(queue.popleft()):
                if nxt not in reached:
                    reached.add(nxt)
                    queue.append(nxt)
        names = f"node{'s' if len(entries) > 1 else ''} {_names(entries)}"
        for node_id in sorted(rank, key=rank.__getitem__):
            if node_id not in reached:
                out.add(
                    "unreachable",
                    f"node {_r(node_id)} is unreachable from the entry {names}",
                    [node_id],
                )

    order: list[str] = []
    if not out.problems and not loops and not self_loops:
        order = _topological_order(graph, rank)
    return PipelineReport(list(out.problems), tuple(order), tuple(entries), len(nodes), len(edges))


def _check_loop_bounds(
    out: _Collector, graph: nx.DiGraph, rank: Mapping[str, int], nodes: list[Any]
) -> None:
    """With loops allowed and no pipeline-wide limit: every loop must pass through a node whose
    config sets `max_visits`, i.e. the graph without those nodes has no cycle left."""
    bounded: set[str] = set()
    for node in nodes:
        if isinstance(node, Mapping) and isinstance(node.get("id"), str):
            config = _config_of(node)
            if isinstance(config, Mapping) and _positive_int(config.get("max_visits")):
                bounded.add(node["id"])
    rest = graph.subgraph([n for n in graph if n not in bounded])
    for node_id in sorted((n for n in rest if rest.has_edge(n, n)), key=rank.__getitem__):
        out.add(
            "unbounded-loop",
            f"loop {_cycle_text([node_id, node_id])} has no visit limit: set max_visits in the"
            f" config of {_r(node_id)} or for the pipeline",
            [node_id],
        )
    for members, cycle in _loops(nx.DiGraph(rest), rank):
        out.add(
            "unbounded-loop",
            f"loop {_cycle_text(cycle)} has no visit limit: set max_visits in the config of one"
            " of its nodes or for the pipeline",
            members,
        )
