"""Static test inventory against `pytest --collect-only`, on a generated 1,000-test suite.

    python benchmarks/bench_inventory.py [--tests 1000] [--runs 3] [--keep DIR]

The suite (`make_suite`) has what real suites have: module and class tests, stacked and
`pytest.param` parametrizations, fixtures in a conftest, marks and skips, and the imports of a
FastAPI project's tests (`fastapi`, its TestClient; `--light`: the standard library only).
pytest imports every test module; the inventory never does. Timed, each as a fresh command and best of `--runs`:

* `gathering-consolidate tests inventory DIR` (the CLI, interpreter start included);
* `python -m pytest --collect-only -q -p no:cacheprovider` in DIR;
* the library call `inventory(DIR)` in this process (no interpreter start).

Prints the three times, the ratio CLI / pytest (target: at most 0.2) and checks that both
collected the same node ids.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

CONFTEST = """
import pytest


@pytest.fixture
def numbers():
    return [3, 1, 2]


@pytest.fixture(params=["sqlite", "memory"])
def backend(request):
    return request.param
"""

MODULE = '''
"""Generated module {n}."""

import json
{imports}

import pytest

pytestmark = pytest.mark.unit


def helper(value):
    return json.loads(json.dumps(value))


def test_plain_{n}(numbers):
    assert sorted(numbers) == [1, 2, 3]


@pytest.mark.parametrize("a", [1, 2, 3])
@pytest.mark.parametrize("b", ["x", "y"])
def test_stacked_{n}(a, b):
    assert helper(a) == a and b


@pytest.mark.parametrize(
    "value, expected",
    [(1, 1), pytest.param(2, 2, id="two"), pytest.param(3, 3, marks=pytest.mark.slow)],
)
def test_params_{n}(value, expected):
    assert helper(value) == expected


def test_backend_{n}(backend):
    assert backend


@pytest.mark.skip(reason="blocked by #{n}")
def test_skipped_{n}():
    raise AssertionError


class TestGroup{n}:
    def test_method(self):
        assert True

    @pytest.mark.parametrize("n", [1, 2])
    def test_method_param(self, n):
        assert n
'''
PER_MODULE = 1 + 6 + 3 + 2 + 1 + 1 + 2  # tests each module yields


#: What each test module imports: a FastAPI project's tests import the framework and its test
#: client (pytest pays for these imports; the inventory never imports anything).
FASTAPI_IMPORTS = "from fastapi import FastAPI\nfrom fastapi.testclient import TestClient\n"
LIGHT_IMPORTS = "import email.mime.text\n"


def make_suite(root: Path, tests: int, imports: str = FASTAPI_IMPORTS) -> int:
    modules = max(1, tests // PER_MODULE)
    (root / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\nmarkers = ["unit: u", "slow: s"]\n',
        encoding="utf-8",
    )
    folder = root / "tests"
    folder.mkdir(parents=True)
    (folder / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    for n in range(modules):
        sub = folder / f"pkg{n // 10}"
        sub.mkdir(exist_ok=True)
        text = MODULE.format(n=n, imports=imports)
        (sub / f"test_generated_{n}.py").write_text(text, encoding="utf-8")
    rest = tests - modules * PER_MODULE
    if rest > 0:
        plain = "".join(f"\n\ndef test_rest_{i}():\n    assert True\n" for i in range(rest))
        (folder / "test_rest.py").write_text(imports + plain, encoding="utf-8")
    return modules * PER_MODULE + max(rest, 0)


def timed(command: list[str], cwd: Path, runs: int) -> tuple[float, float, str]:
    """(best wall time, best CPU time of the child, its output). CPU time is what a loaded
    machine (this one is shared) does not inflate."""
    best, best_cpu, output = float("inf"), float("inf"), ""
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}{proc.stderr}")
        if elapsed < best:
            best, output = elapsed, proc.stdout
        best_cpu = min(best_cpu, cpu)
    return best, best_cpu, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument(
        "--light",
        action="store_true",
        help="test modules import only the standard library (not FastAPI)",
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-inventory-"))
    root = args.keep or base / "suite"
    if args.keep and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    try:
        expected = make_suite(root, args.tests, LIGHT_IMPORTS if args.light else FASTAPI_IMPORTS)
        cli = [str(BIN / "gathering-consolidate"), "tests", "inventory", str(root)]
        pytest = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        version = [str(BIN / "gathering-consolidate"), "--version"]
        start_s, start_cpu, _ = timed(version, root, args.runs)
        ours_s, ours_cpu, ours_out = timed(cli, root, args.runs)
        theirs_s, theirs_cpu, theirs_out = timed(pytest, root, args.runs)
        from gathering_consolidate.testsuite import inventory

        best_lib = float("inf")
        for _ in range(args.runs):
            started = time.perf_counter()
            found = inventory(root)
            best_lib = min(best_lib, time.perf_counter() - started)
        ours_ids = {line.split("  ")[0] for line in ours_out.splitlines() if "::" in line}
        theirs_ids = {line for line in theirs_out.splitlines() if "::" in line}
        same = ours_ids == theirs_ids == {i.nodeid for i in found.items}
        kind = "standard library imports" if args.light else "each module imports FastAPI"
        print(f"suite: {len(theirs_ids)} tests collected by pytest ({expected} generated; {kind})")
        print("                                              wall       CPU")
        print(f"gathering-consolidate tests inventory (CLI): {ours_s:6.3f} s  {ours_cpu:6.3f} s")
        print(f"  of which the CLI's start (--version):      {start_s:6.3f} s  {start_cpu:6.3f} s")
        print(f"inventory() in process:                      {best_lib:6.3f} s")
        print(
            f"pytest --collect-only -q:                    {theirs_s:6.3f} s  {theirs_cpu:6.3f} s"
        )
        print(
            f"ratio CLI / pytest: {ours_s / theirs_s:.2f} wall, {ours_cpu / theirs_cpu:.2f} CPU"
            " (target <= 0.20)"
        )
        print(f"ratio inventory() / pytest: {best_lib / theirs_s:.2f}")
        print(f"same node ids: {'yes' if same else 'NO'}")
        if not same:
            print("  only inventory:", sorted(ours_ids - theirs_ids)[:5])
            print("  only pytest:", sorted(theirs_ids - ours_ids)[:5])
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
