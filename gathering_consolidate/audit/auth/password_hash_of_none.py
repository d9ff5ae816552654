from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from ...model import Finding, Severity
from ..astutil import FUNCTION_DEFS
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import is_test_path, words

_HASHING = re.compile(r"hash|crypt|pbkdf|argon|scrypt|make_password", re.IGNORECASE)
_VALIDATORS = frozenset({"field_validator", "validator", "root_validator", "model_validator"})
_PASSWORD_WORDS = frozenset({"password", "passwd", "passphrase", "pwd"})


class PasswordHashOfNone(FileCheck):
    """An optional password is hashed through `str()`: a missing one hashes the text `"None"`.

    ## Why is this bad?
    `hash_password(str(v))` in a validator of `password: str | None = None` turns an omitted
    password into a valid account whose password is the four letters `None`: anyone who knows
    the pattern logs in as every user created that way. The `str()` hides the type error that
    would have caught it.

    ## What is reported
    A call to a hashing function (`hash_password`, `bcrypt.hashpw`, `pwd_context.hash`, ...)
    whose argument is `str(<parameter>)` (also `f"{v}"`, `str(v).encode()`), inside a pydantic
    validator (`@field_validator`/`@validator`) of a password field that is optional (annotated
    `... | None`/`Optional[...]` or defaulting to `None`), with no `None` check before it.
    Test code is not reported. Evidence: `field`, `call`.

    ## Fix
    Return `None` (or generate a random password, as a registration path usually does) when no
    password is given, and hash only a real string: `return hash_password(v) if v else None`.
    """

    id, name = "AUT012", "password-hash-of-none"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            from pydantic import BaseModel, field_validator

            class UserCreate(BaseModel):
                password: str | None = None

                @field_validator("password", mode="before")
                @classmethod
                def hash(cls, v):
                    if v is None:
                        return None
                    return hash_password(str(v))

            class UserRegister(BaseModel):
                password: str

                @field_validator("password", mode="before")
                @classmethod
                def hash(cls, v):
                    return hash_password(str(v))
        """),
    ]
    INVALID = [
        Invalid(
            """
            from pydantic import BaseModel, field_validator

            class UserCreate(BaseModel):
                email: str
                password: str | None = None

                @field_validator("password", mode="before")
                @classmethod
                def hash(cls, v):
                    \"\"\"Hash the password before storing.\"\"\"
                    return hash_password(str(v))
            """,
            line=11,
            evidence={"field": "password", "call": "hash_password(str(v))"},
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        for cls in ctx.nodes(ast.ClassDef):
            optional = _optional_fields(cls)
            for func in cls.body:
                if not isinstance(func, FUNCTION_DEFS):
                    continue
                fields = [f for f in _validated_fields(func) if f in optional and _is_password(f)]
                params = [a.arg for a in func.args.args if a.arg not in {"self", "cls"}]
                if not fields or not params:
                    continue
                value = params[0]
                for call in (n for n in ast.walk(func) if isinstance(n, ast.Call)):
                    if not _HASHING.search(_call_name(call)):
                        continue
                    if any(_stringified(arg, value) for arg in call.args) and not _checks_none(
                        func, value, call.lineno
                    ):
                        yield ctx.finding(
                            self,
                            call,
                            f"optional `{fields[0]}` is hashed as `str({value})`: a missing"
                            " password becomes the hash of the text 'None'",
                            evidence={"field": fields[0], "call": ast.unparse(call)},
                        )


def _is_password(name: str) -> bool:
    return bool(set(words(name)) & _PASSWORD_WORDS)


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _optional_fields(cls: ast.ClassDef) -> set[str]:
    found: set[str] = set()
    for stmt in cls.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        text = ast.unparse(stmt.annotation)
        defaults_none = isinstance(stmt.value, ast.Constant) and stmt.value.value is None
        if defaults_none or "None" in text or "Optional" in text:
            found.add(stmt.target.id)
    return found


def _validated_fields(func: ast.AST) -> list[str]:
    fields: list[str] = []
    for decorator in getattr(func, "decorator_list", []):
        if isinstance(decorator, ast.Call) and _call_name(decorator) in _VALIDATORS:
            fields.extend(
                a.value
                for a in decorator.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            )
    return fields


def _stringified(node: ast.AST, name: str) -> bool:
    """`str(v)`, `f"{v}"`, `str(v).encode()`."""
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Name)
            and sub.func.id == "str"
            and sub.args
            and isinstance(sub.args[0], ast.Name)
            and sub.args[0].id == name
        ):
            return True
        if isinstance(sub, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue)
            and isinstance(v.value, ast.Name)
            and v.value.id == name
            for v in sub.values
        ):
            return True
    return False


def _checks_none(func: ast.AST, name: str, before: int) -> bool:
    """A test of `name` (`if v is None`, `if not v`, `v or ...`, `... if v else ...`) before
    the hashing call."""
    for node in ast.walk(func):
        test = None
        if isinstance(node, (ast.If, ast.IfExp, ast.Assert)):
            test = node.test
        elif isinstance(node, ast.BoolOp):
            test = node
        if test is None or getattr(node, "lineno", before + 1) > before:
            continue
        if any(isinstance(s, ast.Name) and s.id == name for s in ast.walk(test)):
            return True
    return False
