"""The wheel ships the default rule data (top-level `rules/` -> `gathering_consolidate/rules/`)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_wheel_contains_every_rules_file(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=REPO, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for rules_file in (REPO / "rules").rglob("*.toml"):
        rel = rules_file.relative_to(REPO / "rules").as_posix()
        assert f"gathering_consolidate/rules/{rel}" in names, rel
    assert "gathering_consolidate/cli.py" in names
    assert not any(n.startswith(("fixtures/", "tests/")) for n in names)


def test_rules_dir_resolves_in_a_source_checkout():
    from gathering_consolidate.config import rules_dir

    assert (rules_dir() / "tiers.toml").is_file()
    assert Path(rules_dir()).resolve() == (REPO / "rules").resolve()
