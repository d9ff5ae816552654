"""Untrusted trees and bad input (issue 12): every file is read as Python reads it or reported as
not audited with the reason, nothing hangs, nothing overflows the stack, and Ctrl-C stops every
worker. Cases that could hang the test run itself (FIFOs, /dev/zero, signals) go through the CLI in
a subprocess with a timeout."""

from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gathering_consolidate import Status, audit, parsing, project
from gathering_consolidate.audit.base import FileCheck
from gathering_consolidate.config import Config
from gathering_consolidate.project import audit_sources, decode, read, sources_from_mapping

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "gathering_consolidate.cli"]
NAIVE = "from datetime import datetime\nstamp = datetime.utcnow()\n"
PEP758 = (
    "from datetime import datetime\n"
    "try:\n"
    "    import jwt\n"
    "except ImportError, ModuleNotFoundError:\n"
    "    jwt = None\n"
    "stamp = datetime.utcnow()\n"
)


def _write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def _outcomes(result) -> dict[str, tuple[Status, str]]:
    return {f.path: (f.status, f.reason) for f in result.files}


def _dtz(result) -> list[tuple[str, int, int]]:
    return [(f.location.path, f.location.line, f.location.column) for f in result.findings]


def _cli(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, **kwargs
    )


# -- decoding: as Python reads a module ------------------------------------------------------------
def test_syntax_error_is_a_failed_file_with_its_line(tmp_path):
    _write(tmp_path, {"ok.py": NAIVE, "bad.py": "x = 1\ndef f(:\n    pass\n"})
    result = audit(tmp_path, cache=False, select=["DTZ"])
    status, reason = _outcomes(result)["bad.py"]
    assert status is Status.FAILED and "syntax error" in reason and "line 2" in reason
    assert result.exit_code == 1 and not result.errors


def test_bytes_that_do_not_decode_are_a_failed_file(tmp_path):
    _write(tmp_path, {"bad.py": b'x = "\xff\xfe"\n', "ok.py": NAIVE})
    result = audit(tmp_path, cache=False, select=["DTZ"])
    assert _outcomes(result)["bad.py"] == (
        Status.FAILED,
        "cannot decode: not valid UTF-8 at byte 5",
    )
    assert result.exit_code == 1


def test_bom_crlf_and_tabs_audit_like_plain_utf8(tmp_path):
    tabbed = "from datetime import datetime\nif True:\n\tstamp = datetime.utcnow()\n"
    _write(
        tmp_path,
        {
            "plain.py": NAIVE,
            "bom.py": b"\xef\xbb\xbf" + NAIVE.encode(),
            "crlf.py": NAIVE.replace("\n", "\r\n").encode(),
            "cr.py": NAIVE.replace("\n", "\r").encode(),
            "tabs.py": tabbed,
        },
    )
    result = audit(tmp_path, cache=False, select=["DTZ"])
    assert all(status is Status.OK for status, _ in _outcomes(result).values())
    found = {path: (line, col) for path, line, col in _dtz(result)}
    assert found["bom.py"] == found["crlf.py"] == found["cr.py"] == found["plain.py"] == (2, 8)
    assert found["tabs.py"][0] == 3


def test_coding_cookie_decides_the_encoding_even_where_utf8_would_also_decode():
    # "\xc3\xa9" is "é" in UTF-8 but two characters in latin-1: Python believes the cookie.
    data = b'# -*- coding: latin-1 -*-\nname = "\xc3\xa9"\n'
    assert decode(data) == data.decode("latin-1")
    assert decode(b'\xef\xbb\xbfx = "\xc3\xa9"\n') == 'x = "é"\n'  # BOM stripped
    assert decode(b"a = 1\r\nb = 2\r\n") == "a = 1\r\nb = 2\r\n"  # newlines kept by default
    assert decode(b"a = 1\r\nb = 2\rc = 3\n", universal_newlines=True) == "a = 1\nb = 2\nc = 3\n"


def test_latin1_file_with_cookie_is_audited(tmp_path):
    latin = b'# -*- coding: latin-1 -*-\nowner = "Jos\xe9"\n' + NAIVE.encode()
    _write(tmp_path, {"latin.py": latin})
    result = audit(tmp_path, cache=False, select=["DTZ"])
    assert _outcomes(result)["latin.py"] == (Status.OK, "")
    assert _dtz(result) == [("latin.py", 4, 8)]


def test_bad_or_contradicting_coding_cookie_is_a_failed_file(tmp_path):
    _write(
        tmp_path,
        {
            "unknown.py": b"# coding: no-such-codec\nx = 1\n",
            "contradicts.py": b"\xef\xbb\xbf# coding: latin-1\nx = 1\n",
        },
    )
    outcomes = _outcomes(audit(tmp_path, cache=False, select=["DTZ"]))
    assert outcomes["unknown.py"][0] is Status.FAILED
    assert "no-such-codec" in outcomes["unknown.py"][1]
    assert outcomes["contradicts.py"][0] is Status.FAILED
    assert outcomes["contradicts.py"][1].startswith("cannot decode")


def test_empty_file_is_audited(tmp_path):
    _write(tmp_path, {"empty.py": b"", "ok.py": NAIVE})
    result = audit(tmp_path, cache=False, select=["DTZ"])
    assert _outcomes(result)["empty.py"] == (Status.OK, "")


# -- what is read: regular files inside the project, bounded -------------------------------------
def test_large_file_is_skipped_before_it_is_opened(tmp_path, monkeypatch):
    _write(tmp_path, {"big.py": "x = 1\n" * 900_000, "ok.py": NAIVE})  # 5.4 MB
    opened: list[str] = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(project.os, "open", spy)
    result = audit(tmp_path, cache=False, select=["DTZ"])
    status, reason = _outcomes(result)["big.py"]
    assert status is Status.SKIPPED and "max-file-size" in reason
    assert not any(p.endswith("big.py") for p in opened)
    assert any(p.endswith("ok.py") for p in opened)


def test_read_is_bounded_even_when_the_size_lies(tmp_path, monkeypatch):
    """A file that grows after the size check (or reports a wrong size) is read up to the cap + 1
    byte and then skipped, never read whole."""
    big = tmp_path / "grows.py"
    big.write_bytes(b"#" * 300_000)
    real_fstat = os.fstat
    real_lstat = os.lstat

    def small(result):
        values = list(result)
        values[6] = 10  # st_size
        return os.stat_result(values)

    monkeypatch.setattr(project.os, "fstat", lambda fd: small(real_fstat(fd)))
    monkeypatch.setattr(project.os, "lstat", lambda p: small(real_lstat(p)))
    source = read("grows.py", big, 1000, tmp_path)
    assert source.data is None
    assert source.outcome is not None and source.outcome.status is Status.SKIPPED
    assert source.outcome.reason.startswith("1,001 bytes is over max-file-size")


def test_symlink_loop_is_a_failed_file(tmp_path):
    _write(tmp_path, {"ok.py": NAIVE})
    (tmp_path / "loop.py").symlink_to("loop.py")
    (tmp_path / "a.py").symlink_to("b.py")
    (tmp_path / "b.py").symlink_to("a.py")
    outcomes = _outcomes(audit(tmp_path, cache=False, select=["DTZ"]))
    assert outcomes["loop.py"] == (Status.FAILED, "symlink loop")
    assert outcomes["a.py"] == (Status.FAILED, "symlink loop")


def test_symlinks_inside_the_project_are_read_and_out_of_it_are_skipped(tmp_path):
    outside = tmp_path / "outside"
    _write(outside, {"secret.py": NAIVE})
    root = tmp_path / "proj"
    _write(root, {"pyproject.toml": '[project]\nname = "x"\n', "app/real.py": NAIVE})
    (root / "app" / "alias.py").symlink_to(root / "app" / "real.py")
    (root / "app" / "escape.py").symlink_to(outside / "secret.py")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    result = audit(root, cache=False, select=["DTZ"])
    outcomes = _outcomes(result)
    assert outcomes["app/alias.py"] == (Status.OK, "")
    status, reason = outcomes["app/escape.py"]
    assert status is Status.SKIPPED and "outside the project" in reason
    status, reason = outcomes["linked"]
    assert status is Status.SKIPPED and "outside the project" in reason
    assert {p for p, _, _ in _dtz(result)} == {"app/real.py", "app/alias.py"}


def test_symlink_to_dev_zero_and_a_fifo_are_skipped_not_read(tmp_path):
    _write(tmp_path, {"ok.py": NAIVE})
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.py")
    started = time.monotonic()
    run = _cli("audit", str(tmp_path), "--no-cache", "--select", "DTZ", "-f", "json", timeout=60)
    assert time.monotonic() - started < 60
    import json

    report = json.loads(run.stdout)
    files = {f["path"]: (f["status"], f["reason"]) for f in report["files"]}
    assert files["zero.py"][0] == "skipped" and "outside the project" in files["zero.py"][1]
    assert files["fifo.py"] == ("skipped", "not a regular file (a FIFO); not read")
    assert report["summary"]["findings"] == 1 and run.returncode == 1


def test_fifo_read_directly_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    source = read("pipe.py", tmp_path / "pipe.py", 1000, tmp_path)
    assert source.outcome is not None and source.outcome.status is Status.SKIPPED


def test_file_that_vanishes_between_discovery_and_read_is_a_failed_file(tmp_path, monkeypatch):
    _write(tmp_path, {"gone.py": NAIVE, "ok.py": NAIVE})
    real_discover = project.discover

    def discover_then_delete(target, config):
        found = list(real_discover(target, config))
        (tmp_path / "gone.py").unlink()
        yield from found

    monkeypatch.setattr(project, "discover", discover_then_delete)
    result = audit(tmp_path, cache=False, select=["DTZ"])
    status, reason = _outcomes(result)["gone.py"]
    assert status is Status.FAILED and "no longer exists" in reason
    assert result.exit_code == 1 and not result.errors


def test_unlistable_directory_is_a_failed_entry(tmp_path, monkeypatch):
    _write(tmp_path, {"app/ok.py": "x = 1\n", "app/secret/hidden.py": NAIVE})
    secret = str(tmp_path / "app" / "secret")
    real_scandir = os.scandir

    def denied(path="."):
        if os.fspath(path) == secret:
            raise PermissionError(13, "Permission denied", secret)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    real_listdir = os.listdir
    monkeypatch.setattr(
        project.os,
        "listdir",
        lambda p: denied(p) if os.fspath(p) == secret else real_listdir(p),
    )
    result = audit(tmp_path, cache=False, select=["DTZ"])
    status, reason = _outcomes(result)["app/secret"]
    assert status is Status.FAILED and "Permission denied" in reason
    assert result.exit_code == 1  # not a false clean


def _without_dac(*args: str) -> list[str]:
    """Run as root without the capabilities that bypass file permissions: the same permission
    checks as an ordinary user (the interpreter under /root stays reachable, unlike `nobody`)."""
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *args]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root+setpriv")
@pytest.mark.parametrize("mode", [0o311, 0o000])
def test_unreadable_directory_for_a_real_user_is_listed_as_not_audited(tmp_path, mode):
    _write(tmp_path, {"app/ok.py": "x = 1\n", "app/secret/hidden.py": NAIVE})
    secret = tmp_path / "app" / "secret"
    probe = subprocess.run(_without_dac("true"), capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr!r}")
    secret.chmod(mode)
    try:
        run = subprocess.run(
            _without_dac(*CLI, "audit", str(tmp_path), "--no-cache", "-q"),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
    finally:
        secret.chmod(0o755)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "app/secret: not audited: directory not listed" in run.stdout
    assert "Permission denied" in run.stdout
    assert "Traceback" not in run.stderr


def test_missing_path_is_a_usage_error(tmp_path):
    run = _cli("audit", str(tmp_path / "nope"), "--no-cache")
    assert run.returncode == 2 and "no such file or directory" in run.stderr


def test_a_single_file_as_path(tmp_path):
    _write(tmp_path, {"pyproject.toml": "", "app/a.py": NAIVE, "app/b.py": NAIVE})
    result = audit(tmp_path / "app" / "a.py", cache=False, select=["DTZ"])
    assert [f.path for f in result.files] == ["app/a.py"]
    assert _dtz(result) == [("app/a.py", 2, 8)]


# -- depth: nothing overflows the stack --------------------------------------------------------
def test_deeply_nested_files_are_reported_not_internal_errors(tmp_path):
    """Through the CLI, as users run it: a 2,000-term chain parses but is deeper than the
    analyses' recursion (it used to be an internal error, exit 2); 20,000 terms do not parse."""
    import json

    _write(
        tmp_path,
        {
            "parens.py": "x = " + "(" * 900 + "1" + ")" * 900 + "\n",
            "chain2k.py": "x = " + "+".join(["a"] * 2000) + "\n",
            "chain20k.py": "x = " + "+".join(["a"] * 20000) + "\n",
            "ok.py": NAIVE,
        },
    )
    run = _cli("audit", str(tmp_path), "--no-cache", "-j", "1", "-f", "json")
    report = json.loads(run.stdout)
    assert report["errors"] == [] and run.returncode == 1
    files = {f["path"]: (f["status"], f["reason"]) for f in report["files"]}
    assert "ok.py" not in files
    assert files["parens.py"][0] == "failed"
    assert "too many nested parentheses" in files["parens.py"][1]
    for name in ("chain2k.py", "chain20k.py"):
        if name in files:  # parsed and analysed when the stack allows: also fine
            status, reason = files[name]
            assert status == "failed" and "nested too deeply" in reason, (name, reason)
    assert "chain20k.py" in files


class _RecursiveVisitor(FileCheck):
    """A check that walks the tree recursively, as `ast.NodeVisitor` does.

    ## Why is this bad?
    It is not: it stands for any analysis whose recursion follows the nesting of the code.
    """

    id, name = "ZZZ901", "recursive-visitor"

    def check(self, ctx):
        ast.NodeVisitor().visit(ctx.tree)
        return []


def test_recursion_error_in_an_analysis_fails_the_file_not_the_run(tmp_path):
    """The generic guard: a deep expression that parses but is deeper than an analysis can
    recurse is reported as not audited (exit 1), not as an internal error (exit 2)."""
    deep = "x = " + "+".join(["a"] * 2500) + "\n"
    sources = sources_from_mapping({"deep.py": deep, "flat.py": "x = a + a\n"})
    result = audit_sources(sources, Config(root=tmp_path), [_RecursiveVisitor])
    assert result.errors == ()
    outcomes = _outcomes(result)
    assert outcomes["flat.py"] == (Status.OK, "")
    status, reason = outcomes["deep.py"]
    assert status is Status.FAILED
    assert reason == "nested too deeply to analyse (RecursionError in ZZZ901); not audited"
    assert result.exit_code == 1


def test_stdlib_elementtree_sql_checks_do_not_recurse_without_bound(tmp_path):
    import xml.etree.ElementTree as element_tree

    shutil.copy(element_tree.__file__, tmp_path / "ElementTree.py")
    result = audit(tmp_path, cache=False, select=["SQL"], jobs=1)
    assert result.errors == ()
    assert _outcomes(result)["ElementTree.py"] == (Status.OK, "")
    assert result.exit_code in (0, 1)


# -- newer syntax than the interpreter --------------------------------------------------------
@pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.14 parses PEP 758 natively")
def test_pep758_file_is_audited_with_its_line_numbers(tmp_path):
    _write(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "x"\nrequires-python = ">=3.14,<4.0"\n',
            "app/auth.py": PEP758,
        },
    )
    result = audit(tmp_path, cache=False, select=["DTZ"])
    assert result.requires_python == ">=3.14,<4.0"
    status, reason = _outcomes(result)["app/auth.py"]
    assert status is Status.OK and "PEP 758" in reason
    assert _dtz(result) == [("app/auth.py", 6, 8)]


def test_syntax_the_target_python_rejects_stays_a_syntax_error(tmp_path):
    _write(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "x"\nrequires-python = ">=3.11"\n',
            "app/auth.py": PEP758,
        },
    )
    result = audit(tmp_path, cache=False, select=["DTZ"])
    status, reason = _outcomes(result)["app/auth.py"]
    assert status is Status.FAILED and "syntax error" in reason and "line 4" in reason


def test_lowering_keeps_line_numbers():
    source = (
        "type Pair[T] = tuple[\n    T, T]\n"
        "def first[T](x: list[T]) -> T:\n    return x[0]\n"
        "class Box[\n    T,\n](Base):\n    pass\n"
        "try:\n    pass\nexcept* ValueError, TypeError:\n    pass\n"
        "value = 1\n"
    )
    parsed = parsing.parse(source, "x.py", target=(3, 14))
    assert set(parsed.lowered) == {
        "PEP 695 type alias",
        "PEP 695 type parameters",
        "PEP 758 except list",
    }
    assert len(parsed.text.splitlines()) == len(source.splitlines())
    names = {
        getattr(node, "name", None) or getattr(getattr(node, "targets", [None])[0], "id", None): (
            node.lineno
        )
        for node in parsed.tree.body
    }
    assert names["Pair"] == 1 and names["first"] == 3 and names["Box"] == 5
    assert parsed.tree.body[-1].lineno == 13


def test_pep701_fstrings_are_lowered_on_the_same_lines():
    source = (
        'label = f"{row["name"]}"\n'
        "\x0c\n"  # a form feed: not a line break for the parsers
        "width = (f'{d['k']:>{w}}')\n"
        'nested = f"{f"{x}"}" + f"plain {y}"\n'
    )
    parsed = parsing.parse(source, "x.py", target=(3, 12))
    assert parsed.lowered == ("PEP 701 f-string",)
    assert parsed.text.split("\n")[0] == "label = f'''{row[\"name\"]}'''"
    assert parsed.text.split("\n")[2] == "width = (f'''{d['k']:>{w}}''')"
    assert [node.lineno for node in parsed.tree.body] == [1, 3, 4]


def test_what_cannot_be_lowered_is_reported_with_both_reasons():
    source = 'joined = f"{"\\n".join(parts)}"\n'  # a backslash inside the braces
    with pytest.raises(parsing.ParseError) as caught:
        parsing.parse(source, "x.py", target=(3, 12))
    assert "libcst reads it" in caught.value.reason
    assert "cannot be lowered" in caught.value.reason


def test_neither_parser_reads_it_says_so():
    with pytest.raises(parsing.ParseError) as caught:
        parsing.parse("def f(:\n    pass\n", "x.py", target=(3, 14))
    assert "syntax error" in caught.value.reason and "libcst" in caught.value.reason


def test_minimum_version_from_requires_python():
    assert parsing.minimum_version(">=3.14,<4.0") == (3, 14)
    assert parsing.minimum_version("~=3.10") == (3, 10)
    assert parsing.minimum_version("<4") is None
    assert parsing.minimum_version(None) is None


def test_requires_python_of_a_backend_subfolder(tmp_path):
    _write(
        tmp_path,
        {
            "backend/pyproject.toml": '[project]\nname = "b"\nrequires-python = ">=3.14"\n',
            "backend/app/auth.py": PEP758,
        },
    )
    result = audit(tmp_path, cache=False, select=["DTZ"])
    assert result.requires_python == ">=3.14"
    assert _outcomes(result)["backend/app/auth.py"][0] is Status.OK


# -- output: -q still names what was not audited ----------------------------------------------
def test_quiet_still_lists_files_not_audited(tmp_path):
    _write(tmp_path, {"bad.py": "def f(:\n    pass\n", "ok.py": "x = 1\n"})
    run = _cli("audit", str(tmp_path), "--no-cache", "-q")
    assert run.returncode == 1
    assert run.stdout.startswith("bad.py: not audited: syntax error")
    assert len(run.stdout.splitlines()) == 1


# -- Ctrl-C and SIGTERM: prompt, no orphans, no partial output -----------------------------------
def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("big")
    body = "".join(
        f"def handler_{i}(items):\n    total = 0\n    for item in items:\n"
        f"        total += item * {i}\n    return total\n\n"
        for i in range(12)
    )
    for i in range(2000):
        path = root / f"pkg_{i // 100}" / f"mod_{i}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(NAIVE + body)
    return root


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_every_worker_promptly(big_tree, tmp_path, signum):
    expected = 130 if signum == signal.SIGINT else 128 + signal.SIGTERM
    report = tmp_path / "report.txt"
    tries = 5 if signum == signal.SIGINT else 2
    for attempt in range(tries):
        process = subprocess.Popen(
            [*CLI, "audit", str(big_tree), "-j", "2", "--no-cache", "-o", str(report)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        try:
            deadline = time.monotonic() + 60
            while len(_children(process.pid)) < 2 and time.monotonic() < deadline:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.02)
            workers = _children(process.pid)
            assert len(workers) >= 2, "the workers never started"
            time.sleep(0.2 * attempt)
            process.send_signal(signum)
            sent = time.monotonic()
            code = process.wait(timeout=10)
            assert time.monotonic() - sent < 5
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert code == expected, (attempt, code)
        time.sleep(0.1)
        assert [w for w in workers if _alive(w)] == [], attempt
        assert not report.exists()
        assert b"Traceback" not in (process.stderr.read() if process.stderr else b"")


def test_a_second_ctrl_c_still_stops_every_worker(big_tree):
    process = subprocess.Popen(
        [*CLI, "audit", str(big_tree), "-j", "2", "--no-cache", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        workers = _children(process.pid)
        assert len(workers) >= 2
        process.send_signal(signal.SIGINT)
        time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 130
    time.sleep(0.1)
    assert [w for w in workers if _alive(w)] == []


def test_cache_is_valid_after_an_interrupted_run(big_tree, tmp_path):
    """An audit interrupted with the cache on writes no cache entry half-way: the next run is
    complete and the one after it is served from the cache."""
    import json

    env = {**os.environ, "GATHERING_CONSOLIDATE_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen(
        [*CLI, "audit", str(big_tree), "-j", "2", "--select", "DTZ", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    runs = []
    for _ in range(2):
        run = _cli("audit", str(big_tree), "-j", "2", "--select", "DTZ", "-f", "json", env=env)
        assert run.returncode == 1, run.stderr
        runs.append(json.loads(run.stdout))
    first, second = runs
    assert first["errors"] == [] and first["summary"]["findings"] == 2000
    assert second["findings"] == first["findings"]


def test_parallel_audit_matches_serial(big_tree):
    serial = audit(big_tree, cache=False, jobs=1, select=["DTZ"])
    parallel = audit(big_tree, cache=False, jobs=2, select=["DTZ"])
    assert serial.findings == parallel.findings and len(serial.findings) == 2000
    assert serial.files == parallel.files
