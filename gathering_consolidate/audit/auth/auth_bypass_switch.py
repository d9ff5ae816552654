from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...model import Finding, Severity
from ..base import FileContext, Invalid, ProjectCheck, ProjectContext, Valid
from .helpers import config_key, is_test_path, mentions_environment, normalise, words

#: Flag names that turn authentication (or a protection next to it) off.
_SWITCH = re.compile(
    r"(?:^|_)(?:disable|disabled|skip|bypass|no|without)_(?:\w+_)?"
    r"(?:auth|authentication|authn|authz|authorization|login|security|csrf|jwt|permissions?|acl)"
    r"(?:_|$)"
    r"|(?:^|_)(?:auth|authentication|login|security|csrf|jwt)_(?:disabled|off|bypass|optional|skip)"
    r"(?:_|$)"
    r"|(?:^|_)insecure(?:_|$)"
    r"|^(?:auth_enabled|enable_auth|require_auth|requires_auth|auth_required|use_auth"
    r"|login_required)$"
)
_EXITS = {"sys.exit", "os._exit", "exit", "quit", "os.abort"}


def is_auth_switch(name: str) -> bool:
    return bool(_SWITCH.search("_".join(words(name))))


@dataclass
class SwitchFacts:
    reads: list[Finding] = field(default_factory=list)
    guarded: list[str] = field(default_factory=list)  # normalised flag names


class AuthBypassSwitch(ProjectCheck):
    """An auth-disabling switch is read with no startup guard that refuses it in production.

    Switches are flags such as `DISABLE_AUTH`, `SKIP_AUTH`, `AUTH_ENABLED`, `ALLOW_INSECURE_*`,
    read from the environment or the configuration.

    ## Why is this bad?
    One environment variable left over from a demo, a copied `.env` or a Helm value turns every
    request into an authenticated one. Nothing in the running app says so except, perhaps, a log
    line at startup. The switch must be impossible to turn on in production: the app should
    refuse to start.

    Reported at each read of the flag: `os.getenv("DISABLE_AUTH")`, `os.environ["DISABLE_AUTH"]`,
    a configuration helper called with the flag's name (`config("DISABLE_AUTH")`,
    `_env_flag("DISABLE_AUTH")`), or a field of a settings class (`disable_auth: bool = False`
    in a `BaseSettings` subclass or a `*Settings`/`*Config` class).

    A guard anywhere in the project silences every read of that flag: an `if` (or `assert`)
    whose test names both the flag (by variable, attribute or string) and the environment
    (`"production"`, `settings.is_production`, `ENVIRONMENT`, `DEBUG`, ...) and whose body
    raises or exits (`raise RuntimeError`, `sys.exit`). So does a read that is itself combined
    with an environment condition into a value (`skip = os.getenv("SKIP_AUTH") == "1" and
    ENV == "development"`). A branch that only logs a warning is not a guard, even when its test
    names the environment. Test code is not reported.
    Evidence: `flag`, `source` (`env`, `config`, `settings`).
    """

    id, name = "AUT001", "auth-bypass-switch"
    severity = Severity.CRITICAL
    collector = "aut001"
    VALID = [
        Valid("""
            import os

            DISABLE_AUTH = os.getenv("DISABLE_AUTH") == "1"
            ENVIRONMENT = os.getenv("ENVIRONMENT", "development")

            if DISABLE_AUTH and ENVIRONMENT == "production":
                raise RuntimeError("DISABLE_AUTH must not be set in production")
        """),
        Valid(
            """
            import os

            def skip_auth():
                return os.getenv("SKIP_AUTH") == "1" and os.getenv("APP_ENV") == "development"
            """
        ),
        Valid(
            """
            from pydantic_settings import BaseSettings

            class Settings(BaseSettings):
                environment: str = "development"
                disable_auth: bool = False
            """,
            path="app/config.py",
            files={
                "app/main.py": """
                    import sys
                    from app.config import Settings
                    settings = Settings()
                    if settings.environment == "production" and settings.disable_auth:
                        sys.exit("refusing to start with authentication disabled")
                """,
            },
        ),
        Valid(
            """
            import os

            def test_demo_mode(monkeypatch):
                monkeypatch.setenv("DISABLE_AUTH", "1")
                assert os.getenv("DISABLE_AUTH") == "1"
            """,
            path="tests/test_demo.py",
        ),
        Valid("""
            import os
            AUTH_TOKEN_URL = os.getenv("AUTH_TOKEN_URL", "/auth/token")
        """),
    ]
    INVALID = [
        Invalid(
            """
            import os

            # Local development without logging in.
            DISABLE_AUTH = os.getenv("DISABLE_AUTH", "false").lower() in ("1", "true")

            if DISABLE_AUTH:
                print("WARNING: authentication is disabled")
            """,
            line=4,
            evidence={"flag": "DISABLE_AUTH", "source": "env"},
        ),
        Invalid(
            """
            from pydantic_settings import BaseSettings

            class Settings(BaseSettings):
                auth_enabled: bool = True
            """,
            line=4,
            evidence={"flag": "auth_enabled", "source": "settings"},
        ),
        Invalid(
            """
            import os
            from decouple import config

            BYPASS = config("BYPASS_LOGIN", cast=bool, default=False)
            INSECURE = os.environ["ALLOW_INSECURE_COOKIES"]
            """,
            count=2,
            evidence={"flag": "BYPASS_LOGIN", "source": "config"},
        ),
    ]

    @classmethod
    def collect(cls, ctx: FileContext) -> SwitchFacts:
        facts = SwitchFacts()
        if is_test_path(ctx.path):
            return facts
        guard_tests: list[ast.AST] = []
        for node in ctx.nodes(ast.If, ast.Assert):
            if _refuses(ctx, node):
                guard_tests.append(node.test)
                facts.guarded.extend(_flags_in(ctx, node.test))
        tests = {id(n.test) for n in ctx.nodes(ast.If, ast.While, ast.Assert, ast.IfExp)}
        for node in ctx.nodes(ast.BoolOp):
            # A value computed as `flag and <environment condition>`; in an `if` test only a
            # body that refuses to start counts (see `_refuses`).
            value = isinstance(node.op, ast.And) and id(node) not in tests
            if value and mentions_environment(node):
                facts.guarded.extend(_flags_in(ctx, node))
        inside_guard = {id(n) for test in guard_tests for n in ast.walk(test)}
        for node, flag, source in _reads(ctx):
            if id(node) in inside_guard:
                continue
            facts.reads.append(
                ctx.finding(
                    cls,
                    node,
                    f"`{flag}` can switch authentication off and no startup guard refuses it"
                    " in production",
                    evidence={"flag": flag, "source": source},
                )
            )
        return facts

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterator[Finding]:
        guarded = {g for fact in facts.values() for g in fact.guarded}
        for path in sorted(facts):
            for finding in facts[path].reads:
                if normalise(str(finding.evidence["flag"])) not in guarded:
                    yield finding


def _reads(ctx: FileContext) -> Iterator[tuple[ast.AST, str, str]]:
    for call in ctx.nodes(ast.Call):
        key = config_key(ctx, call)
        if key and is_auth_switch(key):
            name = ctx.qualified_name(call.func) or ""
            yield call, key, "env" if name.startswith("os.") else "config"
    for sub in ctx.nodes(ast.Subscript):
        key = sub.slice
        if (
            isinstance(sub.ctx, ast.Load)
            and isinstance(key, ast.Constant)
            and isinstance(key.value, str)
            and is_auth_switch(key.value)
            and (ctx.qualified_name(sub.value) or "") in {"os.environ", "os.environb"}
        ):
            yield sub, key.value, "env"
    for cls in ctx.nodes(ast.ClassDef):
        if not _is_settings_class(ctx, cls):
            continue
        for stmt in cls.body:
            target = stmt.target if isinstance(stmt, ast.AnnAssign) else None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target = stmt.targets[0]
            if isinstance(target, ast.Name) and is_auth_switch(target.id):
                yield stmt, target.id, "settings"


def _is_settings_class(ctx: FileContext, cls: ast.ClassDef) -> bool:
    for base in cls.bases:
        name = ctx.qualified_name(base) or ""
        if name.rsplit(".", 1)[-1] == "BaseSettings":
            return True
    return cls.name.endswith(("Settings", "Config", "Configuration"))


def _refuses(ctx: FileContext, node: ast.If | ast.Assert) -> bool:
    if not mentions_environment(node.test):
        return False
    if isinstance(node, ast.Assert):
        return True
    for stmt in node.body:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Raise):
                return True
            if isinstance(sub, ast.Call) and (ctx.qualified_name(sub.func) or "") in _EXITS:
                return True
    return False


def _flags_in(ctx: FileContext, test: ast.AST) -> list[str]:
    found: list[str] = []
    for sub in ast.walk(test):
        name = None
        if isinstance(sub, ast.Name):
            name = sub.id
        elif isinstance(sub, ast.Attribute):
            name = sub.attr
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            name = sub.value
        if name and is_auth_switch(name):
            found.append(normalise(name))
    return found
