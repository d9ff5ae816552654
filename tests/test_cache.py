"""The audit cache: in the user's cache folder, authenticated with a key kept outside the tree, so
a planted, tampered, truncated or foreign entry is a miss and never unpickled (issue 12, point 1)."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gathering_consolidate import ConfigError, __version__, audit, load_config, seal
from gathering_consolidate.audit import registry
from gathering_consolidate.cache import ENV_VAR, user_cache_dir
from gathering_consolidate.cli import app

from .conftest import FIXTURE_APP

NAIVE = "from datetime import datetime\n\n\ndef stamp():\n    return datetime.now()\n"
CLI = Path(sys.executable).with_name("gathering-consolidate")


class _Payload:
    """A pickle that, when loaded, creates `marker`: what an attacker plants."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch) -> Path:
    """A private user cache folder for this test (the suite already never uses ~/.cache)."""
    home = tmp_path / "user-cache"
    monkeypatch.setenv(ENV_VAR, str(home))
    return home


def _entries(home: Path) -> list[Path]:
    return sorted(home.glob("*/audit-*.pickle"))


def _project(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "project"
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    for name, text in (files or {"a.py": NAIVE, "pkg/b.py": NAIVE}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _legacy_entry(root: Path) -> Path:
    """Where the cache of the previous release put this project's entry (format 3, in the tree)."""
    config = load_config(root)
    rules = [c.id for c in registry() if config.rule_enabled(c.id)]
    key = hashlib.sha256(
        f"{__version__}|3|{config.fingerprint()}|{','.join(sorted(rules))}".encode()
    ).hexdigest()[:16]
    return root / ".gathering_consolidate_cache" / f"audit-{key}.pickle"


def test_user_cache_folder_follows_xdg(monkeypatch, tmp_path: Path):
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "gathering-consolidate"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "gathering-consolidate"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "override"))
    assert user_cache_dir() == tmp_path / "override"


def test_the_cache_is_outside_the_tree_with_a_private_key(tmp_path: Path, cache_home: Path):
    root = _project(tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert audit(root).cache_hits == 0
    assert audit(root).cache_hits == 2
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing in the tree
    assert len(_entries(cache_home)) == 1
    key = cache_home / "hmac.key"
    assert key.stat().st_size == 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(_entries(cache_home)[0].stat().st_mode) == 0o600


def test_a_planted_pickle_runs_nothing_through_the_cli(tmp_path: Path, cache_home: Path):
    """The reproduction of issue 12: a pickle planted where the old cache (in the tree) and the
    new one (user cache folder, entries overwritten by an attacker) would be read runs nothing,
    and the audit still works."""
    tree = tmp_path / "app"
    shutil.copytree(
        FIXTURE_APP, tree, ignore=shutil.ignore_patterns(".gathering_consolidate_cache")
    )
    marker = tmp_path / "pwned"
    legacy = _legacy_entry(tree)
    legacy.parent.mkdir()
    legacy.write_bytes(_malicious(marker))
    env = {**os.environ, ENV_VAR: str(cache_home)}
    first = subprocess.run(
        [str(CLI), "audit", str(tree), "-q"], env=env, capture_output=True, text=True, timeout=300
    )
    assert not marker.exists()
    assert first.returncode == 1, first.stderr
    assert "EXC001" in first.stdout
    entries = _entries(cache_home)
    assert len(entries) == 1
    header = entries[0].read_bytes()[:40]
    for planted in (_malicious(marker), header + _malicious(marker)):  # raw, and with a fake MAC
        for entry in (*entries, *_run_entries(cache_home)):
            entry.write_bytes(planted)
        again = subprocess.run(
            [str(CLI), "audit", str(tree), "-q"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert not marker.exists()
        assert again.returncode == 1, again.stderr
        assert again.stdout == first.stdout


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: _flip_byte(p, p.stat().st_size // 2), id="payload-byte-flipped"),
        pytest.param(lambda p: _flip_byte(p, 10), id="mac-byte-flipped"),
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), id="truncated"
        ),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:30]), id="truncated-in-header"),
        pytest.param(lambda p: p.write_bytes(b""), id="empty"),
        pytest.param(lambda p: p.write_bytes(b"garbage"), id="garbage"),
    ],
)
def test_a_damaged_entry_is_a_miss_and_is_overwritten(tmp_path: Path, cache_home: Path, damage):
    root = _project(tmp_path)
    cold = audit(root)
    (entry,) = _entries(cache_home)
    _without_run_entries(cache_home)
    damage(entry)
    missed = audit(root)
    assert missed.cache_hits == 0
    assert missed.findings == cold.findings
    assert audit(root).cache_hits == 2  # the miss rewrote a valid entry


def test_an_entry_of_another_project_is_a_miss(tmp_path: Path, cache_home: Path):
    """Entries are bound to their project and configuration: copying one over another's name
    (same key, valid MAC for its own place) does not make it load."""
    first = _project(tmp_path / "one")
    second = _project(tmp_path / "two", {"a.py": "x = 1\n", "pkg/b.py": "y = 2\n"})
    audit(first)
    audit(second)
    mine, theirs = (
        next(e for e in _entries(cache_home) if e.parent.name == _folder_of(root))
        for root in (first, second)
    )
    shutil.copyfile(mine, theirs)
    _without_run_entries(cache_home)
    result = audit(second)
    assert result.cache_hits == 0
    assert result.findings == ()


def _folder_of(root: Path) -> str:
    return hashlib.sha256(f"{root.resolve()}|{__version__}".encode()).hexdigest()[:16]


def test_an_entry_under_another_key_is_a_miss(tmp_path: Path, cache_home: Path):
    root = _project(tmp_path)
    audit(root)

    (cache_home / "hmac.key").unlink()
    seal.forget_keys()
    try:
        assert audit(root).cache_hits == 0
    finally:
        seal.forget_keys()


def test_an_untrusted_key_file_disables_the_cache(tmp_path: Path, cache_home: Path):

    root = _project(tmp_path)
    cache_home.mkdir()
    (cache_home / "hmac.key").write_bytes(b"k" * 32)
    (cache_home / "hmac.key").chmod(0o644)  # readable by others: anyone could forge entries
    seal.forget_keys()
    try:
        audit(root)
        assert audit(root).cache_hits == 0
        assert _entries(cache_home) == []
    finally:
        seal.forget_keys()


def test_no_cache_reads_and_writes_nothing(tmp_path: Path, cache_home: Path):
    root = _project(tmp_path)
    audit(root, cache=False)
    assert not cache_home.exists()
    result = CliRunner().invoke(app, ["audit", str(root), "--no-cache", "-q"])
    assert result.exit_code == 1
    assert not cache_home.exists()


def test_a_symlink_planted_at_the_entry_is_not_followed(tmp_path: Path, cache_home: Path):
    root = _project(tmp_path)
    audit(root)
    (entry,) = _entries(cache_home)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    entry.unlink()
    entry.symlink_to(victim)
    _without_run_entries(cache_home)
    assert audit(root).cache_hits == 0
    assert victim.read_text() == "precious"
    assert not entry.is_symlink()  # replaced by a real entry
    assert audit(root).cache_hits == 2


# -- cache-dir ---------------------------------------------------------------------------------
def _with_cache_dir(root: Path, value: str) -> None:
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "p"\nversion = "0"\n\n[tool.gathering-consolidate]\ncache-dir = "{value}"\n'
    )


@pytest.mark.parametrize("value", ["../elsewhere", "/tmp/gc-elsewhere", "out", "."])
def test_a_cache_dir_outside_the_project_is_refused(tmp_path: Path, cache_home: Path, value):
    root = _project(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "out").symlink_to(outside, target_is_directory=True)
    _with_cache_dir(root, value)
    with pytest.raises(ConfigError, match="`cache-dir`"):
        audit(root)
    result = CliRunner().invoke(app, ["audit", str(root)])
    assert result.exit_code == 2
    assert "cache-dir" in result.stderr
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "elsewhere").exists()
    assert not Path("/tmp/gc-elsewhere").exists()


def test_a_cache_dir_inside_the_project_is_used_and_authenticated(tmp_path: Path, cache_home):
    root = _project(tmp_path)
    _with_cache_dir(root, ".gathering_consolidate_cache")
    assert audit(root).cache_hits == 0
    assert audit(root).cache_hits == 2
    (entry,) = (root / ".gathering_consolidate_cache").glob("audit-*.pickle")
    assert (root / ".gathering_consolidate_cache" / ".gitignore").read_text().endswith("*\n")
    assert (cache_home / "hmac.key").exists()  # the key is never in the tree
    assert not list(root.rglob("hmac.key"))
    marker = tmp_path / "pwned"
    for planted in (entry, *(root / ".gathering_consolidate_cache").glob("run-*.pickle")):
        planted.write_bytes(_malicious(marker))
    assert audit(root).cache_hits == 0
    assert not marker.exists()


def test_two_audits_at_once_leave_a_valid_cache(tmp_path: Path, cache_home: Path):
    files = {f"pkg/m{i}.py": NAIVE + f"value = {i}\n" for i in range(40)}
    root = _project(tmp_path, files)
    env = {**os.environ, ENV_VAR: str(cache_home)}
    runs = [
        subprocess.Popen(
            [str(CLI), "audit", str(root), "-q", "--jobs", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [1, 1], outputs
    assert outputs[0][0] == outputs[1][0]
    assert len(_entries(cache_home)) == 1
    assert not [p for p in cache_home.rglob("*") if p.name.endswith(".tmp")]
    warm = audit(root)
    assert warm.cache_hits == 40
    assert len(warm.findings) == 40


def test_an_absolute_cache_dir_from_the_api_is_used(tmp_path: Path, cache_home: Path):
    """`Config.cache_dir` set by a caller of the library (not from the target's pyproject, which
    is validated) may be any folder, created on first save (the stdlib property test uses it)."""
    from dataclasses import replace

    from gathering_consolidate.project import audit_sources, sources_from_mapping

    root = _project(tmp_path)
    config = replace(load_config(root), cache_dir=str(tmp_path / "chosen" / "cache"))
    sources = sources_from_mapping({"a.py": NAIVE})
    assert audit_sources(sources, config, registry(), cache=True).cache_hits == 0
    assert audit_sources(sources, config, registry(), cache=True).cache_hits == 1
    assert len(list((tmp_path / "chosen" / "cache").glob("audit-*.pickle"))) == 1
    assert _entries(cache_home) == []


# -- the run cache -----------------------------------------------------------------------------
def _run_entries(home: Path) -> list[Path]:
    return sorted(home.glob("*/run-*.pickle"))


def _without_run_entries(home: Path) -> None:
    """Remove the run entries: what is tested is then the per-file entry alone."""
    for entry in _run_entries(home):
        entry.unlink()


@pytest.fixture
def full_runs(monkeypatch) -> list[int]:
    """Counts the audits that ran the checks (the run cache missed)."""
    from gathering_consolidate import project

    calls: list[int] = []
    real = project.audit_sources

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(project, "audit_sources", counted)
    return calls


def _same(first, second) -> bool:
    from dataclasses import replace

    return replace(first, cache_hits=0) == replace(second, cache_hits=0)


def test_an_unchanged_run_is_replayed_without_running_the_checks(
    tmp_path: Path, cache_home: Path, full_runs: list[int]
):
    root = _project(tmp_path, {"a.py": NAIVE, "pkg/b.py": NAIVE, "bad.py": "def (:\n"})
    cold = audit(root)
    warm = audit(root)
    assert len(full_runs) == 1
    assert len(_run_entries(cache_home)) == 1
    assert _same(warm, cold) and warm.findings and warm.failed_files
    assert warm.cache_hits == 2  # what the per-file cache serves: the two files that parse
    assert _same(warm, audit(root, cache=False))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda root: (root / "a.py").write_text(NAIVE + "x = 1\n"), id="changed"),
        pytest.param(lambda root: (root / "c.py").write_text(NAIVE), id="added"),
        pytest.param(lambda root: (root / "pkg" / "b.py").unlink(), id="removed"),
        pytest.param(
            lambda root: (root / "pyproject.toml").write_text(
                '[project]\nname = "p"\nversion = "0"\n\n'
                '[tool.gathering-consolidate]\nignore = ["DTZ003"]\n'
            ),
            id="config",
        ),
        pytest.param(
            lambda root: (root / "pyproject.toml").write_text(
                '[project]\nname = "p"\nversion = "0"\nrequires-python = ">=3.12"\n'
            ),
            id="requires-python",
        ),
        pytest.param(
            lambda root: (root / "schema.sql").write_text("CREATE TABLE users (id SERIAL);\n"),
            id="schema-file-added",
        ),
        pytest.param(
            lambda root: (root / "rules" / "sql_allowlist.toml").write_text("# reviewed\n"),
            id="allowlist-changed",
        ),
    ],
)
def test_a_changed_input_is_a_miss(tmp_path: Path, cache_home: Path, full_runs: list[int], change):
    root = _project(tmp_path)
    (root / "rules").mkdir()
    (root / "rules" / "sql_allowlist.toml").write_text("")
    audit(root)
    audit(root)
    assert len(full_runs) == 1
    change(root)
    after = audit(root)
    assert len(full_runs) == 2
    audit(root)
    assert len(full_runs) == 2  # the new run is kept in turn
    assert _same(after, audit(root, cache=False))


def test_a_changed_schema_file_is_a_miss(tmp_path: Path, cache_home: Path, full_runs: list[int]):
    """A file only a project check reads (AUT005's `*.sql`), changed in place: same size."""
    code = "from uuid import uuid4\n\n\ndef create_user(name):\n"
    code += '    return {"id": str(uuid4()), "name": name}\n'
    root = _project(tmp_path, {"app/users.py": code})
    (root / "db").mkdir()
    schema = root / "db" / "schema.sql"
    schema.write_text("CREATE TABLE users (id UUID PRIMARY KEY, name TEXT);\n")
    clean = audit(root)
    assert not [f for f in clean.findings if f.rule == "AUT005"]
    schema.write_text("CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT);\n")
    after = audit(root)
    assert len(full_runs) == 2
    assert [f for f in after.findings if f.rule == "AUT005"]


def test_another_target_environment_is_a_miss(
    tmp_path: Path, cache_home: Path, full_runs: list[int], monkeypatch
):
    from gathering_consolidate import libsource

    root = _project(tmp_path)
    env = tmp_path / "venv"
    site = env / "lib" / "python3.11" / "site-packages"
    meta = site / "dbkit-1.0.dist-info"
    meta.mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("version_info = 3.11.7\n")
    (meta / "METADATA").write_text("Name: dbkit\nVersion: 1.0\n")
    (meta / "top_level.txt").write_text("dbkit\n")
    monkeypatch.setenv("VIRTUAL_ENV", str(env))
    libsource._source_for.cache_clear()
    audit(root)
    audit(root)
    assert len(full_runs) == 1
    (meta / "METADATA").write_text("Name: dbkit\nVersion: 1.1\n")  # upgraded
    libsource._source_for.cache_clear()  # as a new process reads it
    audit(root)
    assert len(full_runs) == 2
    monkeypatch.delenv("VIRTUAL_ENV")  # no environment at all
    audit(root)
    assert len(full_runs) == 3
    libsource._source_for.cache_clear()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: _flip_byte(p, p.stat().st_size // 2), id="payload-byte-flipped"),
        pytest.param(lambda p: _flip_byte(p, 10), id="mac-byte-flipped"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:-7]), id="truncated"),
    ],
)
def test_a_damaged_run_entry_is_a_miss(
    tmp_path: Path, cache_home: Path, full_runs: list[int], damage
):
    root = _project(tmp_path)
    cold = audit(root)
    (entry,) = _run_entries(cache_home)
    damage(entry)
    again = audit(root)
    assert len(full_runs) == 2
    assert _same(again, cold)


def test_a_planted_run_entry_runs_nothing(tmp_path: Path, cache_home: Path, full_runs):
    root = _project(tmp_path)
    audit(root)
    (entry,) = _run_entries(cache_home)
    marker = tmp_path / "pwned"
    header = entry.read_bytes()[:40]
    for planted in (_malicious(marker), header + _malicious(marker)):
        entry.write_bytes(planted)
        audit(root)
        assert not marker.exists()
    assert len(full_runs) == 3


def test_a_run_entry_of_another_project_is_a_miss(tmp_path: Path, cache_home: Path, full_runs):
    first = _project(tmp_path / "one")
    second = _project(tmp_path / "two", {"a.py": "x = 1\n", "pkg/b.py": "y = 2\n"})
    audit(first)
    audit(second)
    mine, theirs = (
        next(e for e in _run_entries(cache_home) if e.parent.name == _folder_of(root))
        for root in (first, second)
    )
    shutil.copyfile(mine, theirs)
    assert audit(second).findings == ()
    assert len(full_runs) == 3


@pytest.mark.parametrize(
    "options",
    [["-q"], [], ["-f", "json"], ["-f", "sarif"], ["-f", "github"]],
    ids=["quiet", "text", "json", "sarif", "github"],
)
def test_a_replayed_run_prints_what_the_run_printed(tmp_path: Path, cache_home: Path, options):
    """The same bytes and exit code from a run served by the per-file cache and from its replay."""
    runner = CliRunner()
    root = _project(tmp_path, {"a.py": NAIVE, "bad.py": "def (:\n"})
    runner.invoke(app, ["audit", str(root), "-q"])
    _without_run_entries(cache_home)
    warm = runner.invoke(app, ["audit", str(root), *options])
    assert _run_entries(cache_home)
    replayed = runner.invoke(app, ["audit", str(root), *options])
    assert warm.exit_code == replayed.exit_code == 1
    assert warm.stdout == replayed.stdout
    assert "DTZ" in replayed.stdout


def test_the_rule_catalogue_is_kept_for_this_code_only(cache_home: Path, monkeypatch):
    from gathering_consolidate import cache, runcache
    from gathering_consolidate.audit import known_options

    expected = tuple(c.id for c in registry())
    assert runcache.rule_catalogue() == (expected, known_options())
    assert (cache_home / "catalogue.pickle").exists()
    assert runcache.rule_catalogue() == (expected, known_options())  # read back
    monkeypatch.setattr(cache, "tool_digest", lambda: "another-version")
    monkeypatch.setattr(runcache, "tool_digest", lambda: "another-version")
    _flip_byte(cache_home / "catalogue.pickle", 50)  # damaged: rebuilt, not read
    assert runcache.rule_catalogue() == (expected, known_options())


def test_the_tool_digest_is_kept_while_no_tool_file_changes(
    tmp_path: Path, cache_home: Path, monkeypatch
):
    from gathering_consolidate import cache

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "tiers.toml").write_text("x = 1\n")
    monkeypatch.setattr(seal, "rules_folder", lambda: str(rules))
    try:
        cache.tool_digest.cache_clear()
        first = cache.tool_digest()
        assert (cache_home / "tool-digest.pickle").exists()
        cache.tool_digest.cache_clear()
        monkeypatch.setattr(Path, "read_bytes", _no_read)
        assert cache.tool_digest() == first  # from the kept entry: no file read
        monkeypatch.undo()
        monkeypatch.setattr(seal, "rules_folder", lambda: str(rules))
        (rules / "tiers.toml").write_text("x = 2\n")  # same size, new content
        cache.tool_digest.cache_clear()
        edited = cache.tool_digest()
        assert edited != first
        (rules / "tiers.toml").write_text("x = 1\n")  # back to the first content
        cache.tool_digest.cache_clear()
        assert cache.tool_digest() == first
    finally:
        cache.tool_digest.cache_clear()


def _no_read(self):
    raise AssertionError(f"{self} read")


def test_a_run_with_the_cache_in_the_tree_is_replayed(tmp_path: Path, cache_home, full_runs):
    """The audit writes its own cache folder: that is no input of the next run."""
    root = _project(tmp_path)
    _with_cache_dir(root, ".gathering_consolidate_cache")
    first = audit(root)
    assert _same(audit(root), first)
    assert len(full_runs) == 1
    assert list((root / ".gathering_consolidate_cache").glob("run-*.pickle"))
