from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import (
    STRONG,
    config_key,
    env_default,
    imported_name,
    is_nonempty_str,
    is_placeholder,
    is_secret_name,
    is_test_path,
    looks_like_credential,
    looks_random,
    may_import,
    normalise,
    secret_strength,
    words,
)

_FIELD_FACTORIES = {"Field", "field", "Column"}
_SECRET_WRAPPERS = {"SecretStr", "SecretBytes"}
_VERIFYING_WORDS = frozenset(
    {
        "secret",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "private",
        "signing",
        "encryption",
        "hmac",
        "credential",
        "credentials",
        "jwt",
        "session",
    }
)
_NON_PRODUCTION = frozenset({"docs", "doc", "examples", "example"})


class HardcodedSecretDefault(FileCheck):
    """A secret has a hardcoded value or default (`os.getenv("JWT_SECRET", "dev-secret")`).

    ## Why is this bad?
    A default makes a missing variable silent: a deployment that forgot `SECRET_KEY` starts and
    signs tokens with a key published in the repository, so anyone can mint an admin token. A
    secret must come from the environment or a secret store, and the app must refuse to start
    without it.

    Reported at the line that gives the value:

    - a configuration read (`os.getenv`, `os.environ.get`, `config(...)`, an `_env_*` helper)
      of a secret-named key with a non-empty literal default;
    - an assignment (module, class, settings field, local) of a non-empty string literal to a
      secret-named variable or attribute, including `Field("...")`/`Field(default="...")`;
    - a secret-named keyword argument given a literal (`SessionMiddleware(app, secret_key="x")`)
      and a literal key passed to `jwt.encode`/`jwt.decode`.

    Secret names contain `secret`, `password`, `passwd`, `token`, `api_key`, `private_key`,
    `signing_key`, `credential`, ... and do not end in a word that makes them metadata (`_url`,
    `_type`, `_name`, `_field`, `_expire_minutes`, `_algorithm`, `_length`, `_header`, ...).
    A name whose only secret word is `token` (`SERVICE_TOKEN`) is ambiguous (lexer tokens,
    sentinel markers): an assignment or argument is then reported only when the literal looks
    like a credential (8+ characters, no spaces, not an UPPER_CASE constant name, path or
    template); a configuration default always is.

    Pydantic fields are read through `Field(default=...)`, `Field(default_factory=lambda: ...)`
    and `SecretStr("...")`.

    Not reported: empty defaults (`os.getenv("SECRET_KEY", "")` fails closed), defaults that are
    not literals (`os.getenv("DATABASE_URL", DEFAULT_DATABASE_URL)`), masks (`"********"`), enum
    members (`apiKey = "apiKey"`), key names (`dict(password="passwd")` maps parameter names);
    in an assignment or argument, placeholders that say they hold nothing (`api_key="EMPTY"`,
    `token="xoxb-valid"`, `"dummy"`) and keys the app only presents to another service
    (`api_key`, `token`, not `secret`/`password`/`signing_key`) unless the literal has a
    machine-made part as real keys do (`"sk-4f9a2c81d7e3"`); test code, and documentation or
    example scripts (`docs/`, `examples/`) that set a dummy secret to import the app for a
    one-off run.
    Evidence: `name`, `how` (`default`, `assignment`, `argument`).

    ## Known problems
    A literal assigned to a non-secret name and used as a secret elsewhere is not traced.
    """

    id, name = "AUT004", "hardcoded-secret-default"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            import os
            SECRET_KEY = os.environ["SECRET_KEY"]
            JWT_SECRET = os.getenv("JWT_SECRET", "")
            DATABASE_URL = os.getenv("DATABASE_URL", DEFAULT_DATABASE_URL)
            ACCESS_TOKEN_EXPIRE_MINUTES = int(os.getenv("ACCESS_TOKEN_EXPIRE_MINUTES", "60"))
            TOKEN_TYPE = "bearer"
        """),
        Valid("""
            from fastapi.security import OAuth2PasswordBearer
            oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/login")
            PASSWORD_FIELD = "password"
        """),
        Valid(
            """
            SECRET_KEY = "test-secret"
            """,
            path="tests/conftest.py",
        ),
        Valid(
            """
            import os

            JWT_SECRET = "test"
            os.environ["JWT_SECRET"] = JWT_SECRET

            from app.main import api  # noqa: E402
            print(api.openapi())
            """,
            path="docs/scripts/generate_api_schema.py",
        ),
        Valid("""
            from slack_bolt import App

            def add_local_model(session, org_id):
                session.add(ModelsConfig(org_id=org_id, provider="Local LLM", api_key="EMPTY"))

            app = App(token="xoxb-valid", token_verification_enabled=False)
        """),
        Valid("""
            import enum

            class SecuritySchemeType(enum.Enum):
                apiKey = "apiKey"

            _WILDCARD_TOKEN = "*"
            REVISION_TOKEN = "REVISION_SCRIPT_FILENAME"
            translate = dict(database="db", username="user", password="passwd")

            def masked(url):
                return url.replace(password="********")
        """),
    ]
    INVALID = [
        Invalid(
            """
            import os
            SECRET_KEY = os.getenv("SECRET_KEY", "gathering-dev-secret-key-change-me")
            """,
            line=2,
            evidence={"name": "SECRET_KEY", "how": "default"},
        ),
        Invalid(
            """
            from pydantic_settings import BaseSettings

            class Settings(BaseSettings):
                jwt_secret: str = "dev-secret"
                admin_password: str = Field(default="admin")
            """,
            count=2,
            line=4,
            evidence={"name": "jwt_secret", "how": "assignment"},
        ),
        Invalid(
            """
            import jwt
            from starlette.middleware.sessions import SessionMiddleware

            def setup(app):
                app.add_middleware(SessionMiddleware, secret_key="s3cr3t")

            def sign(payload):
                return jwt.encode(payload, "hardcoded", algorithm="HS256")
            """,
            count=2,
            line=5,
            evidence={"name": "secret_key", "how": "argument"},
        ),
        Invalid(
            """
            from pydantic import BaseModel, Field, SecretStr

            class AuthSettings(BaseModel):
                jwt_secret: SecretStr = Field(default_factory=lambda: SecretStr("dev-jwt-key"))
            """,
            line=4,
            evidence={"name": "jwt_secret", "how": "assignment"},
        ),
        Invalid(
            """
            SERVICE_TOKEN = "svc_4f9a2c81d7e3"
            """,
            evidence={"name": "SERVICE_TOKEN", "how": "assignment"},
        ),
        Invalid(
            """
            from decouple import config
            API_KEY = config("OPENAI_API_KEY", default="sk-test")
            """,
            evidence={"name": "OPENAI_API_KEY", "how": "default"},
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        if _non_production(ctx.path):
            return
        reported: set[int] = set()

        def report(node: ast.AST, name: str, how: str) -> Finding | None:
            if node.lineno in reported:
                return None
            reported.add(node.lineno)
            text = {
                "default": "defaults to a hardcoded value",
                "assignment": "is a hardcoded value",
                "argument": "is passed as a hardcoded value",
            }[how]
            return ctx.finding(
                self,
                node,
                f"secret `{name}` {text}; read it from the environment and refuse to start"
                " without it",
                evidence={"name": name, "how": how},
            )

        found: list[Finding | None] = []
        jwt_imported = may_import(ctx, _JWT_CALLS)  # else no call resolves to a JWT function
        for call in ctx.nodes(ast.Call):
            key = config_key(ctx, call)
            if key and is_secret_name(key) and is_nonempty_str(env_default(call)):
                found.append(report(call, key, "default"))
                continue
            for keyword in call.keywords:
                if _hardcoded(keyword.arg, keyword.value):
                    found.append(report(call, keyword.arg or "", "argument"))
            name = imported_name(ctx, call.func) if jwt_imported else ""
            if name in _JWT_CALLS:
                key_arg = call.args[1] if len(call.args) > 1 else None
                key_arg = key_arg or next((k.value for k in call.keywords if k.arg == "key"), None)
                if is_nonempty_str(key_arg):
                    found.append(report(call, f"{name} key", "argument"))
        for node in ctx.nodes(ast.Assign, ast.AnnAssign):
            value = _field_default(node.value)
            if not is_nonempty_str(value) or _in_enum(ctx, node):  # the cheaper test first
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
                if _hardcoded(name, value):
                    found.append(report(node, name or "", "assignment"))
        yield from sorted((f for f in found if f), key=lambda f: f.location)


def _hardcoded(name: str | None, value: ast.AST | None) -> bool:
    """A literal given to a secret-named target that looks like a value, not a sentinel, mask,
    enum member (`apiKey = "apiKey"`) or key name (`password="passwd"` in a mapping of names)."""
    if not is_nonempty_str(value):  # before the name's words: most values are not literals
        return False
    strength = secret_strength(name)
    if not strength:
        return False
    assert value is not None
    text = value.value if isinstance(value, ast.Constant) else ast.unparse(value)
    text = text.decode("latin-1") if isinstance(text, bytes) else str(text)
    if normalise(text) == normalise(name or "") or len(set(text)) == 1:
        return False
    if re.fullmatch(r"\w+", text) and is_secret_name(text):
        return False
    if is_placeholder(text):
        return False
    if _outbound(name or "") and not looks_random(text):
        return False
    return strength == STRONG or looks_like_credential(text)


_JWT_CALLS = frozenset({"jwt.encode", "jwt.decode", "jose.jwt.encode", "jose.jwt.decode"})


def _outbound(name: str) -> bool:
    """A key the app presents to another service (`api_key`, `token`, `access_token`), not one it
    verifies or signs with (`secret`, `password`, `signing_key`, `hmac`, `credentials`)."""
    parts = set(words(name))
    return not parts & _VERIFYING_WORDS and bool(parts & {"key", "apikey", "token"})


def _non_production(path: str) -> bool:
    """Test code, and documentation or example scripts that configure a process for a one-off
    run (`docs/scripts/generate_schema.py`): they ship in no deployment."""
    return is_test_path(path) or any(p in _NON_PRODUCTION for p in path.split("/")[:-1])


def _in_enum(ctx: FileContext, node: ast.AST) -> bool:
    parent = ctx.parents.get(node)
    return isinstance(parent, ast.ClassDef) and any(
        (ctx.qualified_name(b) or "").endswith(("Enum", "Flag")) for b in parent.bases
    )


def _field_default(value: ast.AST | None) -> ast.AST | None:
    """The default of `Field("x")`/`Field(default="x")`/`Field(default_factory=lambda: "x")`,
    unwrapped from `SecretStr("x")`; else the value itself."""
    if isinstance(value, ast.Call):
        name = _call_name(value)
        if name in _FIELD_FACTORIES:
            default = next((k.value for k in value.keywords if k.arg == "default"), None)
            factory = next((k.value for k in value.keywords if k.arg == "default_factory"), None)
            if default is None and isinstance(factory, ast.Lambda):
                default = factory.body
            if default is None and value.args:
                default = value.args[0]
            value = default
    if isinstance(value, ast.Call) and _call_name(value) in _SECRET_WRAPPERS and value.args:
        return value.args[0]
    return value


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
