"""Scenarios of the SQL family beyond its examples: evidence, acknowledgements, the gate."""

from __future__ import annotations

import json

from gathering_consolidate.audit.sql import summarize
from gathering_consolidate.report.json import audit_to_dict
from tests.audit._support import audit_files, found

SEARCH = """
    from fastapi import APIRouter
    router = APIRouter()

    @router.get("/agents/search")
    def search(q: str, db=None):
        return db.execute(
            f"SELECT id FROM agents WHERE name ILIKE '%{q}%' ORDER BY name"  # noqa: S608
        )
"""


def test_evidence_carries_statement_slots_origins_and_fix():
    (finding,) = found(audit_files({"app/api.py": SEARCH}, ["SQL"]), "SQL001")
    evidence = finding.evidence
    assert evidence["statement"] == "SELECT"
    assert evidence["verdict"] == "injectable"
    assert evidence["slots"] == [
        {
            "expr": "q",
            "kind": "value",
            "quoted": True,
            "origin": "request",
            "detail": "route parameter `q` of search()",
            "verdict": "injectable",
        }
    ]
    assert evidence["fix"] == "Bind the value as a query parameter"
    assert finding.fix is not None and finding.fix.codemod == "parameterise-sql"
    json.dumps(evidence)  # plain data


def test_noqa_and_nosec_are_acknowledgements_not_suppressions():
    result = audit_files({"app/api.py": SEARCH}, ["SQL"])
    (finding,) = found(result, "SQL001")
    assert finding.evidence["acknowledged"] == "# noqa: S608"
    assert "is not honoured" in finding.message
    assert result.exit_code == 1


def test_unrelated_noqa_is_not_an_acknowledgement():
    code = SEARCH.replace("# noqa: S608", "# noqa: E501")
    (finding,) = found(audit_files({"app/api.py": code}, ["SQL"]), "SQL001")
    assert finding.evidence["acknowledged"] is None


def test_consolidate_ignore_suppresses_with_a_reason():
    code = SEARCH.replace("# noqa: S608", "").replace(
        "return db.execute(", "return db.execute(  # consolidate: ignore[SQL001] demo only"
    )
    result = audit_files({"app/api.py": code}, ["SQL"])
    assert found(result, "SQL001") == []
    assert [s.finding.rule for s in result.suppressed] == ["SQL001"]


def test_summary_table_and_json():
    result = audit_files(
        {
            "app/api.py": SEARCH,
            "app/db.py": """
                def rows(db, table):
                    return db.execute(f"SELECT * FROM {table}")
            """,
        },
        ["SQL"],
    )
    (table,) = summarize(result.findings)
    rows = {row[0]: row for row in table.rows}
    assert table.columns[:2] == ("verdict", "sites")
    assert rows["injectable"][1] == 1 and rows["needs-review"][1] == 1
    data = audit_to_dict(result)
    assert [t["title"] for t in data["tables"] if t["family"] == "SQL"] == ["Dynamic SQL sites"]


def test_unparsable_sql_is_said_and_classified_conservatively():
    (finding,) = found(
        audit_files(
            {
                "app/db.py": """
                    def page(db, suffix):
                        return db.execute(f"SELECT * FROM runs WHERE x = 1 {suffix}")
                """
            },
            ["SQL"],
        ),
        "SQL002",
    )
    assert finding.evidence["parsed"] is False
    assert finding.evidence["parse_error"]
    assert finding.evidence["slots"][0]["kind"] == "other"


def test_a_sink_in_another_module_is_found_through_a_wrapper_name():
    result = audit_files(
        {
            "app/db.py": """
                class Store:
                    def run_query(self, statement, params=None):
                        with self.conn.cursor() as cur:
                            cur.execute(statement, params)
            """,
            "app/api.py": """
                def by_name(store, name):
                    return store.run_query(f"SELECT * FROM t WHERE name = '{name}'")
            """,
        },
        ["SQL"],
    )
    assert [(f.location.path, f.rule) for f in result.findings] == [("app/api.py", "SQL001")]
