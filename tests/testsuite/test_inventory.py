"""The static inventory equals what `pytest --collect-only` collects: on the fixture app, on
generated suites with the parametrizations and configurations pytest handles, and on the corpus
template (a count verified with pytest in a scratch environment)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gathering_consolidate.testsuite import inventory, issue_reference
from gathering_consolidate.testsuite.pytest_config import load_pytest_config
from tests.conftest import FIXTURE_APP
from tests.corpus_scoring import CORPUS


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def collected(root: Path, *args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "error" not in proc.stdout.lower().splitlines()[-1], proc.stdout[-3000:]
    return {line for line in proc.stdout.splitlines() if "::" in line}


def static(root: Path) -> set[str]:
    return {item.nodeid for item in inventory(root).items}


TRICKY = """
    import enum, re
    import pytest
    from unittest import TestCase

    pytestmark = pytest.mark.parametrize("m", [0])

    class Colour(enum.Enum):
        RED = 1

    def helper():
        pass

    CASES = [1, 2]
    slow = pytest.mark.slow

    @pytest.mark.parametrize("a", [1, 2])
    @pytest.mark.parametrize("b", ["x", "y"])
    def test_stacked(a, b, m):
        pass

    @pytest.mark.parametrize("v", ["", "é", "a b", 1.5, -1, True, None, (1, 2), [3], {"k": 1},
                                   Colour.RED, helper, re.compile("x+"), b"by", 3j, "a\\nb"])
    def test_values(v, m):
        pass

    @pytest.mark.parametrize("v", [])
    def test_empty(v, m):
        pass

    @pytest.mark.parametrize("v", [1, 1, "x1", "x1", "y", "y"])
    def test_duplicates(v, m):
        pass

    @pytest.mark.parametrize("a,b", [(1, 2), pytest.param(3, 4, id="three"),
                                     pytest.param(5, 6, marks=pytest.mark.skip)])
    def test_params(a, b, m):
        pass

    @pytest.mark.parametrize(("a", "b"), [(1, 2)], ids=["z"])
    def test_ids(a, b, m):
        pass

    @pytest.mark.parametrize("v", CASES + [3], ids=["p", None, "r"])
    def test_constant_and_none_id(v, m):
        pass

    @pytest.fixture(params=[1, 2], ids=["one", "two"])
    def numbered(request):
        return request.param

    @pytest.mark.parametrize("a", [7])
    def test_fixture_params(numbered, a, m):
        pass

    @slow
    def test_named_mark(m):
        pass

    def test_redefined(m):
        pass

    def test_redefined(m):
        pass

    class TestBase:
        @pytest.mark.parametrize("a", [1])
        def test_in_class(self, a, m):
            pass

        class TestNested:
            def test_inner(self, m):
                pass

    class TestChild(TestBase):
        def test_own(self, m):
            pass

    class TestWithInit:
        def __init__(self):
            pass

        def test_never(self):
            pass

    class TestOff:
        __test__ = False

        def test_never(self):
            pass

    class Plain(TestCase):
        def test_unittest(self):
            pass

        def helper(self):
            pass

    class NotATest:
        def test_never(self):
            pass

    async def test_async(m):
        pass
"""


def test_tricky_parametrizations_equal_pytest(tmp_path):
    shared = "def test_shared(m):\n    pass\n\n\nclass TestShared:\n    def test_m(self, m):\n        pass\n"
    imports = "from shared_tests import test_shared, TestShared as TestAlias\n"
    root = write(
        tmp_path,
        {
            "pyproject.toml": "[tool.pytest.ini_options]\n",
            "test_x.py": imports + textwrap.dedent(TRICKY),
            "shared_tests.py": shared,
        },
    )
    ours, theirs = static(root), collected(root)
    assert ours == theirs, (sorted(ours - theirs), sorted(theirs - ours))
    assert len(theirs) > 40
    assert {"test_x.py::test_shared[0]", "test_x.py::TestAlias::test_m[0]"} <= theirs  # imported


CONFIGS = {
    "pytest.ini": "[pytest]\n# comment\ntestpaths = suite\npython_files = check_*.py\n"
    "python_classes = Check\npython_functions = check_ it_*\nnorecursedirs = skipme\n",
    "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["suite"]\npython_files = '
    '["check_*.py"]\npython_classes = ["Check"]\npython_functions = ["check_", "it_*"]\n'
    'norecursedirs = ["skipme"]\n',
    "tox.ini": "[tox]\nenvlist = py\n\n[pytest]\ntestpaths = suite\npython_files = check_*.py\n"
    "python_classes = Check\npython_functions = check_ it_*\nnorecursedirs = skipme\n",
    "setup.cfg": "[metadata]\nname = x\n\n[tool:pytest]\ntestpaths = suite\n"
    "python_files = check_*.py\npython_classes = Check\npython_functions = check_ it_*\n"
    "norecursedirs = skipme\n",
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_configuration_is_honoured(tmp_path, config):
    root = write(
        tmp_path,
        {
            config: CONFIGS[config],
            "suite/check_a.py": """
                def check_one(): pass
                def it_works(): pass
                def test_not_by_this_config(): pass
                class CheckThing:
                    def check_method(self): pass
                class TestNotByThisConfig:
                    def check_method(self): pass
            """,
            "suite/test_b.py": "def check_ignored_file(): pass\n",
            "suite/skipme/check_c.py": "def check_in_norecurse(): pass\n",
            "suite/sub/check_d.py": "def check_deep(): pass\n",
            "suite/conftest.py": "collect_ignore = ['ignored']\n",
            "suite/ignored/check_e.py": "def check_ignored(): pass\n",
            "outside/check_f.py": "def check_outside_testpaths(): pass\n",
        },
    )
    ours, theirs = static(root), collected(root)
    assert ours == theirs
    assert theirs == {
        "suite/check_a.py::check_one",
        "suite/check_a.py::it_works",
        "suite/check_a.py::CheckThing::check_method",
        "suite/sub/check_d.py::check_deep",
    }


def test_fixture_app_inventory_equals_collect_only():
    ours = static(FIXTURE_APP)
    theirs = collected(FIXTURE_APP)
    assert ours == theirs, (sorted(ours - theirs), sorted(theirs - ours))
    assert len(ours) == 143


def test_skips_marks_and_fixtures_are_read():
    found = inventory(FIXTURE_APP)
    by_id = {item.nodeid: item for item in found.items}
    blocked = by_id["tests/test_pipelines.py::test_run_calls_agent_nodes"]
    assert [(s.kind, s.issue) for s in blocked.skips] == [("skip", "#157")]
    assert blocked.skips[0].reason.startswith("blocked by #157")
    flaky = by_id["tests/test_scheduler_unit.py::test_tick_fires_due_actions_within_one_interval"]
    assert [(s.kind, s.reason, s.issue) for s in flaky.skips] == [("skip", "flaky", None)]
    case = by_id["tests/test_auth_contract.py::test_register_validates_input[short-password]"]
    assert case.params == "short-password"
    assert {"contract", "parametrize"} <= case.mark_names
    # the fixture closure, through conftest.py
    assert {"client", "app", "db_service", "database_url", "user_credentials"} <= set(case.fixtures)
    stub = by_id["tests/test_auth_unit.py::test_user_ids_are_uuid_strings"]
    assert {"stub", "unit"} <= stub.mark_names
    assert "isolated_user_store" in stub.fixtures and "monkeypatch" in stub.fixtures


def test_skip_conditions_and_unittest_skips(tmp_path):
    root = write(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "test_s.py": """
                import sys, unittest
                import pytest

                @pytest.mark.skipif(sys.platform == "win32", reason="GH-12: no fork")
                def test_cond(): pass

                @pytest.mark.xfail(reason="see https://github.com/o/r/issues/9")
                def test_xfail(): pass

                def test_runtime():
                    if sys.version_info < (3, 20):
                        pytest.skip("needs a newer Python")

                class T(unittest.TestCase):
                    @unittest.skip("PROJ-7 broken upstream")
                    def test_u(self): pass
            """,
        },
    )
    items = {i.name: i for i in inventory(root).items}
    cond = items["test_cond"].skips[0]
    assert (cond.kind, cond.condition, cond.issue) == ("skipif", 'sys.platform == "win32"', "GH-12")
    assert items["test_xfail"].skips[0].issue == "https://github.com/o/r/issues/9"
    runtime = items["test_runtime"].skips[0]
    assert (runtime.kind, runtime.issue) == ("skip-call", None)
    assert runtime.condition == "sys.version_info < (3, 20)"
    assert items["T::test_u"].skips[0].issue == "PROJ-7"


def test_limits_are_reported_not_guessed(tmp_path):
    root = write(
        tmp_path,
        {
            "pyproject.toml": "[tool.pytest.ini_options]\naddopts = \"-m 'not slow'\"\n",
            "conftest.py": "def pytest_generate_tests(metafunc):\n    pass\n",
            "test_l.py": "import pytest\n\n@pytest.mark.parametrize('a', list(range(3)))\n"
            "def test_a(a): pass\n\n@pytest.mark.parametrize('a', make())\ndef test_b(a): pass\n",
        },
    )
    found = inventory(root)
    assert any("pytest_generate_tests" in limit for limit in found.limits)
    assert any("-m not slow" in limit for limit in found.limits)
    uncertain = [i for i in found.items if i.uncertain]
    assert [i.nodeid for i in uncertain] == ["test_l.py::test_b[?]"]
    assert [i.params for i in found.items if i.name == "test_a"] == ["0", "1", "2"]


def test_issue_references():
    assert issue_reference("blocked by #157: simulated") == "#157"
    assert issue_reference("see GH-12") == "GH-12"
    assert issue_reference("JIRA OPS-42 upstream") == "OPS-42"
    assert (
        issue_reference("https://gitlab.com/a/b/-/issues/3") == "https://gitlab.com/a/b/-/issues/3"
    )
    assert issue_reference("flaky") is None
    assert issue_reference("colour #fff is wrong") is None
    assert issue_reference("") is None


def test_rootdir_and_config_are_found_from_a_subfolder(tmp_path):
    root = write(tmp_path, {"setup.cfg": "[tool:pytest]\nmarkers =\n    slow: s\n", "a/b/x.py": ""})
    config = load_pytest_config(root / "a" / "b")
    assert config.rootdir == root.resolve()
    assert config.inifile is not None and config.inifile.name == "setup.cfg"
    assert config.markers == ["slow"]


def test_cli_cross_check_lists_every_difference(tmp_path):
    """A conftest hook pytest runs and a static reading cannot: both sides are listed, exit 1."""
    root = write(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "conftest.py": """
                def pytest_generate_tests(metafunc):
                    if "n" in metafunc.fixturenames:
                        metafunc.parametrize("n", [1, 2])
            """,
            "test_h.py": "def test_plain(): pass\n\ndef test_hooked(n): pass\n",
        },
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gathering_consolidate.cli", "tests", "inventory", str(root),
         "--python", sys.executable, "-f", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["pytest"]["only_static"] == ["test_h.py::test_hooked"]
    assert data["pytest"]["only_pytest"] == [
        "test_h.py::test_hooked[1]",
        "test_h.py::test_hooked[2]",
    ]
    assert any("pytest_generate_tests" in limit for limit in data["limits"])


@pytest.mark.skipif(not (CORPUS / "extract.sh").is_file(), reason="corpus not available")
def test_template_backend_count_matches_pytest(tmp_path):
    """60: `pytest --collect-only -q` in full-stack-fastapi-template/backend with its dependencies
    installed in a scratch virtual environment (Python 3.13, three collection-only edits for
    3.14 syntax), 2026-12-02; the node ids were identical."""
    subprocess.run(
        ["bash", str(CORPUS / "extract.sh"), str(tmp_path)], check=True, capture_output=True,
        timeout=300,
    )  # fmt: skip
    found = inventory(tmp_path / "full-stack-fastapi-template" / "backend")
    assert found.total == 60
    assert not found.errors and not found.limits


def test_same_basename_without_packages_is_a_collection_error(tmp_path):
    root = write(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "a/test_same.py": "def test_a(): pass\n",
            "b/test_same.py": "def test_b(): pass\n",
            "c/__init__.py": "",
            "c/test_same.py": "def test_c(): pass\n",  # a package: `c.test_same`, no clash
        },
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    theirs = {line for line in proc.stdout.splitlines() if "::" in line}
    found = inventory(root)
    assert {i.nodeid for i in found.items} == theirs == {
        "a/test_same.py::test_a", "c/test_same.py::test_c",
    }  # fmt: skip
    assert "ERROR b/test_same.py" in proc.stdout
    assert [(p, r.split(":")[0]) for p, r in found.errors] == [
        ("b/test_same.py", "import file mismatch")
    ]


@pytest.mark.parametrize("strategy", [None, "sha256", "legacy"])
def test_ids_of_imported_enums_constants_and_long_strings(tmp_path, strategy):
    """Seen in this project's own suite: constants and IntEnum members imported from another
    module, `signal.SIGINT`, code snippets longer than 100 characters."""
    ini = "[pytest]\n" + (f"parametrize_long_str_id_strategy = {strategy}\n" if strategy else "")
    long = "x = 1\\n" * 30
    root = write(
        tmp_path,
        {
            "pytest.ini": ini,
            "helpers.py": """
                import enum

                STRONG, WEAK = 2, 1


                class Level(enum.IntEnum):
                    LOW = 1


                class Colour(enum.Enum):
                    RED = "r"


                def check():
                    pass
            """,
            "test_ids.py": f"""
                import signal

                import pytest

                from helpers import STRONG, WEAK, Colour, Level, check


                @pytest.mark.parametrize("v", [STRONG, WEAK, Level.LOW, Colour.RED, check,
                                               signal.SIGINT, "{long}", "short"])
                def test_v(v):
                    pass
            """,
        },
    )
    ours, theirs = static(root), collected(root)
    assert ours == theirs, (sorted(ours - theirs), sorted(theirs - ours))
    assert "test_ids.py::test_v[2_0]" in theirs and "test_ids.py::test_v[Colour.RED]" in theirs
