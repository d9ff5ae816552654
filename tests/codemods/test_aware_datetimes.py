"""Scenarios for `aware-datetimes`: values made aware never meet ones that stay naive (the
function is refused, naming the other side), uncalled references (`default_factory=`) are
converted, database columns without time zone are refused, the rest of a file still converts."""

from __future__ import annotations

from gathering_consolidate.codemods.aware_datetimes import AwareDatetimes
from tests.codemods._exc_support import changed, plan, refusals


def aware(files: dict[str, str]):
    return plan(AwareDatetimes, files)


LOGS = """
    from datetime import datetime, timedelta


    def recent_errors(lines, hours=1):
        cutoff = datetime.utcnow() - timedelta(hours=hours)
        out = []
        for line in lines:
            stamp = datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
            if stamp >= cutoff:
                out.append(line)
        return out


    def touched():
        return {"at": datetime.utcnow()}
"""


def test_naive_comparison_blocks_that_function_only():
    result = aware({"app/logs.py": LOGS})
    ((line, reason),) = refusals(result)
    assert line == 5
    assert "`cutoff` would be aware" in reason and "`stamp` at line 9" in reason
    assert "datetime.strptime" in reason and "TypeError" in reason
    after = changed(result, "app/logs.py").after
    assert "cutoff = datetime.utcnow() - timedelta(hours=hours)" in after
    assert 'return {"at": datetime.now(timezone.utc)}' in after
    # A second run: the same refusal, nothing more to change.
    again = aware({"app/logs.py": after})
    assert not again.changes and len(refusals(again)) == 1


def test_naive_sources_of_every_kind():
    cases = {
        "datetime.fromisoformat(text)": "parsed text without an offset",
        "datetime(2024, 1, 1)": "without tzinfo",
        "datetime.combine(day, moment)": "datetime.combine",
        "seen.replace(tzinfo=None)": "tzinfo=None",
        "parse_line(text)": "`parse_line()`, which returns",
    }
    for other, words in cases.items():
        code = (
            "from datetime import datetime\n\n\n"
            "def parse_line(text):\n    return datetime.strptime(text, '%Y')\n\n\n"
            "def age(text, ts, day, moment, seen):\n"
            f"    return datetime.utcnow() - {other}\n"
        )
        reasons = [r for _, r in refusals(aware({"app/m.py": code}))]
        assert reasons and words in reasons[0], (other, reasons)


def test_aware_other_sides_convert():
    code = (
        "from datetime import datetime, timezone\n\n\n"
        "def fine(text, ts):\n"
        "    a = datetime.strptime(text, '%Y-%m-%dT%H:%M:%S%z')\n"
        "    b = datetime.fromisoformat('2024-01-01T00:00:00+00:00')\n"
        "    c = datetime.fromtimestamp(ts, tz=timezone.utc)\n"
        "    now = datetime.utcnow()\n"
        "    return max(now, a, b, c) - min([now, a])\n"
    )
    result = aware({"app/m.py": code})
    assert not refusals(result)
    assert "    now = datetime.now(timezone.utc)\n" in changed(result, "app/m.py").after


def test_min_max_and_returns_across_functions():
    code = (
        "from datetime import datetime\n\n\n"
        "def cutoff():\n    return datetime.utcnow()\n\n\n"
        "def latest(rows, text):\n"
        "    return max(cutoff(), datetime.strptime(text, '%Y'))\n"
    )
    result = aware({"app/m.py": code})
    ((line, reason),) = refusals(result)
    assert line == 5 and "`cutoff()`" in reason and "in latest" in reason
    assert not result.changes


def test_unknown_other_side_is_converted_with_a_note():
    code = (
        "from datetime import datetime, timedelta\n\n\n"
        "def fresh(rows):\n"
        "    cutoff = datetime.utcnow() - timedelta(days=1)\n"
        "    return [r for r in rows if r.created_at > cutoff]\n"
    )
    result = aware({"app/m.py": code})
    change = changed(result, "app/m.py")
    assert "cutoff = datetime.now(timezone.utc) - timedelta(days=1)" in change.after
    assert any("meets `r.created_at`" in w and "must be aware too" in w for w in change.warnings)


def test_uncalled_references():
    code = """
        import datetime as dt
        from dataclasses import dataclass, field

        from pydantic import BaseModel, Field
        from sqlalchemy import Column, DateTime
        from sqlmodel import SQLModel


        @dataclass
        class Job:
            created: dt.datetime = field(default_factory=dt.datetime.utcnow)
            kept: dt.datetime = field(default_factory=dt.datetime.utcnow)  # consolidate: ignore[DTZ001] naive on purpose


        class Item(BaseModel):
            seen: dt.datetime = Field(default_factory=dt.datetime.now)


        class Row(Base):
            made = Column(DateTime(timezone=True), default=dt.datetime.utcnow)
            naive = Column(DateTime, onupdate=dt.datetime.utcnow)


        class Hero(SQLModel, table=True):
            born: dt.datetime = Field(default_factory=dt.datetime.utcnow)
    """
    result = aware({"app/models.py": code})
    after = changed(result, "app/models.py").after
    assert "field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))\n" in after
    assert "field(default_factory=dt.datetime.utcnow)  # consolidate: ignore" in after
    assert "Field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))\n\n" in after
    assert "default=lambda: dt.datetime.now(dt.timezone.utc))" in after
    assert "Column(DateTime, onupdate=dt.datetime.utcnow)" in after
    assert "    born: dt.datetime = Field(default_factory=dt.datetime.utcnow)" in after
    lines = sorted(line for line, reason in refusals(result) if "without time zone" in reason)
    assert lines == [21, 25]
    assert not aware({"app/models.py": after}).changes  # idempotent
