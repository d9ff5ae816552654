"""The reviewed-SQL allowlist: `rules/sql_allowlist.toml` in the target.

```toml
[[site]]
path = "app/db/reporting.py"            # project-relative
function = "app.db.reporting.runs"      # the enclosing function's qualified name
fingerprint = "3f2a9c0d1e7b6a55"       # of path + function + the normalised SQL shape
sql = "SELECT ... ORDER BY {order_by}"  # for the reader; not matched
reason = "order_by is checked against SORTABLE by every caller"
reviewer = "alice"
approved = "2026-11-28"
```

An entry approves a site while its path, function and fingerprint all match: it survives the site
moving within the file, but not a change of the SQL or of what is interpolated into it (the shape
includes each interpolated expression). `reason` and `reviewer` are required; an entry without them
approves nothing. `approve()` appends an entry, keeping the file's comments and layout (tomlkit).
"""

from __future__ import annotations

import datetime as _dt
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..safeio import write_atomic

DEFAULT_PATH = "rules/sql_allowlist.toml"

_HEADER = """\
# Reviewed dynamic SQL sites: each entry approves one site while its SQL shape is unchanged.
# Add entries with `gathering-consolidate sql approve PATH:LINE --reason ... --reviewer ...`.
"""


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    function: str
    fingerprint: str
    reason: str
    reviewer: str
    sql: str = ""
    approved: str = ""
    line: int = 0  # where the entry starts in the file


@dataclass(frozen=True, slots=True)
class Allowlist:
    entries: tuple[Entry, ...]
    problems: tuple[tuple[int, str], ...] = ()  # (line, message) for invalid entries / file

    def match(self, path: str, function: str, fingerprint: str) -> Entry | None:
        for entry in self.entries:
            if (entry.path, entry.function, entry.fingerprint) == (path, function, fingerprint):
                return entry
        return None


def read(path: Path) -> Allowlist:
    """Load an allowlist; a missing file is an empty one. Invalid entries are left out and
    reported in `problems`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Allowlist(())
    except (OSError, UnicodeDecodeError) as exc:
        return Allowlist((), ((1, f"cannot read the allowlist: {exc}"),))
    return parse(text)


def parse(text: str) -> Allowlist:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Allowlist((), ((1, f"invalid TOML: {exc}"),))
    starts = [i for i, line in enumerate(text.splitlines(), 1) if _ENTRY.match(line)]
    unknown = set(document) - {"site"}
    problems: list[tuple[int, str]] = []
    if unknown:
        problems.append((1, f"unknown key(s) {', '.join(sorted(unknown))} (entries are [[site]])"))
    raw = document.get("site", [])
    if not isinstance(raw, list):
        return Allowlist((), ((1, "`site` must be an array of tables ([[site]])"),))
    entries: list[Entry] = []
    for index, item in enumerate(raw):
        line = starts[index] if index < len(starts) else 1
        if not isinstance(item, dict):
            problems.append((line, "an entry must be a table"))
            continue
        missing = [k for k in ("path", "function", "fingerprint") if not item.get(k)]
        empty = [k for k in ("reason", "reviewer") if not str(item.get(k, "")).strip()]
        if missing or empty:
            problems.append((line, f"entry approves nothing: missing {', '.join(missing + empty)}"))
            continue
        entries.append(
            Entry(
                path=str(item["path"]),
                function=str(item["function"]),
                fingerprint=str(item["fingerprint"]),
                reason=str(item["reason"]).strip(),
                reviewer=str(item["reviewer"]).strip(),
                sql=str(item.get("sql", "")),
                approved=str(item.get("approved", "")),
                line=line,
            )
        )
    return Allowlist(tuple(entries), tuple(problems))


_ENTRY = re.compile(r"^\s*\[\[\s*site\s*\]\]")


class ApproveError(Exception):
    """The site to approve was not found, is ambiguous, or the entry is incomplete."""


def add_entry(
    path: Path,
    *,
    site_path: str,
    function: str,
    fingerprint: str,
    sql: str,
    reason: str,
    reviewer: str,
    today: _dt.date | None = None,
    root: Path | None = None,
) -> Entry:
    """Append an entry to the allowlist file (created if missing), keeping what is there.
    Written through `safeio.write_atomic`: with `root` (the project), no folder between it and
    the file may be a symlink; the file itself never may. Raises `ApproveError` when it cannot
    be written."""
    import tomlkit

    if not reason.strip():
        raise ApproveError("a reason is required (--reason)")
    if not reviewer.strip():
        raise ApproveError("a reviewer is required (--reviewer)")
    text = path.read_text(encoding="utf-8") if path.exists() else _HEADER
    current = parse(text)
    existing = current.match(site_path, function, fingerprint)
    if existing is not None:
        return existing
    document = tomlkit.parse(text)
    sites = document.get("site")
    if sites is None:
        sites = tomlkit.aot()
        document.append("site", sites)
    table = tomlkit.table()
    table.add("path", site_path)
    table.add("function", function)
    table.add("fingerprint", fingerprint)
    table.add("sql", sql)
    table.add("reason", reason.strip())
    table.add("reviewer", reviewer.strip())
    table.add("approved", (today or _dt.date.today()).isoformat())
    sites.append(table)
    try:
        write_atomic(path, tomlkit.dumps(document), root=root, newline="")
    except OSError as exc:
        raise ApproveError(f"cannot write the allowlist {path}: {exc.strerror or exc}") from None
    return parse(path.read_text(encoding="utf-8")).match(site_path, function, fingerprint) or Entry(
        site_path, function, fingerprint, reason, reviewer, sql
    )


@dataclass(frozen=True, slots=True)
class SiteRef:
    """What `approve` needs of an audited site."""

    path: str
    line: int
    end_line: int
    function: str
    fingerprint: str
    shape: str
    verdict: str


def find_site(sites: Sequence[SiteRef], spec: str) -> SiteRef:
    """`path:line` (any line of the sink call) or a fingerprint (or a unique prefix of one)."""
    match = re.fullmatch(r"(?P<path>.+):(?P<line>\d+)", spec)
    if match:
        wanted = match["path"].replace("\\", "/").removeprefix("./")
        line = int(match["line"])
        found = [
            s
            for s in sites
            if (s.path == wanted or s.path.endswith("/" + wanted) or wanted.endswith("/" + s.path))
            and s.line <= line <= s.end_line
        ]
    else:
        found = [s for s in sites if s.fingerprint.startswith(spec)]
    unique = {(s.path, s.function, s.fingerprint): s for s in found}
    if not unique:
        raise ApproveError(f"no dynamic SQL site at {spec} (see `audit --select SQL`)")
    if len(unique) > 1:
        listed = ", ".join(f"{s.path}:{s.line} {s.fingerprint}" for s in unique.values())
        raise ApproveError(f"{spec} is ambiguous: {listed}")
    return next(iter(unique.values()))


@dataclass(frozen=True, slots=True)
class Approval:
    entry: Entry
    site: SiteRef
    allowlist: Path
    added: bool  # False when the site was already approved


def approve(
    target: str | Path,
    site: str,
    *,
    reason: str,
    reviewer: str,
    allowlist: str | Path | None = None,
) -> Approval:
    """Approve one dynamic SQL site of the project at `target`: `site` is `path:line` (a line of
    the execute-like call, path relative to the project root or the working directory) or a site
    fingerprint. Appends the entry to the allowlist (option `allowlist` of the SQL family, default
    `rules/sql_allowlist.toml`) and returns it. Raises `ApproveError` when the site is unknown or
    ambiguous, or the reason/reviewer is empty."""
    from ..audit import known_options, registry
    from ..config import load_config
    from ..project import audit

    if not reason.strip():
        raise ApproveError("a reason is required (--reason)")
    if not reviewer.strip():
        raise ApproveError("a reviewer is required (--reviewer)")
    target = Path(target)
    config = load_config(
        target, known_rules=[c.id for c in registry()], known_options=known_options()
    )
    root = config.root
    relative = (
        str(allowlist) if allowlist else config.options_for("SQL001").get("allowlist", DEFAULT_PATH)
    )
    allowlist_path = _inside(root, relative)
    result = audit(root, select=("SQL001", "SQL002", "SQL003"), cache=False)
    refs = [
        SiteRef(
            path=f.location.path,
            line=f.location.line,
            end_line=f.location.end_line or f.location.line,
            function=f.symbol,
            fingerprint=str(f.evidence.get("site", "")),
            shape=str(f.evidence.get("sql", "")),
            verdict=str(f.evidence.get("verdict", "")),
        )
        for f in (*result.findings, *(s.finding for s in result.suppressed))
        if f.rule in ("SQL001", "SQL002", "SQL003")
    ]
    found = find_site(refs, _relative_spec(site, root))
    before = read(allowlist_path).match(found.path, found.function, found.fingerprint)
    entry = add_entry(
        allowlist_path,
        site_path=found.path,
        function=found.function,
        fingerprint=found.fingerprint,
        sql=found.shape,
        reason=reason,
        reviewer=reviewer,
        root=root,
    )
    return Approval(entry, found, allowlist_path, before is None)


def _inside(root: Path, value: str) -> Path:
    """The allowlist path, which must be a file of the project: the audit only reads it there,
    and the tree is untrusted, so `..`, an absolute path elsewhere, a symlinked folder pointing
    out or a symlink as the file are refused rather than written through."""
    path = Path(value) if Path(value).is_absolute() else root / value
    real_root = root.resolve()
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise ApproveError(f"cannot resolve the allowlist path {value!r}: {exc}") from None
    if not resolved.is_relative_to(real_root) or resolved == real_root:
        raise ApproveError(
            f"the allowlist {value!r} resolves to {resolved}, outside the project ({real_root});"
            " it must be a file inside the project, not reached through `..` or a symlink"
        )
    if path.is_symlink():
        raise ApproveError(f"the allowlist {path} is a symbolic link; refusing to write through it")
    return path


def _relative_spec(spec: str, root: Path) -> str:
    match = re.fullmatch(r"(?P<path>.+):(?P<line>\d+)", spec)
    if not match:
        return spec
    path = Path(match["path"])
    if path.exists():
        try:
            return f"{path.resolve().relative_to(root.resolve()).as_posix()}:{match['line']}"
        except ValueError:
            pass
    return spec
