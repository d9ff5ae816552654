"""The verify checks, one module each (`VFY0xx`), run in this order against one running app.

Each module has `ID`, `NAME`, a docstring (what it proves, why, how to fix a failure) and
`run(ctx, out)`: it records evidence and metrics on `out` and returns `out.passed(...)` or
`out.failed(...)`; it raises `NotApplicable` when the profile or the app lacks what it needs."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from gathering_consolidate.verify.results import CheckResult, Status

MODULES = (
    "vfy001_auth_contract",
    "vfy002_event_loop",
    "vfy003_injection",
    "vfy004_pipelines",
    "vfy005_schedules",
    "vfy006_rate_limit",
    "vfy007_startup_guard",
)


@dataclass
class Outcome:
    """What a check builds while it runs."""

    evidence: list[str] = field(default_factory=list)
    metrics: dict[str, float | int | str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.evidence.append(line)

    def problem(self, line: str) -> None:
        """A failed expectation: kept as evidence, and the check fails at the end."""
        self.problems.append(line)
        self.evidence.append("FAIL: " + line)

    def passed(self, summary: str) -> tuple[Status, str]:
        return "pass", summary

    def verdict(self, ok_summary: str) -> tuple[Status, str]:
        """pass with `ok_summary` when nothing failed, else fail naming the first problem."""
        if not self.problems:
            return "pass", ok_summary
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return "fail", self.problems[0] + more


def modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in MODULES]


def catalogue() -> list[tuple[str, str, str]]:
    """(id, name, first docstring line) of every check."""
    out = []
    for module in modules():
        doc = (module.__doc__ or "").strip().splitlines()
        out.append((module.ID, module.NAME, doc[0] if doc else ""))
    return out


def select(wanted: list[str] | None) -> list[ModuleType]:
    """The checks named in `wanted` (ids or names, any case); all when None. Raises ValueError
    naming an unknown one."""
    every = modules()
    if not wanted:
        return every
    by_key = {m.ID.lower(): m for m in every} | {m.NAME.lower(): m for m in every}
    chosen: list[ModuleType] = []
    for item in wanted:
        for part in item.split(","):
            key = part.strip().lower()
            if not key:
                continue
            if key not in by_key:
                known = ", ".join(f"{m.ID} ({m.NAME})" for m in every)
                raise ValueError(f"unknown check {part.strip()!r} (known: {known})")
            if by_key[key] not in chosen:
                chosen.append(by_key[key])
    return [m for m in every if m in chosen]


def result(
    module: ModuleType, status: Status, summary: str, out: Outcome, duration: float
) -> CheckResult:
    return CheckResult(
        id=module.ID, name=module.NAME, status=status, summary=summary,
        evidence=out.evidence, metrics=out.metrics, duration_s=duration,
    )  # fmt: skip
