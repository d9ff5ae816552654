"""VFY004 pipelines: a cyclic pipeline is rejected at creation; a run is accepted (202 and a run
id) and ends; a cancelled run ends cancelled; a run over its timeout ends failed; nothing stays
running.

What: with the profile's `[pipelines]` bodies and paths: creates the cyclic pipeline (must get a
4xx), creates the valid one and runs it (must answer `accepted_status`, 202, with a run id) and
follows the run's status until it leaves the `active` states; runs the slow pipeline and cancels
it (must end `cancelled`); runs the slow pipeline with `timeout_run_body` (must end `failed`);
then `active_sql` (runs still pending/queued/running) must reach 0 within `wait_s`. An endpoint
the profile names and the app lacks is a failure; a step whose endpoint the profile does not name
is skipped with a note.

Why: a pipeline graph with a cycle runs forever; a run endpoint that simulates work (every node
"executed" at once), ignores cancellation or has no timeout leaves runs "running" for ever and
the dashboard lying.

Fix: validate the graph on create and update (`gathering_consolidate.pipelines.validate_pipeline`),
run pipelines in a background task with a timeout and a cancellation flag, and mark every run
cancelled/failed/completed in a `finally`.
"""

from __future__ import annotations

from typing import Any

from gathering_consolidate.verify.catalog import scalar
from gathering_consolidate.verify.checks import Outcome
from gathering_consolidate.verify.context import CheckFailed, NotApplicable, VerifyContext, short

ID = "VFY004"
NAME = "pipelines"
SECTION = "pipelines"  # the profile section it reads


class _Runs:
    def __init__(self, ctx: VerifyContext, out: Outcome, headers: dict[str, str]) -> None:
        self.ctx, self.out, self.headers = ctx, out, headers
        self.cfg = ctx.profile.section("pipelines")
        self.status_field = str(self.cfg.get("status_field", "status"))
        self.active = [str(s) for s in self.cfg.get("active", ["pending", "queued", "running"])]
        self.wait_s = float(self.cfg.get("wait_s", 10))
        self.status_ok = "status" in self.cfg and ctx.has_route("GET", str(self.cfg["status"]))

    def create(self, key: str) -> tuple[int, Any]:
        body = self.ctx.fill(self.cfg[key])
        response = self.ctx.request(
            "POST", str(self.cfg["create"]), headers=self.headers, json=body
        )
        data = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )
        return response.status_code, data

    def create_id(self, key: str) -> Any:
        code, data = self.create(key)
        if code >= 300 or not isinstance(data, dict):
            raise CheckFailed(f"creating the {key} pipeline answered {code}: {short(str(data))}")
        return data.get(str(self.cfg.get("id_field", "id")))

    def start(self, pipeline_id: Any, body_key: str, *, slow: bool = False) -> Any:
        path = self.ctx.fill(str(self.cfg["run"]), pipeline_id=pipeline_id)
        body = self.ctx.fill(self.cfg.get(body_key, {}))
        response = self.ctx.request("POST", path, headers=self.headers, json=body)
        expected = int(self.cfg.get("accepted_status", 202))
        data = response.json() if "json" in response.headers.get("content-type", "") else {}
        run_id = (
            data.get(str(self.cfg.get("run_id_field", "id"))) if isinstance(data, dict) else None
        )
        if response.status_code != expected or run_id is None:
            self.out.problem(
                f"POST {path} answered {response.status_code} "
                f"{'with' if run_id is not None else 'without'} a run id (expected {expected} "
                f"and a run id): {short(response.text, 120)}"
            )
        else:
            status = data.get(self.status_field)
            self.out.note(f"POST {path}: {response.status_code}, run {run_id} ({status})")
            if slow and status and status not in self.active:
                self.out.problem(
                    f"the slow pipeline's run answered by POST {path} is already {status!r}: the "
                    f"work is done (or simulated) inside the request, not in the background"
                )
        return run_id

    def status(self, run_id: Any, pipeline_id: Any = None) -> str | None:
        path = self.ctx.fill(str(self.cfg["status"]), run_id=run_id, pipeline_id=pipeline_id)
        response = self.ctx.request("GET", path, headers=self.headers)
        if response.status_code != 200:
            return None
        data = response.json()
        if isinstance(data, list):  # a list of runs: find ours
            data = next((r for r in data if r.get("id") == run_id), {})
        value = data.get(self.status_field) if isinstance(data, dict) else None
        return str(value) if value is not None else None

    def wait_final(
        self, run_id: Any, pipeline_id: Any = None, timeout: float | None = None
    ) -> str | None:
        last: list[str | None] = [None]

        def done() -> bool:
            last[0] = self.status(run_id, pipeline_id)
            return last[0] is not None and last[0] not in self.active

        self.ctx.poll(done, timeout=self.wait_s if timeout is None else timeout, interval=0.25)
        return last[0]


def run(ctx: VerifyContext, out: Outcome):
    cfg = ctx.profile.section("pipelines")
    missing = [k for k in ("create", "cyclic", "valid", "run") if k not in cfg]
    if missing:
        raise NotApplicable(f"the profile's [pipelines] names no {', '.join(missing)}")
    ctx.require_route("POST", str(cfg["create"]), "create a pipeline")
    headers = ctx.auth_headers()
    runs = _Runs(ctx, out, headers)

    code, data = runs.create("cyclic")
    if 400 <= code < 500:
        detail = data.get("detail") if isinstance(data, dict) else data
        out.note(f"cyclic pipeline rejected at creation: {code} {short(str(detail), 160)}")
    else:
        out.problem(f"a cyclic pipeline was accepted at creation: {code}")

    valid_id = runs.create_id("valid")
    ctx.require_route("POST", ctx.fill(str(cfg["run"]), pipeline_id=valid_id), "run a pipeline")
    run_id = runs.start(valid_id, "run_body")
    if not runs.status_ok:
        if "status" in cfg:
            out.problem(f"the app has no GET {cfg['status']} to follow a run (profile expects it)")
        else:
            out.note("the profile names no run status endpoint: final states not followed")
    elif run_id is not None:
        final = runs.wait_final(run_id, valid_id)
        if final is None or final in runs.active:
            out.problem(
                f"run {run_id} of the valid pipeline is still {final!r} after {runs.wait_s:g} s"
            )
        else:
            out.note(f"run {run_id} of the valid pipeline ended {final!r}")

    has_slow = "slow" in cfg
    if "cancel" in cfg and has_slow:
        slow_id = runs.create_id("slow")
        cancel_path = ctx.fill(str(cfg["cancel"]), run_id=0, pipeline_id=slow_id)
        if not ctx.has_route("POST", cancel_path):
            out.problem(f"the app has no POST {cfg['cancel']} to cancel a run (profile expects it)")
        else:
            slow_run = runs.start(slow_id, "run_body", slow=True)
            if slow_run is not None:
                path = ctx.fill(str(cfg["cancel"]), run_id=slow_run, pipeline_id=slow_id)
                response = ctx.request("POST", path, headers=headers)
                if response.status_code >= 300:
                    out.problem(
                        f"POST {path} answered {response.status_code}: {short(response.text)}"
                    )
                elif runs.status_ok:
                    final = runs.wait_final(slow_run, slow_id)
                    expected = str(cfg.get("cancelled", "cancelled"))
                    if final != expected:
                        out.problem(
                            f"cancelled run {slow_run} ended {final!r}, expected {expected!r}"
                        )
                    else:
                        out.note(f"cancelled run {slow_run} ended {final!r}")
    else:
        out.note("the profile names no cancel endpoint or slow pipeline: cancellation not checked")

    if "timeout_run_body" in cfg and has_slow:
        slow_id = runs.create_id("slow")
        timed = runs.start(slow_id, "timeout_run_body", slow=True)
        if timed is not None and runs.status_ok:
            final = runs.wait_final(timed, slow_id)
            expected = str(cfg.get("failed", "failed"))
            if final != expected:
                out.problem(f"run {timed} over its timeout ended {final!r}, expected {expected!r}")
            else:
                out.note(f"run {timed} over its timeout ended {final!r}")
    else:
        out.note("the profile names no timeout run: timeouts not checked")

    if "active_sql" in cfg:
        query = str(cfg["active_sql"])
        left = ctx.poll(lambda: int(scalar(ctx.database_url, query) or 0) == 0, timeout=runs.wait_s)
        count = int(scalar(ctx.database_url, query) or 0)
        if not left:
            out.problem(f"{count} run(s) still pending/queued/running after {runs.wait_s:g} s")
        else:
            out.note("no run is left pending, queued or running")
    return out.verdict("cycles rejected, runs accepted, cancelled and timed out, none left running")
