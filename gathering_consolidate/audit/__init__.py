"""The audit families. Each sub-package is one family and exports `CHECKS`, a tuple of check
classes; `registry()` finds them all. Adding a family is adding a sub-package."""

from __future__ import annotations

import functools
import importlib

# Not `typing.TYPE_CHECKING`: every run imports this package, a replayed one (replay.py) nothing
# else of it, and `typing` would be most of its start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from ..model import Finding, SummaryTable
    from .base import (
        Check,
        EngineCheck,
        FileCheck,
        FileContext,
        Invalid,
        Option,
        ProjectCheck,
        Valid,
    )

__all__ = [
    "Check",
    "EngineCheck",
    "FileCheck",
    "FileContext",
    "Invalid",
    "Option",
    "ProjectCheck",
    "Valid",
    "family_modules",
    "family_summaries",
    "get_check",
    "known_options",
    "registry",
]

#: The names of `base` exported here (the capitalised ones of `__all__`), imported on first use
#: (PEP 562): every run imports this package, a run-cache hit needs none of them.
_BASE = frozenset(name for name in __all__ if name[0].isupper())


def family_modules() -> list[str]:
    """The names of the family sub-packages (`gathering_consolidate.audit.<name>`)."""
    import pkgutil

    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)


@functools.cache
def registry() -> tuple[type[Check], ...]:
    """Every registered check class, sorted by id. Duplicate ids are a programming error."""
    checks: dict[str, type[Check]] = {}
    for name in family_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        for check in getattr(module, "CHECKS", ()):
            if check.id in checks and checks[check.id] is not check:
                raise RuntimeError(f"duplicate check id {check.id}: {check} and {checks[check.id]}")
            checks[check.id] = check
    return tuple(checks[k] for k in sorted(checks))


def get_check(rule: str) -> type[Check] | None:
    return next((c for c in registry() if c.id == rule), None)


def known_options() -> Mapping[str, Mapping[str, Any]]:
    """rule id -> option name -> default, for config validation."""
    return {c.id: {k: o.default for k, o in c.OPTIONS.items()} for c in registry()}


def family_summaries(findings: Sequence[Finding]) -> list[SummaryTable]:
    """Summaries from every family that defines `summarize(findings) -> list[SummaryTable]`."""
    tables: list[SummaryTable] = []
    for name in family_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        summarize = getattr(module, "summarize", None)
        if summarize is not None:
            tables.extend(summarize([f for f in findings if f.rule in _ids(module)]))
    return tables


def _ids(module: Any) -> set[str]:
    return {c.id for c in getattr(module, "CHECKS", ())}


def __getattr__(name: str) -> Any:
    if name not in _BASE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.base"), name)
    globals()[name] = value
    return value
