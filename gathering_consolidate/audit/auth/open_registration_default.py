from __future__ import annotations

import ast
from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import config_key, env_default, is_test_path, words

_SIGNUP_WORDS = frozenset(
    {"registration", "register", "signup", "signups", "enrollment", "enrolment", "selfservice"}
)
_SIGNUP_PAIRS = (("sign", "up"), ("self", "register"), ("self", "registration"))
_ON_WORDS = frozenset({"enabled", "enable", "allowed", "allow", "open", "on"})
_TRUTHY = frozenset({"true", "1", "yes", "on", "y", "t", "enabled"})


class OpenRegistrationDefault(FileCheck):
    """Self-registration is switched on by default (`REGISTRATION_ENABLED` defaults to true).

    ## Why is this bad?
    With registration on, anyone who can reach the API creates an account and logs in as a
    member of whatever organisation the route accepts. That is a product decision for a
    public service, but as a default it opens every deployment that did not know the switch
    existed, internal tools included. An access-granting switch must fail closed: off unless
    the deployment turns it on.

    ## What is reported
    A configuration read (`os.getenv`, `config(...)`, an `env`/`settings` helper) of a flag
    that turns sign-up on (`REGISTRATION_ENABLED`, `ALLOW_SIGNUP`, `SELF_REGISTRATION`,
    `ENABLE_SIGNUPS`) with a truthy literal default (`True`, `"true"`, `"1"`), and a field of a
    settings class (`BaseSettings` subclass or `*Settings`/`*Config` class) with such a name set
    to `True`. Test code is not reported. Evidence: `flag`, `default`.

    ## Fix
    Default to off (`default="false"`) and document the variable that enables it.
    """

    id, name = "AUT011", "open-registration-default"
    severity = Severity.MEDIUM
    VALID = [
        Valid("""
            from starlette.config import Config

            config = Config(".env")
            REGISTRATION_ENABLED = config("REGISTRATION_ENABLED", cast=bool, default=False)
            REGISTRATION_URL = config("REGISTRATION_URL", default="/register")
        """),
        Valid("""
            from pydantic_settings import BaseSettings

            class Settings(BaseSettings):
                allow_signup: bool = False
                registration_email_template: str = "welcome.html"
        """),
    ]
    INVALID = [
        Invalid(
            """
            from starlette.config import Config

            config = Config(".env")
            AUTH_REGISTRATION_ENABLED = config(
                "AUTH_REGISTRATION_ENABLED", default="true"
            )
            REGISTRATION_ENABLED = AUTH_REGISTRATION_ENABLED != "false"
            """,
            line=4,
            evidence={"flag": "AUTH_REGISTRATION_ENABLED", "default": "true"},
        ),
        Invalid(
            """
            from pydantic_settings import BaseSettings

            class Settings(BaseSettings):
                users_open_registration: bool = True
            """,
            line=4,
            evidence={"flag": "users_open_registration", "default": "True"},
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        for call in ctx.nodes(ast.Call):
            key = config_key(ctx, call)
            if key and _is_signup_switch(key) and _truthy(env_default(call)):
                yield self._finding(ctx, call, key, env_default(call))
        for cls in ctx.nodes(ast.ClassDef):
            if not _is_settings_class(ctx, cls):
                continue
            for stmt in cls.body:
                if (
                    isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and _is_signup_switch(stmt.target.id)
                    and _truthy(stmt.value)
                ):
                    yield self._finding(ctx, stmt, stmt.target.id, stmt.value)

    def _finding(
        self, ctx: FileContext, node: ast.AST, flag: str, default: ast.AST | None
    ) -> Finding:
        shown = str(default.value) if isinstance(default, ast.Constant) else "?"
        return ctx.finding(
            self,
            node,
            f"self-registration switch `{flag}` defaults to on; anyone who can reach the API can"
            " create an account unless the deployment turns it off",
            evidence={"flag": flag, "default": shown},
        )


def _is_signup_switch(name: str) -> bool:
    parts = words(name)
    signup = bool(set(parts) & _SIGNUP_WORDS) or any(
        a in parts and b in parts for a, b in _SIGNUP_PAIRS
    )
    return signup and bool(set(parts) & _ON_WORDS)


def _truthy(node: ast.AST | None) -> bool:
    if not isinstance(node, ast.Constant):
        return False
    if node.value is True:
        return True
    return isinstance(node.value, str) and node.value.strip().lower() in _TRUTHY


def _is_settings_class(ctx: FileContext, cls: ast.ClassDef) -> bool:
    for base in cls.bases:
        if (ctx.qualified_name(base) or "").rsplit(".", 1)[-1] == "BaseSettings":
            return True
    return cls.name.endswith(("Settings", "Config", "Configuration"))
