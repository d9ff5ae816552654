"""Codemod `lint-guard`: make ruff block new broad exception handlers (BLE001, S110, S112, E722)
while the ones still waiting for their phase are listed, file by file, as tracked debt."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import Table

from ..audit.base import Option
from ..config import path_matches
from ..model import Applicability
from ._exceptions_helpers import EXC_RULES, GUARD_CODES, GuardHit, ruff_guard_hits
from .base import (
    Changed,
    Codemod,
    CodemodProject,
    Failed,
    Keeps,
    Outcome,
    Refused,
    Refuses,
    Unchanged,
)

#: The config files ruff reads, in its order of precedence.
_CONFIG_FILES = (".ruff.toml", "ruff.toml", "pyproject.toml")
_MANAGED = "extend-per-file-ignores"
_HEADER = (
    "Broad exception handlers waiting for their consolidation phase (tracked debt).",
    "Written by `gathering-consolidate migrate lint-guard`; run it again after fixes to",
    "shrink this table. New broad handlers anywhere else fail the lint.",
)
_LEGACY_KEYS = ("select", "extend-select", "ignore", "per-file-ignores", _MANAGED)


class LintGuard(Codemod):
    """Add ruff's broad-handler rules to the target's ruff configuration, with per-file
    ignores that cover exactly today's remaining debt.

    Edits the ruff config ruff itself would read at the project root (`.ruff.toml`, `ruff.toml`,
    else `pyproject.toml`'s `[tool.ruff]`), keeping its comments and order (tomlkit):

    * `extend-select` gets `BLE001` (blind except), `S110` (try-except-pass), `S112`
      (try-except-continue) and `E722` (bare except), unless the selection already has them;
      an exact `ignore` of one of them is removed, since it would switch the guard off;
    * `extend-per-file-ignores` lists each file whose broad handlers are still waiting for a
      later phase (files of a tier above `--tier`, default 1), with exactly the codes ruff
      reports there (computed with ruff's semantics: a handler that re-raises or calls
      `logger.exception` is not a BLE001), plus tier-1 handlers acknowledged with
      `# consolidate: ignore[EXC001] reason` / `fixme[...]`. The guard owns these four codes in
      that table: running it again after fixes removes what is gone.

    Handlers in the current phase that are neither fixed nor acknowledged are not covered; they
    are listed (as refusals) because ruff will now report them. Safe: it changes configuration
    only. It refuses when the project has no pyproject.toml or ruff config.
    """

    id = "lint-guard"
    description = "Add ruff rules that block new broad except handlers, with per-file debt ignores."
    applicability = Applicability.SAFE
    fixes = ()
    OPTIONS = {
        "tier": Option(
            1,
            "The current phase: handlers in files of this tier and below must be fixed; files of"
            " higher tiers get per-file ignores.",
        ),
    }
    CASES = [
        Keeps(
            """
            [project]
            name = "app"

            [tool.ruff.lint]
            select = ["E", "F", "BLE", "S"]
            """,
            path="pyproject.toml",
        ),
        Refuses("x = 1\n", reason="no pyproject.toml", path="app/module.py"),
    ]

    def run(self, project: CodemodProject) -> Iterator[Outcome]:
        found = _read_config(project)
        if found is None:
            yield Refused(
                "pyproject.toml",
                "no pyproject.toml or ruff.toml at the project root: nowhere to add the guard",
            )
            return
        relpath, before = found
        try:
            document = tomlkit.parse(before)
        except tomlkit.exceptions.TOMLKitError as exc:
            yield Failed(relpath, f"cannot parse: {exc}")
            return
        ruff, lint = _tables(document, relpath)
        phase = int(self.options["tier"])
        audited = project.audit(EXC_RULES)
        acknowledged = {
            (s.finding.location.path, s.finding.location.line) for s in audited.suppressed
        }
        # Tiers come per handler, from what it protects (EXC); the path's tier stands in for a
        # hit the audit did not report (say, one ruff flags and EXC does not).
        handler_tiers = {
            (f.location.path, f.location.line): f.tier
            for f in audited.findings
            if f.tier is not None
        }
        excluded = [*_strings(ruff.get("exclude")), *_strings(ruff.get("extend-exclude"))]
        user_ignores = _mapping(lint.get("per-file-ignores"))
        managed_now = _mapping(lint.get(_MANAGED))
        for key, codes in managed_now.items():
            kept = [c for c in codes if c not in GUARD_CODES]
            if kept:
                user_ignores[key] = kept
        desired: dict[str, list[str]] = {}
        refusals: list[Refused] = []
        for path in sorted(project.files):
            project.step("checking files", 1, len(project.files))
            if not path.endswith(".py") or (excluded and path_matches(path, excluded)):
                continue
            try:
                tree = ast.parse(project.files[path])
            except (SyntaxError, ValueError):
                continue
            hits = ruff_guard_hits(project.files[path], tree)
            if not hits:
                continue
            already = {
                c for key, codes in user_ignores.items() if _matches(path, key) for c in codes
            }
            default = project.config.tier_for(path)
            tiers = {hit.line: handler_tiers.get((path, hit.line), default) for hit in hits}
            codes = _covered(path, hits, tiers, phase, acknowledged, already, refusals)
            if codes:
                desired[_escape(path)] = codes
        changed, notes = _apply(document, ruff, lint, desired, managed_now)
        yield from refusals
        if not changed:
            yield Unchanged(relpath)
            return
        after = tomlkit.dumps(document)
        yield Changed(relpath, before if before else None, after, tuple(notes))


def _read_config(project: CodemodProject) -> tuple[str, str] | None:
    for name in _CONFIG_FILES:
        if name in project.files:
            return name, project.files[name]
        path = Path(project.root) / name
        if path.is_file():
            return name, path.read_text(encoding="utf-8")
    return None


def _tables(document: Any, relpath: str) -> tuple[Any, Any]:
    """The ruff table and the table lint settings go in (`lint`, or the ruff table itself for a
    config that still uses the pre-0.2 top-level keys), created when missing."""
    if relpath == "pyproject.toml":
        if "tool" not in document:
            document.add("tool", tomlkit.table(is_super_table=True))
        tool = document["tool"]
        if "ruff" not in tool:
            tool.add("ruff", tomlkit.table(is_super_table=True))
        ruff = tool["ruff"]
    else:
        ruff = document
    if "lint" not in ruff and any(key in ruff for key in _LEGACY_KEYS):
        return ruff, ruff
    if "lint" not in ruff:
        ruff.add("lint", tomlkit.table())
    return ruff, ruff["lint"]


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _mapping(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): _strings(v) for k, v in value.items()}


def _matches(path: str, pattern: str) -> bool:
    return pattern == path or path_matches(path, (pattern,))


def _escape(path: str) -> str:
    return re.sub(r"([\[\]*?{}])", r"[\1]", path)


def _covered(
    path: str,
    hits: list[GuardHit],
    tiers: dict[int, int],
    phase: int,
    acknowledged: set[tuple[str, int]],
    already: set[str],
    refusals: list[Refused],
) -> list[str]:
    """The codes to ignore for one file: all of them in a later phase; in the current one,
    the codes whose every hit is acknowledged. Uncovered current-phase hits become refusals."""
    codes: set[str] = set()
    open_hits: dict[str, list[int]] = {}
    for hit in hits:
        for code in hit.codes:
            if code in already:
                continue
            if tiers[hit.line] > phase or (path, hit.line) in acknowledged:
                codes.add(code)
            else:
                open_hits.setdefault(code, []).append(hit.line)
    for code in list(codes):
        if code in open_hits:
            codes.discard(code)  # ignoring it would hide an unacknowledged handler too
    by_line: dict[int, list[str]] = {}
    for code, lines in open_hits.items():
        for line in lines:
            by_line.setdefault(line, []).append(code)
    for line, line_codes in sorted(by_line.items()):
        refusals.append(
            Refused(
                path,
                f"tier {tiers[line]} is in the current phase: ruff will report"
                f" {', '.join(sorted(line_codes))} here until it is fixed (narrow-except) or"
                " acknowledged (`# consolidate: fixme[EXC001] reason`)",
                line,
            )
        )
    return sorted(codes)


_LINTERS = {"BLE001": "BLE", "E722": "E", "S110": "S", "S112": "S"}


def _selected(code: str, selectors: list[str]) -> bool:
    """Whether a ruff selector list selects `code`: `ALL`, the code's linter prefix, or that
    prefix plus a leading part of the number (`"B"` is flake8-bugbear: it does not select
    `BLE001`)."""
    linter = _LINTERS[code]
    for selector in selectors:
        if selector == "ALL":
            return True
        rest = selector[len(linter) :]
        if (
            selector.startswith(linter)
            and (rest == "" or rest.isdigit())
            and code.startswith(selector)
        ):
            return True
    return False


def _apply(
    document: Any,
    ruff: Any,
    lint: Any,
    desired: dict[str, list[str]],
    managed_now: dict[str, list[str]],
) -> tuple[bool, list[str]]:
    changed = False
    notes: list[str] = []
    selectors = [*_strings(lint.get("select")), *_strings(lint.get("extend-select"))]
    missing = [c for c in GUARD_CODES if not _selected(c, selectors)]
    if missing:
        if "extend-select" in lint:
            for code in missing:
                lint["extend-select"].append(code)
        else:
            array = tomlkit.array()
            array.extend(missing)
            lint["extend-select"] = array
        changed = True
    ignore = lint.get("ignore")
    if isinstance(ignore, list):
        dropped = [c for c in _strings(ignore) if c in GUARD_CODES]
        for code in dropped:
            ignore.remove(code)
            notes.append(f"removed {code} from `ignore`: it would switch the guard off")
            changed = True
    # The managed table: our four codes per file, other codes left as they are.
    target: dict[str, list[str]] = {}
    for key, codes in managed_now.items():
        kept = [c for c in codes if c not in GUARD_CODES]
        ours = desired.get(key, [])
        if kept or ours:
            target[key] = kept + ours
    for key in sorted(desired):
        if key not in target:
            target[key] = desired[key]
    if target == managed_now:
        return changed, notes
    changed = True
    if not target:
        del lint[_MANAGED]
        notes.append("no broad handler is waiting any more: the debt table is gone")
        return changed, notes
    table = lint.get(_MANAGED)
    if not isinstance(table, (Table, Mapping)) or table is None:
        table = tomlkit.table()
        for line in _HEADER:
            table.add(tomlkit.comment(line))
        lint.add(_MANAGED, table)
        fresh = True
    else:
        fresh = False
    for key in list(table.keys()):
        if key not in target:
            del table[key]
    for key, codes in target.items():
        if _strings(table.get(key)) != codes:
            table[key] = codes
    if fresh:
        table.add(tomlkit.nl())
    added = sorted(set(target) - set(managed_now))
    removed = sorted(set(managed_now) - set(target))
    if added:
        notes.append(f"{len(added)} file(s) listed as tracked debt")
    if removed:
        notes.append(f"{len(removed)} file(s) no longer need an ignore: {', '.join(removed)}")
    return changed, notes
