"""The database side of verify: apply a target's schema files, take a catalog snapshot (tables,
row counts, checksums) and plant the injection canary."""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

CANARY_TABLE = "public.gc_verify_canary"
CANARY_ROWS = 5
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


class SchemaError(RuntimeError):
    """A schema file or setup command failed; the message names it."""


def schema_files(target: Path, patterns: list[str]) -> list[Path]:
    """The files the profile names, globs expanded (sorted within one glob), in order."""
    files: list[Path] = []
    for pattern in patterns:
        matches = sorted(Path(p) for p in glob.glob(str(target / pattern)))
        if not matches:
            raise SchemaError(f"schema pattern {pattern!r} matches no file under {target}")
        files.extend(m for m in matches if m not in files)
    return files


def split_statements(script: str) -> list[tuple[int, str]]:
    """The statements of a SQL script with the line each starts on, split on `;` outside
    quotes ('...', E'...', "..."), dollar quotes ($$...$$, $tag$...$tag$) and comments; empty
    statements dropped. Each statement then runs on its own, as psql runs a file, so that
    `CREATE INDEX CONCURRENTLY` and explicit BEGIN/COMMIT blocks work."""
    out: list[tuple[int, str]] = []
    i, n, start = 0, len(script), 0
    while i < n:
        c = script[i]
        if c == "-" and script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and script.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if script.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif script.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c in "'\"":
            escaped = c == "'" and i > 0 and script[i - 1] in "eE"
            i += 1
            while i < n:
                if escaped and script[i] == "\\":
                    i += 2
                    continue
                if script[i] == c:
                    if i + 1 < n and script[i + 1] == c:  # doubled quote
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif c == "$":
            j = i + 1
            while j < n and (script[j].isalnum() or script[j] == "_"):
                j += 1
            if j < n and script[j] == "$" and not script[i + 1 : j][:1].isdigit():
                tag = script[i : j + 1]
                end = script.find(tag, j + 1)
                i = n if end < 0 else end + len(tag)
            else:
                i += 1
        elif c == ";":
            _add(out, script, start, i)
            i += 1
            start = i
        else:
            i += 1
    _add(out, script, start, n)
    return out


def _add(out: list[tuple[int, str]], script: str, start: int, end: int) -> None:
    """Keep `script[start:end]` as a statement, its leading comment lines and blank lines
    dropped (a statement of comments only is no statement)."""
    pos = start
    while pos < end:
        line_end = script.find("\n", pos, end)
        line_end = end if line_end < 0 else line_end
        stripped = script[pos:line_end].strip()
        if stripped and not stripped.startswith("--"):
            break
        pos = line_end + 1
    text = script[pos:end].strip() if pos < end else ""
    if text:
        first = pos + (len(script[pos:end]) - len(script[pos:end].lstrip()))
        out.append((script.count("\n", 0, first) + 1, text))


def apply_sql_files(database_url: str, files: list[Path]) -> list[str]:
    """Apply each file statement by statement on one autocommit connection (explicit
    transactions in the files hold); a failure rolls back an open transaction and names the
    file and line."""
    import psycopg

    applied: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for path in files:
            try:
                script = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SchemaError(f"schema file {path.name} cannot be read: {exc}") from None
            for line, statement in split_statements(script):
                try:
                    conn.execute(statement)  # type: ignore[arg-type]
                except psycopg.Error as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")
                    raise SchemaError(f"schema file {path.name} line {line}: {first}") from None
            applied.append(path.name)
    return applied


@dataclass
class Snapshot:
    tables: dict[str, int] = field(default_factory=dict)  # "schema.table" -> rows
    checksums: dict[str, str] = field(default_factory=dict)  # "schema.table" -> md5

    def differences(self, after: Snapshot, *, counts: bool = True) -> list[str]:
        out: list[str] = []
        for name in sorted(set(self.tables) - set(after.tables)):
            out.append(f"table {name} disappeared")
        for name in sorted(set(after.tables) - set(self.tables)):
            out.append(f"table {name} appeared")
        if counts:
            for name in sorted(set(self.tables) & set(after.tables)):
                if self.tables[name] != after.tables[name]:
                    out.append(f"{name}: {self.tables[name]} -> {after.tables[name]} rows")
        for name in sorted(set(self.checksums) & set(after.checksums)):
            if self.checksums[name] != after.checksums[name]:
                out.append(f"{name}: contents changed (checksum)")
        return out

    def count_changes(self, after: Snapshot) -> list[str]:
        return [
            f"{name} {after.tables[name] - self.tables[name]:+d}"
            for name in sorted(set(self.tables) & set(after.tables))
            if self.tables[name] != after.tables[name]
        ]


def snapshot(
    database_url: str, *, checksum: list[str] | None = None, ignore: list[str] = ()
) -> Snapshot:
    """Every table outside the system schemas with its row count; an md5 over the rows of the
    tables in `checksum` (None: every table)."""
    import psycopg
    from psycopg import sql

    snap = Snapshot()
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_%%' "
            "ORDER BY 1, 2",
            (list(_SYSTEM_SCHEMAS) + list(ignore),),
        ).fetchall()
        for schema, table in rows:
            ident = sql.Identifier(schema, table)
            name = f"{schema}.{table}"
            count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
            snap.tables[name] = int(count[0]) if count else 0
            if checksum is None or name in checksum:
                digest = hashlib.md5(usedforsecurity=False)
                cur = conn.execute(sql.SQL("SELECT t::text FROM {} AS t ORDER BY 1").format(ident))
                for (text,) in cur:
                    digest.update(text.encode("utf-8", "replace"))
                    digest.update(b"\x00")
                snap.checksums[name] = digest.hexdigest()
    return snap


def plant_canary(database_url: str) -> None:
    """A small table the injection payloads aim at: a successful injection deletes, changes or
    drops it."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {CANARY_TABLE} (id int PRIMARY KEY, v text NOT NULL)"
        )
        conn.execute(f"DELETE FROM {CANARY_TABLE}")
        for i in range(1, CANARY_ROWS + 1):
            conn.execute(f"INSERT INTO {CANARY_TABLE} VALUES (%s, %s)", (i, f"canary-{i}"))


def drop_canary(database_url: str) -> None:
    """Remove the canary (a --disposable database stays, the canary does not)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {CANARY_TABLE}")


def scalar(database_url: str, query: str, params: dict[str, object] | None = None) -> object:
    """The first column of the first row of a profile query (None when no row)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(query, params or {}).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None
