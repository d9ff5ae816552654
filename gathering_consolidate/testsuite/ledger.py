"""The test ledger: a small JSON file committed with the code that records how many tests there
are (per tag, per file), and every skip and xfail with its reason and issue reference. The gate
(`gate.py`) compares the suite with it so the count only goes up.

```json
{"version": 1, "total": 143, "by_tag": {"stub": 18, ...}, "by_file": {"tests/test_x.py": 12},
 "skips": [{"test": "tests/test_x.py::test_y", "kind": "skip", "reason": "blocked by #157",
            "issue": "#157", "condition": null}], "xfails": [...],
 "gate": "pytest -m \\"not stub\\""}
```
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .overrides import TAGS

LEDGER_FILE = "tests-ledger.json"
LEDGER_VERSION = 1
GATE_COMMAND = 'pytest -m "not stub"'


class LedgerError(ValueError):
    """A ledger file that cannot be read."""


@dataclass
class Ledger:
    total: int
    by_tag: dict[str, int]
    by_file: dict[str, int]
    skips: list[dict[str, Any]] = field(default_factory=list)
    xfails: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": LEDGER_VERSION,
            "total": self.total,
            "by_tag": self.by_tag,
            "by_file": self.by_file,
            "skips": self.skips,
            "xfails": self.xfails,
            "gate": GATE_COMMAND,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = "ledger") -> Ledger:
        if not isinstance(data, dict):
            raise LedgerError(f"{where}: not a JSON object")
        try:
            total = int(data["total"])
            by_tag = {str(k): int(v) for k, v in dict(data.get("by_tag", {})).items()}
            by_file = {str(k): int(v) for k, v in dict(data.get("by_file", {})).items()}
            skips = [dict(s) for s in data.get("skips", [])]
            xfails = [dict(s) for s in data.get("xfails", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(f"{where}: malformed ledger ({exc})") from None
        return cls(total, by_tag, by_file, skips, xfails)


def _entries(inventory: Any, xfail: bool) -> list[dict[str, Any]]:
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in inventory.items:
        for skip in item.skips:
            if skip.is_xfail != xfail:
                continue
            # one entry per test function and reason (parametrized cases share it)
            key = (item.function_id, skip.kind, skip.reason)
            entry = found.get(key)
            if entry is None:
                found[key] = {
                    "test": item.function_id,
                    "kind": skip.kind,
                    "reason": skip.reason,
                    "condition": skip.condition,
                    "issue": skip.issue,
                    "line": skip.line,
                    "cases": 1,
                }
            else:
                entry["cases"] += 1
    return sorted(found.values(), key=lambda e: (e["test"], e["line"]))


def ledger_from(inventory: Any, classification: Any) -> Ledger:
    tags = classification.tag_of()
    by_tag = dict.fromkeys(TAGS, 0)
    for item in inventory.items:
        by_tag[tags.get(item.nodeid, "unit")] += 1
    return Ledger(
        total=inventory.total,
        by_tag=by_tag,
        by_file=dict(sorted(inventory.by_file().items())),
        skips=_entries(inventory, xfail=False),
        xfails=_entries(inventory, xfail=True),
    )


def build_ledger(path: str | os.PathLike[str], *, audit_result: Any | None = None) -> Ledger:
    """Inventory and classify the tests under `path` and count them."""
    from .classify import classify
    from .inventory import inventory as take_inventory

    found = take_inventory(path)
    return ledger_from(found, classify(found, audit_result=audit_result))


def load_ledger(path: Path) -> Ledger:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LedgerError(
            f"{path}: no ledger (write one with `gathering-consolidate tests ledger`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LedgerError(f"{path}: not valid JSON ({exc})") from None
    return Ledger.from_dict(data, str(path))
