"""Per-node visit limits for running a pipeline whose graph allows loops.

The validator checks that every loop is bounded; an executor enforces the bound while it runs:
it calls `VisitCounter.visit(node_id)` before executing a node, and the counter raises
`VisitLimitExceeded` once a node would run more often than its limit (its config's `max_visits`,
else the pipeline-wide default). A node without any limit is unbounded (fine in a DAG, where the
executor visits each node once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


class VisitLimitExceeded(RuntimeError):
    """A node was about to run more often than its visit limit."""

    def __init__(self, node_id: str, limit: int) -> None:
        super().__init__(f"node {node_id!r} reached its visit limit ({limit})")
        self.node_id = node_id
        self.limit = limit


def visit_limits(nodes: Iterable[Any], default: int | None = None) -> dict[str, int | None]:
    """Node id -> its visit limit: `config.max_visits` (or `data.max_visits`) when it is a positive
    integer, else `default`."""
    limits: dict[str, int | None] = {}
    for node in nodes:
        if not isinstance(node, Mapping) or not isinstance(node.get("id"), str):
            continue
        config = node["config"] if "config" in node else node.get("data")
        value = config.get("max_visits") if isinstance(config, Mapping) else None
        valid = isinstance(value, int) and not isinstance(value, bool) and value > 0
        limits[node["id"]] = value if valid else default
    return limits


class VisitCounter:
    """Counts the visits of each node of one run and enforces the limits (not thread-safe: one
    counter per run, used by the task that runs it)."""

    def __init__(self, limits: Mapping[str, int | None], default: int | None = None) -> None:
        self._limits = dict(limits)
        self._default = default
        self._counts: Counter[str] = Counter()

    @classmethod
    def for_pipeline(cls, nodes: Iterable[Any], max_visits: int | None = None) -> VisitCounter:
        return cls(visit_limits(nodes, max_visits), max_visits)

    def limit(self, node_id: str) -> int | None:
        return self._limits.get(node_id, self._default)

    def visit(self, node_id: str) -> int:
        """Record one visit; returns how many times the node has now run. Raises
        `VisitLimitExceeded` (and records nothing) when the limit is already reached."""
        limit = self.limit(node_id)
        if limit is not None and self._counts[node_id] >= limit:
            raise VisitLimitExceeded(node_id, limit)
        self._counts[node_id] += 1
        return self._counts[node_id]

    def count(self, node_id: str) -> int:
        return self._counts[node_id]
