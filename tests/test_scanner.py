"""The scanner: discovery, bad input as per-file outcomes, the on-disk cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gathering_consolidate import ConfigError, Status, audit
from gathering_consolidate.cache import user_cache_dir

NAIVE = "from datetime import datetime\nstamp = datetime.utcnow()\n"


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


def test_discovery_skips_vcs_venvs_build_and_node_modules(tmp_path):
    _write(
        tmp_path,
        {
            "app/main.py": NAIVE,
            ".git/hooks/x.py": NAIVE,
            ".venv/lib/y.py": NAIVE,
            "env2/pyvenv.cfg": "home = /usr\n",
            "env2/lib/z.py": NAIVE,
            "build/lib/app/main.py": NAIVE,
            "node_modules/pkg/a.py": NAIVE,
            "app/__pycache__/c.py": NAIVE,
            "README.md": "not python",
        },
    )
    result = audit(tmp_path, cache=False)
    assert [f.path for f in result.files] == ["app/main.py"]
    assert [f.rule for f in result.findings] == ["DTZ001"]


def test_config_excludes_paths(tmp_path):
    _write(
        tmp_path,
        {
            "pyproject.toml": '[tool.gathering-consolidate]\nexclude = ["legacy/**"]\n',
            "app/main.py": NAIVE,
            "legacy/old.py": NAIVE,
        },
    )
    assert [f.path for f in audit(tmp_path, cache=False).files] == ["app/main.py"]


def test_syntax_error_is_a_failed_outcome_and_the_run_goes_on(tmp_path):
    _write(tmp_path, {"bad.py": "def broken(:\n    pass\n", "good.py": NAIVE})
    result = audit(tmp_path, cache=False)
    status, reason = _outcomes(result)["bad.py"]
    assert status is Status.FAILED and "syntax error" in reason and "line 1" in reason
    assert [f.location.path for f in result.findings] == ["good.py"]
    assert result.exit_code == 1


def test_non_utf8_file_is_a_failed_outcome(tmp_path):
    _write(tmp_path, {"latin.py": b"name = '\xe9t\xe9'\n"})
    result = audit(tmp_path, cache=False)
    status, reason = _outcomes(result)["latin.py"]
    assert status is Status.FAILED and "UTF-8" in reason
    assert result.exit_code == 1


def test_declared_encoding_is_honoured(tmp_path):
    _write(tmp_path, {"latin.py": b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\n"})
    assert _outcomes(audit(tmp_path, cache=False))["latin.py"][0] is Status.OK


def test_empty_file_is_audited(tmp_path):
    _write(tmp_path, {"empty.py": ""})
    result = audit(tmp_path, cache=False)
    assert _outcomes(result)["empty.py"] == (Status.OK, "")
    assert result.exit_code == 0


def test_huge_generated_file_is_skipped_not_read(tmp_path):
    line = "VALUE_%d = '" + "x" * 200 + "'\n"
    text = "".join(line % i for i in range(25_000))
    assert len(text) > 5_000_000
    _write(tmp_path, {"generated.py": text, "ok.py": "x = 1\n"})
    result = audit(tmp_path, cache=False)
    status, reason = _outcomes(result)["generated.py"]
    assert status is Status.SKIPPED and "max-file-size" in reason
    assert result.exit_code == 0  # skipped by policy is not a failure
    # Raised limit: the same file is audited like any other.
    _write(tmp_path, {"pyproject.toml": "[tool.gathering-consolidate]\nmax-file-size = 10000000\n"})
    assert _outcomes(audit(tmp_path, cache=False))["generated.py"] == (Status.OK, "")


def test_symlink_loops_do_not_hang_or_crash(tmp_path):
    _write(tmp_path, {"pkg/a.py": NAIVE})
    os.symlink(tmp_path / "pkg", tmp_path / "pkg" / "again")  # directory loop
    os.symlink(tmp_path / "loop1.py", tmp_path / "loop2.py")
    os.symlink(tmp_path / "loop2.py", tmp_path / "loop1.py")  # file loop
    result = audit(tmp_path, cache=False)
    outcomes = _outcomes(result)
    assert outcomes["pkg/a.py"][0] is Status.OK
    assert "pkg/again/a.py" not in outcomes
    assert outcomes["loop1.py"] == (Status.FAILED, "symlink loop")
    assert outcomes["loop2.py"] == (Status.FAILED, "symlink loop")


def test_missing_target_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        audit(tmp_path / "nope")


def test_single_file_target(tmp_path):
    _write(
        tmp_path, {"pyproject.toml": "[project]\nname='x'\n", "pkg/a.py": NAIVE, "pkg/b.py": NAIVE}
    )
    result = audit(tmp_path / "pkg" / "a.py", cache=False)
    assert [f.path for f in result.files] == ["pkg/a.py"]


def test_results_are_sorted_and_fingerprints_ignore_line_numbers(tmp_path):
    _write(tmp_path, {"b.py": NAIVE, "a.py": NAIVE + NAIVE.splitlines()[1] + "\n"})
    first = audit(tmp_path, cache=False)
    keys = [f.sort_key() for f in first.findings]
    assert keys == sorted(keys)
    (tmp_path / "b.py").write_text("\n\n\n" + NAIVE)
    moved = audit(tmp_path, cache=False)
    before = {f.location.path: f.fingerprint for f in first.findings if f.location.path == "b.py"}
    after = {f.location.path: f.fingerprint for f in moved.findings if f.location.path == "b.py"}
    assert before == after


def test_warm_run_reads_everything_from_the_cache(tmp_path):
    files = {f"pkg/m{i}.py": NAIVE for i in range(30)}
    _write(tmp_path, files)
    cold = audit(tmp_path)
    warm = audit(tmp_path)
    assert cold.cache_hits == 0
    assert warm.cache_hits == 30
    assert warm.findings == cold.findings
    (tmp_path / "pkg/m3.py").write_text("x = 1\n")
    changed = audit(tmp_path)
    assert changed.cache_hits == 29
    assert len(changed.findings) == 29
    assert not (tmp_path / ".gathering_consolidate_cache").exists()  # never in the tree


def test_cache_key_includes_the_configuration(tmp_path):
    _write(tmp_path, {"a.py": NAIVE})
    assert audit(tmp_path).findings
    (tmp_path / "pyproject.toml").write_text('[tool.gathering-consolidate]\nignore = ["DTZ"]\n')
    assert audit(tmp_path).findings == ()


def test_corrupt_cache_is_a_miss(tmp_path):
    _write(tmp_path, {"a.py": NAIVE})
    audit(tmp_path)
    entries = list(user_cache_dir().glob("*/audit-*.pickle"))
    assert entries
    for pickle_file in entries:
        pickle_file.write_bytes(b"garbage")
    assert len(audit(tmp_path).findings) == 1


def test_parallel_and_serial_runs_agree(tmp_path):
    body = NAIVE + "".join(f"value_{i} = {i}\n" for i in range(3000))
    _write(tmp_path, {f"pkg/m{i}.py": body for i in range(12)})
    serial = audit(tmp_path, cache=False, jobs=1)
    parallel = audit(tmp_path, cache=False, jobs=2)
    assert serial.findings == parallel.findings
    assert serial.files == parallel.files


def test_unknown_config_key_is_an_error(tmp_path):
    _write(
        tmp_path, {"pyproject.toml": "[tool.gathering-consolidate]\nselct = ['DTZ']\n", "a.py": ""}
    )
    with pytest.raises(ConfigError, match="unknown key `selct` \\(did you mean `select`\\?\\)"):
        audit(tmp_path)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("select = ['XYZ']", "unknown rule family `XYZ`"),
        ("select = ['DTZ009']", "unknown rule `DTZ009`"),
        ("select = 'DTZ'", "must be a list"),
        ("max-file-size = -1", "positive integer"),
        ("[tool.gathering-consolidate.tiers]\n4 = ['x/**']", "unknown tier `4`"),
        ("[tool.gathering-consolidate.checks.DTZ001]\nfoo = 1", "unknown key `foo`"),
        (
            "[[tool.gathering-consolidate.overrides]]\nselect = ['DTZ']",
            "`path` (a glob) is required",
        ),
        ("[[tool.gathering-consolidate.overrides]]\npath = 'x'\nwhat = 1", "unknown key `what`"),
    ],
)
def test_bad_config_values(tmp_path, toml, message):
    header = "" if toml.startswith("[") else "[tool.gathering-consolidate]\n"
    _write(tmp_path, {"pyproject.toml": header + toml + "\n", "a.py": ""})
    with pytest.raises(ConfigError, match=None) as info:
        audit(tmp_path)
    assert message in str(info.value)


def test_invalid_toml_is_a_config_error(tmp_path):
    _write(tmp_path, {"pyproject.toml": "[tool.gathering-consolidate\n", "a.py": ""})
    with pytest.raises(ConfigError, match="invalid TOML"):
        audit(tmp_path)


def test_overrides_switch_rules_per_path(tmp_path):
    _write(
        tmp_path,
        {
            "pyproject.toml": (
                "[tool.gathering-consolidate]\n"
                "[[tool.gathering-consolidate.overrides]]\n"
                "path = 'tests/**'\nignore = ['DTZ001']\n"
            ),
            "app/a.py": NAIVE,
            "tests/test_a.py": NAIVE,
        },
    )
    assert [f.location.path for f in audit(tmp_path, cache=False).findings] == ["app/a.py"]


def test_tiers_come_from_rules_and_config(tmp_path):
    from gathering_consolidate.config import load_config

    default = load_config(tmp_path)
    assert default.tier_for("app/api/auth.py") == 1
    assert default.tier_for("app/orchestration/scheduler.py") == 2
    assert default.tier_for("app/skills/web.py") == 3
    _write(
        tmp_path, {"pyproject.toml": "[tool.gathering-consolidate.tiers]\n1 = ['app/skills/**']\n"}
    )
    custom = load_config(tmp_path)
    assert custom.tier_for("app/skills/web.py") == 1
    assert custom.tier_for("app/api/auth.py") == 3  # tier 1 replaced, not extended


def test_suppressions(tmp_path):
    _write(
        tmp_path,
        {
            "a.py": (
                "from datetime import datetime\n"
                "a = datetime.utcnow()  # consolidate: ignore[DTZ001] compared with naive rows\n"
                "# consolidate: fixme[DTZ] GH-12\n"
                "b = datetime.utcnow()\n"
                "c = 1  # consolidate: ignore[DTZ001] nothing here\n"
                "d = datetime.utcnow()  # consolidate: ignore[DTZ001]\n"
                "s = '# consolidate: ignore[DTZ001] in a string is not a comment'\n"
            )
        },
    )
    result = audit(tmp_path, cache=False)
    assert [(f.rule, f.location.line) for f in result.findings] == [
        ("SUP001", 5),
        ("SUP002", 6),  # column 0 sorts first
        ("DTZ001", 6),
    ]
    assert [(s.kind.value, s.finding.location.line, s.reason) for s in result.suppressed] == [
        ("ignore", 2, "compared with naive rows"),
        ("fixme", 4, "GH-12"),
    ]


def test_unused_suppression_only_for_rules_that_ran(tmp_path):
    _write(tmp_path, {"a.py": "x = 1  # consolidate: ignore[DTZ001] legacy\n"})
    assert [f.rule for f in audit(tmp_path, cache=False).findings] == ["SUP001"]
    assert audit(tmp_path, cache=False, select=["SUP"]).findings == ()


def test_discovery_paths_are_the_pathlib_relative_paths(tmp_path):
    """discover walks with strings: each file's project path is still what pathlib's relative
    path of it gives (nested, dotted and spaced folder names, a target below the root)."""
    from gathering_consolidate.config import load_config
    from gathering_consolidate.project import _relative, discover

    _write(
        tmp_path,
        {
            "pyproject.toml": "[project]\nname = 'p'\n",
            "top.py": NAIVE,
            "app/a.py": NAIVE,
            "app/.hidden/b.py": NAIVE,
            "app/with space/c.py": NAIVE,
            "app/x.y/deep/d.py": NAIVE,
            ".dotted/e.py": NAIVE,
        },
    )
    config = load_config(tmp_path)
    for target in (tmp_path, tmp_path / "app", tmp_path / "app" / "x.y"):
        found = list(discover(target, config))
        assert found and [rel for rel, _ in found] == sorted(rel for rel, _ in found)
        for rel, full in found:
            assert isinstance(full, Path) and full.is_file()
            if full.parent != config.root:
                assert rel == _relative(full, config.root)
    assert {rel for rel, _ in discover(tmp_path, config)} >= {
        "top.py",
        "app/a.py",
        "app/x.y/deep/d.py",
    }


def test_a_file_in_a_hidden_folder_keeps_the_dot_in_its_project_path(tmp_path):
    """`.tools/sub/a.py` is reported and written as itself: its path once lost the leading dot
    (`tools/sub/a.py`), and a codemod then refused the whole change ("removed since it was
    read")."""
    from gathering_consolidate.codemods.engine import apply, plan_migration

    _write(tmp_path, {"pyproject.toml": "[project]\nname = 'p'\n", ".tools/sub/a.py": NAIVE})
    (finding,) = audit(tmp_path, cache=False, select=["DTZ001"]).findings
    assert finding.location.path == ".tools/sub/a.py"
    plan = plan_migration(tmp_path, "aware-datetimes")
    assert [c.path for c in plan.changes] == [".tools/sub/a.py"]
    apply(plan)
    assert "timezone.utc" in (tmp_path / ".tools" / "sub" / "a.py").read_text()
    assert not (tmp_path / "tools").exists()
