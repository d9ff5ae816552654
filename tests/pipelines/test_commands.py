"""`pipelines validate` and `pipelines validate-cron`: files, standard input, a real PostgreSQL
table, output formats, exit codes and the messages for input that cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gathering_consolidate.cli import app

runner = CliRunner()

GOOD = {
    "id": 1,
    "name": "Research and write",
    "nodes": [
        {"id": "start", "type": "trigger", "data": {"label": "On request"}},
        {"id": "research", "type": "agent", "data": {"agent_id": 1}},
        {"id": "out", "type": "output"},
    ],
    "edges": [{"source": "start", "target": "research"}, {"source": "research", "target": "out"}],
}
CYCLIC = {
    "id": 2,
    "name": "Loops forever",
    "nodes": [
        {"id": "start", "type": "trigger"},
        {"id": "a", "type": "output"},
        {"id": "b", "type": "output"},
    ],
    "edges": [{"from": "start", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "a"}],
}


def invoke(*args: str, stdin: str | None = None):
    return runner.invoke(app, ["pipelines", *args], input=stdin)


def test_valid_file_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(GOOD))
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"checked 1 pipeline from {path}: 0 invalid\n"


def test_yaml_list_reports_every_invalid_pipeline(tmp_path: Path) -> None:
    import yaml

    third = {"name": "no id", "nodes": [{"id": "x", "type": "llm"}]}
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump([GOOD, CYCLIC, third]))
    result = invoke("validate", str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"pipeline 2 'Loops forever' ({path}[1]): 1 problem",
        "  cycle: cycle a -> b -> a",
        f"'no id' ({path}[2]): 1 problem",
        "  unknown-node-type: node 'x' has unknown type 'llm' (known types: agent, condition,"
        " output, skill, transform, trigger)",
        f"checked 3 pipelines from {path}: 2 invalid",
    ]


def test_json_output_and_stdin() -> None:
    result = invoke(
        "validate", "-", "--format", "json", stdin=json.dumps({"pipelines": [GOOD, CYCLIC]})
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert (data["checked"], data["invalid"], data["ok"]) == (2, 1, False)
    assert data["pipelines"][1] == {
        "location": "<stdin>[1]",
        "id": 2,
        "name": "Loops forever",
        "ok": False,
        "problems": [{"code": "cycle", "message": "cycle a -> b -> a", "nodes": ["a", "b"]}],
    }


def test_loops_and_limits_from_options(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(CYCLIC))
    assert invoke("validate", str(path), "--allow-loops").exit_code == 1
    assert invoke("validate", str(path), "--allow-loops", "--max-visits", "3").exit_code == 0
    out = invoke("validate", str(path), "--max-nodes", "2").stdout
    assert "  too-many-nodes: pipeline has 3 nodes; at most 2 are allowed\n" in out


def test_custom_node_types_file(tmp_path: Path) -> None:
    types = tmp_path / "types.yaml"
    types.write_text("begin: {entry: true}\nllm: {required: {model: string}}\n")
    path = tmp_path / "p.yaml"
    path.write_text(
        "nodes: [{id: s, type: begin}, {id: m, type: llm, config: {}}]\nedges: [{from: s, to: m}]\n"
    )
    result = invoke("validate", str(path), "--node-types", str(types))
    assert result.exit_code == 1
    assert "  missing-config: node 'm' (llm): required config 'model' is missing\n" in result.stdout
    types.write_text("llm: {required: {model: str}}\n")
    result = invoke("validate", str(path), "--node-types", str(types))
    assert result.exit_code == 2
    assert "node type 'llm': required.model: unknown type 'str'" in result.stderr


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "missing.json: no such file"),
        (
            "bad.json",
            '{"nodes": [\n  {"id": "a"\n]}',
            "bad.json: invalid JSON at line 3, column 1: Expecting ',' delimiter",
        ),
        (
            "bad.yaml",
            "nodes:\n  - id: a\n   type: x\n",
            "bad.yaml: invalid YAML at line 3, column 4",
        ),
        (
            "text.yaml",
            "just a string\n",
            "text.yaml: expected a pipeline (an object with 'nodes'"
            " and 'edges') or a list of them, got a string",
        ),
        (
            "empty.yaml",
            "",
            "empty.yaml: expected a pipeline (an object with 'nodes' and 'edges')"
            " or a list of them, got nothing",
        ),
        (
            "nonodes.json",
            '[{"name": "x", "edges": []}]',
            "nonodes.json[0]: a pipeline needs 'nodes' (keys found: name, edges)",
        ),
        ("shape.json", '{"nodes": {"a": 1}}', "shape.json: 'nodes' must be a list, got an object"),
        ("item.json", "[1]", "item.json[0]: expected a pipeline object, got an integer"),
        ("bin.json", b"\xff\xfe\x00", "bin.json: not UTF-8 text (byte 0)"),
    ],
)
def test_unreadable_input_exits_2_with_one_line(
    tmp_path: Path, name: str, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert line.endswith(message) or message in line, line


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert invoke("validate").exit_code == 2
    assert "give FILE to check, or --database-url URL" in invoke("validate").stderr
    both = invoke("validate", "x.json", "--database-url", "postgresql://u@127.0.0.1:1/db")
    assert both.exit_code == 2 and "not both" in both.stderr
    assert invoke("validate", str(tmp_path), "--max-visits", "2").exit_code == 2
    assert (
        invoke("validate", str(tmp_path))
        .stderr.strip()
        .endswith("no .json, .yaml or .yml file in this folder")
    )
    assert invoke("validate-cron").exit_code == 2
    bad = invoke("validate-cron", "0 * * * *", "--min-interval", "ten")
    assert bad.exit_code == 2 and "expected a duration such as 30s, 10m" in bad.stderr


def test_validate_cron_expressions() -> None:
    result = invoke(
        "validate-cron",
        "0 3 * * *",
        "0 0 30 2 *",
        "61 * * * *",
        "*/5 * * * *",
        "--min-interval",
        "10m",
    )
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "'0 3 * * *': ok",
        "'0 0 30 2 *': invalid",
        "  day of month: never fires: day 30 never occurs in February",
        "'61 * * * *': invalid",
        "  minute: minute field '61' is invalid: values must be within 0-59",
        "'*/5 * * * *': invalid",
        "  schedule: two runs can be 5 minutes apart, more often than the floor of one run every"
        " 10 minutes",
        "checked 4 expressions: 3 invalid",
    ]
    ok = invoke("validate-cron", "@daily", "--next", "2", "--format", "json")
    assert ok.exit_code == 0
    data = json.loads(ok.stdout)["expressions"][0]
    assert data["ok"] and len(data["next_runs"]) == 2
    assert all(run.endswith("T00:00:00+00:00") for run in data["next_runs"])


def test_split_expression_is_a_usage_error() -> None:
    result = invoke("validate-cron", "0", "3", "*", "*", "*")
    assert result.exit_code == 2
    assert "quote each expression whole, e.g. '0 3 * * *'" in result.stderr


def test_unreachable_database_exits_2() -> None:
    result = invoke("validate", "--database-url", "postgresql://someone:s3cret@127.0.0.1:9/none")
    assert result.exit_code == 2
    assert "s3cret" not in result.stderr and "***" in result.stderr
    assert result.stderr.startswith("error: ")


# -- a real PostgreSQL -------------------------------------------------------------------------
SCHEMA = Path(__file__).resolve().parents[2] / "fixtures" / "gathering_app" / "schema"


@pytest.fixture
def gathering_db(fresh_database: str) -> str:
    """A fresh database with the GatheRing schema and a few stored pipelines and schedules."""
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(fresh_database, autocommit=True) as conn:
        for sql_file in sorted(SCHEMA.glob("*.sql")):
            conn.execute(sql_file.read_text())
        for pipeline in (GOOD, CYCLIC):
            conn.execute(
                "INSERT INTO circle.pipelines (id, name, nodes, edges) VALUES (%s, %s, %s, %s)",
                (
                    pipeline["id"],
                    pipeline["name"],
                    Jsonb(pipeline["nodes"]),
                    Jsonb(pipeline["edges"]),
                ),
            )
        conn.execute(
            "INSERT INTO circle.pipelines (id, name, nodes, edges) VALUES"
            " (3, 'Half drawn', %s, %s), (4, 'Broken row', %s, '[]')",
            (
                Jsonb([{"id": "start", "type": "trigger"}, {"id": "w", "type": "agent"}]),
                Jsonb([{"source": "start", "target": "w"}, {"source": "w", "target": "gone"}]),
                Jsonb({"not": "a list"}),
            ),
        )
        conn.execute(
            "INSERT INTO orchestration.scheduled_actions"
            " (id, name, action_type, schedule_type, cron_expression, interval_seconds) VALUES"
            " (1, 'nightly', 'run_pipeline', 'cron', '0 3 * * *', NULL),"
            " (2, 'leap', 'run_pipeline', 'cron', '0 0 30 2 *', NULL),"
            " (3, 'typo', 'run_pipeline', 'cron', '0 25 * * *', NULL),"
            " (4, 'every 5 min', 'run_pipeline', 'cron', '*/5 * * * *', NULL),"
            " (5, 'interval', 'run_pipeline', 'interval', NULL, 60)"
        )
    return fresh_database


@pytest.mark.postgres
def test_validate_database_rows(gathering_db: str) -> None:
    result = invoke("validate", "--database-url", gathering_db)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[:-1] == [
        "pipeline 2 'Loops forever' (circle.pipelines id=2): 1 problem",
        "  cycle: cycle a -> b -> a",
        "pipeline 3 'Half drawn' (circle.pipelines id=3): 2 problems",
        "  missing-config: node 'w' (agent): required config 'agent_id' is missing",
        "  dangling-edge: edge 2 (w -> gone): unknown target 'gone'",
        "pipeline 4 'Broken row' (circle.pipelines id=4): 1 problem",
        "  invalid-pipeline: nodes must be a list, got an object",
    ]
    assert lines[-1].startswith("checked 4 pipelines from circle.pipelines at ")
    assert lines[-1].endswith(": 3 invalid")

    data = json.loads(invoke("validate", "--database-url", gathering_db, "-f", "json").stdout)
    assert [(p["id"], p["ok"]) for p in data["pipelines"]] == [
        (1, True),
        (2, False),
        (3, False),
        (4, False),
    ]


@pytest.mark.postgres
def test_validate_database_named_table_and_columns(gathering_db: str) -> None:
    import psycopg

    with psycopg.connect(gathering_db, autocommit=True) as conn:
        conn.execute(
            'CREATE TABLE public."Flows" (flow_id text PRIMARY KEY, graph_nodes json,'
            " graph_edges jsonb)"
        )
        conn.execute(
            "INSERT INTO public.\"Flows\" VALUES ('f1', %s, %s)",
            (json.dumps(CYCLIC["nodes"]), json.dumps(CYCLIC["edges"])),
        )
    args = [
        "validate",
        "--database-url",
        gathering_db,
        "--table",
        "Flows",
        "--id-column",
        "flow_id",
        "--name-column",
        "",
        "--nodes-column",
        "graph_nodes",
        "--edges-column",
        "graph_edges",
    ]
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[:2] == [
        "pipeline f1 (Flows flow_id=f1): 1 problem",
        "  cycle: cycle a -> b -> a",
    ]
    missing = invoke("validate", "--database-url", gathering_db, "--table", "circle.nope")
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: table circle.nope does not exist in ")
    column = invoke("validate", "--database-url", gathering_db, "--nodes-column", "graph")
    assert column.exit_code == 2
    assert 'column "graph" does not exist' in column.stderr
    hostile = invoke("validate", "--database-url", gathering_db, "--table", "x; DROP TABLE y")
    assert hostile.exit_code == 2 and "expected NAME or SCHEMA.NAME" in hostile.stderr


@pytest.mark.postgres
def test_validate_cron_database_rows(gathering_db: str) -> None:
    result = invoke("validate-cron", "--database-url", gathering_db, "--min-interval", "10m")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[:-1] == [
        "action 2 'leap' '0 0 30 2 *': invalid",
        "  day of month: never fires: day 30 never occurs in February",
        "action 3 'typo' '0 25 * * *': invalid",
        "  hour: hour field '25' is invalid: values must be within 0-23",
        "action 4 'every 5 min' '*/5 * * * *': invalid",
        "  schedule: two runs can be 5 minutes apart, more often than the floor of one run every"
        " 10 minutes",
    ]
    assert lines[-1].startswith("checked 4 expressions from orchestration.scheduled_actions at")
    assert lines[-1].endswith(": 3 invalid")


def test_several_files_and_a_bad_one_stops_before_any_output(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text("\ufeff" + json.dumps(GOOD))  # JSON with a BOM in a .yml file
    cyclic = tmp_path / "cyclic.json"
    cyclic.write_text(json.dumps(CYCLIC))
    result = invoke("validate", str(good), str(cyclic))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == f"checked 2 pipelines from {good}, {cyclic}: 1 invalid"
    broken = tmp_path / "broken.yaml"
    broken.write_text("nodes: [")
    result = invoke("validate", str(good), str(broken))
    assert result.exit_code == 2 and result.stdout == ""
    assert "broken.yaml: invalid YAML at line 1, column 9" in result.stderr


@pytest.mark.parametrize("command", [[], ["validate"], ["validate-cron"]])
def test_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout


@pytest.mark.postgres
def test_validate_database_streams_many_rows(gathering_db: str) -> None:
    """More rows than one fetch batch: every row is read and validated once, in id order."""
    import psycopg

    with psycopg.connect(gathering_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO circle.pipelines (id, name, nodes, edges)"
            " SELECT 100 + g, 'bulk ' || g,"
            " jsonb_build_array(jsonb_build_object('id', 's', 'type', 'trigger'),"
            "   jsonb_build_object('id', 'o' || g, 'type', CASE WHEN g % 400 = 0 THEN 'llm'"
            "   ELSE 'output' END)),"
            " jsonb_build_array(jsonb_build_object('source', 's', 'target', 'o' || g))"
            " FROM generate_series(1, 1200) AS g"
        )
    data = json.loads(invoke("validate", "--database-url", gathering_db, "-f", "json").stdout)
    ids = [p["id"] for p in data["pipelines"]]
    assert ids == [1, 2, 3, 4, *range(101, 1301)]
    assert [p["id"] for p in data["pipelines"] if not p["ok"]] == [2, 3, 4, 500, 900, 1300]


def test_a_folder_stands_for_its_pipeline_files(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a.json").write_text(json.dumps(GOOD))
    (tmp_path / "b" / "c.yaml").write_text(json.dumps(CYCLIC))
    (tmp_path / "notes.txt").write_text("not a pipeline")
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        f"pipeline 2 'Loops forever' ({tmp_path / 'b' / 'c.yaml'}): 1 problem"
    )
    assert result.stdout.splitlines()[-1].startswith("checked 2 pipelines from ")
