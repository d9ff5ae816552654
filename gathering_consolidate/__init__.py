"""gathering-consolidate: audit, migrate and verify FastAPI + PostgreSQL multi-agent codebases.

Library first: `audit(path)` returns an `AuditResult` of plain data; the CLI only renders it.
"""

__version__ = "0.1.0"

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
