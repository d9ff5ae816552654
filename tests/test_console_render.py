"""The text report at 80 columns: table cells wrap, paths are never cut."""

from __future__ import annotations

import io

from rich.console import Console

from gathering_consolidate import audit
from gathering_consolidate.report.console import render
from tests.conftest import REPO


def test_paths_wrap_whole_at_80_columns(tmp_path):
    folder = tmp_path / "app" / "a_rather_long_package_name" / "with_a_long_module_folder"
    folder.mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\n')
    (folder / "the_module_whose_name_is_long.py").write_text(
        "def f():\n    try:\n        g()\n    except Exception:\n        pass\n"
    )
    (folder / "broken_module_with_a_long_name.py").write_text("def (:\n")
    result = audit(tmp_path, cache=False)
    out = io.StringIO()
    render(result, Console(file=out, width=80, color_system=None, legacy_windows=False))
    text = out.getvalue()
    assert "…" not in text
    cells = "".join(
        part.strip()
        for line in text.splitlines()
        if line.startswith("│")
        for part in line.split("│")[1:2]
    )
    for name in ("the_module_whose_name_is_long.py", "broken_module_with_a_long_name.py"):
        path = f"app/a_rather_long_package_name/with_a_long_module_folder/{name}"
        assert path in cells, (path, text)


def test_the_repository_fixture_report_keeps_every_path():
    result = audit(REPO / "fixtures" / "gathering_app", select=["EXC"], cache=False)
    out = io.StringIO()
    render(result, Console(file=out, width=80, color_system=None))
    assert "…" not in out.getvalue()
