from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from ...model import Finding, Severity
from ..astutil import FUNCTION_DEFS, is_test_path, own_nodes, words
from ..base import FileContext, Invalid, Valid
from .helpers import StubCheck, in_test_double, is_abstract

#: Words of a key or variable that name an identifier, a credential or a link: a value the
#: caller stores or follows, so an invented one is a fake outcome.
_REFERENCE_WORDS = frozenset(
    {"id", "key", "secret", "token", "password", "url", "uri", "link", "weblink", "href"}
)
#: Host names reserved for documentation (RFC 2606 / RFC 6761).
_RESERVED_HOST = re.compile(r"(?:^|\.)(?:example\.(?:com|net|org)|example|test|invalid)$")


#: The identity of a created resource or a credential: an invented one is never a fair default.
_IDENTITY_WORDS = frozenset({"id", "key", "secret", "token", "password"})
#: Receivers of `.get()` that hold configuration, where a default value is a real default.
_CONFIG_WORDS = frozenset(
    {"config", "conf", "cfg", "settings", "setting", "env", "environ", "options", "opts"}
    | {"kwargs", "params", "defaults", "getenv"}
)


def _is_reference(name: str | None) -> bool:
    return bool(name) and bool(_REFERENCE_WORDS & set(words(name or "")))


def _is_identity(name: str | None) -> bool:
    return bool(name) and bool(_IDENTITY_WORDS & set(words(name or "")))


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _example_url(text: str) -> bool:
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return False
    return text.startswith(("http://", "https://")) and bool(_RESERVED_HOST.search(host))


class PlaceholderResult(StubCheck):
    """A function returns an identifier, credential or link it invented instead of the real one.

    ## Why is this bad?
    `create_ticket()` answers `{"resource_id": "", "weblink": "https://tickets.example.com"}`, a
    conference plugin falls back to `response.get("id", "1")` when the API answered an error, a
    login route redirects with `client_id = ""`. The caller stores the id, shows the link or
    follows the redirect as if the resource existed; nothing fails until a person clicks it.

    Reported at the `def` line when a value the function returns (a dict entry, a keyword of the
    object it builds, a name interpolated into the returned string) is, for a key or variable named
    for an identifier, credential or link (`*_id`, `*key`, `*secret`, `*token`, `password`,
    `*url`, `*link`, `href`):

    - an empty string (`"resource_id": ""`, `client_id = ""` then `f"...client_id={client_id}"`);
    - a `.get(key, default)` whose default is an invented non-empty string
      (`data.get("id", "1")`, `data.get("join_url", "https://zoom.us")`);

    or, for any key, a URL on a host reserved for documentation (`example.com`, `*.example`,
    `*.test`, `*.invalid`). One decisive placeholder is enough (an example-domain URL, an invented
    default for an id, key, secret, token or password, an empty local interpolated into the
    result); weaker ones (an empty link or id value in a dict, an invented link default) are
    reported when two agree.

    Not reported: values built from the input or from configuration (`f"{UI_URL}/{id}"`),
    defaults read from configuration (`settings.get("base_url", "https://api.openai.com")`,
    `os.environ.get(...)`, `kwargs.get(...)`), `None` and empty defaults (`.get("id")`,
    `.get("url", "")`: the absence stays visible), a lone empty link (`"next_url": ""` at the
    last page), abstract methods, test code and test doubles (`Mock*`, `Fake*`, `Dummy*`,
    `Stub*`, `Test*` classes).
    Evidence: `placeholders` (each as `key: value`), `route`.
    """

    id, name = "STB004", "placeholder-result"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            def create_fallback_ticket(incident_id, project):
                resource_id = f"dispatch-{project.slug}-{incident_id}"
                return {
                    "resource_id": resource_id,
                    "weblink": f"{UI_URL}/{project.name}/incidents/{resource_id}",
                }
        """),
        Valid("""
            def parse_user(payload):
                return {"id": payload.get("id"), "avatar_url": payload.get("avatar_url", "")}
        """),
        Valid("""
            def client_settings(settings, page):
                return {
                    "base_url": settings.get("base_url", "https://api.openai.com/v1"),
                    "next_url": "" if page.last else page.next_url,
                    "prev_url": "",
                }
        """),
        Valid(
            """
            class FakeTicketPlugin:
                def create(self, title):
                    return {"resource_id": "", "weblink": "https://tickets.example.com"}
            """,
        ),
    ]
    INVALID = [
        Invalid(
            """
            class TicketPlugin:
                def create_task_ticket(self, task_id, title):
                    \"\"\"Creates a task ticket.\"\"\"
                    return {"resource_id": "", "weblink": "https://tickets.example.com"}
            """,
            line=2,
            evidence={
                "placeholders": [
                    "resource_id: ''",
                    "weblink: 'https://tickets.example.com'",
                ],
            },
        ),
        Invalid(
            """
            class ConferencePlugin:
                def create(self, name):
                    response = create_meeting(self.client, name)
                    data = response.json()
                    return {
                        "weblink": data.get("join_url", "https://zoom.us"),
                        "id": data.get("id", "1"),
                    }
            """,
            line=2,
            evidence={
                "placeholders": [
                    "weblink: 'https://zoom.us' (default of .get('join_url'))",
                    "id: '1' (default of .get('id'))",
                ],
            },
        ),
        Invalid(
            """
            from fastapi import FastAPI
            from fastapi.responses import RedirectResponse
            app = FastAPI()

            @app.get("/github-login")
            def github_login():
                github_client_id = ""
                return RedirectResponse(
                    f"https://github.com/login/oauth/authorize?client_id={github_client_id}"
                )
            """,
            line=6,
            evidence={"placeholders": ["github_client_id: ''"], "route": "GET /github-login"},
        ),
    ]

    @classmethod
    def candidates(cls, ctx: FileContext) -> Iterator[Finding]:
        if is_test_path(ctx.path):
            return
        for func in ctx.nodes(*FUNCTION_DEFS):
            if in_test_double(ctx, func) or is_abstract(ctx, func):
                continue
            found = placeholders(ctx, func)
            if found:
                yield ctx.finding(
                    cls,
                    func,
                    f"`{func.name}` returns invented values instead of real ones: "
                    + ", ".join(found[:3]),
                    evidence={"placeholders": found},
                    snippet=ctx.lines[func.lineno - 1],
                )


def placeholders(ctx: FileContext, func: ast.AST) -> list[str]:
    """`key: value` for every placeholder in what `func` returns, when one is decisive (an
    example-domain URL, an invented identity default, an empty reference interpolated into the
    result) or two weaker ones agree (empty link values, invented link defaults)."""
    empty_locals: set[str] | None = None  # computed when a returned f-string needs it
    found: list[tuple[str, bool]] = []
    for ret in own_nodes(func, ctx):
        if not isinstance(ret, ast.Return) or ret.value is None:
            continue
        for node in ast.walk(ret.value):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    found.extend(_judge(_string(key), value))
            elif isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg:
                        found.extend(_judge(keyword.arg, keyword.value))
            elif isinstance(node, ast.FormattedValue) and isinstance(node.value, ast.Name):
                if empty_locals is None:
                    empty_locals = _empty_locals(ctx, func)
                if node.value.id in empty_locals:
                    found.append((f"{node.value.id}: ''", True))
    unique = dict.fromkeys(found)
    strong = any(decisive for _text, decisive in unique)
    return [text for text, _ in unique] if strong or len(unique) > 1 else []


def _judge(key: str | None, value: ast.AST) -> list[tuple[str, bool]]:
    """Placeholders in one returned value, each with whether it is decisive on its own."""
    text = _string(value)
    if text is not None:
        if _example_url(text):
            return [(f"{key}: {text!r}", True)]
        if text == "" and _is_reference(key):
            return [(f"{key}: ''", False)]
        return []
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr == "get"
        and len(value.args) == 2
        and not _CONFIG_WORDS & set(words(ast.unparse(value.func.value).replace(".", "_")))
    ):
        looked_up, default = _string(value.args[0]), _string(value.args[1])
        label = f"{key}: {default!r} (default of .get({looked_up!r}))"
        if default and _example_url(default):
            return [(label, True)]
        if default and _is_reference(looked_up):
            return [(label, _is_identity(looked_up))]
    return []


def _empty_locals(ctx: FileContext, func: ast.AST) -> set[str]:
    """Local names, named for a reference, bound only to `""` in `func`."""
    bound: dict[str, list[ast.AST | None]] = {}
    for node in own_nodes(func, ctx):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, []).append(node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            target = node.target
            if isinstance(target, ast.Name):
                bound.setdefault(target.id, []).append(None)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)):
            for sub in ast.walk(node.target if isinstance(node, (ast.For, ast.AsyncFor)) else node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    bound.setdefault(sub.id, []).append(None)
    return {
        name
        for name, values in bound.items()
        if _is_reference(name) and all(_string(v) == "" for v in values)
    }
