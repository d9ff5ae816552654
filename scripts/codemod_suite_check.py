"""Run a project's own test suite before and after each codemod, on copies, and print the counts.

For each target: the suite runs once on an untouched copy (the baseline), then once per codemod
on a fresh copy the codemod wrote (`migrate ID PATH --unsafe-fixes --write`), and once after all
of them in a row; each run gets a new, empty PostgreSQL database (created and dropped here) and
the project's own migrations when it has them. A codemod keeps the suite at its baseline when no
test that passed before fails after.

Targets:

* `fixture`: `fixtures/gathering_app` with this environment's Python (its dependencies are
  ours);
* `fsft`: `full-stack-fastapi-template` (backend) from the corpus (`../shared/corpus/`), with a
  scratch virtual environment holding its dependencies (`--fsft-python`; `--make-venv` creates
  it under /tmp). It requires Python 3.14 (PEP 758 `except A, B:` in `app/api/deps.py`); where
  only an older one is installed, every copy, the baseline's too, is lowered to that Python's
  syntax (`gathering_consolidate.parsing.lower`, same line numbers) just before its suite runs:
  the codemods see and write the project as it is.

Usage::

    .venv/bin/python scripts/codemod_suite_check.py                    # both targets
    .venv/bin/python scripts/codemod_suite_check.py --target fixture --codemod narrow-except
    .venv/bin/python scripts/codemod_suite_check.py --target fsft --make-venv

Exit code: 0 when every codemod kept every suite at its baseline, 1 otherwise, 2 when a target
could not be set up (no PostgreSQL, no corpus, no virtual environment).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLI = str(BIN / "gathering-consolidate")
CORPUS = REPO.parent / "shared" / "corpus"
ADMIN_URL = os.environ.get(
    "GATHERING_CONSOLIDATE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
FSFT_VENV = Path("/tmp/fsft-venv")
FSFT_REQUIREMENTS = (
    "fastapi[standard]>=0.115",
    "python-multipart",
    "email-validator",
    "tenacity",
    "pydantic>2.0",
    "emails>=0.6",
    "jinja2",
    "alembic",
    "httpx",
    "psycopg[binary]",
    "sqlmodel",
    "pydantic-settings",
    "sentry-sdk[fastapi]",
    "pyjwt",
    "pwdlib[argon2,bcrypt]",
    "pytest",
)
IGNORED = shutil.ignore_patterns(
    "__pycache__", ".pytest_cache", ".ruff_cache", ".gathering_consolidate_cache", ".venv"
)


@dataclass
class Suite:
    """One run of a project's suite: counts from its JUnit report."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failing: set[str] = field(default_factory=set)
    problem: str = ""  # the suite could not run (no report)
    seconds: float = 0.0

    def short(self) -> str:
        if self.problem:
            return f"not run ({self.problem})"
        text = f"{self.passed} passed, {self.failed + self.errors} failed"
        return text + (f", {self.skipped} skipped" if self.skipped else "")


@dataclass
class Row:
    codemod: str
    changed: int | str
    suite: Suite


@dataclass
class Target:
    name: str
    source: Path  # the project folder to copy
    workdir: str  # where, inside the copy, the codemods and the suite run
    python: str
    env: dict[str, str]
    migrate: list[str] | None = None  # command run before the suite (alembic upgrade head)
    lower: bool = False  # lower newer syntax before the suite runs
    # Files the app reads that the corpus leaves out (its front end, e-mail templates), with
    # placeholder contents.
    files: dict[str, str] = field(default_factory=dict)


# -- PostgreSQL ------------------------------------------------------------------------------------
@contextmanager
def fresh_database() -> Iterator[str]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"gc_suite_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(ADMIN_URL)
    params["dbname"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlalchemy_url(conninfo: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(conninfo)
    user = params.get("user", "postgres")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    return f"postgresql+psycopg://{user}@{host}:{port}/{params['dbname']}"


# -- running ---------------------------------------------------------------------------------------
def lower_tree(root: Path) -> int:
    """Make a Python 3.14 project run on an older Python, keeping line numbers: files that do
    not parse get their newer syntax lowered (`parsing.lower`: PEP 758, 695, 701), and class
    annotations that name a class defined further down (PEP 649's deferred annotations) get
    that name quoted."""
    from gathering_consolidate import parsing

    count = 0
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(text)
        except SyntaxError:
            text, features = parsing.lower(text)
            if not features:
                continue
            tree = ast.parse(text)
            count += 1
        quoted = _quote_forward_references(text, tree)
        if quoted != text:
            text = quoted
            count += 1
        path.write_text(text, encoding="utf-8")
    return count


def _quote_forward_references(text: str, tree: ast.Module) -> str:
    """Quote the names in class-level annotations that refer to a module-level class defined
    further down (`items: list[Item]` -> `items: list["Item"]`), as code written before
    PEP 649's deferred annotations had to."""
    defined_at = {
        node.name: node.lineno
        for node in tree.body
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    }
    spots: list[tuple[int, int, int]] = []
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for item in cls.body:
            if not isinstance(item, ast.AnnAssign):
                continue
            for name in ast.walk(item.annotation):
                if isinstance(name, ast.Name) and defined_at.get(name.id, 0) > item.lineno:
                    spots.append((name.lineno, name.col_offset, name.end_col_offset or 0))
    if not spots:
        return text
    lines = text.split("\n")
    for line, start, end in sorted(spots, reverse=True):
        raw = lines[line - 1].encode("utf-8")
        raw = raw[:start] + b'"' + raw[start:end] + b'"' + raw[end:]
        lines[line - 1] = raw.decode("utf-8")
    return "\n".join(lines)


def run_suite(target: Target, copy: Path) -> Suite:
    where = copy / target.workdir
    if target.lower:
        lower_tree(where)
    for relpath, content in target.files.items():
        (where / relpath).parent.mkdir(parents=True, exist_ok=True)
        (where / relpath).write_text(content, encoding="utf-8")
    report = copy / "junit.xml"
    started = time.monotonic()
    with fresh_database() as url:
        env = {
            **os.environ,
            **target.env,
            "PYTHONDONTWRITEBYTECODE": "1",
            "DATABASE_URL": url if target.name == "fixture" else sqlalchemy_url(url),
            "PYTHONPATH": str(where),  # the template installs itself as a package; a copy is not
        }
        env.pop("VIRTUAL_ENV", None)
        if target.migrate:
            done = subprocess.run(
                target.migrate, cwd=where, env=env, capture_output=True, text=True, timeout=300
            )
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["?"])[-1]
                return Suite(problem=f"migrations failed: {last[:200]}")
        done = subprocess.run(
            [target.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
            cwd=where, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    suite = Suite(seconds=time.monotonic() - started)
    if not report.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["?"]
        suite.problem = f"pytest exit {done.returncode}: {tail[0][:200]}"
        return suite
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        if case.find("failure") is not None:
            suite.failed += 1
            suite.failing.add(name)
        elif case.find("error") is not None:
            suite.errors += 1
            suite.failing.add(name)
        elif case.find("skipped") is not None:
            suite.skipped += 1
        else:
            suite.passed += 1
    return suite


def copy_target(target: Target, scratch: Path, label: str) -> Path:
    dest = scratch / f"{target.name}-{label}"
    shutil.copytree(target.source, dest, ignore=IGNORED)
    return dest


def apply_codemod(copy: Path, target: Target, codemod: str) -> int | str:
    """Write one codemod into the copy; the number of files it changed, or why it failed."""
    args = [CLI, "migrate", codemod, str(copy / target.workdir), "--unsafe-fixes", "--write"]
    if target.name == "fsft":
        args += ["--python", str(Path(target.python).parent.parent)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    if done.returncode == 2:
        return f"error: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}"
    for line in done.stderr.splitlines():
        if ": wrote " in line:
            return int(line.split(": wrote ")[1].split()[0])
    return 0


def codemods() -> list[str]:
    from gathering_consolidate.codemods.engine import codemod_registry

    return list(codemod_registry())


# -- targets ---------------------------------------------------------------------------------------
def fixture_target() -> Target:
    return Target(
        name="fixture",
        source=REPO / "fixtures" / "gathering_app",
        workdir=".",
        python=sys.executable,
        env={},
    )


def fsft_target(corpus: Path, python: str) -> Target:
    source = corpus / "full-stack-fastapi-template"
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2] >= (3, 14))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return Target(
        name="fsft",
        source=source,
        workdir="backend",
        python=python,
        env={
            "PROJECT_NAME": "suite-check",
            "SECRET_KEY": "suite-check-secret-key-0123456789abcdef",
            "FIRST_SUPERUSER": "admin@example.com",
            "FIRST_SUPERUSER_PASSWORD": "suite-check-password",
            "FASTAPI_ENV": "development",  # mounts the private routes its tests use
            "EMAILS_FROM_EMAIL": "info@example.com",
            "SMTP_HOST": "",
            "SENTRY_DSN": "",
        },
        migrate=[str(Path(python).parent / "alembic"), "upgrade", "head"],
        lower=version != "True",
        files={
            "app/frontend/index.html": "<!doctype html><title>app</title>\n",
            **{
                f"app/email-templates/{name}": "<p>{{ project_name }} {{ link }}</p>\n"
                for name in ("test_email.html", "reset_password.html", "new_account.html")
            },
        },
    )


def make_venv(path: Path) -> str:
    """A scratch virtual environment with the template's dependencies (the newest Python
    installed that is at least 3.11)."""
    python = next(
        (p for v in ("3.14", "3.13", "3.12") if (p := shutil.which(f"python{v}"))), sys.executable
    )
    if not (path / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(path)], check=True)
    subprocess.run(
        [str(path / "bin" / "pip"), "install", "-q", *FSFT_REQUIREMENTS], check=True, timeout=1800
    )
    return str(path / "bin" / "python")


# -- main ------------------------------------------------------------------------------------------
def check(target: Target, selected: list[str], scratch: Path) -> tuple[Suite, list[Row]]:
    baseline = run_suite(target, copy_target(target, scratch, "baseline"))
    print(f"{target.name}: baseline {baseline.short()} ({baseline.seconds:.0f} s)", flush=True)
    rows: list[Row] = []
    everything = copy_target(target, scratch, "all")
    written: list[str] = []
    for codemod in selected:
        copy = copy_target(target, scratch, codemod)
        changed = apply_codemod(copy, target, codemod)
        suite = run_suite(target, copy) if not isinstance(changed, str) else Suite(problem=changed)
        rows.append(Row(codemod, changed, suite))
        print(f"{target.name}: {codemod}: {changed} file(s) changed, {suite.short()}", flush=True)
        step = apply_codemod(everything, target, codemod)
        written.append(f"{codemod}={step}")
    rows.append(Row("all, in this order", ", ".join(written), run_suite(target, everything)))
    return baseline, rows


def verdict(baseline: Suite, suite: Suite) -> str:
    if baseline.problem or not baseline.passed:
        return "NO BASELINE"
    if suite.problem:
        return "NOT RUN"
    broken = suite.failing - baseline.failing
    if broken:
        return f"BROKE {len(broken)}: {', '.join(sorted(broken)[:3])}"
    if suite.passed < baseline.passed:
        return f"FEWER PASSED ({suite.passed} < {baseline.passed})"
    return "baseline kept"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("fixture", "fsft", "all"), default="all")
    parser.add_argument("--codemod", action="append", help="only these codemods (repeatable)")
    parser.add_argument("--corpus", type=Path, help="an extracted corpus (default: extract one)")
    parser.add_argument("--fsft-python", default=str(FSFT_VENV / "bin" / "python"))
    parser.add_argument("--make-venv", action="store_true", help=f"create {FSFT_VENV} first")
    args = parser.parse_args(argv)
    selected = args.codemod or codemods()
    try:
        import psycopg

        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:  # consolidate: ignore[EXC001] any connection failure is "no server"
        print(f"error: PostgreSQL not reachable at {ADMIN_URL}: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="codemod-suite-") as tmp:
        scratch = Path(tmp)
        targets: list[Target] = []
        if args.target in ("fixture", "all"):
            targets.append(fixture_target())
        if args.target in ("fsft", "all"):
            python = make_venv(FSFT_VENV) if args.make_venv else args.fsft_python
            if not Path(python).exists():
                print(f"error: {python} missing (use --make-venv)", file=sys.stderr)
                return 2
            corpus = args.corpus
            if corpus is None:
                corpus = scratch / "corpus"
                subprocess.run([str(CORPUS / "extract.sh"), str(corpus)], check=True,
                               capture_output=True)  # fmt: skip
            targets.append(fsft_target(corpus, python))
        results = [(t, *check(t, selected, scratch)) for t in targets]
    kept = True
    print()
    print(f"{'target':8} {'codemod':22} {'files':>6}  {'before':32} {'after':32} verdict")
    for target, baseline, rows in results:
        for row in rows:
            outcome = verdict(baseline, row.suite)
            kept = kept and outcome == "baseline kept"
            changed = row.changed if isinstance(row.changed, int) else "-"
            print(
                f"{target.name:8} {row.codemod:22} {changed!s:>6}  {baseline.short():32}"
                f" {row.suite.short():32} {outcome}"
            )
            if row.codemod.startswith("all"):
                print(f"{'':8} {'':22} {'':>6}  (in order: {row.changed})")
        note = " (newer syntax lowered for the installed Python)" if target.lower else ""
        print(f"{target.name}: suite run {len(rows) + 1} times{note}")
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())
