"""`sql sites`: every dynamic SQL site reaching a sink, safe ones included, with slots, origins
and verdicts; the same records in the audit's JSON output (`sql_sites`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gathering_consolidate import audit
from gathering_consolidate.cli import app
from gathering_consolidate.report import json as json_report
from gathering_consolidate.sql.allowlist import approve
from gathering_consolidate.sql.listing import list_sites

REPO = Path(__file__).resolve().parents[2]

REPORTS = """\
SORTABLE = ("created_at", "name")


def runs(db, sort):
    if sort not in SORTABLE:
        raise ValueError(sort)
    return db.execute(f"SELECT * FROM runs ORDER BY {sort} DESC")


def count(db, table):
    return db.execute(f"SELECT count(*) FROM {table}")


def find(db, name):
    return db.execute(f"SELECT * FROM users WHERE name = '{name}'")


def purge(db, schema):
    return db.execute(f"DELETE FROM {schema}.jobs WHERE done")
"""

# (line, function, verdict, allowlisted, [(expr, kind, origin, slot verdict)])
EXPECTED = [
    (7, "app.reports.runs", "safe", False, [("sort", "order_or_limit", "allowlisted", "safe")]),
    (
        11,
        "app.reports.count",
        "needs-review",
        False,
        [("table", "identifier", "parameter", "needs-review")],
    ),
    (15, "app.reports.find", "injectable", False, [("name", "value", "parameter", "injectable")]),
    (
        19,
        "app.reports.purge",
        "needs-review",
        True,
        [("schema", "identifier", "parameter", "needs-review")],
    ),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "reports.py").write_text(REPORTS)
    approve(tmp_path, "app/reports.py:19", reason="schema is a tenant slug", reviewer="alice")
    return tmp_path


def _summary(records: list[dict]) -> list[tuple]:
    return [
        (
            r["line"],
            r["function"],
            r["verdict"],
            r["allowlisted"],
            [(s["expr"], s["kind"], s["origin"], s["verdict"]) for s in r["slots"]],
        )
        for r in records
    ]


def test_list_sites_has_every_site_with_its_verdict(project: Path):
    sites = list_sites(project)
    assert _summary([s.as_dict() for s in sites]) == [
        (line, fn, verdict, allow, slots) for line, fn, verdict, allow, slots in EXPECTED
    ]
    assert {s.path for s in sites} == {"app/reports.py"}
    assert {s.sink for s in sites} == {"db.execute"}
    approved = sites[-1]
    assert (approved.reviewer, approved.reason) == ("alice", "schema is a tenant slug")
    assert approved.label == "needs-review (allowlisted)"


def test_cli_json_lists_all_four(project: Path):
    result = CliRunner().invoke(app, ["sql", "sites", str(project), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema"] == "gathering-consolidate/sql-sites"
    assert _summary(data["sql_sites"]) == EXPECTED


def test_cli_text_lists_all_four_and_exits_0(project: Path, tmp_path: Path):
    result = CliRunner().invoke(app, ["sql", "sites", str(project)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "app/reports.py:7: safe  SELECT in app.reports.runs -> db.execute" in out
    assert "app/reports.py:11: needs-review  SELECT in app.reports.count" in out
    assert "app/reports.py:15: injectable  SELECT in app.reports.find" in out
    assert "app/reports.py:19: needs-review (allowlisted)  DELETE in app.reports.purge" in out
    assert "{table}: identifier, needs-review; from parameter (parameter `table` of count())" in out
    assert "{name}: value (quoted), injectable" in out
    assert "approved by alice: schema is a tenant slug" in out
    assert out.rstrip().endswith(
        "4 dynamic SQL sites: 1 safe, 2 needs-review, 1 injectable, 1 allowlisted"
    )
    report = tmp_path / "sites.txt"
    written = CliRunner().invoke(app, ["sql", "sites", str(project), "-o", str(report)])
    assert written.exit_code == 0 and report.read_text() == out


def test_cli_missing_path_is_an_error(tmp_path: Path):
    result = CliRunner().invoke(app, ["sql", "sites", str(tmp_path / "nope")])
    assert result.exit_code == 2


@pytest.mark.parametrize("cache", [False, True])
def test_audit_json_has_the_same_sql_sites(project: Path, cache: bool):
    listed = json.loads(json.dumps([s.as_dict() for s in list_sites(project)]))
    for _ in range(2 if cache else 1):  # the second run reads the cached project results
        result = audit(project, cache=cache)
        data = json.loads(json_report.render(result))
        assert data["sql_sites"] == listed
    # the findings are the doubtful sites only, as before
    assert sorted((f["rule"], f["line"]) for f in data["findings"] if f["rule"][:3] == "SQL") == [
        ("SQL001", 15),
        ("SQL002", 11),
        ("SQL003", 19),
    ]


def test_audit_json_sql_sites_empty_without_the_family(project: Path):
    data = json.loads(json_report.render(audit(project, select=["EXC"], cache=False)))
    assert data["sql_sites"] == []


def test_a_dict_value_is_not_the_origin_of_a_column_name(tmp_path: Path):
    """`for column, value in sorted(changes.items())`: the column comes from the dict's keys
    (constants), not from its values (parameters)."""
    (tmp_path / "app.py").write_text(
        "def update(db, row_id, name, role):\n"
        '    changes = {"name": name, "role": role}\n'
        '    sets = [f"{column} = %s" for column, value in sorted(changes.items())]\n'
        "    db.execute(f\"UPDATE t SET {', '.join(sets)} WHERE id = %s\", (row_id,))\n"
        "\n"
        "\n"
        "def update_loop(db, row_id, name):\n"
        '    changes = {"name": name}\n'
        "    for column, value in list(changes.items()):\n"
        '        db.execute(f"UPDATE t SET {column} = %s WHERE id = %s", (value, row_id))\n'
    )
    sites = list_sites(tmp_path)
    assert [(s.line, s.verdict) for s in sites] == [(4, "safe"), (10, "safe")]
    columns = [slot for s in sites for slot in s.slots if slot.expr == "column"]
    assert columns and all(slot.origin == "constant" for slot in columns)
    assert not [f for f in audit(tmp_path, select=["SQL"], cache=False).findings]


BUILT_ELSEWHERE = """\
from sqlalchemy import text
from sqlalchemy.schema import DDL

SCHEMA = "core"


class Construct:
    def __init__(self, column):
        self.column = column


class DropFunction(Construct):
    def __str__(self):
        return "DROP FUNCTION IF EXISTS %s.%s()" % (self.schema_name, self.function_name)


class DropTrigger(Construct):
    def __str__(self):
        return "DROP TRIGGER IF EXISTS %s ON %s" % (self.trigger_name, self.table_name)


def drop_all(conn, params):
    for construct in [DropTrigger, DropFunction]:
        sql = construct(**params)
        conn.exec_driver_sql(str(sql), sql.params)


def listener(column):
    return DDL(str(DropFunction(column)))


def use_schema(connection):
    connection.execute(text(f'set search_path to "{SCHEMA}"'))


def not_sql(conn, params):
    conn.exec_driver_sql(str(params))
"""


def test_sites_built_by_str_of_a_class_and_set_statements_are_listed(tmp_path: Path) -> None:
    """SQL text built in a class's `__str__` (`str(obj)`, one class or a loop over a literal list
    of classes, also handed to `DDL`) and a `SET` statement of a module constant are sites: the
    first need review (their slots come from `self`), the constant one is safe."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (tmp_path / "ddl.py").write_text(BUILT_ELSEWHERE)
    sites = {(s.function.rsplit(".", 1)[-1], s.statement, s.verdict) for s in list_sites(tmp_path)}
    assert sites == {
        ("drop_all", "DROP", "needs-review"),
        ("listener", "DROP", "needs-review"),
        ("use_schema", "SET", "safe"),
    }


def test_a_string_constant_imported_from_another_module_is_constant(tmp_path: Path) -> None:
    """`from app.cols import COLS` (or `cols.COLS`, or through a package re-export) is the
    module constant it names: safe. A name bound twice there, or not to a literal, stays unknown."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "__init__.py").write_text("from .cols import COLS as EXPORTED\n")
    (app_dir / "cols.py").write_text(
        'COLS = "id, name"\nTABLE = "agents"\nTABLE = TABLE.upper()\n'
        "import os\nDYNAMIC = os.environ['X']\n"
    )
    (app_dir / "q.py").write_text(
        "from app import EXPORTED\n"
        "from app.cols import COLS, DYNAMIC, TABLE\n"
        "from . import cols\n\n\n"
        "def one(db, i):\n"
        '    return db.execute(f"SELECT {COLS} FROM agents WHERE id = %s", (i,))\n\n\n'
        "def two(db, i):\n"
        '    return db.execute(f"SELECT {cols.COLS} FROM agents WHERE id = %s", (i,))\n\n\n'
        "def three(db, i):\n"
        '    return db.execute(f"SELECT {EXPORTED} FROM agents WHERE id = %s", (i,))\n\n\n'
        "def four(db, i):\n"
        '    return db.execute(f"SELECT id FROM {TABLE} WHERE id = %s", (i,))\n\n\n'
        "def five(db, i):\n"
        '    return db.execute(f"SELECT id FROM {DYNAMIC} WHERE id = %s", (i,))\n'
    )
    verdicts = {s.function.rsplit(".", 1)[-1]: s.verdict for s in list_sites(tmp_path)}
    assert verdicts == {
        "one": "safe",
        "two": "safe",
        "three": "safe",
        "four": "needs-review",
        "five": "needs-review",
    }


def test_a_module_constant_holding_sql_text_is_read_as_sql(tmp_path: Path) -> None:
    """`BASE = "SELECT ... FROM agents"` is inlined (the statement parses, the request value
    after it is a quoted value, injectable); a constant of names (`COLS`) is a safe slot."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (tmp_path / "api.py").write_text(
        "from fastapi import APIRouter\n\nrouter = APIRouter()\n"
        'BASE = "SELECT id, name FROM agents"\nCOLS = "id, name"\n\n\n'
        '@router.get("/a")\ndef one(q: str, db):\n'
        "    return db.execute(f\"{BASE} WHERE name = '{q}'\")\n\n\n"
        '@router.get("/b")\ndef two(q: str, db):\n'
        "    return db.execute(f\"SELECT {COLS} FROM agents WHERE name = '{q}'\")\n"
    )
    sites = {s.function.rsplit(".", 1)[-1]: s for s in list_sites(tmp_path)}
    assert {n: (s.statement, s.verdict) for n, s in sites.items()} == {
        "one": ("SELECT", "injectable"),
        "two": ("SELECT", "injectable"),
    }
    assert [(slot.expr, slot.kind) for slot in sites["one"].slots] == [("q", "value")]
    assert [(slot.expr, slot.verdict) for slot in sites["two"].slots] == [
        ("COLS", "safe"),
        ("q", "injectable"),
    ]
