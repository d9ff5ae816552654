from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...model import Finding, Severity
from ..base import FileContext, Invalid, ProjectCheck, ProjectContext, Valid
from .helpers import is_test_path, words

_PASSWORD_WORDS = frozenset({"password", "passwd", "passphrase", "pwd"})
_DIGEST_WORDS = frozenset({"hash", "hashed", "digest", "encrypted", "crypted", "salted"})
_COLUMN_FACTORIES = frozenset({"Column", "mapped_column", "Field"})
#: Functions that hash or check a password: `bcrypt.checkpw`, `pwd_context.verify`,
#: `get_password_hash`, `check_password_hash`, `make_password`, `argon2.hash`.
_HASHING = re.compile(r"hash|crypt|checkpw|verify|pbkdf|argon|scrypt|make_password|digest", re.I)


@dataclass
class PasswordFacts:
    columns: list[tuple[str, str]] = field(default_factory=list)  # (qualified class, column)
    checked: set[str] = field(default_factory=set)  # attributes handed to a hash/verify call
    sites: list[tuple[str, str, Finding]] = field(default_factory=list)  # (callee, keyword, _)


class PlaintextPasswordStored(ProjectCheck):
    """A password is stored in a database model as given, without hashing.

    ## Why is this bad?
    Whoever reads the table (a backup, a replica, an SQL injection, an over-wide API response
    or log line) gets every user's password, and users reuse passwords. A stored password must
    be a slow salted hash (`bcrypt`, `argon2`, `passlib`), checked with the library's verify
    function; the plain text should never reach the database.

    ## What is reported
    A call that constructs a database model (a class with `__tablename__` or `Column(...)`/
    `mapped_column(...)` attributes, found anywhere in the project and resolved through
    imports) with a password keyword (`password=`, `passwd=`; not `password_hash=`) whose
    value is not hashed on the way (not a call to a hashing function such as
    `get_password_hash`, `bcrypt.hashpw`, `pwd_context.hash`, nor a value named `hashed_*`),
    when nowhere in the project is that column handed to a hashing or verify function
    (`bcrypt.checkpw(given, user.password)` shows the column holds a hash, set by a validator
    or a setter this check does not follow). Test code is not reported.
    Evidence: `model`, `column`, `value`.

    ## Fix
    Hash before storing (`password=hash_password(form.password)`) and verify with the
    library (`bcrypt.checkpw`, `pwd_context.verify`), never with `==`.
    """

    id, name = "AUT010", "plaintext-password-stored"
    severity = Severity.HIGH
    collector = "aut010"
    VALID = [
        Valid(
            """
            from app.models import User
            from app.security import get_password_hash

            def create_user(db, form):
                db.add(User(email=form.email, password=get_password_hash(form.password)))
            """,
            files={
                "app/models.py": """
                    from sqlalchemy import Column, Integer, String

                    class User(Base):
                        __tablename__ = "users"
                        id = Column(Integer, primary_key=True)
                        email = Column(String)
                        password = Column(String)
                """,
            },
        ),
        Valid(
            """
            from app.models import User

            def create(db, user_in):
                password = bytes(user_in.password, "utf-8")  # hashed by the schema's validator
                db.add(User(email=user_in.email, password=password))
            """,
            files={
                "app/models.py": """
                    import bcrypt
                    from sqlalchemy import Column, Integer, LargeBinary, String

                    class User(Base):
                        id = Column(Integer, primary_key=True)
                        email = Column(String)
                        password = Column(LargeBinary, nullable=False)

                        def verify_password(self, password):
                            return bcrypt.checkpw(password.encode("utf-8"), self.password)
                """,
            },
        ),
        Valid("""
            def connect(settings):
                return JiraClient(url=settings.url, password=settings.jira_password)
        """),
    ]
    INVALID = [
        Invalid(
            """
            from fastapi_sqlalchemy import db
            from app.models.user import User

            def create_user(user):
                db_user = User(name=user.name, email=user.email, password=user.password)
                db.session.add(db_user)
                db.session.commit()
                return db_user
            """,
            path="app/controllers/user.py",
            line=5,
            evidence={"model": "User", "column": "password", "value": "user.password"},
            files={
                "app/models/user.py": """
                    from sqlalchemy import Column, Integer, String

                    class User(DBBaseModel):
                        __tablename__ = "users"
                        id = Column(Integer, primary_key=True, autoincrement=True)
                        email = Column(String, unique=True)
                        password = Column(String)
                """,
            },
        ),
    ]

    @classmethod
    def collect(cls, ctx: FileContext) -> PasswordFacts:
        facts = PasswordFacts()
        if is_test_path(ctx.path):
            return facts
        local_classes = {c.name for c in ctx.nodes(ast.ClassDef)}
        for node in ctx.nodes(ast.ClassDef):
            for column in _password_columns(node):
                facts.columns.append((f"{ctx.module}.{node.name}", column))
        for call in ctx.nodes(ast.Call):
            func = call.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if _HASHING.search(fname or ""):
                for arg in [*call.args, *(k.value for k in call.keywords)]:
                    for sub in ast.walk(arg):
                        if isinstance(sub, ast.Attribute) and _is_password(sub.attr):
                            facts.checked.add(sub.attr)
                continue
            if not call.keywords:  # a site is a `password=` keyword
                continue
            callee = ctx.qualified_name(func)
            if not callee:
                continue
            if isinstance(func, ast.Name) and func.id in local_classes:
                callee = f"{ctx.module}.{func.id}"
            for keyword in call.keywords:
                if keyword.arg and _is_password(keyword.arg) and _plain(keyword.value):
                    shown = ast.unparse(keyword.value)
                    facts.sites.append(
                        (
                            callee,
                            keyword.arg,
                            ctx.finding(
                                cls,
                                call,
                                f"`{keyword.arg}={shown}` stores the password as given; hash it"
                                " before it reaches the database",
                                evidence={
                                    "model": callee.rsplit(".", 1)[-1],
                                    "column": keyword.arg,
                                    "value": shown,
                                },
                            ),
                        )
                    )
        return facts

    def finish(self, facts: Mapping[str, Any], project: ProjectContext) -> Iterator[Finding]:
        columns = {c for fact in facts.values() for c in fact.columns}
        checked = {a for fact in facts.values() for a in fact.checked}
        for path in sorted(facts):
            for callee, keyword, finding in facts[path].sites:
                if (callee, keyword) in columns and keyword not in checked:
                    yield finding


def _is_password(name: str) -> bool:
    parts = set(words(name))
    return bool(parts & _PASSWORD_WORDS) and not parts & _DIGEST_WORDS


def _password_columns(cls: ast.ClassDef) -> Iterator[str]:
    """Password attributes of a database model: `password = Column(String)`,
    `password: Mapped[str] = mapped_column()`."""
    model = False
    found: list[str] = []
    for stmt in cls.body:
        target = stmt.target if isinstance(stmt, ast.AnnAssign) else None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
        if not isinstance(target, ast.Name):
            continue
        if target.id == "__tablename__":
            model = True
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        factory = _call_name(value) if isinstance(value, ast.Call) else ""
        is_column = factory in _COLUMN_FACTORIES
        if is_column and factory != "Field":  # `Field` alone is a pydantic schema
            model = True
        if is_column and _is_password(target.id):
            found.append(target.id)
    return iter(found if model else [])


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _plain(value: ast.AST) -> bool:
    """A value that is not visibly hashed: not None, not a hashing call, not named `hashed_*`."""
    if isinstance(value, ast.Constant) and value.value is None:
        return False
    for sub in ast.walk(value):
        if isinstance(sub, ast.Call) and _HASHING.search(_call_name(sub) or ""):
            return False
        name = sub.id if isinstance(sub, ast.Name) else getattr(sub, "attr", None)
        if isinstance(name, str) and set(words(name)) & _DIGEST_WORDS:
            return False
    return True
