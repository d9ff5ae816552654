"""Property test on a large real code base available offline, the Python standard library.

`narrow-except` (every tier) then `isolate-handlers` run over every .py file in-process (files
over 300 KB skipped): every output parses, narrow-except's edits stay on the handlers it reports
(plus the imports they need), a second run of either changes nothing, and writing the result
leaves every other file byte-identical. A second test forces the text edits behind
`narrow-except --reraise` onto every handler of every file with a broad one and checks that
each result still parses.

A third test runs every codemod over a bounded sample of the standard library (every eighth
non-test module plus files known to be hard: deep ASTs, dispatch loops, sqlite3, datetime), in a
copy: no codemod fails (no crash, no internal analysis error, every output parses and fits its
file's encoding), writing the plan leaves every other file byte-identical, and a second run on
the written copy changes nothing.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import shutil
import sysconfig
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

from gathering_consolidate.audit import registry
from gathering_consolidate.codemods.base import Changed, CodemodProject
from gathering_consolidate.codemods.engine import (
    apply,
    codemod_registry,
    load_project,
    run_codemod,
    syntax_problem,
)
from gathering_consolidate.codemods.isolate_handlers import IsolateHandlers
from gathering_consolidate.codemods.narrow_except import (
    NarrowExcept,
    _clause_edits,
    _reraise_edits,
    _Skip,
    _Text,
    unreachable_after,
)
from gathering_consolidate.config import Config, load_config
from gathering_consolidate.project import audit_sources, sources_from_mapping

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MAX_SIZE = 300_000
SELECT = ("EXC001", "EXC002")

pytestmark = pytest.mark.slow


def _project(root: Path, config, files: dict[str, str]) -> CodemodProject:
    """A codemod project with its EXC audit done up front, through the scanner's per-file cache
    (in `config.cache_dir`, a temporary directory): after the first audit only the files a
    codemod changed are analysed again, as in repeated runs on a real project."""
    project = CodemodProject(root, config, files)
    audit_config = Config(
        root=config.root,
        select=SELECT,
        tiers=config.tiers,
        default_tier=config.default_tier,
        max_file_size=config.max_file_size,
        cache_dir=config.cache_dir,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences in old test files
        project._audits[SELECT] = audit_sources(
            sources_from_mapping(files), audit_config, registry(), cache=True
        )
    return project


def _edits_stay_on_handlers(change: Changed, allowed: set[int]) -> list[str]:
    before = (change.before or "").splitlines()
    after = change.after.splitlines()
    problems = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for number in range(i1 + 1, i2 + 1):  # original lines replaced or deleted
            text = before[number - 1]
            if number not in allowed and not text.lstrip().startswith(("import ", "from ")):
                problems.append(f"{change.path}:{number} edited: {text!r}")
        if tag == "insert":
            for text in after[j1:j2]:
                if text.strip() and not text.lstrip().startswith(("import ", "from ")):
                    problems.append(f"{change.path}: inserted {text!r}")
    return problems


def _reported_lines(project: CodemodProject) -> dict[str, set[int]]:
    lines: dict[str, set[int]] = {}
    for finding in project.audit(SELECT).findings:
        location = finding.location
        lines.setdefault(location.path, set()).update(
            range(location.line, (location.end_line or location.line) + 1)
        )
    return lines


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> CodemodProject:
    cache = tmp_path_factory.mktemp("cache")
    config = replace(load_config(STDLIB), max_file_size=MAX_SIZE, cache_dir=str(cache))
    loaded, _unreadable = load_project(STDLIB, config)
    project = _project(STDLIB, config, loaded.files)
    assert len(project.files) > 1000
    return project


def test_codemods_over_the_standard_library(original, tmp_path):
    config = original.config

    narrowed = run_codemod(NarrowExcept({"tier": 0, "include-tests": True}), original)
    assert not narrowed.failures, narrowed.failures[:5]
    # narrow-except narrows only handlers whose every call is resolved and that are no
    # isolation boundary (issue 10): on the standard library, test code included, that is a
    # few dozen files (29 on 3.11.7 when written), not hundreds.
    assert len(narrowed.changes) > 15
    allowed = _reported_lines(original)
    problems = []
    for change in narrowed.changes:
        assert change.after != change.before
        assert syntax_problem(change.after, change.path) is None, change.path
        problems += _edits_stay_on_handlers(change, allowed.get(change.path, set()))
    assert not problems, problems[:10]
    # No narrowed clause leaves existing code that can no longer run (a later handler it would
    # take first, a branch of the handler on a class it no longer catches: the tarfile
    # `zlib.error` case), and no handler with an unresolved call in its try body is narrowed.
    findings = {(f.location.path, f.location.line): f for f in original.audit(SELECT).findings}
    dead = []
    for change in narrowed.changes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(change.after)
        before_lines = (change.before or "").splitlines()
        before = set(before_lines)
        after_lines = change.after.splitlines()
        origin: dict[int, int] = {}  # a rewritten line of the output -> its line before
        matcher = difflib.SequenceMatcher(None, before_lines, after_lines, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "replace" and i2 - i1 == j2 - j1:
                origin.update({j1 + k + 1: i1 + k + 1 for k in range(i2 - i1)})
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Try, ast.TryStar)):
                continue
            for handler in node.handlers:
                line = handler.lineno
                if after_lines[line - 1] in before:  # not a clause narrow-except wrote
                    continue
                reason = unreachable_after(handler, node, [])
                if reason:
                    dead.append(f"{change.path}:{line}: {reason}")
                finding = findings.get((change.path, origin.get(line, -1)))
                if finding is not None and finding.evidence.get("unresolved_calls"):
                    dead.append(f"{change.path}:{line}: narrowed with unresolved calls")
    assert not dead, dead[:10]

    step = _project(
        STDLIB, config, {**original.files, **{c.path: c.after for c in narrowed.changes}}
    )
    again = run_codemod(NarrowExcept({"tier": 0}), step)
    assert not again.changes, [c.path for c in again.changes][:10]  # a second run: no change

    isolated = run_codemod(IsolateHandlers(), step)
    assert not isolated.failures, isolated.failures[:5]
    assert isolated.changes, "the standard library has event-dispatch style handlers"
    for change in isolated.changes:
        assert syntax_problem(change.after, change.path) is None, change.path
    final_files = {**step.files, **{c.path: c.after for c in isolated.changes}}
    # Dispatch sites are found file by file, so the changed files alone show whether a second
    # run of isolate-handlers would find anything left.
    touched = {c.path: final_files[c.path] for c in isolated.changes}
    again = run_codemod(IsolateHandlers(), _project(STDLIB, config, touched))
    assert not again.changes, [c.path for c in again.changes]

    # Write both plans into a copy: the changed files get exactly the new text, every other
    # file stays byte-identical.
    copy = tmp_path / "stdlib"
    originals: dict[str, bytes] = {}
    for relpath in original.files:
        target = copy / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STDLIB / relpath, target)
        originals[relpath] = target.read_bytes()
    for planned in (narrowed, isolated):
        apply(replace(planned, root=copy))
    for relpath, data in originals.items():
        current = (copy / relpath).read_bytes()
        if relpath in final_files and final_files[relpath] != original.files[relpath]:
            assert current == final_files[relpath].encode("utf-8"), relpath
        else:
            assert current == data, relpath


def test_reraise_edits_on_every_handler_keep_the_file_parseable(original):
    """The text edits of `narrow-except --reraise`, forced onto every handler (broad or not) of
    every file with a broad one, must leave the file parseable."""
    edited = 0
    paths = sorted({f.location.path for f in original.audit(SELECT).findings})
    for path in paths:
        source = original.files[path]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
        text = _Text(source)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Try, ast.TryStar)):
                continue
            for handler in node.handlers:
                # A broad clause is narrowed; every handler gets the re-raise edit.
                with contextlib.suppress(_Skip):
                    text.edits.extend(_clause_edits(text, handler, ["ValueError", "OSError"]))
                text.edits.extend(_reraise_edits(text, handler))
                edited += 1
        # These edits cannot add a compile-time-only error (`raise` is valid anywhere a
        # `pass`/`continue`/`break`/`return` was), so parsing is enough.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text.apply(), path)
    assert edited > 3000


# -- every codemod over a bounded sample ---------------------------------------------------------
HARD = (
    "xml/etree/ElementTree.py",  # deep ASTs (RecursionError in the SQL checks once)
    "tarfile.py",
    "locale.py",
    "logging/__init__.py",
    "logging/handlers.py",
    "sqlite3/__init__.py",
    "sqlite3/dbapi2.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
    "concurrent/futures/thread.py",
    "email/utils.py",
    "http/cookiejar.py",
    "imaplib.py",
    "mailbox.py",
    "shutil.py",
    "subprocess.py",
    "datetime.py",
    "_pydatetime.py",
)
SAMPLE_STEP = 8  # every eighth module: about 90 files, 2-6 s of CPU per codemod
OPTIONS = {"narrow-except": {"tier": 0}, "isolate-handlers": {"tier": 0}}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """A copy of the sample with a pyproject.toml of its own: codemods write only into copies."""
    skip = {"site-packages", "test", "tests", "idlelib", "lib2to3"}
    modules = sorted(
        p.relative_to(STDLIB).as_posix()
        for p in STDLIB.rglob("*.py")
        if not skip & set(p.relative_to(STDLIB).parts) and p.stat().st_size <= MAX_SIZE
    )
    chosen = sorted({*modules[::SAMPLE_STEP], *(f for f in HARD if (STDLIB / f).is_file())})
    root = tmp_path_factory.mktemp("stdlib-sample")
    for relpath in chosen:
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STDLIB / relpath, root / relpath)
    (root / "pyproject.toml").write_text('[project]\nname = "stdlib-sample"\nversion = "0"\n')
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("codemod_id", sorted(codemod_registry()))
def test_every_codemod_over_a_stdlib_sample(codemod_id, sample, tmp_path):
    copy = tmp_path / "sample"
    shutil.copytree(sample, copy)
    before = _snapshot(copy)
    codemod = codemod_registry()[codemod_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        project, skipped = load_project(copy)
        assert len(project.files) > 80
        plan = run_codemod(codemod(OPTIONS.get(codemod_id)), project, skipped)
    assert not plan.failures, [(f.path, f.reason[:300]) for f in plan.failures][:5]
    for change in plan.changes:
        assert change.after != change.before
        assert syntax_problem(change.after, change.path) is None, change.path

    written = {p.relative_to(copy).as_posix() for p in apply(plan)}
    assert written == {c.path for c in plan.changes}
    after = _snapshot(copy)
    changes = {c.path: c for c in plan.changes}
    for relpath, data in before.items():
        if relpath in written:
            text_format = plan.formats.get(relpath)
            text = changes[relpath].after
            expected = text_format.encode(text) if text_format else text.encode("utf-8")
            assert after[relpath] == expected, relpath
        else:
            assert after[relpath] == data, relpath  # untouched, byte for byte
    assert set(after) - set(before) <= written  # no temporary file left behind

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again_project, again_skipped = load_project(copy)
        again = run_codemod(codemod(OPTIONS.get(codemod_id)), again_project, again_skipped)
    assert not again.failures, [(f.path, f.reason[:300]) for f in again.failures][:5]
    assert not again.changes, [c.path for c in again.changes]  # a second run changes nothing
