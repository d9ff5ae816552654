"""The pipeline validator: each problem with the exact message a user sees (the consolidated app
returns these messages in its 422 bodies)."""

from __future__ import annotations

import itertools

import pytest

from gathering_consolidate.pipelines import (
    CODES,
    DEFAULT_NODE_TYPES,
    NodeType,
    NodeTypesError,
    PipelineReport,
    VisitCounter,
    VisitLimitExceeded,
    node_types_from_data,
    validate_pipeline,
)

TRIGGER = {"id": "start", "type": "trigger", "data": {"label": "On request"}}


def out(node_id: str) -> dict:
    return {"id": node_id, "type": "output"}


def agent(node_id: str, agent_id: object = 1) -> dict:
    return {"id": node_id, "type": "agent", "config": {"agent_id": agent_id}}


def edge(a: str, b: str) -> dict:
    return {"from": a, "to": b}


def chain(*ids: str) -> list[dict]:
    return [edge(a, b) for a, b in itertools.pairwise(ids)]


def problems(report: PipelineReport) -> list[tuple[str, str]]:
    return [(p.code, p.message) for p in report.problems]


def test_valid_pipeline_has_no_problem_and_a_run_order() -> None:
    nodes = [
        TRIGGER,
        agent("research"),
        {"id": "check", "type": "condition", "config": {"expression": "len(text) > 10"}},
        out("done"),
    ]
    # Given out of order, with GatheRing's source/target edges.
    edges = [
        {"id": "e2", "source": "research", "target": "check"},
        {"id": "e1", "source": "start", "target": "research"},
        {"id": "e3", "source": "check", "target": "done"},
    ]
    report = validate_pipeline(nodes, edges)
    assert report.ok, problems(report)
    assert report.order == ("start", "research", "check", "done")
    assert report.entry_nodes == ("start",)
    assert report.to_dict()["ok"] is True


def test_self_loop() -> None:
    report = validate_pipeline(
        [TRIGGER, agent("a"), out("z")], [*chain("start", "a", "z"), edge("a", "a")]
    )
    assert problems(report) == [("self-loop", "self-loop on node 'a' (edge 3: a -> a)")]
    assert report.problems[0].nodes == ("a",)
    assert report.order == ()


def test_long_cycle_is_spelled_out() -> None:
    ids = [f"n{i}" for i in range(8)]
    nodes = [TRIGGER, *(out(i) for i in ids)]
    edges = [edge("start", "n0"), *chain(*ids), edge("n7", "n0")]
    report = validate_pipeline(nodes, edges)
    assert problems(report) == [
        ("cycle", "cycle n0 -> n1 -> n2 -> n3 -> n4 -> n5 -> n6 -> n7 -> n0")
    ]
    assert report.problems[0].nodes == tuple(ids)


def test_two_disjoint_cycles_are_two_problems() -> None:
    nodes = [TRIGGER, *(out(i) for i in "abcdef")]
    edges = [
        edge("start", "a"),
        *chain("a", "b", "c", "a"),
        edge("start", "d"),
        *chain("d", "e", "f", "d"),
    ]
    report = validate_pipeline(nodes, edges)
    assert problems(report) == [
        ("cycle", "cycle a -> b -> c -> a"),
        ("cycle", "cycle d -> e -> f -> d"),
    ]


def test_a_component_with_more_nodes_than_its_cycle_names_them() -> None:
    nodes = [TRIGGER, *(out(i) for i in "abc")]
    edges = [edge("start", "a"), *chain("a", "b", "a"), *chain("b", "c", "b")]
    report = validate_pipeline(nodes, edges)
    assert problems(report) == [("cycle", "cycle a -> b -> a (the loop also runs through c)")]
    assert report.problems[0].nodes == ("a", "b", "c")


def test_dangling_edges() -> None:
    nodes = [TRIGGER, out("a")]
    edges = [
        edge("start", "a"),
        {"id": "e9", "source": "a", "target": "ghost"},
        edge("nowhere", "void"),
    ]
    report = validate_pipeline(nodes, edges)
    assert problems(report) == [
        ("dangling-edge", "edge 'e9' (a -> ghost): unknown target 'ghost'"),
        (
            "dangling-edge",
            "edge 3 (nowhere -> void): unknown source 'nowhere' and unknown target 'void'",
        ),
    ]
    assert report.problems[0].nodes == ("a",)


def test_unknown_node_type() -> None:
    report = validate_pipeline(
        [TRIGGER, {"id": "x", "type": "llm"}, {"id": "y"}], chain("start", "x", "y")
    )
    known = "agent, condition, output, skill, transform, trigger"
    assert problems(report) == [
        ("unknown-node-type", f"node 'x' has unknown type 'llm' (known types: {known})"),
        ("unknown-node-type", f"node 'y' has no type (known types: {known})"),
    ]


def test_missing_and_invalid_required_config() -> None:
    nodes = [
        TRIGGER,
        {"id": "a", "type": "agent", "data": {"label": "Write"}},
        {"id": "s", "type": "skill", "config": {"skill": "  "}},
        {"id": "c", "type": "condition", "config": {"expression": 3}},
        {"id": "a2", "type": "agent", "config": {"agent_id": True, "max_visits": 0}},
        {"id": "o", "type": "output", "config": "not an object"},
    ]
    report = validate_pipeline(nodes, chain("start", "a", "s", "c", "a2", "o"))
    assert problems(report) == [
        ("missing-config", "node 'a' (agent): required config 'agent_id' is missing"),
        ("missing-config", "node 's' (skill): required config 'skill' is empty"),
        (
            "invalid-config",
            "node 'c' (condition): config 'expression' must be string, got an integer",
        ),
        (
            "invalid-config",
            "node 'a2' (agent): config 'agent_id' must be integer or string, got a boolean",
        ),
        ("invalid-config", "node 'a2' (agent): config 'max_visits' must be at least 1, got 0"),
        ("invalid-config", "node 'o' (output): config must be an object, got a string"),
    ]


def test_51_nodes_rejected_and_a_valid_50_node_dag_accepted() -> None:
    def pipeline(size: int) -> tuple[list[dict], list[dict]]:
        ids = [f"n{i:02d}" for i in range(size - 1)]
        nodes = [TRIGGER, *(agent(i, agent_id=k) for k, i in enumerate(ids))]
        # A layered DAG with fan-out and fan-in, not only a chain.
        edges = [edge("start", ids[0]), *chain(*ids)]
        edges += [edge(ids[k], ids[k + 3]) for k in range(0, len(ids) - 3, 5)]
        return nodes, edges

    report = validate_pipeline(*pipeline(50))
    assert report.ok, problems(report)
    assert len(report.order) == 50
    order = {n: i for i, n in enumerate(report.order)}
    assert all(order[e["from"]] < order[e["to"]] for e in pipeline(50)[1])

    report = validate_pipeline(*pipeline(51))
    assert problems(report) == [("too-many-nodes", "pipeline has 51 nodes; at most 50 are allowed")]
    assert validate_pipeline(*pipeline(51), max_nodes=51).ok


def test_unreachable_node() -> None:
    nodes = [TRIGGER, agent("a"), out("z"), agent("orphan"), out("orphan_out")]
    edges = [*chain("start", "a", "z"), edge("orphan", "orphan_out")]
    report = validate_pipeline(nodes, edges)
    assert problems(report) == [
        ("unreachable", "node 'orphan' is unreachable from the entry node start"),
        ("unreachable", "node 'orphan_out' is unreachable from the entry node start"),
    ]


def test_without_trigger_the_sources_are_the_entries() -> None:
    report = validate_pipeline([out("a"), out("b"), out("c")], chain("a", "b"))
    assert report.ok and report.entry_nodes == ("a", "c")
    report = validate_pipeline([out("a"), out("b")], chain("a", "b", "a"))
    assert problems(report) == [
        ("cycle", "cycle a -> b -> a"),
        ("no-entry", "pipeline has no entry node: add a trigger, or a node without incoming edges"),
    ]


def test_duplicate_node_ids() -> None:
    report = validate_pipeline([TRIGGER, out("a"), agent("a")], chain("start", "a"))
    assert problems(report) == [
        ("duplicate-node", "node id 'a' is used by 2 nodes (positions 2, 3)")
    ]


def test_malformed_nodes_and_edges_are_problems_not_exceptions() -> None:
    nodes = [TRIGGER, "a", {"type": "output"}, {"id": 7, "type": "output"}, out("z")]
    edges = [
        edge("start", "z"),
        5,
        {"from": "start"},
        {"source": "start", "to": 3},
        {"from": "start", "source": "z", "to": "z"},
    ]
    report = validate_pipeline(nodes, edges)
    assert problems(report) == [
        ("invalid-node", "node 2: expected an object, got a string"),
        ("invalid-node", "node 3: needs a non-empty string id, got no id"),
        ("invalid-node", "node 4: needs a non-empty string id, got id 7"),
        ("invalid-edge", "edge 2: expected an object, got an integer"),
        ("invalid-edge", "edge 3: no target ('to' or 'target')"),
        ("invalid-edge", "edge 4: target must be a node id string, got 3"),
        ("invalid-edge", "edge 5: 'from' and 'source' disagree ('start' vs 'z')"),
    ]
    report = validate_pipeline({"a": 1}, "x")
    assert problems(report) == [
        ("invalid-pipeline", "nodes must be a list, got an object"),
        ("invalid-pipeline", "edges must be a list, got a string"),
    ]
    assert problems(validate_pipeline([], [])) == [("no-entry", "pipeline has no nodes")]


def test_loops_allowed_need_a_visit_limit() -> None:
    nodes = [
        TRIGGER,
        agent("draft"),
        {"id": "review", "type": "condition", "config": {"expression": "approved"}},
        out("done"),
    ]
    edges = [*chain("start", "draft", "review", "done"), edge("review", "draft")]
    assert problems(validate_pipeline(nodes, edges)) == [
        ("cycle", "cycle draft -> review -> draft")
    ]

    report = validate_pipeline(nodes, edges, allow_loops=True)
    assert problems(report) == [
        (
            "unbounded-loop",
            "loop draft -> review -> draft has no visit limit: set max_visits in"
            " the config of one of its nodes or for the pipeline",
        )
    ]
    assert validate_pipeline(nodes, edges, allow_loops=True, max_visits=3).ok
    nodes[2]["config"]["max_visits"] = 3
    assert validate_pipeline(nodes, edges, allow_loops=True).ok

    # A second loop that avoids the bounded node is still unbounded.
    nodes.append({"id": "fix", "type": "agent", "config": {"agent_id": 2}})
    edges += [edge("draft", "fix"), edge("fix", "draft"), edge("fix", "fix")]
    report = validate_pipeline(nodes, edges, allow_loops=True)
    assert problems(report) == [
        (
            "unbounded-loop",
            "loop fix -> fix has no visit limit: set max_visits in the config of"
            " 'fix' or for the pipeline",
        ),
        (
            "unbounded-loop",
            "loop draft -> fix -> draft has no visit limit: set max_visits in"
            " the config of one of its nodes or for the pipeline",
        ),
    ]


def test_visit_counter_enforces_the_limits() -> None:
    nodes = [TRIGGER, {"id": "a", "type": "agent", "data": {"agent_id": 1, "max_visits": 2}}]
    counter = VisitCounter.for_pipeline(nodes, max_visits=5)
    assert counter.limit("a") == 2 and counter.limit("start") == 5
    assert [counter.visit("a"), counter.visit("a")] == [1, 2]
    with pytest.raises(VisitLimitExceeded, match=r"node 'a' reached its visit limit \(2\)"):
        counter.visit("a")
    assert counter.count("a") == 2
    unbounded = VisitCounter.for_pipeline(nodes)
    assert all(unbounded.visit("start") == k for k in range(1, 101))


def test_custom_node_types() -> None:
    types = node_types_from_data(
        {
            "start": {"entry": True},
            "llm": {"required": {"model": "string", "temperature": "number"}},
            "sink": None,
        }
    )
    nodes = [
        {"id": "s", "type": "start"},
        {"id": "m", "type": "llm", "config": {"model": "x", "temperature": 1}},
        {"id": "o", "type": "sink"},
    ]
    assert validate_pipeline(nodes, chain("s", "m", "o"), node_types=types).ok
    nodes[1]["config"]["temperature"] = "hot"
    assert problems(validate_pipeline(nodes, chain("s", "m", "o"), node_types=types)) == [
        ("invalid-config", "node 'm' (llm): config 'temperature' must be number, got a string")
    ]
    with pytest.raises(
        NodeTypesError, match=r"node type 'llm': required.model: unknown type 'str'"
    ):
        node_types_from_data({"llm": {"required": {"model": "str"}}})
    with pytest.raises(NodeTypesError, match="unknown key"):
        node_types_from_data({"llm": {"requires": ["model"]}})


def test_default_schema_matches_gathering_node_types() -> None:
    assert set(DEFAULT_NODE_TYPES) == {
        "trigger",
        "agent",
        "skill",
        "condition",
        "transform",
        "output",
    }
    assert [t.name for t in DEFAULT_NODE_TYPES.values() if t.entry] == ["trigger"]
    assert isinstance(DEFAULT_NODE_TYPES["agent"], NodeType)


def test_every_code_is_documented() -> None:
    from gathering_consolidate.pipelines import validator

    for code in CODES:
        assert f"| {code} |" in validator.__doc__


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="max_visits"):
        validate_pipeline([TRIGGER], [], allow_loops=True, max_visits=0)
    with pytest.raises(ValueError, match="max_nodes"):
        validate_pipeline([TRIGGER], [], max_nodes=0)


def _graph_shapes(size: int) -> list[tuple[list[dict], list[dict], list[str]]]:
    ids = [f"n{i}" for i in range(size)]
    ring = (
        [TRIGGER, *(out(i) for i in ids)],
        [edge("start", "n0"), *chain(*ids), edge(ids[-1], ids[0])],
        ["cycle"],
    )
    # No trigger: every one of the many sources is an entry; half the nodes form 2-cycles.
    fan = (
        [*(out(i) for i in ids), out("sink")],
        [edge(i, "sink") for i in ids[: size // 2]]
        + [e for k in range(size // 2, size - 1, 2) for e in chain(ids[k], ids[k + 1], ids[k])],
        ["cycle"] * (size // 4) + ["unreachable"] * (size // 2),
    )
    return [ring, fan]


def test_large_graphs_stay_fast() -> None:
    """5,000-node graphs (a ring; many entries and many small cycles) are analysed in about linear
    time: the ratio to 500 nodes stays far from the quadratic 100x."""
    import gc
    import time

    def run(size: int) -> float:
        shapes = _graph_shapes(size)
        gc.collect()
        gc.disable()  # a collection landing in one timed run is not the validator's time
        try:
            started = time.perf_counter()
            for nodes, edges, codes in shapes:
                report = validate_pipeline(nodes, edges, max_nodes=10**6)
                assert report.codes() == codes
            return time.perf_counter() - started
        finally:
            gc.enable()

    run(100)  # warm-up
    small = min(run(500) for _ in range(3))
    large = min(run(5000) for _ in range(3))
    assert large / small < 30, (small, large)


def test_odd_node_ids_are_quoted_so_messages_stay_one_line() -> None:
    nodes = [TRIGGER, out("plain"), out("two words"), out("evil\n\x1b[31m")]
    edges = [edge("start", "plain"), *chain("plain", "two words", "evil\n\x1b[31m", "plain")]
    report = validate_pipeline(nodes, edges)
    assert problems(report) == [
        ("cycle", "cycle plain -> 'two words' -> 'evil\\n\\x1b[31m' -> plain")
    ]
    assert all("\n" not in m and "\x1b" not in m for m in report.messages)


def test_one_trigger_per_pipeline() -> None:
    second = {"id": "webhook", "type": "trigger"}
    report = validate_pipeline(
        [TRIGGER, second, out("z")], [edge("start", "z"), edge("webhook", "z")]
    )
    assert problems(report) == [
        ("too-many-of-type", "pipeline has 2 trigger nodes (start, webhook); at most 1 is allowed")
    ]
    types = {**DEFAULT_NODE_TYPES, "trigger": NodeType("trigger", entry=True)}
    assert validate_pipeline(
        [TRIGGER, second, out("z")], [edge("start", "z"), edge("webhook", "z")], node_types=types
    ).ok
