"""libsource.py: third-party facts read from a real virtual environment's installed source.

The packages are built here and installed into a `python -m venv` environment, by pip from a
wheel (the real dist-info layout: RECORD, no top_level.txt) and by copying files next to a
hand-written dist-info. The environment's interpreter is replaced by a script that leaves a
marker, so every test also shows it is never run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gathering_consolidate.config import Config, ConfigError, load_config, target_python
from gathering_consolidate.libsource import (
    MAX_DEPTH,
    Catalogue,
    LibraryFacts,
    LibrarySource,
    find_environment,
    library_source_for,
    read_distributions,
)

DBKIT = {
    "dbkit/__init__.py": """
        from .client import Client, connect
        from .errors import QueryError

        __all__ = ["Client", "QueryError", "connect"]
    """,
    "dbkit/errors.py": """
        class DbkitError(Exception):
            pass


        class QueryError(DbkitError):
            pass
    """,
    "dbkit/client.py": """
        import time

        import psycopg

        from .errors import QueryError


        class Base:
            def _run(self, sql):
                time.sleep(self.delay)
                conn = psycopg.connect(self.dsn)
                return conn.execute(sql).fetchone()


        class Client(Base):
            def __init__(self, dsn):
                self.dsn = dsn
                self.delay = 0.1

            def query(self, sql):
                row = self._run(sql)
                if row is None:
                    raise QueryError(sql)
                return row

            def quiet(self, sql):
                try:
                    return self.query(sql)
                except QueryError:
                    return None

            def lookup(self, key):
                return self._plugin.resolve(key)

            def ping(self, n):
                return self.pong(n - 1)

            def pong(self, n):
                return self.ping(n)


        def connect(dsn):
            return Client(dsn)
    """,
}

#: `time.sleep` raises nothing worth catching; said here so the test does not depend on whether
#: the default exception catalogue lists it.
CATALOGUE = Catalogue.load(extra_calls={"time.sleep": []})


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def make_venv(path: Path, *, with_pip: bool = False) -> Path:
    args = [sys.executable, "-m", "venv", str(path)]
    if not with_pip:
        args.insert(3, "--without-pip")
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    (site,) = (path / "lib").glob("python3.*/site-packages")
    return site


def booby_trap(venv: Path, marker: Path) -> None:
    """Replace the environment's interpreters with a script that leaves `marker` when run."""
    for python in (venv / "bin").glob("python*"):
        python.unlink()
        python.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
        python.chmod(0o755)


def copy_install(site: Path, files: dict[str, str], name: str, version: str) -> None:
    write_tree(site, files)
    meta = site / f"{name}-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nA long description.\n"
    )
    (meta / "top_level.txt").write_text(f"{name}\n")
    (meta / "RECORD").write_text("".join(f"{rel},,\n" for rel in files))


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "user-cache"
    monkeypatch.setenv("GATHERING_CONSOLIDATE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def venv(tmp_path: Path, cache_dir: Path) -> tuple[Path, Path, Path]:
    """A venv with dbkit copied in beside a hand-written dist-info: (venv, site, marker)."""
    root = tmp_path / "venv"
    site = make_venv(root)
    copy_install(site, DBKIT, "dbkit", "1.0")
    marker = tmp_path / "interpreter-was-run"
    booby_trap(root, marker)
    return root, site, marker


@pytest.fixture(scope="module")
def pip_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A venv into which its own pip installed dbkit from a wheel (built with hatchling)."""
    pytest.importorskip("hatchling", reason="builds the test wheel without the network")
    base = tmp_path_factory.mktemp("pipvenv")
    project = base / "dbkit-src"
    write_tree(project, DBKIT)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        '[project]\nname = "dbkit"\nversion = "1.0"\n'
    )
    wheels = base / "wheels"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "-q", "--no-index", "--no-deps"),
            *("--no-build-isolation", str(project), "-w", str(wheels)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    root = base / "venv"
    make_venv(root, with_pip=True)
    (wheel,) = wheels.glob("dbkit-1.0-*.whl")
    subprocess.run(
        [str(root / "bin" / "pip"), "install", "-q", "--no-index", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    marker = base / "interpreter-was-run"
    booby_trap(root, marker)
    return root, marker


# -- the environment ---------------------------------------------------------------------------
def test_pip_installed_layout_is_read_without_running_the_interpreter(
    pip_venv: tuple[Path, Path], cache_dir: Path
) -> None:
    root, marker = pip_venv
    environment = find_environment(root / "bin" / "python")
    assert environment is not None
    assert [p.name for p in environment.site_packages] == ["site-packages"]
    meta = next(environment.site_packages[0].glob("dbkit-1.0.dist-info"))
    assert not (meta / "top_level.txt").exists()  # hatchling: the RECORD names the package
    dist = read_distributions(environment.site_packages)["dbkit"]
    assert (dist.name, dist.version) == ("dbkit", "1.0")
    facts = LibrarySource(environment, catalogue=CATALOGUE).describe("dbkit.Client.query")
    assert facts is not None
    assert ("dbkit.Client.query", "dbkit.Client._run", "psycopg.connect") in facts.blocking
    assert set(facts.raises) == {"dbkit.errors.QueryError", "psycopg.Error"}
    assert (facts.distribution, facts.version) == ("dbkit", "1.0")
    assert not marker.exists()


def test_environment_from_interpreter_or_folder(venv: tuple[Path, Path, Path]) -> None:
    root, site, marker = venv
    assert find_environment(root / "bin" / "python").site_packages == (site,)
    assert find_environment(root).site_packages == (site,)  # as $VIRTUAL_ENV gives it
    assert find_environment(root / "lib") is None
    assert not marker.exists()


def test_pth_code_is_not_run_but_its_directories_are_searched(
    venv: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    root, site, marker = venv
    ran = tmp_path / "pth-code-ran"
    extra = tmp_path / "src"
    write_tree(extra, {"extrakit/__init__.py": "import time\ndef nap():\n    time.sleep(1)\n"})
    (site / "aaa-evil.pth").write_text(f"import os; open({str(ran)!r}, 'w').close()\n{extra}\n")
    source = LibrarySource(find_environment(root / "bin" / "python"), catalogue=CATALOGUE)
    facts = source.describe("extrakit.nap")
    assert facts is not None and facts.blocking == (("extrakit.nap", "time.sleep"),)
    assert facts.version is None  # no dist-info: read, but never cached
    assert not ran.exists()
    assert not marker.exists()


# -- describe ---------------------------------------------------------------------------------
def test_blocking_chain_and_exceptions_through_a_reexport(venv: tuple[Path, Path, Path]) -> None:
    root, _site, marker = venv
    source = LibrarySource(find_environment(root / "bin" / "python"), catalogue=CATALOGUE)
    facts = source.describe("dbkit.Client.query")
    assert facts is not None
    assert set(facts.blocking) == {
        ("dbkit.Client.query", "dbkit.Client._run", "time.sleep"),
        ("dbkit.Client.query", "dbkit.Client._run", "psycopg.connect"),
        ("dbkit.Client.query", "dbkit.Client._run", "psycopg.Connection.execute"),
        ("dbkit.Client.query", "dbkit.Client._run", "psycopg.Cursor.fetchone"),
    }
    assert facts.raises == {
        "dbkit.errors.QueryError": ("dbkit.Client.query",),
        "psycopg.Error": ("dbkit.Client.query", "dbkit.Client._run", "psycopg.connect"),
    }
    assert facts.unknown == ()
    assert facts.exceptions == ("dbkit.errors.QueryError", "psycopg.Error")
    assert (facts.distribution, facts.version, facts.source) == ("dbkit", "1.0", "library source")
    assert not marker.exists()


def test_what_the_library_catches_does_not_escape(venv: tuple[Path, Path, Path]) -> None:
    root, _site, _marker = venv
    source = LibrarySource(find_environment(root), catalogue=CATALOGUE)
    facts = source.describe("dbkit.Client.quiet")
    assert facts is not None
    assert set(facts.raises) == {"psycopg.Error"}  # QueryError is caught, psycopg's is not
    assert facts.unknown == ()


def test_an_unresolved_call_makes_the_answer_unknown(venv: tuple[Path, Path, Path]) -> None:
    root, _site, _marker = venv
    facts = LibrarySource(find_environment(root), catalogue=CATALOGUE).describe(
        "dbkit.Client.lookup"
    )
    assert facts is not None
    assert facts.raises == {}
    assert facts.unknown == ("self._plugin.resolve (in dbkit.Client.lookup)",)
    assert facts.exceptions is None  # never "raises nothing"


def test_recursion_terminates(venv: tuple[Path, Path, Path]) -> None:
    root, _site, _marker = venv
    facts = LibrarySource(find_environment(root), catalogue=CATALOGUE).describe("dbkit.Client.ping")
    assert facts is not None
    assert (facts.blocking, facts.raises, facts.unknown) == ((), {}, ())


def test_stdlib_and_missing_packages_are_none(venv: tuple[Path, Path, Path]) -> None:
    root, _site, _marker = venv
    source = LibrarySource(find_environment(root), catalogue=CATALOGUE)
    assert source.describe("os.path.join") is None
    assert source.describe("time.sleep") is None
    assert source.describe("requests.get") is None  # not installed in this environment
    assert source.files_parsed == 0
    missing = source.describe("dbkit.Nothing")
    assert missing is not None and missing.unknown == (
        "dbkit.Nothing (not found in the library source)",
    )


def test_a_huge_library_is_bounded(venv: tuple[Path, Path, Path]) -> None:
    root, site, _marker = venv
    files = {"bigkit/__init__.py": ""}
    calls = []
    for i in range(60):
        files[f"bigkit/m{i}.py"] = "import time\ndef f():\n    time.sleep(1)\n"
        calls.append(f"    from bigkit import m{i}\n    m{i}.f()\n")
    files["bigkit/run.py"] = "def run():\n" + "".join(calls)
    copy_install(site, files, "bigkit", "2.0")
    source = LibrarySource(find_environment(root), catalogue=CATALOGUE, max_files=10)
    facts = source.describe("bigkit.run.run")
    assert facts is not None
    assert source.files_parsed == 10
    assert any("file limit 10 reached" in u for u in facts.unknown)
    assert facts.exceptions is None
    assert facts.blocking  # what was read before the bound still counts


def test_deep_chains_stop_at_the_depth_bound(venv: tuple[Path, Path, Path]) -> None:
    root, site, _marker = venv
    n = MAX_DEPTH + 4
    files = {"deepkit/__init__.py": ""}
    for i in range(n):
        files[f"deepkit/m{i}.py"] = f"from deepkit import m{i + 1}\ndef f():\n    m{i + 1}.f()\n"
    files[f"deepkit/m{n}.py"] = "import time\ndef f():\n    time.sleep(1)\n"
    copy_install(site, files, "deepkit", "1.0")
    source = LibrarySource(find_environment(root), catalogue=CATALOGUE)
    facts = source.describe("deepkit.m0.f")
    assert facts is not None
    assert facts.blocking == ()
    assert facts.unknown == (f"deepkit.m{MAX_DEPTH + 1}.f (depth limit {MAX_DEPTH})",)
    assert source.files_parsed <= MAX_DEPTH + 3


# -- the cache ---------------------------------------------------------------------------------
def test_second_describe_is_served_from_the_cache(
    venv: tuple[Path, Path, Path], cache_dir: Path
) -> None:
    root, _site, _marker = venv
    environment = find_environment(root)
    first = LibrarySource(environment, catalogue=CATALOGUE)
    facts = first.describe("dbkit.Client.query")
    assert first.files_parsed == 3  # dbkit/__init__.py, client.py, errors.py
    entries = list((cache_dir / "libsource" / "dbkit-1.0").glob("*.json"))
    assert len(entries) == 1
    assert json.loads(entries[0].read_text())["facts"]["version"] == "1.0"

    second = LibrarySource(environment, catalogue=CATALOGUE)
    assert second.describe("dbkit.Client.query") == facts
    assert second.files_parsed == 0

    entries[0].write_text("{not json")  # a corrupt entry is a miss, then rewritten
    third = LibrarySource(environment, catalogue=CATALOGUE)
    assert third.describe("dbkit.Client.query") == facts
    assert third.files_parsed == 3
    assert LibraryFacts.from_json(json.loads(entries[0].read_text())["facts"]) == facts


def test_the_cache_is_keyed_by_version_and_catalogue(
    venv: tuple[Path, Path, Path], cache_dir: Path
) -> None:
    root, site, _marker = venv
    environment = find_environment(root)
    LibrarySource(environment, catalogue=CATALOGUE).describe("dbkit.Client.query")
    other_catalogue = Catalogue.load(extra_calls={"time.sleep": ["InterruptedError"]})
    changed = LibrarySource(environment, catalogue=other_catalogue)
    facts = changed.describe("dbkit.Client.query")
    assert changed.files_parsed == 3 and "InterruptedError" in facts.raises
    meta = site / "dbkit-1.0.dist-info" / "METADATA"
    meta.write_text(meta.read_text().replace("Version: 1.0", "Version: 1.1"))
    upgraded = LibrarySource(environment, catalogue=CATALOGUE)
    assert upgraded.describe("dbkit.Client.query").version == "1.1"
    assert upgraded.files_parsed == 3


# -- plumbing ----------------------------------------------------------------------------------
def test_config_python_defaults_to_the_active_virtualenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    assert load_config(tmp_path).python is None
    monkeypatch.setenv("VIRTUAL_ENV", "/some/venv")
    assert load_config(tmp_path).python == "/some/venv"
    with target_python("/other/bin/python"):
        assert load_config(tmp_path).python == "/other/bin/python"
    assert load_config(tmp_path, python="/x/bin/python").python == "/x/bin/python"


def test_library_source_for_config_is_memoised(venv: tuple[Path, Path, Path]) -> None:
    root, _site, marker = venv
    assert library_source_for(Config(root=root)) is None
    config = Config(root=root, python=str(root / "bin" / "python"))
    source = library_source_for(config)
    assert source is not None and source is library_source_for(config)
    facts = source.describe("dbkit.Client.query")
    assert facts is not None and "psycopg.Error" in facts.raises
    assert not marker.exists()


@pytest.mark.parametrize("command", ["audit", "migrate"])
def test_cli_python_option_reaches_the_configuration(
    command: str, venv: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gathering_consolidate import project
    from gathering_consolidate.cli import app
    from gathering_consolidate.codemods import engine

    root, _site, marker = venv
    target = tmp_path / "app"
    target.mkdir()

    def report_python(path, *args, **kwargs):
        raise ConfigError(f"python={load_config(Path(path)).python}")

    monkeypatch.setattr(project, "audit", report_python)
    monkeypatch.setattr(engine, "plan_migration", report_python)
    python = str(root / "bin" / "python")
    args = [command, str(target), "--python", python]
    if command == "migrate":
        args += ["--codemod", "narrow-except"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert f"python={python}" in " ".join(result.output.split())
    missing = CliRunner().invoke(app, [command, str(target), "--python", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert not marker.exists()


def test_the_environment_is_never_imported(venv: tuple[Path, Path, Path]) -> None:
    root, site, _marker = venv
    (site / "dbkit" / "errors.py").write_text("raise SystemExit('imported!')\n" + "x = 1\n")
    shutil.rmtree(site / "dbkit" / "__pycache__", ignore_errors=True)
    facts = LibrarySource(find_environment(root), catalogue=CATALOGUE).describe(
        "dbkit.Client.query"
    )
    assert facts is not None and "dbkit" not in sys.modules
    assert os.fspath(site) not in sys.path


def test_a_method_of_what_a_library_function_returns(venv: tuple[Path, Path, Path]) -> None:
    """The EXC analysis names such calls `dbkit.connect().query`."""
    root, _site, _marker = venv
    facts = LibrarySource(find_environment(root), catalogue=CATALOGUE).describe(
        "dbkit.connect().query"
    )
    assert facts is not None
    assert set(facts.raises) == {"dbkit.errors.QueryError", "psycopg.Error"}
    assert any(chain[-1] == "psycopg.connect" for chain in facts.blocking)
    assert facts.unknown == ()


def test_setuptools_editable_install_is_found_without_running_its_finder(
    venv: tuple[Path, Path, Path], tmp_path: Path, cache_dir: Path
) -> None:
    root, site, marker = venv
    ran = tmp_path / "finder-ran"
    src = tmp_path / "checkout" / "src"
    write_tree(src, {"edkit/__init__.py": "import time\ndef nap():\n    time.sleep(1)\n"})
    (site / "__editable___edkit_1_0_finder.py").write_text(
        f"open({str(ran)!r}, 'w').close()\nMAPPING = {{'edkit': {str(src / 'edkit')!r}}}\n"
    )
    (site / "__editable__.edkit-1.0.pth").write_text(
        "import __editable___edkit_1_0_finder; __editable___edkit_1_0_finder.install()\n"
    )
    copy_install(site, {}, "edkit", "1.0")
    facts = LibrarySource(find_environment(root), catalogue=CATALOGUE).describe("edkit.nap")
    assert facts is not None
    assert facts.blocking == (("edkit.nap", "time.sleep"),)
    assert (facts.distribution, facts.version) == ("edkit", "1.0")
    assert not ran.exists() and not marker.exists()
    # A checkout changes under the same version: read every time, never cached.
    assert not (cache_dir / "libsource").exists()


def test_except_exception_does_not_catch_a_base_exception(venv: tuple[Path, Path, Path]) -> None:
    root, site, _marker = venv
    code = """
        class Stop(BaseException):
            pass


        class Oops(Exception):
            pass


        def stop():
            try:
                raise Stop()
            except Exception:
                pass


        def oops():
            try:
                raise Oops()
            except Exception:
                pass
    """
    copy_install(site, {"stopkit/__init__.py": code}, "stopkit", "1.0")
    source = LibrarySource(find_environment(root), catalogue=CATALOGUE)
    assert source.describe("stopkit.stop").raises == {"stopkit.Stop": ("stopkit.stop",)}
    assert source.describe("stopkit.oops").raises == {}


def test_module_level_alias_cycles_end(venv: tuple[Path, Path, Path]) -> None:
    root, site, _marker = venv
    code = "a = b()\nb = a()\n\ndef f():\n    a.go()\n"
    copy_install(site, {"cyclekit/__init__.py": code}, "cyclekit", "1.0")
    facts = LibrarySource(find_environment(root), catalogue=CATALOGUE).describe("cyclekit.f")
    assert facts is not None
    assert facts.unknown == ("a.go (in cyclekit.f)",)


def test_a_link_to_a_venv_interpreter_finds_the_venv(
    venv: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    root, site, marker = venv
    (tmp_path / "tools" / "bin").mkdir(parents=True)
    link = tmp_path / "tools" / "bin" / "app-python"
    link.symlink_to(root / "bin" / "python")
    environment = find_environment(link)
    assert environment is not None and environment.site_packages == (site,)
    assert not marker.exists()


def test_include_system_site_packages_adds_the_base_environment(
    venv: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    root, site, _marker = venv
    base = tmp_path / "base"
    base_site = make_venv(base)
    cfg = root / "pyvenv.cfg"
    text = cfg.read_text().replace(
        "include-system-site-packages = false", "include-system-site-packages = true"
    )
    lines = [
        f"home = {base / 'bin'}" if line.startswith("home") else line for line in text.split("\n")
    ]
    cfg.write_text("\n".join(lines))
    assert find_environment(root).site_packages == (site, base_site)


def test_a_nested_function_is_followed_when_called(venv: tuple[Path, Path, Path]) -> None:
    root, site, _marker = venv
    code = """
        import time


        class Job:
            def run(self):
                def step(item):
                    item.frob()
                    time.sleep(1)

                step(self)

            def frob(self):
                pass
    """
    copy_install(site, {"jobkit/__init__.py": code}, "jobkit", "1.0")
    facts = LibrarySource(find_environment(root), catalogue=CATALOGUE).describe("jobkit.Job.run")
    assert facts is not None
    assert facts.blocking == (("jobkit.Job.run", "jobkit.Job.run.step", "time.sleep"),)
    assert facts.unknown == ("item.frob (in jobkit.Job.run.step)",)  # `item` is no `self`
