"""Parse a target's source when its syntax is newer than the running interpreter.

The target may require a newer Python (say 3.14, with PEP 758's `except A, B:`) than the one the
toolkit runs on (3.11). `parse` tries `ast.parse` first; where that fails with a syntax error and the
target's `requires-python` allows a newer grammar, it reads the file with libcst's native parser and
*lowers* the newer syntax to the running interpreter's, keeping every line number (and columns as
close as possible), then parses the lowered text with `ast`:

- PEP 758 `except A, B:` -> `except (A, B):` (columns after `A` on that line shift by one);
- PEP 695 `type X[T] = v` -> `X = v`; `def f[T](...)` / `class C[T]:` -> `def f(...)` / `class C:`;
- PEP 701 `f"{d["k"]}"` (an f-string reusing its quote inside) -> the same in triple quotes.

Anything else newer (a backslash or comment inside an f-string's braces, for one) is not lowered:
`ParseError` says so. Nothing here imports or runs the target; libcst only reads text.

API: `parse(text, filename, target=...) -> Parsed`, `lower(text, target) -> (text, features)`,
`requires_python(root, pyproject) -> str | None`, `minimum_version(spec) -> (major, minor) | None`,
`ParseError` (`.reason`, a one-line message fit for a report).
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
import tomllib
from dataclasses import dataclass
from pathlib import Path

#: The running interpreter's grammar.
RUNNING = sys.version_info[:2]

#: libcst's native parser is recursive in Rust: a deep enough expression overflows its stack and
#: kills the process. Files past these bounds are not handed to it (CPython's own limit is 200).
_MAX_BRACKET_DEPTH = 200
_MAX_TOKENS_PER_LINE = 3000


class ParseError(Exception):
    """A file neither parser reads, or one too deep to analyse; `reason` is for the report."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Parsed:
    tree: ast.Module
    text: str  # what `tree` was parsed from: the input, or the lowered text (same line numbers)
    lowered: tuple[str, ...] = ()  # the newer-syntax features rewritten, e.g. ("PEP 758",)


def parse(
    text: str, filename: str = "<unknown>", *, target: tuple[int, int] | None = None
) -> Parsed:
    """Parse `text` as the target's Python. `target` is the minimum version the target requires
    (None: unknown). Raises `ParseError` when it cannot be parsed, with the reason."""
    try:
        return Parsed(ast.parse(text, filename=filename), text)
    except SyntaxError as exc:
        error = exc
    except (RecursionError, MemoryError):
        raise ParseError("nested too deeply for the parser (RecursionError)") from None
    except ValueError as exc:  # say, a NUL byte
        raise ParseError(f"cannot parse: {exc}") from None
    message = f"syntax error: {error.msg} (line {error.lineno})"
    if target is not None and target <= RUNNING:
        raise ParseError(message) from None  # the target's own Python would reject it too
    if "too many nested" in (error.msg or ""):
        raise ParseError(message) from None
    version = f"{target[0]}.{target[1]}" if target else None
    try:
        lowered, features = lower(text, version)
    except ParseError as exc:
        raise ParseError(f"{message}; {exc.reason}") from None
    try:
        tree = ast.parse(lowered, filename=filename)
    except SyntaxError as exc:
        done = f"lowered {', '.join(features)}; " if features else ""
        raise ParseError(
            f"{message}; libcst reads it, but it uses syntax newer than Python"
            f" {RUNNING[0]}.{RUNNING[1]} that cannot be lowered ({done}still: {exc.msg},"
            f" line {exc.lineno})"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ParseError(f"{message}; nested too deeply after lowering") from None
    return Parsed(tree, lowered, features)


def lower(text: str, version: str | None = None) -> tuple[str, tuple[str, ...]]:
    """Rewrite newer syntax (PEP 758, PEP 695, PEP 701) to the running interpreter's, keeping line numbers.
    Returns the new text and the features rewritten. Raises `ParseError` when libcst cannot read
    the text (or it is too deep to hand to libcst safely)."""
    import libcst
    from libcst.metadata import MetadataWrapper, PositionProvider

    _check_depth(text)
    config = libcst.PartialParserConfig(python_version=_libcst_version(version))
    try:
        module = libcst.parse_module(text, config=config)
    except libcst.ParserSyntaxError as exc:
        raise ParseError(f"libcst's parser cannot read it either (line {exc.raw_line})") from None
    # consolidate: ignore[EXC002] libcst's own failure: report the file, do not stop the run
    except Exception as exc:
        raise ParseError(f"libcst's parser failed on it: {type(exc).__name__}") from None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    starts = _line_starts(text)

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column

    collector = _lowerings(positions, module, lambda s, e: text[offset(*s) : offset(*e)])
    wrapper.visit(collector)
    if not collector.edits:
        return text, ()

    out = text
    # Apply from the end so earlier offsets stay valid.
    for (start, end), replacement in sorted(
        (((offset(*s), offset(*e)), r) for s, e, r in collector.edits), reverse=True
    ):
        out = out[:start] + replacement + out[end:]
    return out, tuple(sorted(collector.features))


def _libcst_version(version: str | None) -> str:
    from libcst._parser.types.config import KNOWN_PYTHON_VERSION_STRINGS

    known = KNOWN_PYTHON_VERSION_STRINGS
    if version in known:
        return version
    return known[-1]


def _line_starts(text: str) -> list[int]:
    """Offsets of the lines as libcst counts them: only LF, CRLF and CR end a line
    (`str.splitlines` would also split at a form feed, common in old sources)."""
    return [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", text))]


def _check_depth(text: str) -> None:
    depth = 0
    tokens = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            tokens += 1
            if token.type == tokenize.OP:
                if token.string in "([{":
                    depth += 1
                elif token.string in ")]}":
                    depth -= 1
            elif token.type in (tokenize.NEWLINE, tokenize.NL) and depth == 0:
                tokens = 0
            if depth > _MAX_BRACKET_DEPTH or tokens > _MAX_TOKENS_PER_LINE:
                raise ParseError(
                    "too deeply nested (or too long a statement) to try libcst's parser"
                )
    except (tokenize.TokenError, SyntaxError) as exc:
        raise ParseError(
            f"libcst's parser not tried: the tokenizer stops ({exc.args[0]})"
        ) from None


def _lowerings(positions, module, source_at):
    """A libcst visitor collecting (start, end, replacement) edits, positions as (line, column)."""
    import libcst

    class Visitor(libcst.CSTVisitor):
        def __init__(self) -> None:
            super().__init__()
            self.edits: list[tuple[tuple[int, int], tuple[int, int], str]] = []
            self.features: set[str] = set()

        def _span(self, node: libcst.CSTNode) -> tuple[tuple[int, int], tuple[int, int]]:
            where = positions[node]
            return (where.start.line, where.start.column), (where.end.line, where.end.column)

        def _handler(self, node: libcst.ExceptHandler | libcst.ExceptStarHandler) -> None:
            kind = node.type
            if isinstance(kind, libcst.Tuple) and not kind.lpar:
                start, end = self._span(kind)
                self.edits.append((start, start, "("))
                self.edits.append((end, end, ")"))
                self.features.add("PEP 758 except list")

        def visit_ExceptHandler(self, node: libcst.ExceptHandler) -> None:
            self._handler(node)

        def visit_ExceptStarHandler(self, node: libcst.ExceptStarHandler) -> None:
            self._handler(node)

        def visit_TypeAlias(self, node: libcst.TypeAlias) -> None:
            start, _ = self._span(node)
            value_start, _ = self._span(node.value)
            self.edits.append((start, value_start, f"{node.name.value} = "))
            self.features.add("PEP 695 type alias")

        def _type_parameters(self, node: libcst.FunctionDef | libcst.ClassDef) -> None:
            if node.type_parameters is None:
                return
            start, end = self._span(node.type_parameters)
            lines = end[0] - start[0]
            self.edits.append((start, end, "\\\n" * lines))
            self.features.add("PEP 695 type parameters")

        def visit_FormattedString(self, node: libcst.FormattedString) -> bool:
            """PEP 701 lets an f-string's expressions reuse its quote (`f"{d["k"]}"`); before
            3.12 only a different quote works. Triple quotes of a kind the body does not contain
            make it valid again, on the same lines. Backslashes or comments in the expressions
            stay as they are (the file is then reported as not lowered)."""
            code = module.code_for_node(node)
            if _valid_expression(code):
                return False  # valid as it is, and so is every f-string inside it
            bare = module.code_for_node(node.with_changes(lpar=[], rpar=[]))
            start, end = self._span(node)
            spanned = source_at(start, end)
            if node.start.endswith(_TRIPLE_QUOTES) or bare not in spanned:
                return True
            prefix, body = node.start[:-1], bare[len(node.start) : len(bare) - len(node.end)]
            for quotes in _TRIPLE_QUOTES:
                if quotes in body or body.endswith(quotes[0]):
                    continue
                lowered = f"{prefix}{quotes}{body}{quotes}"
                if _valid_expression(lowered):
                    at = spanned.index(bare)
                    replacement = spanned[:at] + lowered + spanned[at + len(bare) :]
                    self.edits.append((start, end, replacement))
                    self.features.add("PEP 701 f-string")
                    return False
            return True

        def visit_FunctionDef(self, node: libcst.FunctionDef) -> None:
            self._type_parameters(node)

        def visit_ClassDef(self, node: libcst.ClassDef) -> None:
            self._type_parameters(node)

    return Visitor()


_TRIPLE_QUOTES = ("'''", '"""')


def _valid_expression(code: str) -> bool:
    try:
        ast.parse(f"(\n{code}\n)", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


# -- the target's Python -----------------------------------------------------------------------
def requires_python(root: Path, pyproject: Path | None = None) -> str | None:
    """`[project] requires-python` of the target: its pyproject.toml (`pyproject`, else the one at
    `root`), else the only one among `root`'s immediate subfolders that sets it (a repository whose
    backend lives in `backend/`). Never raises: an unreadable file is no answer."""
    candidates = [pyproject] if pyproject is not None else [root / "pyproject.toml"]
    found = [spec for path in candidates if (spec := _read_requires(path))]
    if found:
        return found[0]
    try:
        children = sorted(p / "pyproject.toml" for p in root.iterdir() if p.is_dir())
    except OSError:
        return None
    specs = {spec for path in children if (spec := _read_requires(path))}
    return specs.pop() if len(specs) == 1 else None


def _read_requires(path: Path) -> str | None:
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))  # with a BOM too
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    project = data.get("project")
    spec = project.get("requires-python") if isinstance(project, dict) else None
    return spec.strip() if isinstance(spec, str) and spec.strip() else None


_LOWER_BOUND = re.compile(r"(>=|~=|==|>)\s*(\d+)\.(\d+)")


def minimum_version(spec: str | None) -> tuple[int, int] | None:
    """The lowest Python a `requires-python` specifier allows (`>=3.14,<4.0` -> (3, 14)); None when
    it has no lower bound we can read."""
    if not spec:
        return None
    bounds = [
        (int(major), int(minor) + (1 if op == ">" else 0))
        for op, major, minor in _LOWER_BOUND.findall(spec)
    ]
    return max(bounds) if bounds else None
