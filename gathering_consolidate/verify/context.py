"""What every check gets: the profile, the running app (start, stop, kill, restart), the
database verify created (or was told is disposable), HTTP helpers that follow the app across
restarts, and a test user."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gathering_consolidate.verify.profile import Profile, fill
from gathering_consolidate.verify.runtime import AppProcess


class NotApplicable(Exception):
    """Raised by a check when the profile or the app lacks what it needs; the message is the
    reason shown to the user."""


class CheckFailed(Exception):
    """Raised by a check step that cannot go on; the message is the failing evidence."""


@dataclass
class Credentials:
    email: str
    password: str
    token: str
    user: dict[str, Any]


@dataclass
class VerifyContext:
    target: Path
    cwd: Path
    profile: Profile
    app: AppProcess
    database_url: str
    values: dict[str, Any]
    python: str
    workers: int = 0
    detect_blocking: bool = False
    progress: Callable[[str], None] | None = None
    _openapi: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _creds: Credentials | None = field(default=None, init=False, repr=False)
    _client: httpx.Client | None = field(default=None, init=False, repr=False)

    # -- reporting -------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    # -- profile values --------------------------------------------------------------------------
    def fill(self, value: Any, **extra: Any) -> Any:
        return fill(value, {**self.values, **extra})

    # -- HTTP -------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.app.base_url + path

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 15.0,
        **kwargs: Any,
    ) -> httpx.Response:
        self.app.ensure_alive()
        if self._client is None:
            self._client = httpx.Client(timeout=timeout)
        return self._client.request(
            method, self.url(path), headers=headers, timeout=timeout, **kwargs
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(
        self, spec: Mapping[str, Any], *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> httpx.Response:
        """A request described by the profile: `{path, method, json|form}` (method defaults to
        POST when there is a body, else GET); placeholders filled from `extra` and the run's
        values."""
        spec = self.fill(dict(spec), **extra)
        kwargs: dict[str, Any] = {}
        if "json" in spec:
            kwargs["json"] = spec["json"]
        if "form" in spec:
            kwargs["data"] = spec["form"]
        method = str(spec.get("method") or ("POST" if kwargs else "GET")).upper()
        return self.request(method, str(spec["path"]), headers=headers, **kwargs)

    # -- OpenAPI ---------------------------------------------------------------------------------
    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            response = self.request("GET", self.profile.openapi_path)
            if response.status_code != 200:
                raise NotApplicable(
                    f"the app serves no OpenAPI document at {self.profile.openapi_path} "
                    f"({response.status_code})"
                )
            self._openapi = response.json()
        return self._openapi

    def has_route(self, method: str, path: str) -> bool:
        """True when the app's OpenAPI has `method` on a path template matching `path` (a
        concrete path or a template; the query string is ignored)."""
        path = path.split("?", 1)[0]
        for template, operations in self.openapi().get("paths", {}).items():
            if method.lower() in operations and _template_matches(template, path):
                return True
        return False

    def require_route(self, method: str, path: str, what: str) -> None:
        if not self.has_route(method, path):
            raise CheckFailed(
                f"{what}: the app has no {method.upper()} {path} (profile expects it)"
            )

    # -- a test user ------------------------------------------------------------------------------
    def register_user(self) -> Credentials:
        """Register a new user and log in through the profile's auth endpoints."""
        auth = self.profile.section("auth")
        if "register" not in auth or "login" not in auth:
            raise NotApplicable("the profile names no [auth] register and login endpoints")
        email = f"verify-{secrets.token_hex(5)}@{auth.get('email_domain', 'example.com')}"
        password = str(auth.get("password") or "Verify-" + secrets.token_urlsafe(12))
        response = self.send(auth["register"], email=email, password=password)
        if response.status_code >= 300:
            raise CheckFailed(
                f"register {auth['register']['path']} answered {response.status_code}: "
                f"{_short(response.text)}"
            )
        user = response.json() if _is_json(response) else {}
        token = self.login(email, password)
        return Credentials(email, password, token, user)

    def login(self, email: str, password: str) -> str:
        auth = self.profile.section("auth")
        response = self.send(auth["login"], email=email, password=password)
        if response.status_code != 200:
            raise CheckFailed(
                f"login {auth['login']['path']} answered {response.status_code}: "
                f"{_short(response.text)}"
            )
        field_name = str(auth["login"].get("token_field", "access_token"))
        token = response.json().get(field_name) if _is_json(response) else None
        if not isinstance(token, str) or not token:
            raise CheckFailed(f"login answered no {field_name!r}: {_short(response.text)}")
        return token

    def auth_headers(self) -> dict[str, str]:
        """Bearer headers of a user that works now (registered again if the app forgot the
        previous one, as an app keeping users in memory does after a restart); empty when the
        profile has no auth."""
        auth = self.profile.section("auth")
        if "register" not in auth or "login" not in auth:
            return {}
        if self._creds is not None:
            if "me" not in auth:  # nothing to check the token with: keep it
                return _bearer(self._creds.token)
            check = self.request("GET", str(auth["me"]), headers=_bearer(self._creds.token))
            if check.status_code == 200:
                return _bearer(self._creds.token)
        if self._creds is None:
            self._creds = self.register_user()
        else:
            try:
                self._creds.token = self.login(self._creds.email, self._creds.password)
            except CheckFailed:
                self._creds = self.register_user()
        return _bearer(self._creds.token)

    def forget_user(self) -> None:
        self._creds = None

    # -- waiting -----------------------------------------------------------------------------------
    def poll(self, probe: Callable[[], Any], *, timeout: float, interval: float = 0.2) -> Any:
        """Call `probe` until it returns something truthy or `timeout` passes; returns the last
        value."""
        deadline = time.monotonic() + timeout
        value = probe()
        while not value and time.monotonic() < deadline:
            time.sleep(interval)
            value = probe()
        return value


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("content-type", "")


def _short(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _template_matches(template: str, path: str) -> bool:
    if "{" in path:  # a template itself: compare the shapes
        return re.sub(r"\{[^}]+\}", "{}", template) == re.sub(r"\{[^}]+\}", "{}", path)
    pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
    return re.match(pattern, path) is not None


short = _short
bearer = _bearer
is_json = _is_json
