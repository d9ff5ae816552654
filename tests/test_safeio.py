"""safeio: atomic writes that never follow a symlink, never leave the root, never leave a temporary
file behind, and keep file modes; `write_many_atomic` is all or nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gathering_consolidate import safeio
from gathering_consolidate.safeio import UnsafePathError, write_atomic, write_many_atomic


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".bak")))


def test_writes_text_and_bytes_and_creates_folders(tmp_path: Path):
    written = write_atomic(tmp_path / "a" / "b" / "out.txt", "héllo\n", root=tmp_path)
    assert written == tmp_path / "a" / "b" / "out.txt"
    assert written.read_text(encoding="utf-8") == "héllo\n"
    write_atomic(tmp_path / "raw.bin", b"\x00\x01", root=tmp_path)
    assert (tmp_path / "raw.bin").read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path) == []


def test_newline_as_open_does(tmp_path: Path):
    write_atomic(tmp_path / "crlf.py", "a\r\nb\r\n", newline="")
    assert (tmp_path / "crlf.py").read_bytes() == b"a\r\nb\r\n"
    write_atomic(tmp_path / "win.txt", "a\nb\n", newline="\r\n")
    assert (tmp_path / "win.txt").read_bytes() == b"a\r\nb\r\n"


def test_a_symlink_at_the_destination_is_refused(tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    project = tmp_path / "project"
    project.mkdir()
    (project / "report.json").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        write_atomic(project / "report.json", "pwned")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        write_atomic(project / "report.json", "pwned", root=project)
    assert outside.read_text() == "precious"
    assert (project / "report.json").is_symlink()
    assert _leftovers(tmp_path) == []


def test_a_symlinked_folder_between_root_and_file_is_refused(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    (project / "rules").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match=r"rules is a symbolic link"):
        write_atomic(project / "rules" / "x.toml", "pwned", root=project)
    with pytest.raises(UnsafePathError, match=r"rules is a symbolic link"):
        write_atomic(project / "rules" / "new" / "x.toml", "pwned", root=project)
    assert list(outside.iterdir()) == []


def test_paths_leaving_the_root_are_refused(tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    for path in (tmp_path / "elsewhere.txt", project / ".." / "elsewhere.txt", project):
        with pytest.raises(UnsafePathError, match=r"outside|itself"):
            write_atomic(path, "x", root=project)
    assert not (tmp_path / "elsewhere.txt").exists()


def test_not_a_regular_file_is_refused(tmp_path: Path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UnsafePathError, match="not a regular file"):
        write_atomic(tmp_path / "fifo", "x")
    (tmp_path / "dir").mkdir()
    with pytest.raises(UnsafePathError, match="not a regular file"):
        write_atomic(tmp_path / "dir", "x")


def test_the_temporary_file_is_new_and_random(tmp_path: Path, monkeypatch):
    """A planted file (or symlink) at a predictable temporary name is never opened: the name is
    random and the file is created O_EXCL | O_NOFOLLOW with mode 0600."""
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (tmp_path / ".out.txt.tmp").symlink_to(outside)
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *, dir_fd=None):
        opened.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(safeio.os, "open", spy)
    write_atomic(tmp_path / "out.txt", "data", root=tmp_path)
    write_atomic(tmp_path / "out.txt", "data2", root=tmp_path)
    created = [(p, f, m) for p, f, m in opened if f & os.O_CREAT]
    assert len(created) == 2
    for _name, flags, mode in created:
        assert flags & os.O_EXCL and flags & os.O_NOFOLLOW
        assert mode == 0o600
    assert created[0][0] != created[1][0]
    assert all(p.startswith(".out.txt.") and p.endswith(".tmp") for p, _, _ in created)
    assert outside.read_text() == "precious"
    assert (tmp_path / "out.txt").read_text() == "data2"


def test_mode_is_kept_or_given(tmp_path: Path):
    target = tmp_path / "script.sh"
    target.write_text("old")
    target.chmod(0o750)
    write_atomic(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    write_atomic(tmp_path / "secret", "k", mode=0o600)
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "fresh.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh.txt").stat().st_mode) == 0o640


def test_a_failed_write_leaves_the_original_and_no_temporary_file(tmp_path: Path, monkeypatch):
    target = tmp_path / "data.txt"
    target.write_text("original")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safeio.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, "half")
    assert target.read_text() == "original"
    assert _leftovers(tmp_path) == []
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "é", encoding="ascii")
    assert target.read_text() == "original"


def test_many_is_all_or_nothing_when_staging_fails(tmp_path: Path):
    (tmp_path / "a.py").write_text("a = 0\n")
    (tmp_path / "link.py").symlink_to(tmp_path / "a.py")
    with pytest.raises(UnsafePathError):
        write_many_atomic(
            {
                tmp_path / "a.py": "a = 1\n",
                tmp_path / "new.py": "n = 1\n",
                tmp_path / "link.py": "",
            },
            root=tmp_path,
        )
    assert (tmp_path / "a.py").read_text() == "a = 0\n"
    assert not (tmp_path / "new.py").exists()
    assert _leftovers(tmp_path) == []


def test_many_restores_replaced_files_when_a_rename_fails(tmp_path: Path, monkeypatch):
    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text(f"{name} before\n")
    real_replace = os.replace
    calls = []

    def flaky(src, dst, *, src_dir_fd=None, dst_dir_fd=None):
        calls.append(dst)
        if dst == "c.py" and src.endswith(".tmp"):
            raise OSError(5, "Input/output error")
        return real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(safeio.os, "replace", flaky)
    files = {tmp_path / n: f"{n} after\n" for n in ("a.py", "new.py", "b.py", "c.py")}
    with pytest.raises(OSError, match="Input/output"):
        write_many_atomic(files, root=tmp_path)
    for name in ("a.py", "b.py", "c.py"):
        assert (tmp_path / name).read_text() == f"{name} before\n"
    assert not (tmp_path / "new.py").exists()
    assert calls[:4] == ["a.py", "new.py", "b.py", "c.py"]
    assert _leftovers(tmp_path) == []


def test_many_writes_every_file(tmp_path: Path):
    (tmp_path / "a.py").write_text("a = 0\n")
    (tmp_path / "a.py").chmod(0o600)
    written = write_many_atomic(
        [(tmp_path / "a.py", "a = 1\n"), (tmp_path / "pkg" / "b.py", "b = 1\n")], root=tmp_path
    )
    assert written == [tmp_path / "a.py", tmp_path / "pkg" / "b.py"]
    assert (tmp_path / "a.py").read_text() == "a = 1\n"
    assert stat.S_IMODE((tmp_path / "a.py").stat().st_mode) == 0o600
    assert (tmp_path / "pkg" / "b.py").read_text() == "b = 1\n"
    assert _leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="twice"):
        write_many_atomic([(tmp_path / "a.py", "x"), (tmp_path / "a.py", "y")])


@pytest.mark.parametrize("output_format", ["json", "text"])
def test_audit_report_is_not_written_through_a_symlink(tmp_path: Path, output_format: str):
    """`audit -o FILE` writes through `write_atomic`: a symlink planted at FILE (say, in the
    untrusted tree) is refused with exit 2 and its target is untouched."""
    from typer.testing import CliRunner

    from gathering_consolidate.cli import app

    (tmp_path / "a.py").write_text("x = 1\n")
    victim = tmp_path.parent / f"{tmp_path.name}-victim.txt"
    victim.write_text("precious")
    (tmp_path / "report.out").symlink_to(victim)
    args = ["audit", str(tmp_path), "-f", output_format, "-o", str(tmp_path / "report.out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "symbolic link" in " ".join(result.stderr.split())
    assert victim.read_text() == "precious"
    ok = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "report2.out")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "report2.out").read_text()
    assert _leftovers(tmp_path) == []
