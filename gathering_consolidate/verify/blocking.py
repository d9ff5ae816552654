"""`verify --detect-blocking`: restart the app under blockbuster (`_blockbuster_boot.py`, in the
target's interpreter), request each load endpoint and the health endpoint, list every blocking
call made on the event loop from the target's own code, and match each site to the audit's ASY
finding on the same lines; then restart the app normally."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gathering_consolidate.verify.checks import Outcome
from gathering_consolidate.verify.context import VerifyContext
from gathering_consolidate.verify.runtime import AppProcess, RuntimeStartError

BOOT = Path(__file__).with_name("_blockbuster_boot.py")
_VENDORED = ("site-packages", "dist-packages", "/.venv/", "/venv/", "/lib/python")


@dataclass
class BlockingSite:
    path: str  # relative to the target
    line: int
    function: str
    calls: set[str] = field(default_factory=set)
    chain: list[str] = field(default_factory=list)  # target frames, outermost first
    rule: str | None = None
    rule_line: int | None = None
    origins: set[str] = field(default_factory=set)  # the frame that made the call, when not ours

    def describe(self) -> str:
        matched = (
            f"matches {self.rule} at line {self.rule_line}" if self.rule else "no audit finding"
        )
        origins = sorted(self.origins)
        more = f" +{len(origins) - 3} more" if len(origins) > 3 else ""
        below = f" (called in {', '.join(origins[:3])}{more})" if origins else ""
        return (
            f"{self.path}:{self.line} {self.function}(): {', '.join(sorted(self.calls))}{below} "
            f"[{matched}]" + (f" via {' > '.join(self.chain)}" if len(self.chain) > 1 else "")
        )


def _target_frames(target: Path, stack: list[list[Any]]) -> list[tuple[str, int, str]]:
    root = str(target) + "/"
    out = []
    for filename, line, name in stack:
        if filename.startswith(root) and not any(v in filename[len(root) :] for v in _VENDORED):
            out.append((filename[len(root) :], int(line), str(name)))
    return out


def parse_records(target: Path, text: str, findings: list[Any] = ()) -> list[BlockingSite]:
    """The blocking sites in a record file. A site is the outermost frame of the target's code
    that lies on an ASY finding (the async code that made the sync call), else the innermost
    frame of the target's code (the closest to the call); all its target frames are its chain,
    and the library frame that made the call, when it is not the target's, its origin."""
    sites: dict[tuple[str, int], BlockingSite] = {}
    for raw in text.splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        frames = _target_frames(target, record.get("stack", []))
        if not frames:
            continue
        chosen, rule = frames[-1], None
        for frame in frames:
            rule = _finding_at(frame, findings)
            if rule is not None:
                chosen = frame
                break
        path, line, function = chosen
        site = sites.setdefault((path, line), BlockingSite(path, line, function))
        site.calls.add(".".join(str(record.get("call")).split(".")[-2:]))
        stack = record.get("stack") or []
        if stack and tuple(stack[-1][:2]) != (str(target / frames[-1][0]), frames[-1][1]):
            filename, line, name = stack[-1]
            site.origins.add(f"{'/'.join(str(filename).split('/')[-2:])}:{line} {name}")
        site.chain = [f"{p}:{ln} {fn}" for p, ln, fn in frames]
        if rule is not None:
            site.rule, site.rule_line = rule.rule, rule.location.line
    return sorted(sites.values(), key=lambda s: (s.path, s.line))


def _finding_at(frame: tuple[str, int, str], findings) -> Any:
    path, line, _name = frame
    for finding in findings:
        loc = finding.location
        if loc.path == path and loc.line <= line <= (loc.end_line or loc.line):
            return finding
    return None


def _record_blocking_calls(
    ctx: VerifyContext,
    out: Outcome,
    endpoints: list[dict[str, Any]],
    headers: dict[str, str],
    record: Path,
) -> bool:
    """Serve the app under the blockbuster launcher writing to `record`, request the health
    endpoint and each load endpoint twice, then put the normal app back. False when the app did
    not start that way (the problem is on `out`)."""
    import httpx

    probe = AppProcess(
        app=ctx.app.app, cwd=ctx.app.cwd, env=dict(ctx.app.env), health_path=ctx.app.health_path,
        python=ctx.app.python, startup_timeout=ctx.app.startup_timeout,
        command=[ctx.app.python, str(BOOT), "{app}", "{port}", str(record)],
    )  # fmt: skip
    ctx.app.stop()
    try:
        try:
            probe.start()
        except RuntimeStartError as exc:
            out.problem(
                "--detect-blocking: the app did not start under blockbuster (is `blockbuster` "
                f"installed in the target's environment?): {str(exc).splitlines()[0]}"
            )
            return False
        with httpx.Client(timeout=30) as client:
            for _ in range(2):
                client.get(probe.base_url + ctx.app.health_path)
                for endpoint in endpoints:
                    client.request(
                        endpoint["method"], probe.base_url + endpoint["path"], headers=headers,
                        json=endpoint.get("json"),
                    )  # fmt: skip
    finally:
        probe.stop()
        ctx.app.start()
    return True


def asy_findings(target: Path) -> list[Any]:
    from gathering_consolidate.project import audit

    result = audit(target, select=["ASY"])
    return [f for f in result.findings if f.rule.startswith("ASY")]


def detect_blocking(
    ctx: VerifyContext, out: Outcome, endpoints: list[dict[str, Any]], headers: dict[str, str]
) -> list[BlockingSite]:
    ctx.say("event-loop: restarting the app under blockbuster")
    fd, record_name = tempfile.mkstemp(prefix="gc-verify-blocking-", suffix=".jsonl")
    os.close(fd)
    record = Path(record_name)
    try:
        if not _record_blocking_calls(ctx, out, endpoints, headers, record):
            return []
        text = record.read_text(encoding="utf-8", errors="replace")
    finally:
        record.unlink(missing_ok=True)
    findings: list[Any] = []
    try:
        findings = asy_findings(ctx.target)
    except (OSError, ValueError) as exc:  # an audit configuration problem: report, go on
        out.note(f"--detect-blocking: the audit could not run to match ASY findings: {exc}")
    sites = parse_records(ctx.target, text, findings)
    matched = sum(1 for s in sites if s.rule)
    out.metrics["blocking_sites"] = len(sites)
    out.metrics["blocking_matched"] = matched
    out.note(
        f"blockbuster caught {len(sites)} blocking call site(s) on the event loop, "
        f"{matched} matched to the audit's ASY findings"
    )
    for site in sites:
        out.note("blocking: " + site.describe())
    return sites
