"""Glue between the EXC checks and `flow`: run the cross-file analysis once per audit and turn a
broad handler into a finding (evidence, message, fix)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from ...model import Finding, Location, fingerprint
from ..base import Check, FileContext, Option, ProjectCheck, ProjectContext
from . import flow, helpers
from .flow import (
    AnalysisIncomplete,
    ExceptionMap,
    FileFacts,
    HandlerAnalysis,
    World,
    default_map,
)
from .tiers import tiers_for

#: Options shared by EXC001 and EXC002 (set them once in `[tool.gathering-consolidate.checks.EXC]`).
OPTIONS = {
    "calls": Option(
        {},
        "Extra call patterns -> exception types, on top of rules/exceptions.toml"
        ' (`{"app.llm.*" = ["app.llm.LLMError"]}`); an entry replaces the default for the same'
        " pattern.",
    ),
    "step-budget": Option(
        flow.STEP_BUDGET,
        "Resolution steps the cross-file analysis may spend; past it every handler left is"
        " reported as unknown (never as raising nothing) and EXC003 says so.",
    ),
    "modules": Option(
        [],
        "Extra module rules: `[{paths = [globs], types = [...], requires = package}]`: what broad"
        " handlers in those files are narrowed to when the try body's calls tell nothing.",
    ),
}

_SENTENCES = {
    "reraise": "re-raises it",
    "wrap_raise": "raises another exception from it",
    "exit": "ends the process",
    "return_default": "returns a default value instead",
    "return_error": "returns an error value instead",
    "log_continue": "logs and carries on",
    "pass": "silently drops it",
    "other": "does not re-raise it",
}


def analyse(
    facts: Mapping[str, FileFacts], project: ProjectContext, options: Mapping[str, Any]
) -> list[HandlerAnalysis]:
    """Every broad handler of the project with its analysis, computed once per audit (EXC001
    and EXC002 share it through the project memo)."""
    budget = int(options.get("step-budget") or flow.STEP_BUDGET)
    key = "exc.analysis:" + json.dumps(
        [options.get("calls") or {}, options.get("modules") or [], budget],
        sort_keys=True,
        default=str,
    )

    def compute() -> list[HandlerAnalysis]:
        calls, modules = options.get("calls") or {}, options.get("modules") or []
        mapping = ExceptionMap.build(calls, modules) if calls or modules else default_map()
        world = World(facts, mapping)
        world.budget = budget
        world.library = project.library
        found = []
        for path in sorted(facts):
            for handler in facts[path].handlers:
                if handler.isolation:
                    continue
                found.append(world.analyse(path, handler))
        try:
            tiers = tiers_for(world, project.tier_overrides)
        except AnalysisIncomplete:
            tiers = {}  # the path tiers stand in; EXC003 reports the budget
        for item in found:
            item.tier, item.tier_reason = tiers.get(
                (item.path, item.facts.line),
                (project.tiers.get(item.path), "by path (the analysis ran out of budget)"),
            )
        return found

    return project.memoized(key, compute)


class ExceptionCheck(ProjectCheck):
    """Base of the EXC checks: one shared collector (`flow.collect`), the shared options, and
    the cache inputs of the cross-file analysis they all read (`analyse`)."""

    collector = "EXC"
    OPTIONS = OPTIONS

    @classmethod
    def collect(cls, ctx: FileContext) -> FileFacts:
        return flow.collect(ctx)

    def cache_inputs(self, project: ProjectContext) -> str:
        """What the analysis reads besides the facts: the target environment's installed
        library source, when one is given (an upgrade there changes what a wrapper raises)."""
        return "" if project.library is None else project.library.signature()


def evidence(item: HandlerAnalysis) -> dict[str, Any]:
    handler = item.facts
    data: dict[str, Any] = {
        "behaviour": item.behaviour,
        "mixed": handler.mixed,
        "logs_traceback": handler.logs_traceback,
        "catches": handler.catches,
        "raises": item.raises,
        "unresolved_calls": item.unresolved,
        "narrow_to": item.narrow_to,
        "narrow_source": item.narrow_source,
        "dispatch": handler.dispatch,
        "isolation_boundary": handler.boundary,
        "tier_reason": item.tier_reason,
    }
    if item.narrow_reason:
        data["narrow_reason"] = item.narrow_reason
    return data


def message(item: HandlerAnalysis) -> str:
    handler = item.facts
    what = "bare `except:`" if handler.catches == "bare" else f"`except {handler.catches}`"
    text = f"{what} catches every error and {_SENTENCES[item.behaviour]}"
    if item.behaviour in helpers.SWALLOWING and not handler.logs_traceback:
        text += " without logging the traceback"
    if handler.dispatch:
        return text + "; an event-bus dispatch: route it through safe_handler (isolate-handlers)"
    if item.narrow_to:
        return text + f"; catch {', '.join(item.narrow_to)} instead"
    return text + "; catch the specific errors the try body raises"


def findings(
    check: Check, items: list[HandlerAnalysis], project: ProjectContext, behaviours: tuple[str, ...]
) -> Iterator[Finding]:
    for item in items:
        handler = item.facts
        if item.behaviour not in behaviours:
            continue
        fix = helpers.ISOLATE_FIX if handler.dispatch else check.fix
        yield Finding(
            rule=check.id,
            name=check.name,
            message=message(item),
            severity=check.severity,
            location=Location(
                item.path, handler.line, handler.column, handler.end_line, handler.end_column
            ),
            symbol=handler.symbol,
            tier=item.tier,
            evidence=evidence(item),
            fix=fix,
            fingerprint=fingerprint(check.id, item.path, handler.symbol, handler.snippet),
        )
