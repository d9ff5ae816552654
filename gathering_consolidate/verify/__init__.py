"""Runtime verification: start the (migrated) app on a real PostgreSQL and prove it works.

`verify(target, app=..., profile=..., database_url=..., python=..., checks=..., progress=...)`
returns a `VerifyResult` (contract D). See `engine` for the run, `profile` for target profiles,
`checks` for the VFY checks and `load` for the locust load (and its distributed mode).
"""

from __future__ import annotations

from gathering_consolidate.verify.engine import VerifyError, verify
from gathering_consolidate.verify.results import CheckResult, VerifyResult

__all__ = ["CheckResult", "VerifyError", "VerifyResult", "verify"]
