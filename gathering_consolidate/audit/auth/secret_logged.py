from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from ...model import Finding, Severity
from ..astutil import FUNCTION_DEFS
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import identifier, is_test_path, secret_strength, words

_LOG_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
)
_LOGGER = re.compile(r"^_?(?:log|logger|logging|logs|audit_log|structlog)$", re.IGNORECASE)
#: Headers that carry a credential: `Authorization: Bearer ...`, ALB/OIDC identity tokens.
_CREDENTIAL_HEADER = re.compile(
    r"^(?:proxy-)?authorization$|^cookie$|api[-_]?key|token|jwt|oidc-data|secret|password",
    re.IGNORECASE,
)
_CREDENTIAL_WORDS = frozenset({"jwt", "authorization", "bearer"})
_SECRET_LAST = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "key",
        "apikey",
        "token",
        "jwt",
        "authorization",
        "credential",
        "credentials",
        "hmac",
    }
)
_NOT_SECRET = frozenset(
    {"hash", "hashed", "digest", "masked", "mask", "redacted", "hint", "scheme", "header", "name"}
)


class SecretLogged(FileCheck):
    """A password, token, API key or Authorization header is written to a log.

    ## Why is this bad?
    Logs are read by more people and kept longer than any secret store: shipped to a log
    service, attached to tickets, readable by support. A logged bearer token or signed identity
    JWT is a working credential until it expires; a logged `Authorization: Basic ...` header is
    a password. Debug lines are the usual culprit, and debug logging is one environment
    variable (or one `basicConfig(level=DEBUG)`) away.

    ## What is reported
    A call to a logger method (`log.debug`, `logger.info`, `logging.exception`, ...) whose
    message or arguments contain, as a bare value (an f-string field, a `%s` or `.format`
    argument), a secret-named variable or attribute (`password`, `api_key`, `secret`, `token`,
    `encoded_jwt`, `authorization`; not `token_type`, `password_hash`, `api_key_name`, nor a
    record named after one such as `api_key_data`), or a
    local that holds a credential header (`request.headers.get("Authorization")`,
    `headers["x-amzn-oidc-data"]`). A value passed through a function first (`len(token)`,
    `mask(api_key)`) or sliced (`token[:6]`) is not reported. Test code is not reported.
    Evidence: `value`.

    ## Fix
    Log who and what, not the credential: the user id, the token's `kid`/`jti`, a masked
    prefix.
    """

    id, name = "AUT009", "secret-logged"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            import logging

            log = logging.getLogger(__name__)

            def authenticate(request, token):
                scheme = request.headers.get("Authorization", "").split(" ")[0]
                log.info("auth scheme %s, token of length %d", scheme, len(token))
                log.debug(f"token type {token_type(token)}, prefix {token[:6]}")
                log.debug("Malformed authorization header. Scheme: %s", scheme)
        """),
        Valid("""
            def fetch_api_key(session, logger, org_id):
                api_key_data = session.query(Config.id, Config.api_key).filter_by(org=org_id).first()
                logger.info(api_key_data)
        """),
        Valid("""
            def count(tokens, logger):
                token_count = len(tokens)
                logger.info(f"{token_count} tokens used, api key name {settings.api_key_name}")
        """),
    ]
    INVALID = [
        Invalid(
            """
            import logging

            log = logging.getLogger(__name__)

            def get_current_user(request):
                authorization: str = request.headers.get("Authorization")
                if not authorization or not authorization.startswith("Bearer "):
                    log.exception(f"Malformed authorization header: {authorization}")
                    return None
            """,
            line=8,
            evidence={"value": "authorization"},
        ),
        Invalid(
            """
            import logging

            log = logging.getLogger(__name__)

            def alb_user(request, pub_key):
                identity = request.headers.get("x-amzn-oidc-data")
                log.debug("Header received: %s", identity)
                log.debug(f"Decoding {identity} with public key {pub_key}.")
            """,
            count=2,
            line=7,
            evidence={"value": "identity"},
        ),
        Invalid(
            """
            def login(form, logger):
                logger.info("login attempt for {} with {}".format(form.email, form.password))
            """,
            evidence={"value": "form.password"},
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        holders = _credential_locals(ctx)
        for call in ctx.nodes(ast.Call):
            if not _is_log_call(call):
                continue
            scope = _scope_of(ctx, call)
            for value in _logged_values(call):
                name = identifier(value)
                if name is None:
                    continue
                local = isinstance(value, ast.Name) and (scope, value.id) in holders
                if local or _is_credential_name(name):
                    shown = ast.unparse(value)
                    yield ctx.finding(
                        self,
                        call,
                        f"`{shown}` is a credential and is written to the log",
                        evidence={"value": shown},
                    )
                    break


def _is_log_call(call: ast.Call) -> bool:
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in _LOG_METHODS):
        return False
    owner = func.value
    name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
    return bool(_LOGGER.match(name or ""))


def _logged_values(call: ast.Call) -> Iterator[ast.AST]:
    """The values a log call formats, as bare expressions: f-string fields, `%s` arguments,
    `.format(...)` arguments."""
    args = list(call.args)
    if isinstance(call.func, ast.Attribute) and call.func.attr == "log" and args:
        args = args[1:]  # `log.log(level, msg, ...)`
    for arg in args:
        yield from _bare(arg)


def _bare(node: ast.AST) -> Iterator[ast.AST]:
    if isinstance(node, ast.JoinedStr):
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                yield from _bare(part.value)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "format" and isinstance(node.func.value, ast.Constant):
            for arg in node.args:
                yield from _bare(arg)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        right = node.right
        yield from (_bare(e) for e in right.elts) if isinstance(right, ast.Tuple) else ()
        if not isinstance(right, ast.Tuple):
            yield from _bare(right)
    elif isinstance(node, (ast.Name, ast.Attribute)):
        yield node


def _is_credential_name(name: str) -> bool:
    """The value is the secret itself (`api_key`, `encoded_jwt`, `form.password`), not a record
    or metadata named after one (`api_key_data`, `token_info`, `password_hash`)."""
    parts = words(name)
    if not parts or set(parts) & _NOT_SECRET or parts[-1] not in _SECRET_LAST:
        return False
    return secret_strength(name) > 0 or bool(set(parts) & _CREDENTIAL_WORDS)


def _scope_of(ctx: FileContext, node: ast.AST) -> int:
    parent = ctx.parents.get(node)
    while parent is not None and not isinstance(parent, FUNCTION_DEFS):
        parent = ctx.parents.get(parent)
    return id(parent)


def _credential_locals(ctx: FileContext) -> set[tuple[int, str]]:
    """`(function, name)` of locals assigned a credential header:
    `authorization = request.headers.get("Authorization")`."""
    found: set[tuple[int, str]] = set()
    for node in ctx.nodes(ast.Assign, ast.AnnAssign):
        value = node.value
        if value is None or not _reads_credential_header(value):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                found.add((_scope_of(ctx, node), target.id))
    return found


def _reads_credential_header(value: ast.AST) -> bool:
    """`x.headers.get("Authorization", ...)` or `x.headers["Authorization"]` (the value itself,
    not a part of it such as `.split()[0]`)."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        owner, args = value.func.value, value.args
        if value.func.attr != "get":
            return False
    elif isinstance(value, ast.Subscript):
        owner, args = value.value, [value.slice]
    else:
        return False
    if not (isinstance(owner, ast.Attribute) and owner.attr in {"headers", "cookies"}):
        return False
    key = args[0] if args else None
    return (
        isinstance(key, ast.Constant)
        and isinstance(key.value, str)
        and bool(_CREDENTIAL_HEADER.search(key.value))
    )
