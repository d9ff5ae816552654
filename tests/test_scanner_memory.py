"""How the scanner keeps the facts between the per-file phase and the project checks: pickled with
equal plain values shared, moved to a temporary file until their family runs, in memory again
where that file cannot be written; and the cyclic collector's state around an audit."""

from __future__ import annotations

import gc
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest

from gathering_consolidate import project
from gathering_consolidate.audit import FileCheck, registry
from gathering_consolidate.config import load_config
from gathering_consolidate.model import FileOutcome, Status
from gathering_consolidate.project import FileResult, audit_sources, sources_from_mapping

NAIVE = "from datetime import datetime\nstamp = datetime.utcnow()\n"


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    line: int
    value: object
    names: frozenset


def _roundtrip(facts: object) -> object:
    return pickle.loads(project._pickle_shared(facts))


def test_equal_plain_values_come_back_as_one_object():
    facts = [
        Fact("x" * 3, 1000 + i, ("inst", ("name", "".join(["i", "nt"]))), frozenset())
        for i in range(3)
    ] + [Fact("".join(["x"] * 3), 1001, ("inst", ("name", "int")), frozenset())]
    back = _roundtrip(facts)
    assert back == facts
    assert len({id(f.value) for f in back}) == 1
    assert len({id(f.names) for f in back}) == 1
    assert back[0].name is back[3].name


def test_values_equal_across_types_or_holding_objects_are_not_merged():
    inner = Fact("a", 1, None, frozenset())
    facts = [
        Fact("a", 1, (1,), frozenset()),
        Fact("a", 1, (True,), frozenset()),
        Fact("a", 1, (1.0,), frozenset()),
        Fact("a", 1, (inner,), frozenset()),
        Fact("a", 1, (Fact("a", 1, None, frozenset()),), frozenset()),
    ]
    back = _roundtrip(facts)
    assert back == facts
    assert [type(f.value[0]) for f in back[:3]] == [int, bool, float]
    assert back[3].value is not back[4].value
    assert back[3].value[0] is not back[4].value[0]


def test_a_large_or_self_sharing_tuple_is_left_alone():
    value: tuple = ("leaf",)
    for _ in range(60):  # 2**60 paths through 60 tuples: looked through, it would never end
        value = (value, value)
    facts = [Fact("a", 1, value, frozenset()), Fact("a", 1, (), frozenset())]
    back = _roundtrip(facts)
    assert back[0].value[0] is back[0].value[1]  # pickle's own sharing, by identity
    assert back[1] == facts[1]


def _result(path: str, facts: dict[str, object]) -> FileResult:
    return FileResult(FileOutcome(path, Status.OK), facts=facts).for_cache()


def test_facts_moved_to_the_file_are_read_back_and_restored():
    spill = project._FactsFile()
    try:
        results = [_result(f"m{i}.py", {"A": [i, "a"], "B": {"b": i}}) for i in range(5)]
        for result in results:
            spill.take(result)
            assert result.facts_blob is None
        assert [spill.facts_for(r, "B", release=True) for r in results] == [
            {"b": i} for i in range(5)
        ]
        assert spill.facts_for(results[2], "C", release=False) is None
        spill.restore(results[3])
        assert results[3].facts_for("A") == [3, "a"]
    finally:
        spill.close()


def test_facts_stay_in_memory_when_the_temporary_file_cannot_be_made(monkeypatch):
    def no_temporary_file(**kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(project.tempfile, "TemporaryFile", no_temporary_file)
    spill = project._FactsFile()
    result = _result("m.py", {"A": ("x", 1)})
    spill.take(result)
    assert result.facts_blob is not None
    assert spill.facts_for(result, "A", release=True) == ("x", 1)
    assert result.facts_blob == {}


def test_facts_stay_in_memory_after_a_failed_write():
    class Full:
        def write(self, data: bytes) -> int:
            return len(data) // 2  # a short write: the disk is full

        def close(self) -> None:
            pass

    spill = project._FactsFile()
    spill.close()
    spill._file, spill._writing = Full(), True
    first, second = _result("a.py", {"A": "a"}), _result("b.py", {"A": "b"})
    spill.take(first)
    spill.take(second)
    assert first.facts_blob is not None and second.facts_blob is not None
    assert [spill.facts_for(r, "A", release=False) for r in (first, second)] == ["a", "b"]


def _big_tree() -> dict[str, str]:
    body = NAIVE + "".join(f"value_{i} = {i}\n" for i in range(3000))
    return {f"pkg/m{i}.py": body for i in range(12)}  # enough for the worker processes


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_agree_with_and_without_the_temporary_file(tmp_path: Path, monkeypatch, jobs):
    config = load_config(tmp_path)
    sources = sources_from_mapping(_big_tree())
    spilled = audit_sources(sources, config, jobs=jobs)

    def no_temporary_file(**kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(project.tempfile, "TemporaryFile", no_temporary_file)
    in_memory = audit_sources(sources, config, jobs=jobs)
    assert spilled.findings and spilled.findings == in_memory.findings
    assert spilled.files == in_memory.files


class _Crashes(FileCheck):
    """Fails on every file, as a check with a bug would.

    ## Why is this bad?
    It is not: it stands for any check that crashes, whose error must reach the report.
    """

    id, name = "ZZZ902", "crashes"

    def check(self, ctx):
        raise ValueError("boom")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_file_checks_crash_is_reported_from_workers_too(tmp_path: Path, jobs):
    checks = [*registry(), _Crashes]
    config = load_config(tmp_path)
    result = audit_sources(sources_from_mapping(_big_tree()), config, checks, jobs=jobs)
    assert len(result.errors) == 12
    assert all("ValueError: boom" in error for error in result.errors)


def test_the_collector_is_left_as_it_was(tmp_path: Path):
    config = load_config(tmp_path)
    sources = sources_from_mapping({"m.py": NAIVE})
    assert gc.isenabled() and gc.get_freeze_count() == 0
    audit_sources(sources, config)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        audit_sources(sources, config)
        assert not gc.isenabled()
    finally:
        gc.enable()
    kept = object.__new__(Fact)  # a tracked object of the caller's own freeze
    gc.freeze()
    try:
        audit_sources(sources, config)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    del kept
