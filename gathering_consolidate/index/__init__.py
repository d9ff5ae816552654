"""The project index: per-module facts collected from `ast` (cached with each file) and, built
from them once per run, a cross-module call graph with types and FastAPI routes.

    facts = collect_module(ctx)              # in a ProjectCheck.collect, per file
    index = build_index(facts_by_path.values())
    index.targets[qualname][i]               # what call i of a function resolves to
    index.callers(qualname)                  # [(caller, call index)] of resolved calls to it
    index.graph                              # networkx DiGraph, built on first use
    index.routes[qualname]                   # [Route(function, methods, path, line)]
"""

from .facts import (
    AsyncConstruct,
    Call,
    ClassInfo,
    Function,
    ModuleFacts,
    Param,
    RouteDecorator,
    collect_module,
    dotted_text,
)
from .graph import ROUTER_CLASSES, Index, Route, Target, build_index

__all__ = [
    "ROUTER_CLASSES",
    "AsyncConstruct",
    "Call",
    "ClassInfo",
    "Function",
    "Index",
    "ModuleFacts",
    "Param",
    "Route",
    "RouteDecorator",
    "Target",
    "build_index",
    "collect_module",
    "dotted_text",
]
