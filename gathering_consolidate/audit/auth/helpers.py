"""Shared by the AUT checks: what names a secret, how configuration is read, which expressions
name a production/environment condition."""

from __future__ import annotations

import ast
import functools
import itertools
import re

from ..astutil import is_test_path, words
from ..base import FileContext

__all__ = [
    "ENV_READERS",
    "config_key",
    "env_default",
    "identifier",
    "imported_name",
    "is_nonempty_str",
    "is_placeholder",
    "is_secret_name",
    "is_test_path",
    "looks_like_credential",
    "looks_random",
    "mentions_environment",
    "normalise",
    "secret_strength",
    "words",
]

#: Calls that read one environment variable: `os.getenv("X")`, `os.environ.get("X")`.
ENV_READERS = frozenset({"os.getenv", "os.environ.get", "os.environ.setdefault", "os.environb.get"})
_CONFIG_READER = re.compile(r"env|environ|config|setting|secret|getenv|flag", re.IGNORECASE)

# Words that make a name secret, and last words that make it metadata about a secret instead.
_SECRET_WORDS = frozenset(
    {
        "secret",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "apikey",
        "credential",
        "credentials",
        "privatekey",
        "signingkey",
        "encryptionkey",
        "hmac",
    }
)
_SECRET_PAIRS = (("api", "key"), ("private", "key"), ("signing", "key"), ("encryption", "key"))
_NOT_SECRET_TAIL = frozenset(
    {
        "url",
        "uri",
        "path",
        "file",
        "dir",
        "name",
        "type",
        "kind",
        "header",
        "length",
        "len",
        "strength",
        "score",
        "expire",
        "expires",
        "expiry",
        "exp",
        "minutes",
        "seconds",
        "hours",
        "days",
        "ttl",
        "lifetime",
        "algorithm",
        "alg",
        "field",
        "prefix",
        "env",
        "var",
        "rounds",
        "policy",
        "hint",
        "id",
        "enabled",
        "required",
        "min",
        "max",
        "scheme",
        "endpoint",
        "location",
        "format",
        "count",
        "size",
        "version",
        "at",
        "mode",
        "status",
        "label",
        "param",
        "placeholder",
        "prompt",
        "message",
        "msg",
        "help",
        "text",
        "description",
        "error",
        "pattern",
        "regex",
    }
)


STRONG, WEAK = 2, 1


def secret_strength(name: str | None) -> int:
    """How surely a name holds a secret: `STRONG` for `SECRET_KEY`, `jwt_secret`,
    `DB_PASSWORD`, `apiKey`; `WEAK` for names ending in `token` (`service_token`: the word also
    names lexer tokens and sentinel markers); 0 for `TOKEN_DATA`,  `token_url`, `tokenUrl`, `password_field`, `token_type`,
    `ACCESS_TOKEN_EXPIRE_MINUTES`, `is_token`."""
    if not name:
        return 0
    parts = words(name)
    if not parts or parts[-1] in _NOT_SECRET_TAIL or parts[0] in {"is", "has", "use", "uses"}:
        return 0
    joined = set(parts) | {a + b for a, b in itertools.pairwise(parts)}
    if joined & _SECRET_WORDS or any(a in parts and b in parts for a, b in _SECRET_PAIRS):
        return STRONG
    return WEAK if parts[-1] == "token" else 0


def is_secret_name(name: str | None) -> bool:
    return secret_strength(name) > 0


def looks_like_credential(value: str) -> bool:
    """A literal that could be a real credential (8+ characters mixing at least two of lower
    case, upper case, digits and symbols), not a sentinel, mask, constant name, word, path or
    template: `"gh_8f2aC1..."` yes; `"*"`, `"********"`, `"DEFAULT"`, `"_sa_default"`,
    `"/auth/token"`, `"{token}"` no."""
    if len(value) < 8 or len(set(value)) == 1 or re.search(r"\s", value):
        return False
    if re.fullmatch(r"[A-Z0-9_]+", value) or value.startswith("/") or "://" in value:
        return False
    if re.search(r"[{}%]", value):
        return False
    classes = [r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9_\s]"]
    return sum(bool(re.search(c, value)) for c in classes) >= 2


#: Words that say a literal holds no secret: `api_key="EMPTY"`, `token="xoxb-placeholder"`.
_PLACEHOLDER_WORDS = frozenset(
    {
        "empty",
        "none",
        "null",
        "nil",
        "unset",
        "unused",
        "dummy",
        "placeholder",
        "fake",
        "mock",
        "stub",
        "sample",
        "example",
        "valid",
        "invalid",
        "notneeded",
        "na",
        "xxx",
        "foo",
        "bar",
        "baz",
    }
)


def is_placeholder(value: str) -> bool:
    """A literal that says it holds no secret: `"EMPTY"`, `"dummy"`, `"xoxb-valid"` (a
    vendor prefix and a placeholder word), `"N/A"`; not `"changeme"` or `"dev-secret"`."""
    pieces = [p for p in re.split(r"[^A-Za-z0-9]+", value.lower()) if p]
    return bool(pieces) and (
        pieces[-1] in _PLACEHOLDER_WORDS or "".join(pieces) in _PLACEHOLDER_WORDS
    )


def looks_random(value: str) -> bool:
    """A literal with a machine-made part, as real keys have: `"sk-4f9a2c81d7e3"`,
    `"AKIAIOSFODNN7EXAMPLE"`, `"gh_8f2aC1x9"`; not `"xoxb-valid"`, `"sk-test"`, `"local"`."""
    for piece in re.split(r"[^A-Za-z0-9]+", value):
        digits = sum(c.isdigit() for c in piece)
        upper = sum(c.isupper() for c in piece[1:])
        if len(piece) >= 6 and 0 < digits < len(piece) and (digits > 1 or upper):
            return True
        if len(piece) >= 16 or (len(piece) >= 8 and upper and any(c.islower() for c in piece)):
            return True
    return False


def normalise(name: str) -> str:
    """Flag names compare case- and separator-insensitively: `DISABLE_AUTH` == `disable_auth`."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def identifier(node: ast.AST | None) -> str | None:
    """The name an expression is known by: `x` for `x`, `obj.x`, `d["x"]`, `d.get("x")`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
        return identifier(node.value)
    if isinstance(node, ast.Call):
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            return node.args[0].value
        if isinstance(func, ast.Name) and func.id in {"str", "bytes"} and node.args:
            return identifier(node.args[0])
        if isinstance(func, ast.Attribute) and func.attr in {"encode", "decode", "strip"}:
            return identifier(func.value)
        if isinstance(func, ast.Attribute):
            return func.attr
        if isinstance(func, ast.Name):
            return func.id
    return None


def is_nonempty_str(node: ast.AST | None) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        return bool(node.value)
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(v, ast.Constant) for v in node.values) and bool(node.values)
    return False


def config_key(ctx: FileContext, call: ast.Call) -> str | None:
    """The key a call reads configuration by: `"X"` for `os.getenv("X")`, `os.environ.get("X")`,
    `config("X")`, `env.bool("X")`, `_env_flag("X")`; None for other calls."""
    key = call.args[0] if call.args else None
    key = key or next((k.value for k in call.keywords if k.arg in {"key", "name", "var"}), None)
    if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
        return None
    name = ctx.qualified_name(call.func) or ""
    if name in ENV_READERS or _CONFIG_READER.search(name):
        return key.value
    return None


def env_default(call: ast.Call) -> ast.AST | None:
    """The default of a configuration read: second positional argument or `default=`."""
    for keyword in call.keywords:
        if keyword.arg == "default":
            return keyword.value
    return call.args[1] if len(call.args) > 1 else None


_ENV_WORDS = re.compile(
    r"prod|production|staging|live|environment|\benv\b|app_env|debug|development|\bdev\b",
    re.IGNORECASE,
)


def mentions_environment(node: ast.AST) -> bool:
    """Whether an expression names the deployment environment: `ENVIRONMENT == "production"`,
    `settings.is_production`, `not DEBUG`, `os.getenv("APP_ENV") != "dev"`."""
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Constant)
            and isinstance(sub.value, str)
            and _ENV_WORDS.search(sub.value)
        ):
            return True
        ident = sub.id if isinstance(sub, ast.Name) else getattr(sub, "attr", None)
        if isinstance(ident, str) and _environment_name(ident):
            return True
    return False


@functools.lru_cache(maxsize=8192)
def _environment_name(ident: str) -> bool:
    """An identifier whose words name the environment (kept by name: the same few are asked
    about in every `if`)."""
    return bool(_ENV_WORDS.search("_".join(words(ident))))


def may_import(ctx: FileContext, names: frozenset[str]) -> bool:
    """Whether `imported_name` can give one of `names` in this file: some import binds one of
    them or a module above one (`import jwt` for `jwt.decode`). False lets a check skip the
    per-call lookups."""
    table: dict[frozenset[str], bool] = ctx.memo("aut.may_import", dict)
    found = table.get(names)
    if found is None:
        found = table[names] = any(
            name == bound or name.startswith(bound + ".")
            for bound in ctx.imports.values()
            for name in names
        )
    return found


def imported_name(ctx: FileContext, expr: ast.AST) -> str:
    """`ctx.qualified_name`, but only for names that come from an import: a local object called
    `jwt` is not the `jwt` package."""
    root = expr
    while isinstance(root, ast.Attribute):
        root = root.value
    if not isinstance(root, ast.Name) or root.id not in ctx.imports:
        return ""
    return ctx.qualified_name(expr) or ""
