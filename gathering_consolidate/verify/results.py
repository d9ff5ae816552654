"""Verify results as plain data (contract D): one `CheckResult` per check, one `VerifyResult` per
run. Nothing here prints; the `verify` command renders them as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "not-applicable", "error"]
STATUSES: tuple[Status, ...] = ("pass", "fail", "not-applicable", "error")


@dataclass
class CheckResult:
    """What one check found: a status, a one-sentence summary, the evidence lines behind it and
    its measurements."""

    id: str
    name: str
    status: Status
    summary: str
    evidence: list[str] = field(default_factory=list)
    metrics: dict[str, float | int | str] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "metrics": dict(self.metrics),
            "duration_s": round(self.duration_s, 3),
        }


@dataclass
class VerifyResult:
    """One `verify` run: the target, the app, the profile, the (masked) database, the checks."""

    target: str
    app: str
    profile: str
    database: str
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no check failed or errored (not-applicable checks do not count)."""
        return all(check.status in ("pass", "not-applicable") for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "app": self.app,
            "profile": self.profile,
            "database": self.database,
            "checks": [check.to_dict() for check in self.checks],
            "passed": self.passed,
        }
