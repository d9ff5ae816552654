"""gathering-consolidate: audit, migrate and verify FastAPI + PostgreSQL multi-agent codebases.

Library first: `audit(path)` returns an `AuditResult` of plain data; the CLI only renders it.
"""

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
from .project import audit
from .version import __version__

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
