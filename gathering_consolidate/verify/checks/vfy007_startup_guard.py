"""VFY007 startup-guard: the app refuses to start in an unsafe configuration (production with
authentication disabled).

What: starts a second instance of the app (same interpreter, same database) with the profile's
`[startup_guard] env` on top of its normal environment (for GatheRing `ENVIRONMENT=production`
and `DISABLE_AUTH=1`); passes when the process exits with an error before its health endpoint
answers, within `timeout_s`. The instance is always stopped; its last output lines are the
evidence (the refusal message).

Why: a demo switch (`DISABLE_AUTH=1`) that reaches production turns every request into an
authenticated one; the only safe place to catch it is the startup.

Fix: validate the settings at startup and raise when production meets a development switch
(see the AUT findings of the audit).
"""

from __future__ import annotations

import time

from gathering_consolidate.verify.checks import Outcome
from gathering_consolidate.verify.context import NotApplicable, VerifyContext
from gathering_consolidate.verify.runtime import AppProcess, RuntimeStartError

ID = "VFY007"
NAME = "startup-guard"
SECTION = "startup_guard"  # the profile section it reads


def run(ctx: VerifyContext, out: Outcome):
    cfg = ctx.profile.section("startup_guard")
    unsafe = {str(k): str(v) for k, v in ctx.fill(cfg.get("env", {})).items()}
    if not unsafe:
        raise NotApplicable("the profile's [startup_guard] names no unsafe configuration")
    timeout = float(cfg.get("timeout_s", 20))
    shown = " ".join(f"{k}={v}" for k, v in unsafe.items())
    guarded = AppProcess(
        app=ctx.app.app, cwd=ctx.app.cwd, env={**ctx.app.env, **unsafe},
        health_path=ctx.app.health_path, python=ctx.app.python, startup_timeout=timeout,
    )  # fmt: skip
    started = time.monotonic()
    try:
        guarded.launch()
        try:
            guarded.wait_healthy()
            healthy = True
        except RuntimeStartError:
            healthy = False
        code = guarded.returncode
        tail = [line for line in guarded.output().splitlines() if line.strip()][-6:]
    finally:
        guarded.stop(keep_log=False)
    elapsed = time.monotonic() - started
    out.metrics["seconds"] = round(elapsed, 2)
    if healthy:
        out.problem(f"started with {shown} and answered {ctx.app.health_path}: nothing refuses it")
        out.evidence.extend("app output: " + line for line in tail[-3:])
        return out.verdict("")
    if code is None:
        out.problem(f"with {shown} the app neither refused nor became healthy within {timeout:g} s")
        return out.verdict("")
    if code == 0:
        out.problem(f"with {shown} the app exited with code 0 (a refusal should be an error)")
        return out.verdict("")
    out.metrics["exit_code"] = code
    out.note(f"with {shown} the app exited with code {code} after {elapsed:.1f} s")
    out.evidence.extend("app output: " + line for line in tail[-4:] if not line.startswith("---"))
    return out.verdict(f"refuses to start with {shown} (exit code {code})")
