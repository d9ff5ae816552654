"""`tag-tests`: the marks it writes (decorators, or a module `pytestmark`), the configuration it
registers them in (four file formats, comments kept), `--strict-markers`, idempotence; and on a
copy of the fixture app, `pytest -m "not stub"` passes and `pytest -m stub` selects exactly the
stub tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gathering_consolidate.codemods.engine import apply, plan_migration, syntax_problem
from gathering_consolidate.testsuite import inventory
from gathering_consolidate.testsuite.classify import classify
from tests.conftest import FIXTURE_APP
from tests.corpus_scoring import CORPUS

TESTS = {
    "app/__init__.py": "",
    "app/store.py": "_users_store: dict[str, dict] = {}\n\n\ndef add(email):\n"
    "    _users_store[email] = {}\n",
    "tests/__init__.py": "",
    "tests/test_pure.py": '''
        """Pure logic."""

        from __future__ import annotations


        def test_a():
            assert 1 + 1 == 2


        def test_b():
            assert sorted([2, 1]) == [1, 2]
    ''',
    "tests/test_mixed.py": """
        import pytest as pt

        from app import store

        pytestmark = pt.mark.slow


        def test_store(monkeypatch):  # keeps this comment
            monkeypatch.setattr(store, "_users_store", {})
            store.add("a")


        @pt.mark.unit
        def test_already_tagged():
            assert True


        class TestGroup:
            @pt.mark.parametrize("n", [1, 2])
            def test_param(self, n):
                assert n
    """,
}


def project(root: Path, config: tuple[str, str] | None, files: dict[str, str] = TESTS) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    if config is not None:
        (root / config[0]).write_text(textwrap.dedent(config[1]), encoding="utf-8")
    return root


def tag(root: Path) -> dict[str, str]:
    plan = plan_migration(root, "tag-tests")
    assert not plan.failures, plan.failures
    for change in plan.changes:
        assert syntax_problem(change.after, change.path) is None
    apply(plan)
    return {c.path: c.after for c in plan.changes}


PYPROJECT = (
    "pyproject.toml",
    """
    [project]
    name = "app"

    [tool.pytest.ini_options]
    # keep this comment
    addopts = "-ra"
    markers = [
        "slow: takes a while",  # and this one
    ]
    """,
)


def test_marks_are_written_once_and_the_module_mark_when_uniform(tmp_path):
    root = project(tmp_path, PYPROJECT)
    after = tag(root)
    pure = after["tests/test_pure.py"]
    assert (
        "from __future__ import annotations\nimport pytest\n\npytestmark = pytest.mark.unit\n"
        in (pure)
    )
    assert "@pytest.mark" not in pure
    mixed = after["tests/test_mixed.py"]
    assert "@pt.mark.stub\ndef test_store(monkeypatch):  # keeps this comment" in mixed
    assert mixed.count("pt.mark.unit") == 2  # the existing mark, and the class's method
    assert "    @pt.mark.unit\n    @pt.mark.parametrize" in mixed
    assert "pytestmark = pt.mark.slow\n" in mixed  # not uniform: left as it was
    config = after["pyproject.toml"]
    assert "# keep this comment" in config and "# and this one" in config
    assert 'addopts = "-ra --strict-markers"' in config
    for name in ("stub", "unit"):
        assert f'"{name}: ' in config
    assert "contract:" not in config  # only the tags it used


def test_second_run_changes_nothing(tmp_path):
    root = project(tmp_path, PYPROJECT)
    tag(root)
    again = plan_migration(root, "tag-tests")
    assert again.changes == ()


def test_pytest_agrees_with_the_tags(tmp_path):
    root = project(tmp_path, PYPROJECT)
    tag(root)
    found = inventory(root)
    tags = classify(found).tag_of()
    for name in ("stub", "unit"):
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             "-m", name],
            cwd=root, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-2000:]
        selected = {line for line in proc.stdout.splitlines() if "::" in line}
        assert selected == {n for n, t in tags.items() if t == name}


INI_CONFIGS = {
    "pytest.ini": ("[pytest]\n# comment kept\naddopts = -ra\nmarkers =\n    slow: takes a while\n"),
    "tox.ini": "[tox]\nenvlist = py311\n\n[pytest]\n# comment kept\nmarkers =\n"
    "    slow: takes a while\n\n[testenv]\ncommands = pytest\n",
    "setup.cfg": "[metadata]\nname = app\n\n[tool:pytest]\n# comment kept\naddopts =\n"
    "    -ra\n    -q\nmarkers =\n    slow: takes a while\n",
}


@pytest.mark.parametrize("name", sorted(INI_CONFIGS))
def test_ini_configurations_are_edited_in_place(tmp_path, name):
    root = project(tmp_path, (name, INI_CONFIGS[name]))
    (root / "pyproject.toml").write_text('[project]\nname = "app"\n', encoding="utf-8")
    after = tag(root)[name]
    assert "# comment kept" in after
    assert "    slow: takes a while\n    stub: " in after
    assert "    unit: pure logic, no I/O\n" in after
    assert "--strict-markers" in after
    if name == "tox.ini":
        assert after.endswith("[testenv]\ncommands = pytest\n")
    # pytest reads the result: strict markers on, and every mark in use is registered
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_without_configuration_marks_in_use_are_registered(tmp_path):
    """No pytest configuration: it goes in pyproject.toml, with the unregistered `slow` mark the
    tests use, so `--strict-markers` does not break collection."""
    root = project(tmp_path, ("pyproject.toml", '[project]\nname = "app"\n'))
    after = tag(root)["pyproject.toml"]
    assert "[tool.pytest.ini_options]" in after
    assert '"slow: in use before --strict-markers' in after
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:]


@pytest.mark.postgres
@pytest.mark.slow
def test_fixture_app_after_tagging(tmp_path, fresh_database):
    """The issue's done-when: tag a copy; `-m "not stub"` passes; `-m stub` is exactly the
    classifier's stub tests."""
    root = tmp_path / "app"
    shutil.copytree(FIXTURE_APP, root, ignore=shutil.ignore_patterns("__pycache__"))
    before = {i.nodeid for i in inventory(root).items}
    tag(root)
    found = inventory(root)
    assert {i.nodeid for i in found.items} == before
    stubs = {n for n, t in classify(found).tag_of().items() if t == "stub"}
    assert len(stubs) == 15
    env = {**os.environ, "DATABASE_URL": fresh_database, "PYTHONDONTWRITEBYTECODE": "1"}
    selected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-m", "stub"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert {line for line in selected.stdout.splitlines() if "::" in line} == stubs
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not stub"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:]
    assert f"{len(stubs) + 1} deselected" not in run.stdout
    assert f"{len(stubs)} deselected" in run.stdout.splitlines()[-1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not (CORPUS / "extract.sh").is_file():
        pytest.skip("corpus not available")
    dest = tmp_path_factory.mktemp("corpus")
    subprocess.run(
        ["bash", str(CORPUS / "extract.sh"), str(dest)], check=True, capture_output=True,
        timeout=300,
    )  # fmt: skip
    return dest


@pytest.mark.slow
@pytest.mark.parametrize(
    "project", ["full-stack-fastapi-template/backend", "superagi", "netflix-dispatch"]
)
def test_corpus_stays_collectable(corpus, project):
    """On real suites: every file it writes parses, the same tests are collected, and a second
    run changes nothing."""
    import ast

    root = corpus / project
    before = [i.nodeid for i in inventory(root).items]
    plan = plan_migration(root, "tag-tests")
    assert not plan.failures, plan.failures
    assert plan.changes
    for change in plan.changes:
        if change.path.endswith(".py"):
            ast.parse(change.after)
    apply(plan)
    assert [i.nodeid for i in inventory(root).items] == before
    assert plan_migration(root, "tag-tests").changes == ()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "import pytest\n\npytestmark = pytest.mark.slow\n\n\ndef test_a():\n    pass\n",
            "import pytest\n\npytestmark = [pytest.mark.slow, pytest.mark.unit]\n\n\n"
            "def test_a():\n    pass\n",
        ),
        (
            "import pytest\n\npytestmark = (pytest.mark.slow,)\n\n\ndef test_a():\n    pass\n",
            "import pytest\n\npytestmark = (pytest.mark.slow, pytest.mark.unit)\n\n\n"
            "def test_a():\n    pass\n",
        ),
        (
            '"""Doc."""\nfrom pytest import mark\n\n\ndef test_a():\n    pass\n',
            '"""Doc."""\nfrom pytest import mark\n\npytestmark = mark.unit\n\n\n'
            "def test_a():\n    pass\n",
        ),
        (
            '"""Doc."""\n\n\ndef test_a():\n    pass\n',
            '"""Doc."""\nimport pytest\n\npytestmark = pytest.mark.unit\n\n\ndef test_a():\n'
            "    pass\n",
        ),
    ],
    ids=["single-mark", "tuple", "from-pytest-import-mark", "no-import"],
)
def test_module_marks(before, after):
    from gathering_consolidate.codemods.tag_tests import _tag_module

    assert _tag_module(before, {"test_a": "unit"}, "unit") == after


def test_a_multiline_pytestmark_keeps_its_layout():
    from gathering_consolidate.codemods.tag_tests import _tag_module

    before = "import pytest\n\npytestmark = [\n    pytest.mark.slow,  # why\n]\n\n\ndef test_a():\n    pass\n"
    after = _tag_module(before, {"test_a": "unit"}, "unit")
    assert "pytestmark = [\n    pytest.mark.slow,  # why\n    pytest.mark.unit,\n]\n" in after
