"""Reviewed per-test verdicts that override the classifier: `test-tags.toml` at the pytest
rootdir, small enough to review in a pull request.

```toml
[[override]]
test = "tests/test_pipelines.py::test_dangling_edges_are_accepted_on_create"
tag = "stub"
reason = "pins the unvalidated graph; validation lands with #170"
```

`test` is a test (`path::name`, `path::Class::name`, a node id with its parameter id), a class
(`path::Class`) or a whole file (`path`); the most specific entry wins. `reason` is required.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

OVERRIDES_FILE = "test-tags.toml"
TAGS = ("stub", "contract", "integration", "unit")


class OverridesError(ValueError):
    """The overrides file is malformed (the message names the entry)."""


@dataclass(frozen=True)
class Override:
    test: str
    tag: str
    reason: str

    def matches(self, nodeid: str, function_id: str) -> int:
        """How specifically this entry matches a test (0: not at all)."""
        if self.test == nodeid:
            return 4
        if self.test == function_id:
            return 3
        if function_id.startswith(self.test + "::"):
            return 2
        if self.test == function_id.split("::", 1)[0]:
            return 1
        return 0


def load_overrides(path: Path) -> list[Override]:
    """The entries of an overrides file; [] when it does not exist."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise OverridesError(f"{path.name}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise OverridesError(f"{path.name}: not valid TOML: {exc}") from None
    unknown = set(data) - {"override"}
    if unknown:
        raise OverridesError(f"{path.name}: unknown key(s) {', '.join(sorted(unknown))}")
    entries = data.get("override", [])
    if not isinstance(entries, list):
        raise OverridesError(f"{path.name}: `override` must be an array of tables ([[override]])")
    found = []
    for index, entry in enumerate(entries, 1):
        where = f"{path.name}: override {index}"
        if not isinstance(entry, dict):
            raise OverridesError(f"{where}: not a table")
        extra = set(entry) - {"test", "tag", "reason"}
        if extra:
            raise OverridesError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        test, tag, reason = entry.get("test"), entry.get("tag"), entry.get("reason")
        if not isinstance(test, str) or not test:
            raise OverridesError(f"{where}: `test` (a test id, class or file) is required")
        if tag not in TAGS:
            raise OverridesError(f"{where} ({test}): `tag` must be one of {', '.join(TAGS)}")
        if not isinstance(reason, str) or not reason.strip():
            raise OverridesError(f"{where} ({test}): `reason` is required (say why)")
        found.append(Override(test, tag, reason.strip()))
    return found
