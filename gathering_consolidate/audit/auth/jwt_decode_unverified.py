from __future__ import annotations

import ast
from collections.abc import Iterator

from ...model import Finding, Severity
from ..base import FileCheck, FileContext, Invalid, Valid
from .helpers import imported_name, may_import

#: JWT decoders, however imported (`import jwt`, `from jose import jwt`, `from jwt import decode`).
DECODERS = frozenset(
    {
        "jwt.decode",
        "jwt.decode_complete",
        "jwt.api_jwt.decode",
        "jwt.api_jwt.decode_complete",
        "jose.jwt.decode",
    }
)
_VERIFY_OPTIONS = {
    "verify_signature": "signature verification off",
    "verify_exp": "expiry verification off",
    "verify_nbf": "not-before verification off",
    "verify_iat": "issued-at verification off",
    "verify_aud": "audience verification off",
}


class JwtDecodeUnverified(FileCheck):
    """`jwt.decode(...)` without pinned `algorithms=`, or with signature or expiry checks off.

    ## Why is this bad?
    A decoder that accepts the algorithm the token names lets an attacker pick it: `none`, or
    HS256 signed with a public RSA key. With `verify_signature: False` any forged token decodes;
    with `verify_exp: False` a stolen or logged-out token works forever. Code that "only peeks"
    at the claims tends to be reused later for an authorisation decision.

    PyJWT's `jwt.decode` and python-jose's `jose.jwt.decode` are recognised however they are
    imported. Reported at the call when `algorithms` is missing (neither keyword nor third
    positional argument), is `None`, or lists `"none"`; or when a literal `options` dict sets
    `verify_signature`, `verify_exp` (or `verify_nbf`, `verify_iat`, `verify_aud`) to False; or
    with PyJWT 1's `verify=False`. Severity is critical when the signature is not checked.
    Not reported: options passed as a variable or `**kwargs` (unknown), decoders of other
    libraries, and python-jose's `jose.jwt.decode` without `algorithms`: python-jose has no
    `none` algorithm and refuses to build an HMAC key from a public key or a JWK of another key
    type, so the header cannot pick a weaker check than the key allows (it still verifies the
    signature, the expiry and the audience). Evidence: `problems` (a list) and `algorithms`
    (`pinned`/`missing`/`none`/`key`).
    """

    id, name = "AUT003", "jwt-decode-unverified"
    severity = Severity.HIGH
    VALID = [
        Valid("""
            import jwt

            def decode_token(token, key):
                return jwt.decode(
                    token, key, algorithms=["HS256"], options={"require": ["exp", "sub"]}
                )
        """),
        Valid("""
            from jose import jwt
            ALGORITHM = "RS256"

            def claims(token, public_key, **options):
                return jwt.decode(token, public_key, [ALGORITHM], **options)
        """),
        Valid("""
            from jose import jwt

            def email(token, secret, jwks_key, audience):
                claims = jwt.decode(token, jwks_key, audience=audience, options={})
                return jwt.decode(token, secret)["email"]
        """),
        Valid("""
            class Codec:
                def decode(self, token):
                    return token.split(".")

            jwt = Codec()
            parts = jwt.decode("a.b.c")
        """),
    ]
    INVALID = [
        Invalid(
            """
            import jwt

            def peek_token_claims(token):
                return jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
            """,
            line=4,
            evidence={
                "problems": [
                    "algorithms not pinned",
                    "signature verification off",
                    "expiry verification off",
                ],
                "algorithms": "missing",
            },
        ),
        Invalid(
            """
            from jwt import decode as jwt_decode

            def user_id(token, key):
                return jwt_decode(token, key)["sub"]
            """,
            evidence={"problems": ["algorithms not pinned"]},
        ),
        Invalid(
            """
            from jose import jwt

            def claims(token, key):
                return jwt.decode(token, key, algorithms=["HS256", "none"])
            """,
            evidence={"algorithms": "none"},
        ),
        Invalid(
            """
            import jwt

            def claims(token, key):
                return jwt.decode(token, key, algorithms=["HS256"], options={"verify_exp": False})
            """,
            evidence={"problems": ["expiry verification off"], "algorithms": "pinned"},
        ),
    ]

    def check(self, ctx: FileContext) -> Iterator[Finding]:
        if not may_import(ctx, DECODERS):  # no call here can resolve to a decoder
            return
        for call in ctx.nodes(ast.Call):
            name = imported_name(ctx, call.func)
            if name not in DECODERS:
                continue
            problems: list[str] = []
            algorithms = _algorithms(call)
            if algorithms == "missing" and name.startswith("jose."):
                algorithms = "key"  # python-jose: the key's type decides (see docstring)
            if algorithms == "missing":
                problems.append("algorithms not pinned")
            elif algorithms == "none":
                problems.append('algorithms allow "none"')
            problems.extend(_disabled(call))
            if not problems:
                continue
            signature_off = "signature verification off" in problems
            yield ctx.finding(
                self,
                call,
                "JWT decoded with " + ", ".join(problems),
                evidence={"problems": problems, "algorithms": algorithms},
                severity=Severity.CRITICAL if signature_off else None,
            )


def _algorithms(call: ast.Call) -> str:
    value: ast.AST | None = next((k.value for k in call.keywords if k.arg == "algorithms"), None)
    if value is None and len(call.args) > 2:
        value = call.args[2]
    if value is None:
        has_kwargs = any(k.arg is None for k in call.keywords)
        has_star = any(isinstance(a, ast.Starred) for a in call.args)
        return "pinned" if has_kwargs or has_star else "missing"
    if isinstance(value, ast.Constant) and value.value is None:
        return "missing"
    elements = value.elts if isinstance(value, (ast.List, ast.Tuple, ast.Set)) else [value]
    for element in elements:
        if isinstance(element, ast.Constant) and str(element.value).lower() == "none":
            return "none"
    return "pinned"


def _disabled(call: ast.Call) -> list[str]:
    found: list[str] = []
    for keyword in call.keywords:
        value = keyword.value
        if keyword.arg == "verify" and isinstance(value, ast.Constant) and value.value is False:
            found.append("signature verification off")
        if keyword.arg == "options" and isinstance(value, ast.Dict):
            for key, item in zip(value.keys, value.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value in _VERIFY_OPTIONS
                    and isinstance(item, ast.Constant)
                    and item.value is False
                ):
                    found.append(_VERIFY_OPTIONS[key.value])
    return found
