"""VFY006 rate-limit: a burst of failed logins gets 429 Too Many Requests with `Retry-After`.

What: sends `burst` (30) login requests with a wrong password, back to back, to the profile's
`[rate_limit]` path (form or JSON body); passes when one answers `expect_status` (429) and
carries a `Retry-After` header (seconds or an HTTP date). Reports the request number of the
first 429 and the header's value.

Why: without a limit on the login endpoint, passwords are guessed at the speed of the server.

Fix: a limiter on the login route (per client address and per account), answering 429 with
`Retry-After`; keep its counters in a store shared by the replicas (the database) in production.
"""

from __future__ import annotations

import secrets
import time
from email.utils import parsedate_to_datetime

from gathering_consolidate.verify.checks import Outcome
from gathering_consolidate.verify.context import NotApplicable, VerifyContext

ID = "VFY006"
NAME = "rate-limit"
SECTION = "rate_limit"  # the profile section it reads


def _valid_retry_after(value: str) -> bool:
    if value.strip().isdigit():
        return True
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


def run(ctx: VerifyContext, out: Outcome):
    cfg = ctx.profile.section("rate_limit")
    if "path" not in cfg or not ("form" in cfg or "json" in cfg):
        raise NotApplicable("the profile's [rate_limit] names no login path and body")
    path = str(cfg["path"])
    ctx.require_route("POST", path, "rate-limited login")
    burst = int(cfg.get("burst", 30))
    expected = int(cfg.get("expect_status", 429))
    email = f"verify-burst-{secrets.token_hex(4)}@example.com"
    spec = {k: cfg[k] for k in ("path", "form", "json") if k in cfg}
    statuses: list[int] = []
    first = None
    wrong = "wrong-" + secrets.token_hex(6)  # never the account's password
    started = time.monotonic()
    for number in range(1, burst + 1):
        response = ctx.send(spec, email=email, password=wrong)
        statuses.append(response.status_code)
        if response.status_code == expected:
            first = (number, response.headers.get("retry-after"))
            break
    elapsed = time.monotonic() - started
    seen = ", ".join(f"{code} x{statuses.count(code)}" for code in sorted(set(statuses)))
    out.metrics.update({"requests": len(statuses), "burst_s": round(elapsed, 2)})
    if first is None:
        out.problem(
            f"{burst} failed logins on {path} in {elapsed:.1f} s got no {expected} (answers: {seen})"
        )
        return out.verdict("")
    number, retry_after = first
    out.metrics["first_limited"] = number
    out.note(f"request {number} of the burst answered {expected} after {elapsed:.1f} s ({seen})")
    if not retry_after:
        out.problem(f"the {expected} answer has no Retry-After header")
    elif not _valid_retry_after(retry_after):
        out.problem(f"Retry-After {retry_after!r} is neither seconds nor an HTTP date")
    else:
        out.metrics["retry_after"] = retry_after
        out.note(f"Retry-After: {retry_after}")
    return out.verdict(f"login limited at request {number} with Retry-After {retry_after}")
