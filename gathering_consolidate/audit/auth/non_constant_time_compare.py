from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import STRONG, WEAK, identifier, is_test_path, secret_strength, words

# Integrity values: secret only next to a secret or an HMAC.
_DIGEST_WORDS = frozenset({"hash", "hashed", "digest", "hexdigest", "mac", "signature", "sig"})
_EQUALITY_METHODS = frozenset({"__eq__", "__ne__", "__hash__", "__lt__", "__gt__", "__repr__"})
#: Calls whose arguments are SQL conditions (SQLAlchemy, SQLModel, peewee, Django Q).
_SQL_BUILDERS = frozenset(
    {"filter", "where", "having", "filter_by", "join", "outerjoin", "and_", "or_", "not_", "Q"}
)
_CONFIRMATION = re.compile(r"confirm|repeat|retype|again|verification|password2", re.IGNORECASE)


class NonConstantTimeCompare(FileCheck):
    """A password, token, secret, signature or hash compared with `==` or `!=`.

    ## Why is this bad?
    `==` on strings stops at the first differing byte, so the response time tells an attacker
    how many leading characters of a guess are right; a service token or an HMAC signature can
    then be recovered byte by byte. `hmac.compare_digest` (or `secrets.compare_digest`) takes the
    same time whatever the input. Comparing a plaintext password at all means it is stored in
    plaintext: verify it against a hash (`bcrypt.checkpw`, `passlib`).

    Reported at the comparison when one side is named like a secret (`password`, `secret`,
    `api_key`, `signature`, `hmac`, `otp`, `credential`, ...: a variable, attribute,
    `d["password"]` or `d.get("password")`), when both sides are named like tokens
    (`x_service_token == service_token`: a lone `token` is too often a lexer token), or when a
    digest (`hash`, `digest`, `hexdigest()`) meets a secret or an `hmac` computation.

    Not reported: comparisons with `None`, booleans, numbers or string literals (sentinels such as
    `password == "-"`); metadata about a secret (`token_type`, `token_url`, `password_length`,
    `password_strength(p)`, `len(token)`, `is_token`); a password checked against its confirmation
    (`password == password_confirm`, both from the same request) and two fields of one object
    (`body.current_password == body.new_password`); structural equality
    (`__eq__`, `__ne__`); test code, where `assert body["token"] == token` is the point.
    Evidence: `left`, `right` (the names compared), `operator`.
    """

    id, name = "AUT002", "non-constant-time-compare"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            import hmac

            def verify_service_token(given, expected):
                return hmac.compare_digest(given, expected)
        """),
        Valid("""
            def check(payload, token, data):
                if payload.get("type") != "access":
                    return False
                if token is None or token == "":
                    return False
                if len(token) != 64:
                    return False
                return data.password == data.password_confirm

            def update_password(body):
                if body.current_password == body.new_password:
                    raise ValueError("the new password must differ from the current one")
        """),
        Valid(
            """
            def test_login(client, token):
                body = client.post("/login").json()
                assert body["access_token"] == token
            """,
            path="tests/test_login.py",
        ),
        Valid("""
            from sqlalchemy import or_

            def validate_api_key(db, api_key):
                return db.query(ApiKey).filter(
                    ApiKey.key == api_key, or_(ApiKey.revoked == False, ApiKey.revoked == None)
                ).first()
        """),
        Valid("""
            def changed(old, new):
                return old.content_hash != new.content_hash

            def acceptable(password):
                return password_strength(password) == STRONG
        """),
        Valid("""
            TOKEN_NAME = "name"

            def tokenize(tokens):
                for token in tokens:
                    if token == TOKEN_NAME or token == "*":
                        yield token

            def ask(password):
                if password == "-":
                    password = input("Password: ")
                return password

            class URL:
                def __eq__(self, other):
                    return self.password == other.password
        """),
    ]
    INVALID = [
        Invalid(
            """
            import os

            def verify_service_token(x_service_token):
                service_token = os.environ.get("SERVICE_TOKEN")
                return x_service_token == service_token
            """,
            line=5,
            evidence={"left": "x_service_token", "right": "service_token", "operator": "=="},
        ),
        Invalid(
            """
            import hashlib
            import hmac

            def verify(body, secret, signature):
                expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
                if expected != signature:
                    raise PermissionError("bad signature")
            """,
            line=6,
        ),
        Invalid(
            """
            def login(user, form):
                if user["password_hash"] != hash_password(form.password):
                    return None
                return user
            """,
            evidence={"left": "password_hash"},
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        for node in ctx.nodes(ast.Compare):
            if ctx.symbol_for(node).rsplit(".", 1)[-1] in _EQUALITY_METHODS:
                continue
            if _sql_expression(ctx, node):
                continue
            left = node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.Eq, ast.NotEq)) and _is_secret_compare(
                    ctx, node, left, right
                ):
                    symbol = "==" if isinstance(op, ast.Eq) else "!="
                    names = (identifier(left) or "?", identifier(right) or "?")
                    yield ctx.finding(
                        self,
                        node,
                        f"`{names[0]} {symbol} {names[1]}` compares a secret in non-constant"
                        " time; use `hmac.compare_digest`",
                        evidence={"left": names[0], "right": names[1], "operator": symbol},
                    )
                    break
                left = right


def _sql_expression(ctx: FileContext, compare: ast.Compare) -> bool:
    """`query.filter(ApiKey.key == api_key)` builds a SQL condition (an argument of `.filter()`,
    `.where()`, `and_()`, ...): the database looks the key up, Python compares nothing."""
    parent = ctx.parents.get(compare)
    while isinstance(parent, (ast.BoolOp, ast.UnaryOp, ast.Call, ast.keyword)):
        if isinstance(parent, ast.Call):
            func = parent.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _SQL_BUILDERS:
                return True
        parent = ctx.parents.get(parent)
    return False


def _same_owner(left: ast.AST, right: ast.AST) -> bool:
    """Two fields of one object (`body.current_password`, `body.new_password`): both come from
    the same place, so neither is a stored secret the other is checked against."""
    return (
        isinstance(left, ast.Attribute)
        and isinstance(right, ast.Attribute)
        and isinstance(left.value, ast.Name)
        and isinstance(right.value, ast.Name)
        and left.value.id == right.value.id
        and left.value.id not in {"self", "cls"}
    )


def _literal(node: ast.AST) -> bool:
    """A string literal: a sentinel (`password == "-"`), not a secret held by the app."""
    return isinstance(node, (ast.Constant, ast.JoinedStr))


def _trivial(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is None or isinstance(node.value, (bool, int, float)) or not node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in {"len", "type", "hash", "id", "bool", "int"}
    return False


def _is_digest(name: str | None) -> bool:
    return bool(name) and bool(set(words(name or "")) & _DIGEST_WORDS)


def _uses_hmac(ctx: FileContext, node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and (ctx.qualified_name(sub.func) or "").startswith("hmac."):
            return True
    return False


def _local_origin(ctx: FileContext, compare: ast.AST, name: str) -> ast.AST | None:
    """The value last assigned to local `name` before `compare`, in the same function."""
    line = getattr(compare, "lineno", 0)
    best: ast.AST | None = None
    for node in ctx.nodes(ast.Assign):
        if node.lineno >= line or ctx.symbol_for(node) != ctx.symbol_for(compare):
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            best = node.value
    return best


def _is_secret_compare(ctx: FileContext, compare: ast.AST, left: ast.AST, right: ast.AST) -> bool:
    if _trivial(left) or _trivial(right) or _literal(left) or _literal(right):
        return False
    names = (identifier(left), identifier(right))
    if any(n and _CONFIRMATION.search(n) for n in names):
        return False
    if _same_owner(left, right):  # `body.current_password == body.new_password`: one request
        return False
    strength = [secret_strength(n) for n in names]
    if STRONG in strength or strength == [WEAK, WEAK]:
        return True
    if not any(_is_digest(n) for n in names):
        return False
    for side in (left, right):
        origin = _local_origin(ctx, compare, side.id) if isinstance(side, ast.Name) else side
        if origin is not None and _uses_hmac(ctx, origin):
            return True
    return False
