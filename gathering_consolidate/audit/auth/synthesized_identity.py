from __future__ import annotations

import ast
from collections.abc import Iterator

from ...model import Finding, Severity
from ..astutil import FUNCTION_DEFS, own_nodes
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import is_test_path, words

_IDENTITY_WORDS = frozenset({"email", "mail", "login", "username", "principal", "identity"})
_LOOKUPS = frozenset({"filter", "filter_by", "where", "get_by_email", "get_or_create"})


class SynthesizedIdentity(FileCheck):
    """An account is looked up by an email made up from a login name and a fixed domain.

    For example `login + "@github.com"`.

    ## Why is this bad?
    The made-up address is an identity nobody proved they own. When the OAuth provider gives
    no email, `octocat@github.com` becomes the account key; anyone who registers that address
    through the email/password route (or who is `octocat` on another provider mapped the same
    way) lands in the same account. The id format also changes the day the provider returns a
    real email, splitting one person into two accounts.

    ## What is reported
    In a function, a variable named like an identity (`email`, `user_email`, `username`)
    assigned a non-constant value joined to a literal `@domain` (`x + "@github.com"`,
    `f"{login}@github.com"`) and then used to find or create the account: compared inside
    `.filter()`/`.where()`, passed as `email=` to `filter_by`/`get_or_create`, or to a lookup
    named `get_by_email`. Test code is not reported. Evidence: `name`, `domain`.

    ## Fix
    Key external accounts by the provider's stable user id (`provider`, `sub`/`id`) in a
    separate table, and ask for (and verify) an email when the provider gives none.
    """

    id, name = "AUT013", "synthesized-identity"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            def notify(user, mailer):
                sender = f"{user.team}@notifications.example.com"
                mailer.send(sender, user.email, "hello")

            def oauth_user(db, profile):
                email = profile["email"]
                if email is None:
                    raise PermissionError("the provider did not share a verified email")
                return db.query(User).filter(User.email == email).first()
        """),
    ]
    INVALID = [
        Invalid(
            """
            def github_auth_handler(db, user_data):
                user_email = user_data["email"]
                if user_email is None:
                    user_email = user_data["login"] + "@github.com"
                db_user = db.session.query(User).filter(User.email == user_email).first()
                return db_user
            """,
            line=4,
            evidence={"name": "user_email", "domain": "@github.com"},
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        # Only an assignment of a made-up address can be reported: a file without one is done
        # before the per-function walks.
        if not any(_made_up_identity(a) for a in ctx.nodes(ast.Assign)):
            return
        for func in ctx.nodes(*FUNCTION_DEFS):
            for sub in own_nodes(func, ctx):
                if not isinstance(sub, ast.Assign):
                    continue
                domain = _made_up_identity(sub)
                if not domain:
                    continue
                target = sub.targets[0]
                assert isinstance(target, ast.Name)
                if _looked_up(func, target.id):
                    yield ctx.finding(
                        self,
                        sub,
                        f"`{target.id}` is made up as `<name>{domain}` and used to find the"
                        " account; nobody proved they own that address",
                        evidence={"name": target.id, "domain": domain},
                    )


def _made_up_identity(node: ast.Assign) -> str | None:
    """The domain of `<identity name> = <name> + "@domain"` (one target, a name whose words say
    email, login, ...), else None."""
    if len(node.targets) != 1:
        return None
    target = node.targets[0]
    if not isinstance(target, ast.Name):
        return None
    domain = _made_up_domain(node.value)  # the cheaper test first
    if domain is None or not set(words(target.id)) & _IDENTITY_WORDS:
        return None
    return domain


def _made_up_domain(value: ast.AST) -> str | None:
    """`"@github.com"` for `x + "@github.com"` or `f"{x}@github.com"` (x not a constant)."""
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        right = value.right
        if (
            isinstance(right, ast.Constant)
            and isinstance(right.value, str)
            and right.value.startswith("@")
            and not isinstance(value.left, ast.Constant)
        ):
            return right.value
    if isinstance(value, ast.JoinedStr) and len(value.values) >= 2:
        first, last = value.values[-2], value.values[-1]
        if (
            isinstance(first, ast.FormattedValue)
            and isinstance(last, ast.Constant)
            and isinstance(last.value, str)
            and last.value.startswith("@")
        ):
            return last.value
    return None


def _looked_up(func: ast.AST, name: str) -> bool:
    for call in (n for n in ast.walk(func) if isinstance(n, ast.Call)):
        func_node = call.func
        method = func_node.attr if isinstance(func_node, ast.Attribute) else ""
        method = method or getattr(func_node, "id", "")
        if method not in _LOOKUPS:
            continue
        for arg in [*call.args, *(k.value for k in call.keywords)]:
            if any(isinstance(s, ast.Name) and s.id == name for s in ast.walk(arg)):
                return True
    return False
