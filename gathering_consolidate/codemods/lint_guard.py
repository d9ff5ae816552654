"""Codemod `lint-guard`: make ruff block new broad exception handlers (BLE001, S110, S112, E722)
while each handler still waiting for its phase carries its own debt marker, and
`gathering-consolidate lint-guard check` holds the same line whatever ruff selects."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import Table

from ..audit.base import Option
from ..config import path_matches
from ..model import Applicability
from ._exceptions_helpers import EXC_RULES, GUARD_CODES, ruff_guard_hits
from .base import (
    Changed,
    Codemod,
    CodemodProject,
    Failed,
    Keeps,
    Outcome,
    Refused,
    Rewrite,
    Unchanged,
)

#: The config files ruff reads, in its order of precedence.
_CONFIG_FILES = (".ruff.toml", "ruff.toml", "pyproject.toml")
_MANAGED = "extend-per-file-ignores"
_LEGACY_KEYS = ("select", "extend-select", "ignore", "per-file-ignores", _MANAGED)
#: The words that make a noqa comment a lint-guard debt marker ("noqa: BLE001 -- lint-guard debt
#: (tier 2)"). ruff reads the codes and ignores the rest.
DEBT_WORDS = "lint-guard debt"
_MARKER = re.compile(
    r"(?P<lead>[ \t]*)#[ \t]*noqa:[ \t]*(?P<codes>[A-Z]+[0-9]+(?:[ \t]*,[ \t]*[A-Z]+[0-9]+)*)"
    r"[ \t]+--[ \t]+" + re.escape(DEBT_WORDS) + r"(?:[ \t]*\([^)\n]*\))?"
)


def is_debt_marker(comment: str) -> bool:
    """Whether a comment (from its first `# noqa` on) is a lint-guard debt marker."""
    return _MARKER.match(comment) is not None


class LintGuard(Codemod):
    """Add ruff's broad-handler rules to the target's ruff configuration, and mark each broad
    handler that is today's debt with its own `# noqa` debt marker, so that any new broad
    handler fails, in a file with debt as anywhere else.

    Edits the ruff config ruff itself would read at the project root (`.ruff.toml`, `ruff.toml`,
    else `pyproject.toml`'s `[tool.ruff]`), keeping its comments and order (tomlkit):

    * `extend-select` gets `BLE001` (blind except), `S110` (try-except-pass), `S112`
      (try-except-continue) and `E722` (bare except), unless the selection already has them;
      an exact `ignore` of one of them is removed, since it would switch the guard off;
    * each broad handler still waiting for a later phase (one whose tier, from what it protects,
      is above `--tier`, default 1), and each current-phase handler acknowledged with
      `# consolidate: fixme[EXC001] reason` / `ignore[...]`, gets
      `# noqa: BLE001, S110 -- lint-guard debt (tier 2)` on the line ruff reports it, with
      exactly the codes ruff reports there (ruff's semantics: a handler that re-raises or calls
      `logger.exception` is not a BLE001). The marker moves with the handler (no line numbers
      anywhere), covers that handler only, and goes when the handler is fixed: running the
      codemod again removes the markers whose handlers no longer need them. Whole-file ignores
      of these four codes that an older version wrote to `extend-per-file-ignores` are removed.

    `gathering-consolidate lint-guard check PATH...` (a pre-commit hook,
    `gathering-consolidate-lint-guard`) fails on any broad handler that carries no marker, with
    its location: it reads the same model of ruff, so the guard holds even where CI runs ruff
    with its own `--select`.

    Handlers in the current phase that are neither fixed nor acknowledged are not covered; they
    are listed (as refusals) because ruff will now report them. A line where ruff could not read
    a marker (one already carrying another `# noqa`, or ending in a backslash) is refused too.
    Safe: it adds configuration and comments only. A project with no ruff configuration gets a
    `ruff.toml` (ruff's defaults plus the guard).
    """

    id = "lint-guard"
    description = (
        "Add ruff rules that block new broad except handlers; mark each existing one as debt."
    )
    applicability = Applicability.SAFE
    fixes = ()
    OPTIONS = {
        "tier": Option(
            1,
            "The current phase: handlers of this tier and below must be fixed; handlers of"
            " higher tiers are marked as debt (`# noqa: ... -- lint-guard debt`).",
        ),
    }
    CASES = [
        Keeps(
            """
            [project]
            name = "app"

            [tool.ruff.lint]
            select = ["E", "F", "BLE", "S"]
            """,
            path="pyproject.toml",
        ),
        Rewrite(
            before="""
            import os


            def clean(path):
                try:
                    os.remove(path)
                except Exception:  # best effort
                    pass
            """,
            after="""
            import os


            def clean(path):
                try:
                    os.remove(path)
                except Exception:  # best effort  # noqa: BLE001, S110 -- lint-guard debt (tier 2)
                    pass
            """,
            path="app/skills/files.py",
            files={
                "pyproject.toml": '[project]\nname = "app"\n\n[tool.ruff.lint]\nselect = ["BLE", "S"]\n'
            },
        ),
        # A project with no ruff configuration gets one (`ruff.toml`), and the markers.
        Rewrite(
            before="""
            try:
                import ujson as json
            except:  # optional speed-up
                import json
            """,
            after="""
            try:
                import ujson as json
            except:  # optional speed-up  # noqa: E722 -- lint-guard debt (tier 3)
                import json
            """,
        ),
    ]

    def run(self, project: CodemodProject) -> Iterator[Outcome]:
        # No ruff configuration at all: a new `ruff.toml` holds the guard (ruff's defaults
        # plus the four codes).
        relpath, before = _read_config(project) or ("ruff.toml", "")
        try:
            document = tomlkit.parse(before)
        except tomlkit.exceptions.TOMLKitError as exc:
            yield Failed(relpath, f"cannot parse: {exc}")
            return
        ruff, lint = _tables(document, relpath)
        phase = int(self.options["tier"])
        audited = project.audit(EXC_RULES)
        acknowledged = {
            (s.finding.location.path, s.finding.location.line) for s in audited.suppressed
        }
        # Tiers come per handler, from what it protects (EXC); the path's tier stands in for a
        # hit the audit did not report (say, one ruff flags and EXC does not).
        handler_tiers = {
            (f.location.path, f.location.line): f.tier
            for f in audited.findings
            if f.tier is not None
        }
        excluded = [*_strings(ruff.get("exclude")), *_strings(ruff.get("extend-exclude"))]
        managed_now = _mapping(lint.get(_MANAGED))
        # The project's own ignores (not the guard codes an older lint-guard wrote to the
        # managed table: those were whole-file debt, which markers replace).
        user_ignores = _mapping(lint.get("per-file-ignores"))
        for key, codes in managed_now.items():
            kept = [c for c in codes if c not in GUARD_CODES]
            if kept:
                user_ignores.setdefault(key, []).extend(kept)
        outcomes: list[Outcome] = []
        marked = 0
        for path in sorted(project.files):
            project.step("marking handlers", 1, len(project.files))
            if not path.endswith(".py") or (excluded and path_matches(path, excluded)):
                continue
            source = project.files[path]
            already = {
                c for key, codes in user_ignores.items() if _matches(path, key) for c in codes
            }
            default = project.config.tier_for(path)
            outcome, count = _mark_file(
                path, source, phase, default, handler_tiers, acknowledged, already
            )
            marked += count
            outcomes.extend(outcome)
        changed, notes = _apply(lint, managed_now)
        if marked:
            notes.append(f"{marked} broad handler(s) marked as lint-guard debt")
        refusals = [o for o in outcomes if not isinstance(o, Changed)]
        yield from refusals
        yield from (o for o in outcomes if isinstance(o, Changed))
        if not changed:
            yield Unchanged(relpath)
            return
        after = tomlkit.dumps(document)
        yield Changed(relpath, before if before else None, after, tuple(notes))


# -- the per-handler markers -----------------------------------------------------------------------
def _commentable_lines(source: str) -> tuple[set[int], dict[int, tuple[int, str]]]:
    """Lines a comment can end (a NEWLINE/NL/COMMENT token ends them: not a backslash
    continuation, not inside a string) and each line's comment (column, text)."""
    lines: set[int] = set()
    comments: dict[int, tuple[int, str]] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.NEWLINE, tokenize.NL):
            lines.add(token.start[0])
        elif token.type == tokenize.COMMENT:
            lines.add(token.start[0])
            comments[token.start[0]] = (token.start[1], token.string)
    return lines, comments


def _mark_file(
    path: str,
    source: str,
    phase: int,
    default_tier: int,
    handler_tiers: Mapping[tuple[str, int], int],
    acknowledged: set[tuple[str, int]],
    already: set[str],
) -> tuple[list[Outcome], int]:
    """The file with one marker per line ruff reports a covered broad handler on (and none
    left where no handler needs one), plus refusals for uncovered current-phase handlers."""
    if "except" not in source and DEBT_WORDS not in source:
        return [], 0
    try:
        tree = ast.parse(source)
        commentable, comments = _commentable_lines(source)
    except (SyntaxError, ValueError, tokenize.TokenError):
        return [], 0
    hits = ruff_guard_hits(source, tree, ignore_noqa=is_debt_marker)
    wanted: dict[int, set[str]] = {}
    labels: dict[int, str] = {}
    refusals: list[Outcome] = []
    open_codes: dict[int, set[str]] = {}
    for hit in hits:
        tier = handler_tiers.get((path, hit.line), default_tier)
        later = tier > phase
        known = (path, hit.line) in acknowledged
        for code, line in hit.at:
            if code in already:
                continue
            if later or known:
                wanted.setdefault(line, set()).add(code)
                labels[line] = f"tier {tier}" + ("" if later else ", acknowledged")
            else:
                open_codes.setdefault(hit.line, set()).add(code)
    for line, codes in sorted(open_codes.items()):
        tier = handler_tiers.get((path, line), default_tier)
        refusals.append(
            Refused(
                path,
                f"tier {tier} is in the current phase: ruff will report"
                f" {', '.join(sorted(codes))} here until it is fixed (narrow-except) or"
                " acknowledged (`# consolidate: fixme[EXC001] reason`)",
                line,
                "current phase",
            )
        )
    lines = source.split("\n")
    placed: set[tuple[int, str]] = set()
    for number in sorted(set(wanted) | set(comments)):
        text = lines[number - 1]
        if number in comments:  # take out a marker already there (it is put back if wanted)
            column, body = comments[number]
            found = _MARKER.search(body)
            if found is not None:
                head = text[: column + found.start()]
                tail = text[column + found.end() :]
                text = head.rstrip() if not tail.strip() else head + tail
        lines[number - 1] = text
        codes = wanted.get(number)
        if not codes:
            continue
        listed = ", ".join(sorted(codes))
        if number not in commentable:
            refusals.append(
                Refused(
                    path,
                    "cannot put a debt marker on this line (it continues with a backslash):"
                    f" add `# noqa: {listed}` by hand",
                    number,
                    "marker cannot be placed",
                )
            )
            continue
        rest = text[comments[number][0] :] if number in comments else ""
        if re.search(r"#\s*noqa\b", rest, re.I):
            refusals.append(
                Refused(
                    path,
                    f"this line already has a `# noqa` that ruff reads first: add {listed}"
                    " to it by hand",
                    number,
                    "marker cannot be placed",
                )
            )
            continue
        lines[number - 1] = f"{text.rstrip()}  # noqa: {listed} -- {DEBT_WORDS} ({labels[number]})"
        placed |= {(number, code) for code in codes}
    after = "\n".join(lines)
    if after == source:
        return refusals, 0
    # The markers must cover what they were put for and nothing else: ruff's model, reading the
    # new text as ruff reads it, must report exactly the handlers left uncovered.
    try:
        left = ruff_guard_hits(after, ast.parse(after))
    except (SyntaxError, ValueError):
        return [*refusals, Failed(path, "the debt markers made the file unparseable")], 0
    expected = {(line, code) for hit in hits for code, line in hit.at} - placed
    if {(line, code) for hit in left for code, line in hit.at} != expected:
        return [*refusals, Failed(path, "ruff would not read the debt markers as placed")], 0
    return [*refusals, Changed(path, source, after)], len({line for line, _ in placed})


def _read_config(project: CodemodProject) -> tuple[str, str] | None:
    """The ruff config ruff would read at the project root, as text (a BOM and CRLF line ends
    are taken off here and put back when written: the engine keeps the format read)."""
    from .engine import read_text_file

    for name in _CONFIG_FILES:
        if name in project.files:
            return name, project.files[name]
        path = Path(project.root) / name
        if path.is_file():
            text, text_format = read_text_file(path)
            project.formats[name] = text_format
            return name, text
    return None


def _tables(document: Any, relpath: str) -> tuple[Any, Any]:
    """The ruff table and the table lint settings go in (`lint`, or the ruff table itself for a
    config that still uses the pre-0.2 top-level keys), created when missing."""
    if relpath == "pyproject.toml":
        if "tool" not in document:
            document.add("tool", tomlkit.table(is_super_table=True))
        tool = document["tool"]
        if "ruff" not in tool:
            tool.add("ruff", tomlkit.table(is_super_table=True))
        ruff = tool["ruff"]
    else:
        ruff = document
    if "lint" not in ruff and any(key in ruff for key in _LEGACY_KEYS):
        return ruff, ruff
    if "lint" not in ruff:
        ruff.add("lint", tomlkit.table())
    return ruff, ruff["lint"]


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _mapping(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): _strings(v) for k, v in value.items()}


def _matches(path: str, pattern: str) -> bool:
    return pattern == path or path_matches(path, (pattern,))


_LINTERS = {"BLE001": "BLE", "E722": "E", "S110": "S", "S112": "S"}


def _selected(code: str, selectors: list[str]) -> bool:
    """Whether a ruff selector list selects `code`: `ALL`, the code's linter prefix, or that
    prefix plus a leading part of the number (`"B"` is flake8-bugbear: it does not select
    `BLE001`)."""
    linter = _LINTERS[code]
    for selector in selectors:
        if selector == "ALL":
            return True
        rest = selector[len(linter) :]
        if (
            selector.startswith(linter)
            and (rest == "" or rest.isdigit())
            and code.startswith(selector)
        ):
            return True
    return False


def _apply(lint: Any, managed_now: dict[str, list[str]]) -> tuple[bool, list[str]]:
    changed = False
    notes: list[str] = []
    selectors = [*_strings(lint.get("select")), *_strings(lint.get("extend-select"))]
    missing = [c for c in GUARD_CODES if not _selected(c, selectors)]
    if missing:
        if "extend-select" in lint:
            for code in missing:
                lint["extend-select"].append(code)
        else:
            array = tomlkit.array()
            array.extend(missing)
            lint["extend-select"] = array
        changed = True
    ignore = lint.get("ignore")
    if isinstance(ignore, list):
        dropped = [c for c in _strings(ignore) if c in GUARD_CODES]
        for code in dropped:
            ignore.remove(code)
            notes.append(f"removed {code} from `ignore`: it would switch the guard off")
            changed = True
    # Whole-file ignores of the guard codes (an older lint-guard wrote them) let a new handler
    # in those files pass: they go, the per-handler markers replace them. Other codes stay.
    table = lint.get(_MANAGED)
    if not isinstance(table, (Table, Mapping)) or not managed_now:
        return changed, notes
    dropped_files = []
    for key, codes in managed_now.items():
        kept = [c for c in codes if c not in GUARD_CODES]
        if kept == codes:
            continue
        dropped_files.append(key)
        if kept:
            table[key] = kept
        else:
            del table[key]
    if not dropped_files:
        return changed, notes
    if not list(table):
        del lint[_MANAGED]
    notes.append(
        f"{len(dropped_files)} whole-file ignore(s) of the guard codes replaced by"
        " per-handler debt markers"
    )
    return True, notes


# -- the check (`gathering-consolidate lint-guard check`) -----------------------------------------
@dataclass(frozen=True, slots=True)
class UnmarkedHandler:
    """A broad handler ruff would report that carries no debt marker: new debt."""

    path: str
    line: int
    codes: tuple[str, ...]
    symbol: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "codes": list(self.codes),
            "symbol": self.symbol,
        }


@dataclass(frozen=True, slots=True)
class GuardCheck:
    """What `lint-guard check` found: `new` fails the check; `stale` markers (their handler was
    fixed) and `unreadable` files are reported and do not."""

    root: str
    files: int
    debt: int
    new: tuple[UnmarkedHandler, ...] = ()
    stale: tuple[tuple[str, int], ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.new

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "files": self.files,
            "debt": self.debt,
            "new": [h.to_dict() for h in self.new],
            "stale": [{"path": p, "line": n} for p, n in self.stale],
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
        }


def _ruff_file_settings(root: Path) -> tuple[dict[str, list[str]], list[str]]:
    """The per-file ignores (both tables) and excludes of the ruff config ruff reads at `root`."""
    import tomllib

    from .engine import read_text_file

    for name in _CONFIG_FILES:
        path = root / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(read_text_file(path)[0])
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{name}: cannot read the ruff configuration: {exc}") from None
        if name == "pyproject.toml":
            data = data.get("tool", {}).get("ruff")
            if data is None:
                continue
        lint = data.get("lint", data) if isinstance(data.get("lint"), dict) else data
        ignores = {
            **_mapping(data.get("per-file-ignores")),
            **_mapping(lint.get("per-file-ignores")),
        }
        for key, codes in _mapping(lint.get(_MANAGED)).items():
            ignores.setdefault(key, []).extend(codes)
        excluded = [*_strings(data.get("exclude")), *_strings(data.get("extend-exclude"))]
        return ignores, excluded
    return {}, []


def _enclosing(tree: ast.Module) -> dict[int, str]:
    """`except` line -> qualified name of the function or class around it (`<module>` at top)."""
    found: dict[int, str] = {}

    def walk(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = child.name if scope == "<module>" else f"{scope}.{child.name}"
            elif isinstance(child, ast.ExceptHandler):
                found[child.lineno] = scope
            walk(child, inner)

    walk(tree, "<module>")
    return found


def check_guard(paths: Sequence[Path]) -> GuardCheck:
    """Check files (or every Python file under directories) for broad handlers ruff would
    report (BLE001, S110, S112, E722) that carry no lint-guard debt marker and no ignore of the
    project's ruff config: each is new debt. Reads ruff's semantics from our model of it, so
    the answer does not depend on what ruff selects. Raises ValueError on a bad path or
    configuration."""
    from ..config import load_config
    from ..project import discover
    from .engine import decode_source

    if not paths:
        raise ValueError("no path given")
    for path in paths:
        if not path.exists():
            raise ValueError(f"{path}: no such file or directory")
    first = paths[0] if paths[0].is_dir() else paths[0].parent
    config = load_config(first)
    root = config.root
    ignores, excluded = _ruff_file_settings(root)
    files: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            files.update((rel, full) for rel, full in discover(path, config) if rel.endswith(".py"))
        elif path.suffix == ".py":
            try:
                files[path.absolute().relative_to(root.absolute()).as_posix()] = path
            except ValueError:
                files[path.as_posix()] = path
    new: list[UnmarkedHandler] = []
    stale: list[tuple[str, int]] = []
    unreadable: list[tuple[str, str]] = []
    debt = 0
    for rel, full in sorted(files.items()):
        if excluded and path_matches(rel, excluded):
            continue
        try:
            source, _ = decode_source(full.read_bytes())
            tree = ast.parse(source)
        except (OSError, SyntaxError, UnicodeDecodeError, LookupError, ValueError) as exc:
            unreadable.append((rel, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            continue
        ignored = {c for key, codes in ignores.items() if _matches(rel, key) for c in codes}
        if "except" not in source:
            continue
        symbols = _enclosing(tree)
        for hit in ruff_guard_hits(source, tree):
            codes = tuple(sorted(hit.codes - ignored))
            if codes:
                new.append(UnmarkedHandler(rel, hit.line, codes, symbols.get(hit.line, "")))
        if DEBT_WORDS not in source:
            continue
        raw = {
            (line, code)
            for hit in ruff_guard_hits(source, tree, ignore_noqa=is_debt_marker)
            for code, line in hit.at
        }
        for number, (_, comment) in sorted(_commentable_lines(source)[1].items()):
            marker = _MARKER.search(comment)
            if marker is None:
                continue
            codes_marked = re.split(r"[ \t]*,[ \t]*", marker["codes"])
            if any((number, code) in raw for code in codes_marked):
                debt += 1
            else:
                stale.append((rel, number))
    return GuardCheck(str(root), len(files), debt, tuple(new), tuple(stale), tuple(unreadable))
