"""The baseline ratchet: the findings a project has accepted as known debt, so an audit fails only
on new ones (`audit --baseline FILE`, `--update-baseline`; `baseline = "..."` in the project's
`[tool.gathering-consolidate]` table).

A baseline is a JSON file (`gathering-consolidate/baseline`, version 1), one entry per finding,
sorted, with no timestamps, so it diffs well in review:

    {"schema": "gathering-consolidate/baseline", "version": 1,
     "findings": [{"rule": "DTZ001", "path": "app/jobs.py", "symbol": "app.jobs.run",
                   "fingerprint": "3f2a...", "code": "9c1e...", "line": 12, "message": "..."}]}

`fingerprint` is the finding's line-free fingerprint (rule + path + enclosing symbol + the source
lines with whitespace runs collapsed, `model.fingerprint`); `code` hashes the rule and the Python
tokens of the finding's exact span (comments, whitespace, line breaks and magic trailing commas
left out, string quotes normalised), so it does not change when a formatter rewraps the code;
`line` is only a hint that pairs twins and helps a reader.

Matching is count-aware: each entry covers one finding, so a baselined `datetime.utcnow()` never
hides a second identical one added to the same function. Findings are matched to entries in three
passes, each on what is still unmatched, twins paired in line order:

1. the fingerprint (edits elsewhere in the file, blank lines, a function moved within its file);
2. rule + path + symbol + code (the finding's code was reformatted: rewrapped, re-indented);
3. rule + symbol within its module + code (the file was renamed or the function moved to another
   module).

What `compare` reports (`BaselineDiff`):

- `new`: findings no entry covers (these fail the audit);
- `baselined`: findings an entry covers;
- `fixed`: entries whose finding is gone (the rule ran, and the file was audited or no longer
  exists): `--update-baseline` drops them and the ratchet tightens;
- `stale`: entries that are out of date: matched only by pass 2 or 3 (their recorded fingerprint
  no longer matches, `--update-baseline` refreshes it), or naming a rule this tool does not know;
- `out_of_scope`: entries this run cannot judge (a rule not selected, a file not audited: outside
  the target, excluded, skipped or failed). They are neither fixed nor stale, and
  `write_baseline` keeps them.
"""

from __future__ import annotations

import ast
import io
import json
import os
import tokenize
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from .model import AuditResult, Finding, Status

SCHEMA = "gathering-consolidate/baseline"
VERSION = 1

#: How an entry was matched: by its fingerprint, or by its code after a reformat, a move or a rename.
EXACT, REFORMATTED, MOVED = "fingerprint", "reformatted", "moved"


class BaselineError(ValueError):
    """The baseline file cannot be used; the message says which file and why (exit 2)."""


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    rule: str
    path: str
    symbol: str
    fingerprint: str
    code: str = ""
    line: int = 0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "path": self.path,
            "symbol": self.symbol,
            "fingerprint": self.fingerprint,
            "code": self.code,
            "line": self.line,
            "message": self.message,
        }

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.path, self.line, self.rule, self.fingerprint)


@dataclass(frozen=True, slots=True)
class Baseline:
    entries: tuple[BaselineEntry, ...] = ()
    path: str | None = None  # where it was read from, for messages

    def __len__(self) -> int:
        return len(self.entries)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "findings": [e.to_dict() for e in sorted(self.entries, key=BaselineEntry.sort_key)],
        }


@dataclass(frozen=True, slots=True)
class Match:
    finding: Finding
    entry: BaselineEntry
    how: str  # EXACT, REFORMATTED or MOVED


@dataclass(frozen=True)
class BaselineDiff:
    new: list[Finding] = field(default_factory=list)
    baselined: list[Finding] = field(default_factory=list)
    fixed: list[BaselineEntry] = field(default_factory=list)
    stale: list[BaselineEntry] = field(default_factory=list)
    out_of_scope: list[BaselineEntry] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)
    baseline_path: str | None = None

    @property
    def passed(self) -> bool:
        """No new finding (fixed and stale entries are advice, not failures)."""
        return not self.new

    def summary(self) -> str:
        """One line: `3 new, 40 baselined, 2 fixed, 1 stale (baseline.json)`."""
        where = f" ({self.baseline_path})" if self.baseline_path else ""
        return (
            f"{len(self.new)} new, {len(self.baselined)} baselined, {len(self.fixed)} fixed,"
            f" {len(self.stale)} stale{where}"
        )

    def to_dict(self) -> dict[str, Any]:
        from .report.json import finding_to_dict

        loose = {id(m.finding): m.how for m in self.matches if m.how != EXACT}
        return {
            "file": self.baseline_path,
            "passed": self.passed,
            "summary": {
                "new": len(self.new),
                "baselined": len(self.baselined),
                "fixed": len(self.fixed),
                "stale": len(self.stale),
                "out_of_scope": len(self.out_of_scope),
            },
            "new": [finding_to_dict(f) for f in self.new],
            "matched_loosely": [
                {
                    "fingerprint": f.fingerprint,
                    "path": f.location.path,
                    "line": f.location.line,
                    "rule": f.rule,
                    "how": loose[id(f)],
                }
                for f in self.baselined
                if id(f) in loose
            ],
            "fixed": [e.to_dict() for e in self.fixed],
            "stale": [e.to_dict() for e in self.stale],
        }


# -- reading and writing ------------------------------------------------------------------------
def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline file. Raises BaselineError (missing, not JSON, not a baseline, a newer
    version, a malformed entry)."""
    where = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise BaselineError(
            f"baseline {where}: no such file (create it with --update-baseline)"
        ) from None
    except OSError as exc:
        raise BaselineError(f"baseline {where}: cannot read: {exc.strerror or exc}") from None
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"baseline {where}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise BaselineError(f"baseline {where}: not a gathering-consolidate baseline")
    version = document.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise BaselineError(
            f"baseline {where}: version {version!r} is newer than this tool reads ({VERSION})"
        )
    items = document.get("findings")
    if not isinstance(items, list):
        raise BaselineError(f"baseline {where}: `findings` must be a list")
    entries = []
    for index, item in enumerate(items):
        try:
            entries.append(_entry(item))
        except (KeyError, TypeError, ValueError):
            raise BaselineError(
                f"baseline {where}: entry {index} is malformed (needs rule, path, symbol,"
                " fingerprint)"
            ) from None
    return Baseline(tuple(entries), where)


def _entry(item: Any) -> BaselineEntry:
    if not isinstance(item, dict):
        raise TypeError
    strings = {k: item[k] for k in ("rule", "path", "symbol", "fingerprint")}
    if not all(isinstance(v, str) for v in strings.values()) or not strings["rule"]:
        raise ValueError
    line = item.get("line", 0)
    return BaselineEntry(
        **strings,
        code=str(item.get("code", "")),
        line=line if isinstance(line, int) and not isinstance(line, bool) else 0,
        message=str(item.get("message", "")),
    )


def baseline_of(result: AuditResult, *, keep: Baseline | None = None) -> Baseline:
    """The baseline that accepts every finding of `result`, plus the entries of `keep` that this
    result cannot judge (files or rules outside the run), so updating the baseline from an audit
    of one folder does not forget the rest of the project."""
    codes = _CodeKeys(Path(result.root))
    entries = [_entry_for(f, codes) for f in result.findings]
    if keep is not None:
        scope = _Scope(result)
        entries.extend(e for e in keep.entries if scope.verdict(e) == "out_of_scope")
    return Baseline(tuple(sorted(entries, key=BaselineEntry.sort_key)))


def write_baseline(
    result: AuditResult, path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
) -> Baseline:
    """Write the baseline of `result` to `path` atomically (never through a symlink). Entries of an
    existing baseline at `path` that this run could not judge are kept (see `baseline_of`).
    Returns what was written. Raises BaselineError when the existing file is not a baseline, and
    OSError when it cannot be written."""
    keep = load_baseline(path) if os.path.exists(path) else None
    baseline = baseline_of(result, keep=keep)
    from .safeio import write_atomic

    text = json.dumps(baseline.to_dict(), indent=2, ensure_ascii=False) + "\n"
    write_atomic(path, text, root=root)
    return Baseline(baseline.entries, os.fspath(path))


def _entry_for(finding: Finding, codes: _CodeKeys) -> BaselineEntry:
    return BaselineEntry(
        rule=finding.rule,
        path=finding.location.path,
        symbol=finding.symbol,
        fingerprint=finding.fingerprint,
        code=codes.key(finding),
        line=finding.location.line,
        message=finding.message,
    )


# -- comparing ----------------------------------------------------------------------------------
def compare(result: AuditResult, baseline: Baseline) -> BaselineDiff:
    """Split the findings of `result` into new and baselined, and the entries of `baseline` into
    matched, fixed, stale and out of scope (see the module docstring)."""
    codes = _CodeKeys(Path(result.root))
    findings = list(result.findings)
    free_findings = set(range(len(findings)))
    free_entries = set(range(len(baseline.entries)))
    entries = baseline.entries
    matches: dict[int, tuple[int, str]] = {}  # finding index -> (entry index, how)

    passes: list[tuple[str, Callable[[Finding], Any], Callable[[BaselineEntry], Any]]] = [
        (EXACT, lambda f: f.fingerprint, lambda e: e.fingerprint),
        (
            REFORMATTED,
            lambda f: (f.rule, f.location.path, f.symbol, codes.key(f)),
            lambda e: (e.rule, e.path, e.symbol, e.code),
        ),
        (
            MOVED,
            lambda f: (f.rule, _local_symbol(f.symbol, f.location.path), codes.key(f)),
            lambda e: (e.rule, _local_symbol(e.symbol, e.path), e.code),
        ),
    ]
    for how, finding_key, entry_key in passes:
        if not free_findings or not free_entries:
            break
        by_key: dict[Any, list[int]] = defaultdict(list)
        for i in sorted(free_entries, key=lambda i: entries[i].line):
            key = entry_key(entries[i])
            if how != EXACT and not key[-1]:
                continue  # no code recorded (an old entry, a project-level finding)
            by_key[key].append(i)
        for j in sorted(free_findings, key=lambda j: findings[j].sort_key()):
            key = finding_key(findings[j])
            if how != EXACT and not key[-1]:
                continue
            candidates = by_key.get(key)
            if candidates:
                i = candidates.pop(0)
                matches[j] = (i, how)
                free_findings.discard(j)
                free_entries.discard(i)

    known = _known_rules()
    scope = _Scope(result)
    fixed, stale, out_of_scope = [], [], []
    for i in sorted(free_entries, key=lambda i: entries[i].sort_key()):
        entry = entries[i]
        if known is not None and entry.rule not in known:
            stale.append(entry)
            continue
        verdict = scope.verdict(entry)
        (fixed if verdict == "fixed" else out_of_scope).append(entry)
    stale.extend(entries[i] for i, how in matches.values() if how != EXACT)
    stale.sort(key=BaselineEntry.sort_key)
    return BaselineDiff(
        new=[findings[j] for j in sorted(free_findings)],
        baselined=[findings[j] for j in sorted(matches)],
        fixed=fixed,
        stale=stale,
        out_of_scope=out_of_scope,
        matches=[Match(findings[j], entries[i], how) for j, (i, how) in sorted(matches.items())],
        baseline_path=baseline.path,
    )


def filtered(result: AuditResult, diff: BaselineDiff) -> AuditResult:
    """`result` with only the new findings: what the reports show and the exit code counts when a
    baseline is in use."""
    import dataclasses

    return dataclasses.replace(result, findings=tuple(diff.new))


class _Scope:
    """Whether this run judged an entry: its rule ran and its file was audited (or is gone)."""

    def __init__(self, result: AuditResult):
        self.root = Path(result.root)
        self.rules = set(result.rules)
        self.status = {f.path: f.status for f in result.files}

    def verdict(self, entry: BaselineEntry) -> str:
        if entry.rule not in self.rules:
            return "out_of_scope"
        if entry.path.startswith("<"):  # a project-level finding (`<project>`)
            return "fixed"
        status = self.status.get(entry.path)
        if status is Status.OK:
            return "fixed"
        if status is None and not os.path.lexists(self.root / entry.path):
            return "fixed"  # the file is gone
        return "out_of_scope"


def _known_rules() -> set[str] | None:
    try:
        from .audit import registry
    except ImportError:  # pragma: no cover - the package always has its checks
        return None
    return {c.id for c in registry()}


def _module_of(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(p for p in parts if p)


def _local_symbol(symbol: str, path: str) -> str:
    """The symbol without its module (`app.jobs.Runner.run` in app/jobs.py -> `Runner.run`): what
    stays when the file is renamed or the function moves to another module. Checks name symbols
    from the import root, which may sit below the project root (`src/`, `backend/`), so every
    dotted suffix of the path is tried."""
    module = _module_of(path)
    parts = module.split(".")
    for start in range(len(parts)):
        prefix = ".".join(parts[start:])
        if symbol == prefix:
            return ""
        if symbol.startswith(prefix + "."):
            return symbol[len(prefix) + 1 :]
    return symbol


# -- code keys ----------------------------------------------------------------------------------
_SKIP = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}
_CLOSING = {")", "]", "}"}


class _CodeKeys:
    """A formatting-proof key per finding: the rule and the Python tokens of the finding's span,
    read from the project's files (each tokenized once, lazily)."""

    def __init__(self, root: Path):
        self.root = root
        self._tokens: dict[str, list[tuple[tuple[int, int], tuple[int, int], str]] | None] = {}
        self._lines: dict[str, list[str]] = {}
        self._keys: dict[int, str] = {}

    def key(self, finding: Finding) -> str:
        cached = self._keys.get(id(finding))
        if cached is None:
            cached = self._keys[id(finding)] = self._compute(finding)
        return cached

    def _compute(self, finding: Finding) -> str:
        loc = finding.location
        tokens = self._file_tokens(loc.path)
        if not tokens:
            return ""
        start = (loc.line, self._chars(loc.path, loc.line, loc.column))
        end_line = loc.end_line or loc.line
        end_column = loc.end_column if loc.end_column is not None else 10**9
        end = (end_line, self._chars(loc.path, end_line, end_column))
        if loc.end_line is None:  # a line, not a node: the whole line
            start, end = (loc.line, 0), (loc.line, 10**9)
        words = [text for s, e, text in tokens if s >= start and e <= end]
        words = [w for k, w in enumerate(words) if not (w == "," and _next_closes(words, k))]
        if not words:
            return ""
        payload = "\x1f".join((finding.rule, " ".join(words)))
        return sha256(payload.encode("utf-8")).hexdigest()[:16]

    def _file_tokens(self, relpath: str) -> list[tuple[tuple[int, int], tuple[int, int], str]]:
        if relpath in self._tokens:
            return self._tokens[relpath] or []
        self._tokens[relpath] = None
        if relpath.startswith("<") or ".." in Path(relpath).parts:
            return []
        path = self.root / relpath
        try:
            if path.is_symlink() or not path.is_file():
                return []
            data = path.read_bytes()
        except OSError:
            return []
        try:
            from .project import decode

            text = decode(data, universal_newlines=True)
            raw = tokenize.generate_tokens(io.StringIO(text).readline)
            tokens = [(t.start, t.end, _normal(t)) for t in raw if t.type not in _SKIP]
        except (SyntaxError, UnicodeDecodeError, LookupError, tokenize.TokenError):
            return []
        self._tokens[relpath] = tokens
        self._lines[relpath] = text.split("\n")
        return tokens

    def _chars(self, relpath: str, line: int, column: int) -> int:
        """`ast` columns count UTF-8 bytes, `tokenize` columns characters."""
        lines = self._lines.get(relpath)
        if not lines or not 0 < line <= len(lines) or column >= 10**9:
            return column
        text = lines[line - 1]
        if text.isascii():
            return column
        return len(text.encode("utf-8")[:column].decode("utf-8", "ignore"))


def _next_closes(words: Sequence[str], k: int) -> bool:
    return k + 1 < len(words) and words[k + 1] in _CLOSING


def _normal(token: tokenize.TokenInfo) -> str:
    """A token as a formatter cannot change it: plain string literals by value ('a' == "a")."""
    if token.type == tokenize.STRING:
        try:
            value = ast.literal_eval(token.string)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return token.string
        return repr(value)
    return token.string
