"""Pipeline and schedule validation: the graph validator (`validate_pipeline`, on networkx), the
node-type schema, per-node visit limits for graphs that allow loops, and cron validation
(`pipelines.cron`, on croniter). Pure library code: returns plain data, never prints.

```python
from gathering_consolidate.pipelines import validate_pipeline

report = validate_pipeline(nodes, edges)          # PipelineReport
if not report.ok:
    raise HTTPException(422, detail=report.messages)
```
"""

from __future__ import annotations

from .node_types import DEFAULT_NODE_TYPES, NodeType, NodeTypesError, node_types_from_data
from .validator import CODES, PipelineProblem, PipelineReport, validate_pipeline
from .visits import VisitCounter, VisitLimitExceeded, visit_limits

__all__ = [
    "CODES",
    "DEFAULT_NODE_TYPES",
    "NodeType",
    "NodeTypesError",
    "PipelineProblem",
    "PipelineReport",
    "VisitCounter",
    "VisitLimitExceeded",
    "node_types_from_data",
    "validate_pipeline",
    "visit_limits",
]
