"""VFY001 auth-contract: register, log in and read the current user; the user's shape is the
recorded one; tokens survive a restart and revoked tokens stay revoked.

What: registers a user, logs in (form or JSON, as the profile says), reads the current user and
compares the response with the profile's `[auth.contract]` (every field name and its JSON type,
no field missing or added; the id stays a string). Then: a garbage token, an expired token (re-
signed with the app's secret when the profile names `jwt_secret_env`) and, after logout, the
revoked token are rejected with the profile's status and a detail that says invalid, expired or
revoked (`[auth.messages]`). The app is restarted (a graceful stop and start): the token issued
before must still work, the revoked one must still be rejected as revoked.

Why: an app that keeps users or the token blacklist in process memory logs everybody out (or
forgets every logout) on each deploy, and a user id that changes type breaks every client.

Fix: persist users and revoked tokens in the database (the consolidated GatheRing keeps them in
`auth.users` and `auth.token_blacklist`), keep the user response model as recorded, and answer
each rejection with its own message.
"""

from __future__ import annotations

import re
import time
from typing import Any

from gathering_consolidate.verify.checks import Outcome
from gathering_consolidate.verify.context import (
    CheckFailed,
    NotApplicable,
    VerifyContext,
    bearer,
    is_json,
    short,
)

ID = "VFY001"
NAME = "auth-contract"
SECTION = "auth"  # the profile section it reads

_JSON_TYPES = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
    "null": type(None),
}


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    for name, kind in _JSON_TYPES.items():
        if name not in ("number", "boolean", "null") and isinstance(value, kind):
            return name
    return "number" if isinstance(value, float) else type(value).__name__


def shape_problems(user: Any, contract: dict[str, Any]) -> list[str]:
    """Differences between a user document and the recorded contract (field -> JSON type, or
    a list of accepted types such as ["string", "null"])."""
    if not isinstance(user, dict):
        return [f"the user response is {json_type(user)}, not an object"]
    out = []
    for name, expected in contract.items():
        allowed = [expected] if isinstance(expected, str) else list(expected)
        if name not in user:
            out.append(f"field {name!r} is missing")
            continue
        actual = json_type(user[name])
        if actual not in allowed and not (actual == "integer" and "number" in allowed):
            out.append(
                f"field {name!r} is {actual} ({user[name]!r}), recorded as {'|'.join(allowed)}"
            )
    for name in sorted(set(user) - set(contract)):
        out.append(f"field {name!r} is not in the recorded contract")
    return out


def _detail(response: Any) -> str:
    if is_json(response):
        body = response.json()
        if isinstance(body, dict) and "detail" in body:
            return str(body["detail"])
    return short(response.text)


def _rejected(ctx: VerifyContext, out: Outcome, token: str, kind: str, label: str) -> None:
    """`token` must be rejected with the profile's status and a detail saying `kind`."""
    auth = ctx.profile.section("auth")
    statuses = [int(s) for s in auth.get("reject_status", [401])]
    pattern = dict(auth.get("messages", {})).get(kind)
    response = ctx.request("GET", str(auth["me"]), headers=bearer(token))
    detail = _detail(response)
    if response.status_code not in statuses:
        out.problem(
            f"{label}: answered {response.status_code} ({detail}), expected "
            f"{'/'.join(map(str, statuses))}"
        )
        return
    if pattern and not re.search(str(pattern), detail, re.IGNORECASE):
        out.problem(f"{label}: rejected with {detail!r}, which does not say {kind} (/{pattern}/)")
        return
    out.note(f"{label}: {response.status_code} {detail!r}")


def _expired_token(ctx: VerifyContext, token: str) -> str | None:
    auth = ctx.profile.section("auth")
    secret_env = auth.get("jwt_secret_env")
    secret = ctx.app.env.get(str(secret_env)) if secret_env else None
    if not secret:
        return None
    import jwt

    algorithm = str(auth.get("jwt_algorithm", "HS256"))
    try:  # the app's own token, checked with the app's secret
        claims = jwt.decode(token, secret, algorithms=[algorithm])
    except jwt.InvalidTokenError:  # another secret or algorithm, an audience: not re-signable
        return None
    now = int(time.time())
    claims.update({"exp": now - 120, "iat": now - 3720})
    return jwt.encode(claims, secret, algorithm=algorithm)


def run(ctx: VerifyContext, out: Outcome):
    auth = ctx.profile.section("auth")
    missing = [key for key in ("register", "login", "me") if key not in auth]
    if missing:
        raise NotApplicable(f"the profile's [auth] names no {', '.join(missing)} endpoint")
    contract = dict(auth.get("contract", {}))

    creds = ctx.register_user()
    out.note(f"registered {creds.email} through {auth['register']['path']}")
    me = ctx.request("GET", str(auth["me"]), headers=bearer(creds.token))
    if me.status_code != 200:
        raise CheckFailed(
            f"{auth['me']} with a fresh token answered {me.status_code}: {short(me.text)}"
        )
    user = me.json()
    out.note(f"logged in ({'form' if 'form' in auth['login'] else 'JSON'}) and read {auth['me']}")
    if contract:
        for label, document in (("register response", creds.user), (str(auth["me"]), user)):
            if label == "register response" and not document:
                continue
            for problem in shape_problems(document, contract):
                out.problem(f"{label}: {problem}")
        if not any(p for p in out.problems):
            out.note(f"user shape matches the recorded contract ({', '.join(contract)})")
    else:
        out.note("no [auth.contract] recorded: the user shape is not compared")
    user_id = user.get("id") if isinstance(user, dict) else None
    if creds.user and isinstance(creds.user, dict) and creds.user.get("id") not in (None, user_id):
        out.problem(f"register answered id {creds.user.get('id')!r}, {auth['me']} id {user_id!r}")

    _rejected(ctx, out, "not-a-token." + "x" * 20 + ".y", "invalid", "a malformed token")
    expired = _expired_token(ctx, creds.token)
    if expired is None:
        out.note(
            "expired token not tried: no [auth] jwt_secret_env in [env], or the token does not "
            "verify with it (algorithm, audience)"
        )
    else:
        _rejected(ctx, out, expired, "expired", "an expired token")

    revoked: str | None = None
    if "logout" in auth:
        second = ctx.login(creds.email, creds.password)
        response = ctx.request("POST", str(auth["logout"]), headers=bearer(second))
        if response.status_code >= 300:
            out.problem(f"logout answered {response.status_code}: {short(response.text)}")
        else:
            revoked = second
            _rejected(ctx, out, revoked, "revoked", "the token revoked by logout")
    else:
        out.note("the profile names no logout endpoint: revocation is not checked")

    ctx.say("auth-contract: restarting the app")
    ctx.app.restart()
    out.note("app restarted (graceful stop and start)")
    after = ctx.request("GET", str(auth["me"]), headers=bearer(creds.token))
    if after.status_code != 200:
        out.problem(
            f"restart: a token issued before the restart was rejected after it: "
            f"{after.status_code} {_detail(after)!r}"
        )
        ctx.forget_user()
    else:
        same = after.json().get("id") == user_id
        if not same:
            out.problem(
                f"restart: {auth['me']} now answers id {after.json().get('id')!r}, was {user_id!r}"
            )
        else:
            out.note("restart: the token issued before the restart still works (same user id)")
    if revoked is not None:
        _rejected(ctx, out, revoked, "revoked", "restart: the revoked token")
    restart = [p for p in out.problems if p.startswith("restart:")]
    if restart:  # the headline: what a deploy breaks
        more = f" (+{len(out.problems) - 1} more)" if len(out.problems) > 1 else ""
        return "fail", restart[0] + more
    return out.verdict("register/login/me keep the recorded contract; tokens survive a restart")
