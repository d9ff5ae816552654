from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import config_key, env_default, is_test_path, mentions_environment, words
from .jwt_decode_unverified import DECODERS

#: Calls that authenticate a request: `Authorize.jwt_required()`, `plugin.get_current_user(req)`,
#: `verify_token(token)`, `authenticate(request)`, `decode_access_token(token)`.
_AUTH_CALL = re.compile(
    r"^(?:fresh_)?jwt_required$|^get_current_(?:user|identity|principal)$|^get_jwt_(?:subject|identity)$"
    r"|^(?:authenticate|authorize|login_required|require_auth|check_auth)\w*$"
    r"|^(?:verify|validate|check|decode)_\w*(?:token|jwt|auth|credentials?|password|signature|session)$"
)
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie"})


class AuthSkippedByConfig(FileCheck):
    """Authentication runs on one branch of a configuration or environment test only.

    For example `if get_config("ENV", "DEV") == "PROD": Authorize.jwt_required()`, or
    `if AUTH_PROVIDER: user = provider.get_current_user(request) else: user = DEFAULT_USER`.

    ## Why is this bad?
    The request is authenticated or not depending on a deployment value, and the other branch
    lets it through: it falls past the check, or takes a fixed identity without any credential.
    A deployment that forgot `ENV=PROD` (the default is development), or set the provider to an
    empty string, serves every protected route to anyone, as whichever user the fallback names.
    Nothing in the running app says so. Unlike a named switch (AUT001) the bypass is the
    absence of a value, so no flag ever appears in a review of the configuration.

    ## What is reported
    An `if` whose test reads the deployment (`ENV == "PROD"`, `settings.environment`, a
    variable or UPPER_CASE constant bound to a configuration read, `not DEBUG`) where one
    branch authenticates (calls `jwt_required()`, `get_current_user()`, `authenticate*()`,
    `verify_*_token()`, a JWT decoder, or reads the `Authorization` header) and the other
    branch visibly lets the request through: it is empty or only logs, passes, and sets or
    returns a fixed identity (a literal, an UPPER_CASE constant, a setting). After a body that
    returns, the statements that follow the `if` are its other branch. A branch that raises or
    runs another flow (a second provider under a name not recognised here) is not reported. Reported at the `if`. A test that compares a
    request value (`if token:`) is not a deployment test. Test code is not reported.
    Evidence: `condition`, `default` (the configuration default when it is read in the file).

    ## Fix
    Authenticate on every path. A development identity belongs behind a startup guard that
    refuses to run it in production (see AUT001), not behind a default.
    """

    id, name = "AUT006", "auth-skipped-by-config"
    severity = Severity.CRITICAL
    VALID = [
        Valid("""
            from fastapi import HTTPException

            def current_user(request, settings):
                if settings.auth_provider == "oidc":
                    return verify_oidc_token(request.headers["authorization"])
                if settings.auth_provider == "basic":
                    return verify_basic_credentials(request)
                raise HTTPException(status_code=500, detail="no auth provider configured")
        """),
        Valid("""
            def current_user(request, token):
                if token:
                    return verify_access_token(token)
                return None
        """),
        Valid(
            """
            from app.config import get_config

            def check_auth(Authorize):
                if get_config("ENV", "DEV") == "PROD":
                    Authorize.jwt_required()
                return Authorize
            """,
            path="tests/helpers/auth.py",
        ),
        Valid("""
            def current_user(request, settings):
                if settings.USE_OAUTH:
                    return oauth_client.authorize_access_token(request)
                return login_form_user(request)
        """),
    ]
    INVALID = [
        Invalid(
            """
            from fastapi import Depends
            from fastapi_jwt_auth import AuthJWT
            from app.config import get_config

            def check_auth(Authorize: AuthJWT = Depends()):
                env = get_config("ENV", "DEV")
                if env == "PROD":
                    Authorize.jwt_required()
                return Authorize
            """,
            line=7,
            evidence={"condition": "env == 'PROD'", "default": "DEV"},
        ),
        Invalid(
            """
            from app.config import get_config

            def get_current_user(Authorize, request):
                env = get_config("ENV", "DEV")
                if env == "DEV":
                    email = "admin@example.com"
                else:
                    auth_header = request.headers.get("Authorization")
                    email = Authorize.get_jwt_subject() if auth_header else None
                return lookup_user(email)
            """,
            line=5,
        ),
        Invalid(
            """
            from app.config import AUTH_PROVIDER_SLUG, DEFAULT_USER

            def get_current_user(request):
                if AUTH_PROVIDER_SLUG:
                    user_email = plugins.get(AUTH_PROVIDER_SLUG).get_current_user(request)
                else:
                    log.debug("No authentication provider. Default user will be used")
                    user_email = DEFAULT_USER
                return get_or_create(email=user_email)
            """,
            line=4,
            evidence={"condition": "AUTH_PROVIDER_SLUG"},
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        # A finding needs a branch that authenticates: a file where nothing does has none (and
        # is done without walking the branches of every `if`).
        if not any(_authenticating(ctx, n) for n in ctx.nodes(ast.Call, ast.Subscript)):
            return
        config_reads = _config_bindings(ctx)
        for node in ctx.nodes(ast.If):
            default = _deployment_test(ctx, node.test, config_reads)
            if default is False:
                continue
            orelse = node.orelse or _after_early_return(ctx, node)
            body_auth, else_auth = _authenticates(ctx, node.body), _authenticates(ctx, orelse)
            if body_auth == else_auth:
                continue
            other = orelse if body_auth else node.body
            if not _lets_through(ctx, other):
                continue
            condition = ast.unparse(node.test)
            evidence: dict[str, str] = {"condition": condition}
            if isinstance(default, str):
                evidence["default"] = default
            verb = "runs only when" if body_auth else "is skipped when"
            yield ctx.finding(
                self,
                node,
                f"authentication {verb} `{condition}`; the other branch lets the request"
                " through unauthenticated",
                evidence=evidence,
            )


def _after_early_return(ctx: FileContext, node: ast.If) -> list[ast.stmt]:
    """`if not PROVIDER: return DEFAULT_USER` followed by the check: the statements after an
    `if` whose body returns are its `else` branch."""
    if not node.body or not isinstance(node.body[-1], ast.Return):
        return []
    parent = ctx.parents.get(node)
    for name in ("body", "orelse", "finalbody"):
        block = getattr(parent, name, None)
        if isinstance(block, list) and node in block:
            return block[block.index(node) + 1 :]
    return []


def _config_bindings(ctx: FileContext) -> dict[str, str | None]:
    """Names bound in this file to a configuration read, with the read's literal default:
    `env = get_config("ENV", "DEV")` gives `env -> "DEV"`."""
    found: dict[str, str | None] = {}
    for node in ctx.nodes(ast.Assign, ast.AnnAssign):
        value = node.value
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        call = (
            next((c for c in ast.walk(value) if isinstance(c, ast.Call)), None) if value else None
        )
        if call is None or config_key(ctx, call) is None:
            continue
        default = env_default(call)
        literal = default.value if isinstance(default, ast.Constant) else None
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = literal if isinstance(literal, str) else None
    return found


def _deployment_test(
    ctx: FileContext, test: ast.AST, config_reads: dict[str, str | None]
) -> str | bool | None:
    """False when `test` does not read the deployment; else the configuration default it reads
    (a string) or None."""
    for sub in ast.walk(test):
        if isinstance(sub, ast.Name) and sub.id in config_reads:
            return config_reads[sub.id]
        if isinstance(sub, ast.Call) and config_key(ctx, sub) is not None:
            default = env_default(sub)
            value = default.value if isinstance(default, ast.Constant) else None
            return value if isinstance(value, str) else None
    for sub in ast.walk(test):
        ident = sub.id if isinstance(sub, ast.Name) else getattr(sub, "attr", None)
        if (
            isinstance(sub, (ast.Name, ast.Attribute))
            and isinstance(ident, str)
            and ident.isupper()
            and len(ident) > 2
            and _module_constant(ctx, sub)
        ):
            return None
    if mentions_environment(test) and not _compares_request(test):
        return None
    return False


def _module_constant(ctx: FileContext, node: ast.AST) -> bool:
    """An UPPER_CASE name imported or bound at module level, or `settings.X`/`config.X`."""
    if isinstance(node, ast.Name):
        if node.id in ctx.imports:
            return True
        return any(
            isinstance(t, ast.Name) and t.id == node.id
            for stmt in ctx.tree.body
            if isinstance(stmt, (ast.Assign, ast.AnnAssign))
            for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
        )
    if isinstance(node, ast.Attribute):
        base = node.value
        return isinstance(base, ast.Name) and bool(
            set(words(base.id)) & {"settings", "config", "conf", "configuration", "env"}
        )
    return False


def _compares_request(test: ast.AST) -> bool:
    """`request.headers.get("x-env") == "prod"` reads the request, not the deployment."""
    return any(isinstance(s, ast.Name) and s.id in {"request", "req"} for s in ast.walk(test))


def _authenticates(ctx: FileContext, body: list[ast.stmt]) -> bool:
    return any(_authenticating(ctx, sub) for stmt in body for sub in ast.walk(stmt))


def _authenticating(ctx: FileContext, sub: ast.AST) -> bool:
    """A call that authenticates (`verify_token(...)`, `jwt.decode(...)`) or a read of the
    authorization header or cookie."""
    if isinstance(sub, ast.Call):
        func = sub.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if _AUTH_CALL.match(name) or (ctx.qualified_name(func) or "") in DECODERS:
            return True
        if name in {"get", "getlist"} and _reads_auth_header(func, sub.args):
            return True
    return isinstance(sub, ast.Subscript) and _reads_auth_header(sub.value, [sub.slice])


def _reads_auth_header(owner: ast.AST, args: list[ast.expr]) -> bool:
    base = owner.value if isinstance(owner, ast.Attribute) and owner.attr == "get" else owner
    if not (isinstance(base, ast.Attribute) and base.attr in {"headers", "cookies"}):
        return False
    key = args[0] if args else None
    return (
        isinstance(key, ast.Constant)
        and isinstance(key.value, str)
        and key.value.lower() in _AUTH_HEADERS
    )


def _lets_through(ctx: FileContext, body: list[ast.stmt]) -> bool:
    """The branch visibly lets the request through: it is empty, or only logs, passes, and
    sets or returns a fixed identity (a literal, a constant, a setting). A branch that does
    anything else (another login flow under an unknown name, a raise) is not judged."""
    for stmt in body:
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Expr) and (
            isinstance(stmt.value, ast.Constant) or _is_log(stmt.value)
        ):
            continue
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Return)) and _fixed(ctx, stmt.value):
            continue
        return False
    return True


def _is_log(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    owner = node.func.value
    name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
    return "log" in (name or "").lower() or (name == "warnings" and node.func.attr == "warn")


def _fixed(ctx: FileContext, value: ast.AST | None) -> bool:
    """A value fixed by the code or the deployment: `None`, `"admin@example.com"`,
    `DEFAULT_USER`, `settings.default_user`, `{"sub": "dev"}`."""
    if value is None or isinstance(value, ast.Constant):
        return True
    if isinstance(value, (ast.Dict, ast.Tuple, ast.List)):
        return all(_fixed(ctx, v) for v in ast.iter_child_nodes(value) if isinstance(v, ast.expr))
    ident = value.id if isinstance(value, ast.Name) else getattr(value, "attr", None)
    if isinstance(value, (ast.Name, ast.Attribute)) and isinstance(ident, str):
        return ident.isupper() or _module_constant(ctx, value)
    return False
