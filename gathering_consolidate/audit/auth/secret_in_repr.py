from __future__ import annotations

import ast
from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import STRONG, is_test_path, secret_strength, words

_TEXT_METHODS = frozenset({"__repr__", "__str__", "__format__"})
#: A stored digest, a mask or metadata is not the secret itself.
_NOT_SECRET = frozenset({"hash", "hashed", "digest", "masked", "mask", "redacted", "hint"})


class SecretInRepr(FileCheck):
    """`__repr__`/`__str__` includes a password, secret or API key.

    ## Why is this bad?
    The text form of an object ends up everywhere without anyone deciding to print the secret:
    `logger.info("created %s", user)`, an exception message, a debugger, an error tracker that
    captures locals. A `User.__repr__` that shows `password=` puts every user's password (in
    plain text, when the model also stores it so) into the logs at each such line.

    ## What is reported
    A reference to `self.<name>` inside `__repr__`, `__str__` or `__format__` when `<name>` is a
    secret (`password`, `secret`, `api_key`, `private_key`, `credentials`, ...; not a stored
    digest such as `password_hash`, and not metadata such as `password_length`), unless it is
    passed through a function first (`mask(self.api_key)`, `len(self.password)`). Test code is
    not reported. Evidence: `attribute`.

    ## Fix
    Leave the secret out of the text form (`field(repr=False)` for dataclasses, `SecretStr`
    for pydantic models), or show a fixed mask.
    """

    id, name = "AUT008", "secret-in-repr"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            class User:
                def __repr__(self):
                    return f"User(id={self.id}, email={self.email!r})"

            class Key:
                def __repr__(self):
                    return f"Key(name={self.name}, secret={mask(self.secret)})"

            class Account:
                def __str__(self):
                    return f"{self.email} ({self.password_hash[:6]}...)"
        """),
    ]
    INVALID = [
        Invalid(
            """
            from sqlalchemy import Column, Integer, String

            class User(Base):
                __tablename__ = "users"
                id = Column(Integer, primary_key=True)
                email = Column(String)
                password = Column(String)

                def __repr__(self):
                    return "User(id={}, email='{}', password='{}')".format(
                        self.id, self.email, self.password
                    )
            """,
            line=11,
            evidence={"attribute": "password"},
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        for func in ctx.nodes(ast.FunctionDef):
            if func.name not in _TEXT_METHODS:
                continue
            for node in ast.walk(func):
                if not (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "self"
                    and _is_secret(node.attr)
                ):
                    continue
                if _transformed(ctx, node):
                    continue  # `mask(self.api_key)`, `len(self.password)`
                yield ctx.finding(
                    self,
                    node,
                    f"`{func.name}` shows `self.{node.attr}`; every log line or error message"
                    " that prints the object prints the secret",
                    evidence={"attribute": node.attr},
                )


def _is_secret(name: str) -> bool:
    return secret_strength(name) == STRONG and not set(words(name)) & _NOT_SECRET


def _transformed(ctx: FileContext, node: ast.AST) -> bool:
    """Passed to a function other than a plain formatter (`str`, `repr`, `"...".format`)."""
    parent = ctx.parents.get(node)
    if not isinstance(parent, ast.Call) or node is parent.func:
        return False
    func = parent.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name not in {"str", "repr", "format", "join"}
