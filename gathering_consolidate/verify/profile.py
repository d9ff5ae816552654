"""Target profiles: what `verify` needs to know about an app, in TOML, so that an app built like
GatheRing is verified by writing a profile, not code.

A profile is found by name in `rules/targets/<name>.toml` (shipped with the toolkit) or given as
a file path. Every section is optional; a check whose section (or endpoint) is missing is
"not-applicable" with the reason, never a silent pass. Strings may hold placeholders filled in at
run time: `{database_url}`, `{db_host}`, `{db_port}`, `{db_user}`, `{db_password}`, `{db_name}`,
`{python}`, `{target}`, `{email}`, `{password}`, `{run_at}`, `{unique}` and ids returned by
earlier requests (`{pipeline_id}`, `{run_id}`, `{action_id}`).

Sections and keys (see `rules/targets/gathering_app.toml` for a complete example):

- `[target]` name, app (default for `--app`), cwd (relative to PATH), health (path), openapi
  (path), startup_timeout (s), port (0: a free one), check_timeout (s, default 300: a check
  still running then is stopped and reported as an error).
- `[database]` schema (SQL files or globs, applied in order), setup (commands run in the target's
  environment after the schema, e.g. alembic), schemas_ignored (never snapshotted).
- `[env]` environment of the app (the profile's values win over the inherited environment).
- `[auth]` register / login (`{path, json|form, token_field}`), me, logout (paths), reject_status,
  jwt_secret_env, jwt_algorithm; `[auth.contract]` field -> JSON type of the user response;
  `[auth.messages]` expired / revoked / invalid -> regular expression the 401 detail matches.
- `[load]` endpoints (`[{path, method, name, weight, auth}]`), users, spawn_rate, run_time,
  max_health_p95_ms, max_over_idle, idle_floor_ms, max_failure_ratio.
- `[injection]` skip (`"METHOD /path"` globs), seed (requests run first so that id 1 exists),
  key_tables (checksummed also around write operations), writes (probe body fields of POST/PUT/
  PATCH too).
- `[pipelines]` create, run, status, cancel (paths); cyclic, valid, slow (pipeline bodies);
  run_body, timeout_run_body; id_field, run_id_field, status_field; cancelled, failed, active
  (status values); wait_s; active_sql.
- `[schedules]` create (path), body, lock_table, started_sql, executions_sql, wait_s.
- `[rate_limit]` path, form|json, burst, expect_status.
- `[startup_guard]` env (the unsafe configuration), timeout_s.

Any check's section may say `not_applicable = "reason"`: the check is then reported
not-applicable with that reason (an app without pipelines, a rate limit enforced by a gateway
verify does not start), which keeps the reason in the profile, next to the contract.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

SECTIONS: dict[str, frozenset[str]] = {
    "target": frozenset(
        {
            "name",
            "app",
            "cwd",
            "health",
            "openapi",
            "startup_timeout",
            "port",
            "description",
            "check_timeout",
        }
    ),
    "database": frozenset({"schema", "setup", "schemas_ignored"}),
    "env": frozenset(),  # free-form
    "auth": frozenset(
        {
            "register",
            "login",
            "me",
            "logout",
            "reject_status",
            "jwt_secret_env",
            "jwt_algorithm",
            "contract",
            "messages",
            "password",
            "email_domain",
        }
    ),
    "load": frozenset(
        {
            "endpoints",
            "users",
            "spawn_rate",
            "run_time",
            "max_health_p95_ms",
            "max_over_idle",
            "idle_floor_ms",
            "max_failure_ratio",
            "probe_interval_ms",
            "seed",
        }
    ),
    "injection": frozenset({"skip", "seed", "key_tables", "writes", "max_operations"}),
    "pipelines": frozenset(
        {
            "create",
            "run",
            "status",
            "cancel",
            "cyclic",
            "valid",
            "slow",
            "run_body",
            "timeout_run_body",
            "id_field",
            "run_id_field",
            "status_field",
            "cancelled",
            "failed",
            "active",
            "wait_s",
            "active_sql",
            "accepted_status",
        }
    ),
    "schedules": frozenset(
        {"create", "body", "lock_table", "started_sql", "executions_sql", "wait_s", "id_field"}
    ),
    "rate_limit": frozenset({"path", "form", "json", "burst", "expect_status"}),
    "startup_guard": frozenset({"env", "timeout_s"}),
}


class ProfileError(ValueError):
    """A profile that cannot be found or read, or holds unknown keys."""


@dataclass
class Profile:
    name: str
    source: str  # file path, or "default"
    data: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        value = self.data.get(name)
        return dict(value) if isinstance(value, dict) else {}

    def get(self, section: str, key: str, default: Any = None) -> Any:
        return self.section(section).get(key, default)

    @property
    def health_path(self) -> str:
        return str(self.get("target", "health", "/health"))

    @property
    def openapi_path(self) -> str:
        return str(self.get("target", "openapi", "/openapi.json"))


def targets_dir() -> Path:
    """The profiles shipped with the toolkit (`rules/targets/`)."""
    packaged = resources.files("gathering_consolidate").joinpath("rules", "targets")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "rules" / "targets"


def available_profiles() -> list[str]:
    directory = targets_dir()
    return sorted(p.stem for p in directory.glob("*.toml")) if directory.is_dir() else []


def load_profile(spec: str | Path | None) -> Profile:
    """The profile named `spec` (in `rules/targets/`) or in the file `spec`; None: an empty
    profile (every check that needs an endpoint is then not-applicable)."""
    if spec is None:
        return Profile("default", "default", {})
    path = Path(spec)
    if not (path.suffix == ".toml" or path.exists()):
        path = targets_dir() / f"{spec}.toml"
        if not path.is_file():
            known = ", ".join(available_profiles()) or "none"
            raise ProfileError(f"no profile named {spec!r} (known: {known})")
    if not path.is_file():
        raise ProfileError(f"profile file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"cannot read profile {path}: {exc}") from exc
    validate(data, str(path))
    name = str(data.get("target", {}).get("name") or path.stem)
    return Profile(name, str(path), data)


def validate(data: dict[str, Any], where: str) -> None:
    for section, value in data.items():
        if section not in SECTIONS:
            known = ", ".join(sorted(SECTIONS))
            raise ProfileError(f"{where}: unknown section [{section}] (known: {known})")
        if not isinstance(value, dict):
            raise ProfileError(f"{where}: [{section}] must be a table")
        allowed = SECTIONS[section] | {"not_applicable"}
        if section == "env":
            continue
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ProfileError(
                f"{where}: unknown key(s) in [{section}]: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(allowed))})"
            )


def fill(value: Any, values: dict[str, Any]) -> Any:
    """`value` with `{placeholder}`s replaced from `values`, recursively through lists and
    tables; a string that is exactly one placeholder takes the value's own type."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{") and stripped.endswith("}") and stripped[1:-1] in values:
            return values[stripped[1:-1]]
        out = value
        for key, replacement in values.items():
            token = "{" + key + "}"
            if token in out:
                out = out.replace(token, str(replacement))
        return out
    if isinstance(value, list):
        return [fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, values) for key, item in value.items()}
    return value
