"""Where stored pipeline definitions and schedules come from: JSON or YAML files, or the rows of a
PostgreSQL table; each is validated and the outcome returned as plain data.

- `validate_files(paths)`: each file holds one pipeline (an object with `nodes` and optional
  `edges`), a list of them, or `{"pipelines": [...]}`; `-` reads standard input.
- `validate_table(url)`: the rows of `circle.pipelines` (jsonb `nodes`/`edges`) by default; the
  table and its columns can be named. Read in a read-only transaction, streamed in batches.
- `validate_cron_table(url)`: the `cron_expression` of `orchestration.scheduled_actions`.

Input that cannot be read as pipelines (a missing file, invalid JSON or YAML, a file that is not a
pipeline, an unknown table or column, an unreachable server) raises `SourceError`, one line that
names the file and position or the table; problems inside a pipeline are results, not errors.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from .cron import CronProblem, validate_cron
from .node_types import NodeType, json_type_of
from .validator import PipelineReport, show, validate_pipeline

_R = TypeVar("_R")

#: Files larger than this are refused rather than read into memory.
MAX_FILE_BYTES = 64 * 1024 * 1024
_BATCH = 500
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


class SourceError(ValueError):
    """Input that cannot be read as pipelines or schedules (one line, no password)."""


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """One stored pipeline: where it came from (`location`: file and index, or table), its id and
    name when known, and the validator's report."""

    location: str
    id: Any
    name: str | None
    report: PipelineReport

    @property
    def ok(self) -> bool:
        return self.report.ok

    @property
    def label(self) -> str:
        parts = []
        if self.id is not None:
            plain = isinstance(self.id, int) or (
                isinstance(self.id, str) and show(self.id) == self.id
            )
            parts.append(f"pipeline {self.id if plain else repr(self.id)}")
        if self.name:
            parts.append(repr(self.name))
        return " ".join(parts) if parts else self.location

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "id": self.id,
            "name": self.name,
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.report.problems],
        }


@dataclass(frozen=True, slots=True)
class _Batch(Generic[_R]):
    """Every result of a source (files, the command line or a table), valid ones included;
    `to_dict` lists them under `ITEMS`."""

    ITEMS: ClassVar[str] = "results"
    source: str
    results: tuple[_R, ...]

    @property
    def invalid(self) -> list[_R]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.invalid

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "checked": len(self.results),
            "invalid": len(self.invalid),
            "ok": self.ok,
            self.ITEMS: [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True, slots=True)
class PipelineBatch(_Batch["PipelineResult"]):
    """Every pipeline of a source (files or a table), valid ones included."""

    ITEMS: ClassVar[str] = "pipelines"


@dataclass(frozen=True, slots=True)
class CronResult:
    """One cron expression: given on the command line or read from a row (`id`, `name`)."""

    expression: str | None
    problems: tuple[CronProblem, ...]
    id: Any = None
    name: str | None = None
    next_runs: tuple[datetime, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def label(self) -> str:
        parts = []
        if self.id is not None:
            plain = isinstance(self.id, int) or (
                isinstance(self.id, str) and show(self.id) == self.id
            )
            parts.append(f"action {self.id if plain else repr(self.id)}")
        if self.name:
            parts.append(repr(self.name))
        return " ".join(parts) if parts else repr(self.expression)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "expression": self.expression,
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
            "next_runs": [d.isoformat() for d in self.next_runs],
        }


@dataclass(frozen=True, slots=True)
class CronBatch(_Batch["CronResult"]):
    """Every cron expression of a source, valid ones included."""

    ITEMS: ClassVar[str] = "expressions"


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """What `validate_pipeline` is given for every pipeline of a source."""

    node_types: Mapping[str, NodeType] | None = None
    max_nodes: int = 50
    allow_loops: bool = False
    max_visits: int | None = None

    def validate(self, nodes: Any, edges: Any) -> PipelineReport:
        return validate_pipeline(
            nodes,
            edges,
            node_types=self.node_types,
            max_nodes=self.max_nodes,
            allow_loops=self.allow_loops,
            max_visits=self.max_visits,
        )


# -- files -----------------------------------------------------------------------------------
def read_structured(path: str | Path) -> Any:
    """The decoded content of a JSON or YAML file (`-`: standard input). `.json` files are read as
    JSON, anything else as YAML (a superset of JSON). Raises `SourceError` with the position of a
    syntax error."""
    name = str(path)
    try:
        if name == "-":
            raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
            name = "<stdin>"
        else:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SourceError(f"{name}: no such file") from None
    except OSError as exc:
        raise SourceError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SourceError(f"{name}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    if name.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceError(
                f"{name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except RecursionError:
            raise SourceError(f"{name}: invalid JSON: nested too deeply") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "syntax error"
        raise SourceError(f"{name}: invalid YAML{where}: {what}") from None
    except yaml.YAMLError as exc:
        raise SourceError(f"{name}: invalid YAML: {exc}") from None
    except RecursionError:
        raise SourceError(f"{name}: invalid YAML: nested too deeply") from None


def _a(value: Any) -> str:
    kind = json_type_of(value)
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def pipelines_in(data: Any, name: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(location, definition) for each pipeline of a decoded file; `SourceError` for a wrong
    shape."""
    if isinstance(data, Mapping) and "pipelines" in data and "nodes" not in data:
        data = data["pipelines"]
        where = f"{name}: 'pipelines'"
        if not isinstance(data, list):
            raise SourceError(f"{where} must be a list of pipelines, got {_a(data)}")
    if isinstance(data, Mapping):
        entries = [(name, data)]
    elif isinstance(data, list):
        entries = [(f"{name}[{i}]", entry) for i, entry in enumerate(data)]
    else:
        raise SourceError(
            f"{name}: expected a pipeline (an object with 'nodes' and 'edges') or a list of"
            f" them, got {'nothing' if data is None else _a(data)}"
        )
    for location, entry in entries:
        if not isinstance(entry, Mapping):
            raise SourceError(f"{location}: expected a pipeline object, got {_a(entry)}")
        if "nodes" not in entry:
            keys = ", ".join(map(str, list(entry)[:8])) or "none"
            raise SourceError(f"{location}: a pipeline needs 'nodes' (keys found: {keys})")
        for key in ("nodes", "edges"):
            value = entry.get(key)
            if value is not None and not isinstance(value, list):
                raise SourceError(f"{location}: '{key}' must be a list, got {_a(value)}")
        yield location, entry


def _name_of(entry: Mapping[str, Any]) -> str | None:
    name = entry.get("name")
    return str(name) if name is not None else None


PIPELINE_SUFFIXES = (".json", ".yaml", ".yml")


def expand_paths(paths: Sequence[str | Path]) -> list[str]:
    """Files as given; a folder stands for its `.json`, `.yaml` and `.yml` files, at any depth
    (sorted; symbolic links to folders are not followed)."""
    import os

    result: list[str] = []
    for path in paths:
        if str(path) != "-" and Path(path).is_dir():
            found = []
            for folder, subfolders, files in os.walk(path):
                subfolders.sort()
                found += [
                    os.path.join(folder, f)
                    for f in sorted(files)
                    if f.lower().endswith(PIPELINE_SUFFIXES)
                ]
            if not found:
                raise SourceError(f"{path}: no .json, .yaml or .yml file in this folder")
            result += found
        else:
            result.append(str(path))
    return result


def validate_files(
    paths: Sequence[str | Path], options: ValidationOptions | None = None
) -> PipelineBatch:
    """Validate every pipeline of every file (folders: their JSON and YAML files); all files are
    read before any is validated, so a bad file is reported before any output."""
    options = options or ValidationOptions()
    loaded = [(p, read_structured(p)) for p in expand_paths(paths)]
    results = []
    for name, data in loaded:
        for location, entry in pipelines_in(data, "<stdin>" if name == "-" else name):
            report = options.validate(entry.get("nodes"), entry.get("edges"))
            results.append(PipelineResult(location, entry.get("id"), _name_of(entry), report))
    return PipelineBatch(", ".join(paths_or_stdin(paths)), tuple(results))


def paths_or_stdin(paths: Iterable[str | Path]) -> list[str]:
    return ["<stdin>" if str(p) == "-" else str(p) for p in paths]


# -- tables ----------------------------------------------------------------------------------
def _table_identifier(table: str):
    from psycopg import sql

    parts = table.split(".")
    if len(parts) > 2 or not all(_IDENT.fullmatch(p) for p in parts):
        raise SourceError(f"table {table!r}: expected NAME or SCHEMA.NAME (letters, digits, _)")
    return sql.Identifier(*parts)


def _column(name: str, what: str):
    from psycopg import sql

    if not _IDENT.fullmatch(name):
        raise SourceError(f"{what} column {name!r}: expected a plain column name")
    return sql.Identifier(name)


def _rows(
    url: str, table: str, columns: Sequence[str | None], what: Sequence[str], where: Any = None
) -> Iterator[tuple[Any, ...]]:
    """Stream the rows of `table` (columns None are read as NULL), in a read-only transaction."""
    import psycopg
    from psycopg import sql

    from ..database import DatabaseError, mask_url, postgres_server

    table_id = _table_identifier(table)
    selected = [
        _column(c, w) if c is not None else sql.SQL("NULL")
        for c, w in zip(columns, what, strict=True)
    ]
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(selected), table_id)
    if where:
        query = sql.SQL("{} WHERE {}").format(query, where)
    order = next((c for c in columns if c is not None), None)
    if order is not None:
        query = sql.SQL("{} ORDER BY {}").format(query, sql.Identifier(order))
    try:
        with postgres_server(url) as server:
            masked = server.masked()
            with psycopg.connect(server.url, connect_timeout=10) as conn:
                conn.read_only = True
                quoted = table_id.as_string(conn)
                exists = conn.execute("SELECT to_regclass(%s)", (quoted,)).fetchone()
                if exists is None or exists[0] is None:
                    raise SourceError(f"table {table} does not exist in {masked}")
                with conn.cursor(name="gc_pipelines_read") as cursor:
                    cursor.itersize = _BATCH
                    cursor.execute(query)
                    yield from cursor
    except DatabaseError as exc:
        raise SourceError(str(exc)) from None
    except psycopg.errors.UndefinedColumn as exc:
        detail = str(exc).strip().splitlines()[0]
        raise SourceError(f"table {table}: {detail}") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        detail = str(exc).strip().splitlines()[0]
        raise SourceError(f"table {table}: {detail}") from None
    except psycopg.Error as exc:
        detail = mask_url(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        raise SourceError(f"reading {table} failed: {detail}") from None


def _decode_jsonish(value: Any) -> Any:
    """jsonb arrives decoded; a json/text column holding JSON is decoded here."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def validate_table(
    url: str,
    *,
    table: str = "circle.pipelines",
    id_column: str = "id",
    name_column: str | None = "name",
    nodes_column: str = "nodes",
    edges_column: str = "edges",
    options: ValidationOptions | None = None,
) -> PipelineBatch:
    """Validate the pipeline of every row of `table` (ordered by id)."""
    from ..database import mask_url

    options = options or ValidationOptions()
    results = []
    columns = (id_column, name_column, nodes_column, edges_column)
    what = ("id", "name", "nodes", "edges")
    for row_id, name, nodes, edges in _rows(url, table, columns, what, None):
        report = options.validate(_decode_jsonish(nodes), _decode_jsonish(edges))
        location = f"{table} {id_column}={row_id}"
        results.append(
            PipelineResult(location, row_id, None if name is None else str(name), report)
        )
    return PipelineBatch(f"{table} at {mask_url(url)}", tuple(results))


# -- cron ------------------------------------------------------------------------------------
def _next_runs(expr: str, now: datetime, count: int) -> tuple[datetime, ...]:
    from croniter import croniter

    from .cron import ALIASES

    text = ALIASES.get(expr.strip().lower(), expr.strip())
    iterator = croniter(text, now, ret_type=datetime)
    return tuple(iterator.get_next() for _ in range(count))


def check_cron(
    expressions: Sequence[str],
    *,
    min_interval: timedelta = timedelta(minutes=1),
    now: datetime | None = None,
    time_budget_s: float = 0.5,
    show_next: int = 0,
) -> CronBatch:
    """Validate expressions given directly; `show_next` valid ones get their next runs."""
    from datetime import UTC

    now = now or datetime.now(UTC)
    results = []
    for expr in expressions:
        problems = validate_cron(
            expr, min_interval=min_interval, now=now, time_budget_s=time_budget_s
        )
        runs = _next_runs(expr, now, show_next) if show_next and not problems else ()
        results.append(CronResult(expr, tuple(problems), next_runs=runs))
    return CronBatch("command line", tuple(results))


def validate_cron_table(
    url: str,
    *,
    table: str = "orchestration.scheduled_actions",
    id_column: str = "id",
    name_column: str | None = "name",
    cron_column: str = "cron_expression",
    min_interval: timedelta = timedelta(minutes=1),
    now: datetime | None = None,
    time_budget_s: float = 0.5,
) -> CronBatch:
    """Validate the cron expression of every row of `table` that has one (NULL is skipped: an
    interval or one-off schedule)."""
    from datetime import UTC

    from psycopg import sql

    from ..database import mask_url

    now = now or datetime.now(UTC)
    columns = (id_column, name_column, cron_column)
    where = sql.SQL("{} IS NOT NULL").format(_column(cron_column, "cron"))
    results = []
    for row_id, name, expr in _rows(url, table, columns, ("id", "name", "cron"), where):
        if not isinstance(expr, str):
            problems: list[CronProblem] = [
                CronProblem("expression", f"expected text, got {type(expr).__name__}")
            ]
        else:
            problems = validate_cron(
                expr, min_interval=min_interval, now=now, time_budget_s=time_budget_s
            )
        results.append(
            CronResult(
                expr if isinstance(expr, str) else repr(expr),
                tuple(problems),
                row_id,
                None if name is None else str(name),
            )
        )
    return CronBatch(f"{table} at {mask_url(url)}", tuple(results))
