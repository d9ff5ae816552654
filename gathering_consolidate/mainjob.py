"""The main job (`gathering-consolidate run`): copy a project, audit it, migrate it, prove it.

The user's tree is only read. `run_job` copies the project into `<out>/before` (kept as it was:
the "before" verify runs there) and `<out>/after` (migrated), then runs the stages of `STAGES` in
order. A stage is plain data (`Stage`: id, title, the stages it needs, a function); each returns a
`StageResult` (status `ok`, `failed`: it ran and found something wrong, `error`: it could not
run, or `skipped`: not asked for or a stage it needs did not succeed, with the reason). A stage
that errors never stops the others: each later stage runs if what it needs is there.

Stages (`STAGES`):

1. `copy`: the project root (the folder of the nearest `pyproject.toml` at or above PATH) into
   `before/` and `after/`, without `.git`, virtual environments and caches;
2. `audit-before`: the audit of the copy, findings per family and tier;
3. `codemods`: every safe codemod (and the unsafe ones with `unsafe_fixes`) planned and written
   one after the other on `after/`, each diff kept in `diffs/<id>.diff`; an unsafe codemod not
   applied is still planned, its diff kept as `diffs/<id>.proposed.diff` for a reviewer;
   `lint-guard` runs last, so its per-handler debt markers list what is left after the fixes;
4. `tests`: the `tag-tests` codemod, then the test ledger of `after/` (`tests-ledger.json`);
5. `schema`: the toolkit's alembic revisions applied on a disposable database of the embedded
   PostgreSQL (or `database_url`), on top of the project's `schema/*.sql`;
6. `verify-before`, `verify-after`: the verify checks on `before/` and `after/` (`app` needed);
7. `audit-after`: the audit of `after/`: what is left for people.

`run_job` returns a `RunResult` (`to_dict()` is `result.json`); `write_outputs` writes
`result.json`, `report.md` and `report.html` beside the copies. Nothing here prints: progress goes
through the `progress` callback the command renders.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shlex
import shutil
import stat
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import DEFAULT_EXCLUDES
from .safeio import write_atomic
from .version import __version__

RESULT_SCHEMA = "gathering-consolidate/run"
RESULT_VERSION = 1

#: Never copied: what the audit never reads (version control, virtual environments, caches),
#: except build output, which the app may need, plus compiled files.
COPY_IGNORED = (
    *(p for p in DEFAULT_EXCLUDES if p not in ("build", "dist", "site-packages", ".eggs")),
    "*.pyc",
)

#: Codemods in the order they are applied: rewrites that fix one pattern first, then the ones
#: that move handlers and database access, `lint-guard` last (its debt table reflects the fixes).
#: A codemod of the registry not named here runs before `lint-guard`, in id order.
CODEMOD_ORDER = (
    "aware-datetimes",
    "parameterise-sql",
    "safe-update-builder",
    "narrow-except",
    "isolate-handlers",
    "async-db",
    "async-to-def",
    "lint-guard",
)
#: Codemods the `codemods` stage leaves to their own stage.
CODEMODS_ELSEWHERE = ("tag-tests",)
#: The files a run writes into the output folder (besides before/, after/ and diffs/).
OUTPUT_FILES = (
    "result.json",
    "report.md",
    "report.html",
    "audit-before.json",
    "audit-after.json",
    "tests-ledger.json",
    "schema.sql",
)
#: Lines of one codemod's diff kept in the result (the whole diff is in its file).
DIFF_LINES_KEPT = 400
#: Findings listed one by one in the result (per audit).
FINDINGS_KEPT = 500

STATUSES = ("ok", "failed", "error", "skipped")
#: Stages whose `failed` does not fail the run: the original app failing its checks is expected.
EXPECTED_FAILURES = ("verify-before",)


# -- plain data ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOptions:
    """What the user asked for. `database_url` is never stored in the result (only masked)."""

    target: Path
    out: Path
    unsafe_fixes: bool = False
    app: str | None = None
    profile: str | None = None
    database_url: str | None = None
    python: str | None = None
    skip_verify: bool = False
    verify_checks: tuple[str, ...] = ()  # only these verify checks (default: all)
    data_dir: Path | None = None  # the embedded PostgreSQL's data folder (tests pass a tmp one)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": str(self.target),
            "out": str(self.out),
            "unsafe_fixes": self.unsafe_fixes,
            "app": self.app,
            "profile": self.profile,
            "database": _masked(self.database_url) if self.database_url else "embedded",
            "python": self.python,
            "skip_verify": self.skip_verify,
            "verify_checks": list(self.verify_checks),
        }


@dataclass(frozen=True)
class ProgressEvent:
    """`kind`: `start` (a stage begins), `step` (a message within it) or `end` (`status` set)."""

    kind: str
    stage: str
    title: str
    index: int
    total: int
    message: str = ""
    status: str = ""
    duration_s: float = 0.0


Progress = Callable[[ProgressEvent], None]


@dataclass
class StageResult:
    id: str
    title: str
    status: str  # ok / failed / error / skipped
    summary: str
    duration_s: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)
    detail: str = ""  # the traceback tail of an internal error

    @property
    def fails_run(self) -> bool:
        """An error, or a failure other than the expected ones (`EXPECTED_FAILURES`)."""
        return self.status == "error" or (
            self.status == "failed" and self.id not in EXPECTED_FAILURES
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "fails_run": self.fails_run,
            "summary": self.summary,
            "duration_s": round(self.duration_s, 3),
            "data": self.data,
            "detail": self.detail,
        }


@dataclass
class RunResult:
    options: RunOptions
    project_root: str
    before_dir: str
    after_dir: str
    stages: list[StageResult]
    duration_s: float
    commands: list[str]
    started_at: str

    def stage(self, stage_id: str) -> StageResult | None:
        return next((s for s in self.stages if s.id == stage_id), None)

    @property
    def exit_code(self) -> int:
        """0 every stage that ran succeeded; 1 a stage failed or could not run (the report says
        which). Findings left after the migration do not fail the run (they are the report's
        "left for people"), nor do failed checks of the "before" verify (they show what the
        migration is for)."""
        return 1 if any(s.fails_run for s in self.stages) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": RESULT_SCHEMA,
            "version": RESULT_VERSION,
            "tool": {"name": "gathering-consolidate", "version": __version__},
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "options": self.options.to_dict(),
            "project_root": self.project_root,
            "before_dir": self.before_dir,
            "after_dir": self.after_dir,
            "exit_code": self.exit_code,
            "stages": [s.to_dict() for s in self.stages],
            "commands": self.commands,
        }


class StageSkipped(Exception):
    """Raised by a stage that was not asked for or cannot run here (the reason is shown)."""


class RunError(Exception):
    """The job cannot start (bad target, bad output folder): a usage error."""


@dataclass
class StageOutcome:
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    failed: bool = False


@dataclass
class Context:
    """What the stages share: the options, the folders and what earlier stages produced."""

    options: RunOptions
    root: Path  # the user's project root (read only)
    out: Path
    before: Path
    after: Path
    step: Callable[[str], None]
    stack: contextlib.ExitStack
    _server: Any = None
    _server_error: Exception | None = None

    def server(self) -> Any:
        """The PostgreSQL server for the run (contract A), started once on first use; a server
        that could not start is not tried again by the next stage (the same error is raised)."""
        if self._server_error is not None:
            raise self._server_error
        if self._server is None:
            database = importlib.import_module(f"{__package__}.database")
            if self.options.database_url is None:
                self.step("starting the embedded PostgreSQL")
            try:
                self._server = self.stack.enter_context(
                    database.postgres_server(
                        self.options.database_url, data_dir=self.options.data_dir
                    )
                )
            except database.DatabaseError as exc:
                self._server_error = exc
                raise
        return self._server


@dataclass(frozen=True)
class Stage:
    id: str
    title: str
    run: Callable[[Context], StageOutcome]
    needs: tuple[str, ...] = ()


# -- the job ------------------------------------------------------------------------------------
def run_job(options: RunOptions, progress: Progress | None = None) -> RunResult:
    """Run every stage of `STAGES` (see the module docstring). Raises `RunError` when the job
    cannot start; a stage's failure is in its `StageResult`."""
    started = time.monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    root = project_root(options.target)
    out = prepare_out(options.out, root)
    emit = progress or (lambda event: None)
    results: list[StageResult] = []
    with contextlib.ExitStack() as stack:
        context = Context(options, root, out, out / "before", out / "after", lambda m: None, stack)
        for index, stage in enumerate(STAGES, 1):

            def step(message: str, _stage: Stage = stage, _index: int = index) -> None:
                emit(ProgressEvent("step", _stage.id, _stage.title, _index, len(STAGES), message))

            context.step = step
            emit(ProgressEvent("start", stage.id, stage.title, index, len(STAGES)))
            result = _run_stage(stage, context, results)
            results.append(result)
            emit(
                ProgressEvent(
                    "end",
                    stage.id,
                    stage.title,
                    index,
                    len(STAGES),
                    result.summary,
                    result.status,
                    result.duration_s,
                )
            )
    result = RunResult(
        options=options,
        project_root=str(root),
        before_dir=str(out / "before"),
        after_dir=str(out / "after"),
        stages=results,
        duration_s=time.monotonic() - started,
        commands=reproduce_commands(options, root, out, results),
        started_at=started_at,
    )
    return result


def _run_stage(stage: Stage, context: Context, done: Sequence[StageResult]) -> StageResult:
    by_id = {r.id: r for r in done}
    for need in stage.needs:
        before = by_id.get(need)
        if before is None or before.status not in ("ok", "failed"):
            why = {None: "did not run", "error": "ended in an error", "skipped": "was skipped"}[
                None if before is None else before.status
            ]
            return StageResult(
                stage.id, stage.title, "skipped", f"needs stage `{need}`, which {why}"
            )
    started = time.monotonic()
    try:
        outcome = stage.run(context)
    except StageSkipped as exc:
        return StageResult(stage.id, stage.title, "skipped", str(exc), time.monotonic() - started)
    # consolidate: ignore[EXC001] one stage's error is reported and the other stages still run
    except Exception as exc:
        detail = "".join(traceback.format_exception(exc)[-6:])
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StageResult(
            stage.id,
            stage.title,
            "error",
            f"{type(exc).__name__}: {message}",
            time.monotonic() - started,
            detail=detail,
        )
    status = "failed" if outcome.failed else "ok"
    return StageResult(
        stage.id, stage.title, status, outcome.summary, time.monotonic() - started, outcome.data
    )


def project_root(target: Path) -> Path:
    """The project to copy: the folder of the nearest pyproject.toml at or above `target`.
    Raises RunError when `target` is missing or no pyproject.toml names a project."""
    from .config import find_pyproject

    if not target.exists():
        raise RunError(f"{target}: no such file or directory")
    if not target.is_dir():
        raise RunError(f"{target}: not a folder (run takes a project folder)")
    pyproject = find_pyproject(target.resolve())
    if pyproject is None:
        raise RunError(
            f"{target}: no pyproject.toml here or above; run needs the project root (the audit's"
            " paths and configuration are relative to it)"
        )
    return pyproject.parent


def prepare_out(out: Path, root: Path) -> Path:
    """The output folder, made ready: created when missing; a previous run's output (it has a
    `result.json`) is replaced; any other non-empty folder is refused. It must not be the project
    or hold it, and a folder inside the project is left out of the copy."""
    out = out.resolve()
    if out == root or root.is_relative_to(out):
        raise RunError(f"--out {out}: must not be the project folder or hold it")
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "result.json").is_file():
            raise RunError(
                f"--out {out}: not empty and not the output of a previous run (no result.json);"
                " pick another folder"
            )
        for name in ("before", "after", "diffs", "replay"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in OUTPUT_FILES:  # a stage skipped this time leaves no stale file behind
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    # Keep the copies out of version control and linters that honour .gitignore (ruff).
    gitignore = out / ".gitignore"
    if not gitignore.exists():
        write_atomic(gitignore, "# output of `gathering-consolidate run`\n*\n", root=out)
    return out


# -- stages -------------------------------------------------------------------------------------
def _stage_copy(ctx: Context) -> StageOutcome:
    """Copy the project twice. Symbolic links are copied as links (never followed); FIFOs,
    sockets and devices are left out (reading a FIFO would block) and listed."""
    out = ctx.out
    patterns = shutil.ignore_patterns(*COPY_IGNORED)
    special: set[str] = set()

    def ignore(folder: str, names: list[str]) -> set[str]:
        ignored = set(patterns(folder, names))
        for name in names:
            path = Path(folder, name)
            if path.resolve() == out:  # the output folder, when it lives inside the project
                ignored.add(name)
                continue
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue  # vanished: copytree reports what it cannot copy
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                ignored.add(name)
                special.add(str(path.relative_to(ctx.root)))
        return ignored

    for dest in (ctx.before, ctx.after):
        ctx.step(f"copying into {dest}")
        shutil.copytree(ctx.root, dest, symlinks=True, ignore=ignore)
    files = sum(len(names) for _dirpath, _dirs, names in os.walk(ctx.after))
    summary = f"{files} files copied from {ctx.root}"
    if special:
        summary += f"; {len(special)} FIFOs, sockets or devices left out"
    data = {
        "source": str(ctx.root),
        "before": str(ctx.before),
        "after": str(ctx.after),
        "files": files,
        "not_copied": sorted(special),
    }
    return StageOutcome(summary, data)


def _audit(ctx: Context, where: Path, name: str) -> StageOutcome:
    from .config import target_python
    from .project import audit
    from .report.json import audit_to_dict

    ctx.step(f"auditing {where}")
    with target_python(ctx.options.python):
        result = audit(where)
    document = audit_to_dict(result)
    write_atomic(ctx.out / f"{name}.json", json.dumps(document, indent=2) + "\n", root=ctx.out)
    data = audit_summary(document)
    data["json"] = f"{name}.json"
    failing = data["failing"]
    summary = (
        f"{data['findings']} findings ({failing} failing) in"
        f" {data['files'].get('ok', 0)} files; {len(data['by_family'])} families"
    )
    if result.errors:
        raise RuntimeError(f"the audit ended in {len(result.errors)} internal error(s)")
    return StageOutcome(summary, data)


def audit_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """The report's view of an audit JSON document: counts per family, per family and tier, per
    rule, and the findings themselves (at most FINDINGS_KEPT)."""
    by_family: dict[str, int] = {}
    by_family_tier: dict[str, dict[str, int]] = {}
    failing = 0
    for f in document["findings"]:
        family = f["rule"][:3]
        by_family[family] = by_family.get(family, 0) + 1
        tier = str(f["tier"]) if f["tier"] is not None else "-"
        tiers = by_family_tier.setdefault(family, {})
        tiers[tier] = tiers.get(tier, 0) + 1
        failing += f["severity"] != "info"
    findings = [
        {
            "rule": f["rule"],
            "name": f["name"],
            "severity": f["severity"],
            "tier": f["tier"],
            "path": f["path"],
            "line": f["line"],
            "symbol": f["symbol"],
            "message": f["message"],
            "codemod": (f["fix"] or {}).get("codemod"),
            "fingerprint": f["fingerprint"],
        }
        for f in document["findings"][:FINDINGS_KEPT]
    ]
    return {
        "findings": len(document["findings"]),
        "failing": failing,
        "by_family": dict(sorted(by_family.items())),
        "by_family_tier": {k: dict(sorted(v.items())) for k, v in sorted(by_family_tier.items())},
        "by_rule": document["summary"]["by_rule"],
        "by_tier": document["summary"]["by_tier"],
        "files": document["summary"]["files"],
        "suppressed": document["summary"]["suppressed"],
        "fixme": document["summary"]["fixme"],
        "not_audited": document["files"],
        "errors": document["errors"],
        "items": findings,
        "truncated": len(document["findings"]) > FINDINGS_KEPT,
    }


def _stage_audit_before(ctx: Context) -> StageOutcome:
    return _audit(ctx, ctx.after, "audit-before")


def _stage_audit_after(ctx: Context) -> StageOutcome:
    return _audit(ctx, ctx.after, "audit-after")


def ordered_codemods(registry: Mapping[str, Any]) -> list[str]:
    """The registry's codemods in application order (`CODEMOD_ORDER`, others before the last)."""
    known = [c for c in CODEMOD_ORDER if c in registry]
    others = sorted(c for c in registry if c not in CODEMOD_ORDER and c not in CODEMODS_ELSEWHERE)
    return known[:-1] + others + known[-1:] if known else others


def _stage_codemods(ctx: Context) -> StageOutcome:
    from .codemods.engine import codemod_registry

    registry = codemod_registry()
    items: list[dict[str, Any]] = []
    for codemod_id in ordered_codemods(registry):
        safe = registry[codemod_id].applicability.value == "safe"
        write = safe or ctx.options.unsafe_fixes
        ctx.step(f"{codemod_id}: {'applying' if write else 'planning (unsafe: not applied)'}")
        items.append(apply_codemod(ctx, codemod_id, write=write))
    applied = [i for i in items if i["status"] == "applied"]
    proposed = [i for i in items if i["status"] == "proposed"]
    failed = [i for i in items if i["status"] in ("failed", "error")]
    files = sorted({p for i in applied for p in i["files"]})
    parts = [f"{len(applied)} codemods changed {len(files)} files"]
    if proposed:
        parts.append(f"{len(proposed)} unsafe ones proposed (--unsafe-fixes applies them)")
    if failed:
        parts.append(f"{len(failed)} failed")
    refusals = sum(len(i["refusals"]) for i in items)
    parts.append(f"{refusals} places refused")
    data = {"codemods": items, "files_changed": files, "unsafe_fixes": ctx.options.unsafe_fixes}
    return StageOutcome("; ".join(parts), data, failed=bool(failed))


def apply_codemod(ctx: Context, codemod_id: str, *, write: bool) -> dict[str, Any]:
    """Plan one codemod on the `after` copy, write it when `write`, keep its diff. The result
    is plain data; an error of this codemod is recorded in it (status `error`), not raised."""
    from .codemods.engine import CodemodError, WriteError, apply, plan_migration, render_diff
    from .config import target_python

    item: dict[str, Any] = {
        "id": codemod_id,
        "applicability": "",
        "status": "",
        "files": [],
        "added": 0,
        "removed": 0,
        "diff": "",
        "diff_truncated": False,
        "diff_file": None,
        "refusals": [],
        "failures": [],
        "skipped": [],
        "error": "",
    }
    started = time.monotonic()
    try:
        with target_python(ctx.options.python):
            plan = plan_migration(ctx.after, codemod_id)
    except (CodemodError, OSError, ValueError) as exc:
        item.update(status="error", error=str(exc))
        return item
    item["applicability"] = plan.applicability.value
    item["refusals"] = [
        {"path": r.path, "line": r.line, "reason": r.reason, "category": r.category}
        for r in plan.refusals
    ]
    item["failures"] = [{"path": f.path, "reason": f.reason} for f in plan.failures]
    item["skipped"] = [{"path": s.path, "reason": s.reason} for s in plan.skipped]
    diff = render_diff(plan)
    item["files"] = [c.path for c in plan.changes]
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            item["added"] += 1
        elif line.startswith("-") and not line.startswith("---"):
            item["removed"] += 1
    if diff:
        name = f"{codemod_id}.diff" if write else f"{codemod_id}.proposed.diff"
        write_atomic(ctx.out / "diffs" / name, diff, root=ctx.out)
        item["diff_file"] = f"diffs/{name}"
        lines = diff.splitlines(keepends=True)
        item["diff"] = "".join(lines[:DIFF_LINES_KEPT])
        item["diff_truncated"] = len(lines) > DIFF_LINES_KEPT
    if plan.failures:
        item["status"] = "failed"
    elif not plan.changes:
        item["status"] = "unchanged"
    elif not write:
        item["status"] = "proposed"
    else:
        try:
            apply(plan)
        except WriteError as exc:
            item.update(status="error", error=str(exc))
        else:
            item["status"] = "applied"
    item["duration_s"] = round(time.monotonic() - started, 3)
    return item


def _stage_tests(ctx: Context) -> StageOutcome:
    from .codemods.engine import codemod_registry

    try:
        ledger_module = importlib.import_module(f"{__package__}.testsuite.ledger")
    except ImportError as exc:
        raise StageSkipped(f"the test ledger library is not available ({exc})") from None
    data: dict[str, Any] = {}
    registry = codemod_registry()
    if "tag-tests" in registry:
        safe = registry["tag-tests"].applicability.value == "safe"
        ctx.step("tag-tests: tagging the tests")
        data["tagging"] = apply_codemod(ctx, "tag-tests", write=safe or ctx.options.unsafe_fixes)
    else:
        data["tagging"] = None
    ctx.step("building the test ledger")
    ledger = ledger_module.build_ledger(ctx.after)
    document = ledger.to_dict()
    text = json.dumps(document, indent=2, default=str) + "\n"
    write_atomic(ctx.out / "tests-ledger.json", text, root=ctx.out)
    data["ledger"] = document
    data["ledger_file"] = "tests-ledger.json"
    tagging = data["tagging"]
    failed = bool(tagging and tagging["status"] in ("failed", "error"))
    tags = ", ".join(f"{t} {n}" for t, n in sorted(document.get("by_tag", {}).items()))
    summary = f"{document.get('total', 0)} tests ({tags or 'no tags'})"
    if tagging is not None:
        summary += f"; tag-tests {tagging['status']} ({len(tagging['files'])} files)"
    return StageOutcome(summary, data, failed=failed)


def _stage_schema(ctx: Context) -> StageOutcome:
    """The toolkit's alembic revisions on a disposable database: the project's own
    `schema/*.sql` first (as its runner would apply them), then `upgrade head`, then the drift
    check against the head schema; the offline SQL of the revisions is kept as `schema.sql`."""
    try:
        migrations = importlib.import_module(f"{__package__}.schema.migrations")
        database = importlib.import_module(f"{__package__}.database")
    except ImportError as exc:
        raise StageSkipped(f"the schema migration library is not available ({exc})") from None
    app_schema = ctx.after / "schema"
    if not sorted(app_schema.glob("*.sql")):
        raise StageSkipped(
            "the project has no schema/*.sql (the revisions apply on top of the app's own schema)"
        )
    server = ctx.server()
    with database.disposable_database(server.url, prefix="gc_run") as url:
        applied = migrations.apply_sql_files(url, app_schema)
        ctx.step(f"app schema: {', '.join(applied)}")
        result = migrations.upgrade(url, progress=ctx.step)
        ctx.step("drift check against the head schema")
        drift = migrations.check(url)
    write_atomic(ctx.out / "schema.sql", migrations.render_sql(), root=ctx.out)
    data = result.to_dict()
    data["app_schema"] = applied
    data["revisions"] = [
        {"revision": s["revision"], "description": s["description"], "duration_s": s["duration_s"]}
        for s in data.pop("steps")
    ]
    data["drift"] = drift.to_dict()
    data["server"] = server.masked()
    data["embedded"] = server.embedded
    data["sql_file"] = "schema.sql"
    summary = (
        f"{len(data['revisions'])} revisions applied ({data['start'] or 'base'} -> {data['end']})"
        f" on the app's {len(applied)} schema files"
    )
    summary += "; no drift from the head schema" if drift.ok else f"; {len(drift.problems)} drift"
    return StageOutcome(summary, data, failed=not drift.ok)


def _verify(ctx: Context, where: Path) -> StageOutcome:
    if ctx.options.skip_verify:
        raise StageSkipped("--skip-verify")
    profile = ctx.options.profile or default_profile(ctx.root)
    if not ctx.options.app and not profile:
        raise StageSkipped("no --app MODULE:ATTR nor --profile given, so there is no app to run")
    if profile and not ctx.options.profile:
        ctx.step(f"verify profile {profile}: the shipped profile named like the project")
    try:
        verify_module = importlib.import_module(f"{__package__}.verify")
    except ImportError as exc:
        raise StageSkipped(f"the verify library is not available ({exc})") from None
    verify = getattr(verify_module, "verify", None)
    if verify is None:
        raise StageSkipped("the verify library has no verify() entry point yet")
    server = ctx.server()
    result = verify(
        where,
        app=ctx.options.app,
        profile=profile,
        database_url=server.url,
        python=ctx.options.python,
        checks=list(ctx.options.verify_checks) or None,
        progress=ctx.step,
    )
    data = result.to_dict()
    counts: dict[str, int] = {}
    for check in data["checks"]:
        counts[check["status"]] = counts.get(check["status"], 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no checks"
    return StageOutcome(summary, data, failed=not data["passed"])


def default_profile(root: Path) -> str | None:
    """The verify profile shipped with the toolkit (`rules/targets/<name>.toml`) named like the
    project's folder, if there is one (the built-in fixture's is `gathering_app`)."""
    try:
        profile_module = importlib.import_module(f"{__package__}.verify.profile")
    except ImportError:
        return None
    return root.name if root.name in profile_module.available_profiles() else None


def _stage_verify_before(ctx: Context) -> StageOutcome:
    return _verify(ctx, ctx.before)


def _stage_verify_after(ctx: Context) -> StageOutcome:
    return _verify(ctx, ctx.after)


STAGES: tuple[Stage, ...] = (
    Stage("copy", "Copy the project", _stage_copy),
    Stage("audit-before", "Audit (before)", _stage_audit_before, ("copy",)),
    Stage("codemods", "Codemods", _stage_codemods, ("audit-before",)),
    Stage("tests", "Test tags and ledger", _stage_tests, ("copy",)),
    Stage("schema", "Schema migration", _stage_schema, ("copy",)),
    Stage("verify-before", "Verify (before)", _stage_verify_before, ("copy",)),
    Stage("verify-after", "Verify (after)", _stage_verify_after, ("copy",)),
    Stage("audit-after", "Audit (after)", _stage_audit_after, ("copy",)),
)


# -- outputs ------------------------------------------------------------------------------------
def reproduce_commands(
    options: RunOptions, root: Path, out: Path, stages: Sequence[StageResult] = ()
) -> list[str]:
    """The command that reproduces the run, then the stages one by one on a fresh copy
    (`<out>/replay`): the codemods the run applied, in its order, the tests, the schema
    rehearsal, the audit and the verify runs."""
    q = shlex.quote
    gc = "gathering-consolidate"
    run = [gc, "run", q(_display(options.target)), "--out", q(_display(out))]
    if options.unsafe_fixes:
        run.append("--unsafe-fixes")
    if options.app:
        run += ["--app", q(options.app)]
    if options.profile:
        run += ["--profile", q(options.profile)]
    if options.database_url:
        run += ["--database-url", q(_masked(options.database_url))]
    if options.python:
        run += ["--python", q(options.python)]
    if options.skip_verify:
        run.append("--skip-verify")
    for check in options.verify_checks:
        run += ["--check", q(check)]
    by_id = {s.id: s for s in stages}
    replay = q(_display(out / "replay"))
    commands = [
        " ".join(run),
        "# stage by stage, on a fresh copy:",
        f"cp -R {q(_display(out / 'before'))} {replay}",
        f"{gc} audit {replay}",
    ]
    codemods = by_id.get("codemods")
    for item in codemods.data.get("codemods", []) if codemods else []:
        if item["status"] == "applied":
            unsafe = " --unsafe-fixes" if item["applicability"] == "unsafe" else ""
            commands.append(f"{gc} migrate {item['id']} {replay} --write{unsafe}")
        elif item["status"] == "proposed":
            commands.append(f"{gc} migrate {item['id']} {replay}   # the diff, not applied")
    tests = by_id.get("tests")
    if tests is not None and tests.status in ("ok", "failed"):
        if tests.data.get("tagging"):
            commands.append(f"{gc} migrate tag-tests {replay} --write")
        commands.append(f"{gc} tests ledger {replay}")
    schema = by_id.get("schema")
    if schema is not None and schema.status in ("ok", "failed"):
        # A rehearsal on an embedded server, as the run did on a disposable database.
        commands.append(f"{gc} schema upgrade --app-schema {replay}/schema")
    commands.append(f"{gc} audit {replay}")
    profile = options.profile or default_profile(root)
    if (options.app or profile) and not options.skip_verify:
        extra = (
            f" --database-url {q(_masked(options.database_url))}" if options.database_url else ""
        )
        if profile:
            extra += f" --profile {q(profile)}"
        extra += "".join(f" --check {q(c)}" for c in options.verify_checks)
        app = f" --app {q(options.app)}" if options.app else ""
        commands.append(f"{gc} verify {q(_display(out / 'before'))}{app}{extra}")
        commands.append(f"{gc} verify {replay}{app}{extra}")
    return commands


def _display(path: Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _masked(url: str | None) -> str:
    if url is None:
        return ""
    try:
        database = importlib.import_module(f"{__package__}.database")
        return database.mask_url(url)
    except (ImportError, AttributeError):
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Outputs:
    result_json: Path
    report_md: Path
    report_html: Path


def write_outputs(result: RunResult) -> Outputs:
    """Write `result.json`, `report.md` and `report.html` into the output folder."""
    from .report import html, markdown

    out = Path(result.options.out).resolve()
    document = result.to_dict()
    paths = Outputs(out / "result.json", out / "report.md", out / "report.html")
    write_atomic(paths.result_json, json.dumps(document, indent=2, default=str) + "\n", root=out)
    write_atomic(paths.report_md, markdown.render(document), root=out)
    write_atomic(paths.report_html, html.render(document), root=out)
    return paths


def load_result(path: Path) -> dict[str, Any]:
    """A `result.json` written by `write_outputs` (to render the report again)."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if document.get("schema") != RESULT_SCHEMA:
        raise ValueError(f"{path}: not a run result (schema {document.get('schema')!r})")
    return document
