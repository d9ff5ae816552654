from __future__ import annotations

import ast
from collections.abc import Iterator

from ...model import Finding, Severity
from ..astutil import FUNCTION_DEFS
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import is_test_path


class BasicAuthPasswordIgnored(FileCheck):
    """HTTP Basic credentials are decoded and the password is never checked.

    The user name is trusted as it comes.

    ## Why is this bad?
    `Authorization: Basic base64(user:password)` proves nothing until the password is verified.
    Code that decodes the header, takes the user name ("assuming username is the email") and
    drops the password lets anyone act as any user by sending `Basic base64(victim:x)`.

    ## What is reported
    In a function, the unpacking of decoded Basic credentials, `user, password =
    base64.b64decode(...).decode().split(":")` (also `.partition(":")`, through a local that
    holds the decoded value), when the password variable is `_` or is never read afterwards;
    and a parameter typed `HTTPBasicCredentials` whose `.username` is read and whose
    `.password` never is. Test code is not reported. Evidence: `user`, `password`.

    ## Fix
    Verify the password against the stored hash (`bcrypt.checkpw`, `passlib`) before using the
    user name, and compare with `secrets.compare_digest`.
    """

    id, name = "AUT007", "basic-auth-password-ignored"
    severity = Severity.CRITICAL
    VALID = [
        Valid("""
            import base64

            def basic_user(request, db):
                header = request.headers.get("Authorization", "")
                decoded = base64.b64decode(header.split(" ")[1]).decode("utf-8")
                username, password = decoded.split(":", 1)
                user = db.find_user(username)
                if user is None or not verify_password(password, user.password_hash):
                    raise PermissionError("bad credentials")
                return user
        """),
        Valid("""
            import secrets
            from fastapi import Depends
            from fastapi.security import HTTPBasic, HTTPBasicCredentials

            security = HTTPBasic()

            def admin(credentials: HTTPBasicCredentials = Depends(security)):
                ok = secrets.compare_digest(credentials.password.encode(), ADMIN_PASSWORD)
                return credentials.username if ok else None
        """),
        Valid("""
            def parse_pair(text):
                key, value = text.split(":")
                return key
        """),
    ]
    INVALID = [
        Invalid(
            """
            def get_current_user(request, db):
                auth_header = request.headers.get("Authorization")
                if auth_header and auth_header.startswith("Basic "):
                    import base64
                    auth_decoded = base64.b64decode(auth_header.split(" ")[1]).decode("utf-8")
                    username, password = auth_decoded.split(":")
                    # Assuming username is the email
                    email = username
                    return db.query(User).filter(User.email == email).first()
            """,
            line=6,
            evidence={"user": "username", "password": "password"},
        ),
        Invalid(
            """
            from fastapi import Depends
            from fastapi.security import HTTPBasic, HTTPBasicCredentials

            def current_user(credentials: HTTPBasicCredentials = Depends(HTTPBasic())):
                return lookup(credentials.username)
            """,
            line=4,
            evidence={"user": "credentials.username", "password": "credentials.password"},
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        seen: set[tuple[int, int]] = set()  # a nested function is walked with its parent too
        # Decoded credentials start from a b64decode call: a file without one has none to check
        # (the per-function walks are the bulk of this check's cost).
        decodes = any(_decodes(call) for call in ctx.nodes(ast.Call))
        for func in ctx.nodes(*FUNCTION_DEFS):
            decoded = [*self._decoded(ctx, func)] if decodes else []
            for finding in [*decoded, *self._credentials(ctx, func)]:
                key = (finding.location.line, finding.location.column)
                if key not in seen:
                    seen.add(key)
                    yield finding

    def _decoded(self, ctx: FileContext, func: ast.AST) -> Iterator[Finding]:
        decoded: set[str] = set()
        loads = [n for n in ast.walk(func) if isinstance(n, ast.Name)]
        for node in sorted(
            (n for n in ast.walk(func) if isinstance(n, ast.Assign)), key=lambda n: n.lineno
        ):
            target = node.targets[0] if len(node.targets) == 1 else None
            if _is_b64decoded(node.value, decoded) and isinstance(target, ast.Name):
                decoded.add(target.id)
                continue
            pair = _credential_pair(node, decoded)
            if pair is None:
                continue
            user, password = pair
            read = any(
                # consolidate: ignore[AUT002] compares variable names, not secrets
                n.id == password and isinstance(n.ctx, ast.Load) and n.lineno >= node.lineno
                for n in loads
                if n is not node.targets[0]
            )
            if password == "_" or not read:
                yield ctx.finding(
                    self,
                    node,
                    f"Basic credentials are decoded and `{user}` is trusted, but `{password}`"
                    " is never checked",
                    evidence={"user": user, "password": password},
                )

    def _credentials(self, ctx: FileContext, func: ast.AST) -> Iterator[Finding]:
        assert isinstance(func, FUNCTION_DEFS)
        args = [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]
        for arg in args:
            annotation = ctx.qualified_name(arg.annotation) if arg.annotation else None
            if not (annotation or "").endswith("HTTPBasicCredentials"):
                continue
            fields = {
                n.attr
                for n in ast.walk(func)
                if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id == arg.arg
            }
            uses_whole = any(
                isinstance(n, ast.Name) and n.id == arg.arg and isinstance(n.ctx, ast.Load)
                for n in ast.walk(func)
                if not _is_attribute_base(n, func)
            )
            if "username" in fields and "password" not in fields and not uses_whole:
                yield ctx.finding(
                    self,
                    arg,
                    f"`{arg.arg}.username` is trusted but `{arg.arg}.password` is never checked",
                    evidence={"user": f"{arg.arg}.username", "password": f"{arg.arg}.password"},
                )


def _is_attribute_base(name: ast.AST, func: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.value is name for n in ast.walk(func))


def _is_b64decoded(value: ast.AST, decoded: set[str]) -> bool:
    """`base64.b64decode(x)`, `.decode()` of one, or a local that holds one."""
    for sub in ast.walk(value):
        if isinstance(sub, ast.Call) and _decodes(sub):
            return True
        if isinstance(sub, ast.Name) and sub.id in decoded:
            return True
    return False


def _decodes(call: ast.Call) -> bool:
    """`base64.b64decode(...)` or another base64 decoder, by the called name."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name in _DECODERS


_DECODERS = frozenset({"b64decode", "urlsafe_b64decode", "standard_b64decode"})


def _credential_pair(node: ast.Assign, decoded: set[str]) -> tuple[str, str] | None:
    """`(user, password)` names of `user, password = <decoded>.split(":")` or
    `user, _, password = <decoded>.partition(":")`."""
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Tuple):
        return None
    value = node.value
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)):
        return None
    method = value.func.attr
    sep = value.args[0] if value.args else None
    if not (isinstance(sep, ast.Constant) and sep.value == ":"):
        return None
    if not _is_b64decoded(value.func.value, decoded):
        return None
    names = [e.id if isinstance(e, ast.Name) else None for e in node.targets[0].elts]
    if method == "split" and len(names) == 2:
        user, password = names
    elif method == "partition" and len(names) == 3:
        user, password = names[0], names[2]
    else:
        return None
    if user is None or password is None:
        return None
    return user, password
