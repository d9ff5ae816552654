"""gathering-consolidate: audit, migrate and verify FastAPI + PostgreSQL multi-agent codebases.

Library first: `audit(path)` returns an `AuditResult` of plain data; the CLI only renders it.

The names below are imported on first use (PEP 562): every command, `--version` included, runs
this file first, and most of them need neither the scanner nor the configuration loader.
"""

from __future__ import annotations

import importlib
import os

# The `audit` family package first: importing a subpackage binds its name in this namespace,
# so the `audit` function defined below must come after it (and it stays the function).
from . import audit as _families  # noqa: F401
from .version import __version__

# Not `typing.TYPE_CHECKING`: a replayed command (replay.py) imports little more than this
# package, and `typing` would be most of its start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from .config import Config, ConfigError, load_config
    from .model import (
        Applicability,
        AuditResult,
        FileOutcome,
        Finding,
        Fix,
        Location,
        Severity,
        Status,
        Suppressed,
    )

__all__ = [
    "Applicability",
    "AuditResult",
    "Config",
    "ConfigError",
    "FileOutcome",
    "Finding",
    "Fix",
    "Location",
    "Severity",
    "Status",
    "Suppressed",
    "__version__",
    "audit",
    "load_config",
]

_LAZY = {
    "Config": "config",
    "ConfigError": "config",
    "load_config": "config",
    "Applicability": "model",
    "AuditResult": "model",
    "FileOutcome": "model",
    "Finding": "model",
    "Fix": "model",
    "Location": "model",
    "Severity": "model",
    "Status": "model",
    "Suppressed": "model",
}


def audit(
    target: str | os.PathLike[str],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    config: Config | None = None,
    cache: bool = True,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> AuditResult:
    """Audit every Python file under `target` (`project.audit`, which documents the arguments).
    Raises `ConfigError` on a bad configuration and `FileNotFoundError` when `target` does not
    exist; everything file-level is in the result."""
    from .project import audit as run

    return run(
        target,
        select=select,
        ignore=ignore,
        config=config,
        cache=cache,
        jobs=jobs,
        progress=progress,
        on_total=on_total,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
