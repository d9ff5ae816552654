"""Make a large benchmark tree by replicating the fixture app.

    python benchmarks/make_tree.py OUT_DIR [--lines 60000] [--source fixtures/gathering_app]

Each copy becomes its own top-level packages (`gathering_00/`, `tests_00/`, ...) with imports
rewritten to match, so cross-module analyses resolve inside each copy as they would in one real
code base. Prints the output directory and its size.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO / "fixtures" / "gathering_app"
_SKIP = {"__pycache__", ".pytest_cache", ".gathering_consolidate_cache", ".ruff_cache"}


def python_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*.py")
        if not any(part in _SKIP for part in p.relative_to(root).parts)
    )


def count_lines(root: Path) -> int:
    return sum(len(p.read_text(encoding="utf-8").splitlines()) for p in python_files(root))


def make_tree(out: Path, lines: int = 60_000, source: Path = DEFAULT_SOURCE) -> Path:
    files = python_files(source)
    if not files:
        raise SystemExit(f"{source}: no Python files to replicate")
    tops = sorted({p.relative_to(source).parts[0] for p in files})
    packages = [t for t in tops if (source / t).is_dir()]
    copies = max(1, math.ceil(lines / count_lines(source)))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "pyproject.toml").write_text('[project]\nname = "bench-tree"\nversion = "0"\n')
    names = "|".join(re.escape(p) for p in packages)
    pattern = re.compile(rf"\b({names})(?=[.\s,)]|$)", re.M) if packages else None
    for i in range(copies):
        suffix = f"_{i:02d}"
        for path in files:
            rel = path.relative_to(source)
            first = rel.parts[0]
            head = first + suffix if (source / first).is_dir() else f"{Path(first).stem}{suffix}.py"
            target = out.joinpath(head, *rel.parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text(encoding="utf-8")
            if pattern is not None:
                text = "\n".join(
                    pattern.sub(lambda m, s=suffix: m.group(1) + s, line)
                    if line.lstrip().startswith(("import ", "from ")) or "patch(" in line
                    else line
                    for line in text.split("\n")
                )
            target.write_text(text, encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--lines", type=int, default=60_000)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    args = parser.parse_args()
    out = make_tree(args.out, args.lines, args.source)
    print(f"{out} ({len(python_files(out))} files, {count_lines(out):,} lines)")


if __name__ == "__main__":
    main()
