"""Scenarios for the AUT family: guards across files, schema files on disk, name heuristics."""

from __future__ import annotations

import json
import textwrap

import pytest

from gathering_consolidate import Severity, audit
from gathering_consolidate.audit.auth.auth_bypass_switch import is_auth_switch
from gathering_consolidate.audit.auth.helpers import (
    STRONG,
    WEAK,
    is_placeholder,
    looks_like_credential,
    looks_random,
    secret_strength,
)
from gathering_consolidate.audit.auth.unstable_id_format import sql_declarations
from tests.audit._support import audit_files, found
from tests.conftest import FIXTURE_APP

# -- AUT001 -------------------------------------------------------------------------------------


def test_a_guard_in_a_settings_validator_covers_the_env_read():
    result = audit_files(
        {
            "app/config.py": """
                import os
                from dataclasses import dataclass

                @dataclass(frozen=True)
                class Settings:
                    environment: str
                    allow_insecure_cookies: bool

                    @property
                    def is_production(self):
                        return self.environment == "production"

                    def validate(self):
                        if self.is_production and self.allow_insecure_cookies:
                            raise RuntimeError("refusing to start")

                def load():
                    return Settings(
                        environment=os.getenv("ENVIRONMENT", "development"),
                        allow_insecure_cookies=os.getenv("ALLOW_INSECURE_COOKIES") == "1",
                    )
            """
        },
        ["AUT"],
    )
    assert found(result, "AUT001") == []


def test_a_warning_is_not_a_guard():
    result = audit_files(
        {
            "app/main.py": """
                import logging
                import os
                ENVIRONMENT = os.getenv("ENVIRONMENT", "development")
                DISABLE_AUTH = os.getenv("DISABLE_AUTH") == "1"

                if DISABLE_AUTH and ENVIRONMENT == "production":
                    logging.warning("authentication is disabled in production!")
            """
        },
        ["AUT"],
    )
    (finding,) = found(result, "AUT001")
    assert finding.location.line == 4
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence == {"flag": "DISABLE_AUTH", "source": "env"}


def test_a_guard_for_another_flag_does_not_cover_this_one():
    result = audit_files(
        {
            "app/main.py": """
                import os
                import sys
                SKIP_AUTH = os.getenv("SKIP_AUTH") == "1"
                ALLOW_INSECURE_COOKIES = os.getenv("ALLOW_INSECURE_COOKIES") == "1"
                if ALLOW_INSECURE_COOKIES and os.getenv("ENV") == "production":
                    sys.exit(1)
            """
        },
        ["AUT"],
    )
    assert [f.evidence["flag"] for f in found(result, "AUT001")] == ["SKIP_AUTH"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DISABLE_AUTH", True),
        ("disableAuth", True),
        ("SKIP_JWT_AUTH", True),
        ("AUTH_DISABLED", True),
        ("auth_enabled", True),
        ("ALLOW_INSECURE_COOKIES", True),
        ("LOGIN_DISABLED", True),
        ("ALLOW_LOGIN_WITH_EMAIL", False),
        ("AUTH_TOKEN_URL", False),
        ("DATABASE_URL", False),
    ],
)
def test_switch_names(name, expected):
    assert is_auth_switch(name) is expected


# -- AUT002 / AUT003 / AUT004 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "strength"),
    [
        ("SECRET_KEY", STRONG),
        ("jwt_secret", STRONG),
        ("DB_PASSWORD", STRONG),
        ("apiKey", STRONG),
        ("OPENAI_API_KEY", STRONG),
        ("service_token", WEAK),
        ("token", WEAK),
        ("TOKEN_DATA", 0),
        ("token_type", 0),
        ("tokenUrl", 0),
        ("password_field", 0),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", 0),
        ("is_token", 0),
        ("tokens", 0),
    ],
)
def test_secret_names(name, strength):
    assert secret_strength(name) == strength


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("svc_4f9a2c81d7e3", True),
        ("Zx81-kkq_P", True),
        ("*", False),
        ("********", False),
        ("REVISION_SCRIPT_FILENAME", False),
        ("_sa_default", False),
        ("/auth/login", False),
        ("{token}abcdefgh", False),
    ],
)
def test_credential_shaped_literals(value, expected):
    assert looks_like_credential(value) is expected


def test_jwt_without_signature_check_is_critical_and_pinned_decode_is_not_reported():
    result = audit_files(
        {
            "app/tokens.py": """
                import jwt as pyjwt

                def peek(token):
                    return pyjwt.decode(token, options={"verify_signature": False})

                def verify(token, key):
                    return pyjwt.decode(token, key, algorithms=["HS256"])
            """
        },
        ["AUT"],
    )
    (finding,) = found(result, "AUT003")
    assert finding.location.line == 4
    assert finding.severity is Severity.CRITICAL


def test_fixture_auth_findings():
    result = audit(FIXTURE_APP, select=["AUT"], cache=False)
    rules = {f.rule: f for f in result.findings}
    assert set(rules) == {"AUT001", "AUT002", "AUT003", "AUT004", "AUT005"}
    assert rules["AUT001"].evidence["flag"] == "DISABLE_AUTH"
    assert rules["AUT004"].evidence == {"name": "SECRET_KEY", "how": "default"}
    assert rules["AUT005"].evidence["declared_at"] == "schema/010_auth.sql:7"
    for finding in result.findings:
        json.dumps(finding.evidence)


# -- AUT005 -------------------------------------------------------------------------------------


def test_sql_declarations_read_ids_and_references():
    sql = textwrap.dedent("""
        -- users
        CREATE TABLE IF NOT EXISTS auth.users (
            id      SERIAL PRIMARY KEY,
            email   VARCHAR(255) NOT NULL
        );
        CREATE TABLE "sessions" (
            id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id INTEGER REFERENCES auth.users(id) ON DELETE CASCADE,
            CONSTRAINT one UNIQUE (user_id)
        );
    """)
    found_ = [(d.entity, d.column, d.format, d.where) for d in sql_declarations(sql, "s.sql")]
    assert found_ == [
        ("user", "auth.users.id", "integer", "s.sql:4"),
        ("session", "sessions.id", "uuid", "s.sql:8"),
        ("user", "sessions.user_id", "integer", "s.sql:9"),
    ]


def _write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def test_schema_files_on_disk_are_read_and_part_of_the_cache_key(tmp_path):
    _write(
        tmp_path,
        {
            "pyproject.toml": "[project]\nname = 'demo'\n",
            "schema/users.sql": """
                CREATE TABLE users (
                    id SERIAL PRIMARY KEY
                );
            """,
            "app/users.py": """
                import uuid

                def create_user(email):
                    return {"id": str(uuid.uuid4()), "email": email}
            """,
        },
    )
    (finding,) = audit(tmp_path, select=["AUT005"]).findings
    assert finding.evidence["declared_at"] == "schema/users.sql:2"
    assert finding.evidence["generated"] == "uuid string"
    (tmp_path / "schema/users.sql").write_text("CREATE TABLE users (id UUID PRIMARY KEY);\n")
    assert audit(tmp_path, select=["AUT005"]).findings == ()


def test_in_memory_sources_do_not_read_the_disk():
    result = audit_files(
        {
            "app/users.py": """
                import uuid

                def create_user(email):
                    return {"id": str(uuid.uuid4()), "email": email}
            """
        },
        ["AUT"],
    )
    assert found(result, "AUT005") == []


# -- literals that hold no secret (AUT004, issue 11) ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "placeholder", "random"),
    [
        ("EMPTY", True, False),
        ("xoxb-valid", True, False),
        ("N/A", True, False),
        ("bar:bar", True, False),
        ("sk-test", False, False),
        ("changeme", False, False),
        ("dev-secret", False, False),
        ("svc_4f9a2c81d7e3", False, True),
        ("gh_8f2aC1x9", False, True),
    ],
)
def test_placeholder_and_machine_made_literals(value, placeholder, random):
    assert is_placeholder(value) is placeholder
    assert looks_random(value) is random


def test_a_placeholder_config_default_is_still_reported():
    # A default makes a missing variable silent, whatever it looks like.
    result = audit_files(
        {"app/config.py": 'import os\nJWT_SECRET = os.getenv("JWT_SECRET", "dummy")\n'},
        ["AUT004"],
    )
    assert [f.location.line for f in found(result, "AUT004")] == [2]


# -- AUT006-AUT013 across files (issue 11 corpus) ------------------------------------------------


def test_auth_skipped_by_an_imported_constant_and_its_default_as_evidence():
    result = audit_files(
        {
            "app/config.py": """
                from starlette.config import Config
                config = Config(".env")
                AUTH_PROVIDER = config("AUTH_PROVIDER", default="basic")
                DEFAULT_USER = config("DEFAULT_USER", default="admin@example.com")
            """,
            "app/auth.py": """
                from app.config import AUTH_PROVIDER, DEFAULT_USER

                def current_user(request):
                    if not AUTH_PROVIDER:
                        return DEFAULT_USER
                    return verify_access_token(request.headers["authorization"])
            """,
        },
        ["AUT006"],
    )
    assert [(f.location.path, f.location.line) for f in found(result, "AUT006")] == [
        ("app/auth.py", 4)
    ]


def test_log_call_with_level_argument_and_percent_formatting():
    result = audit_files(
        {
            "app/client.py": """
                import logging
                log = logging.getLogger(__name__)

                def call(api_key, level):
                    log.log(level, "calling with %s", api_key)
                    log.info("key set: %s" % bool(api_key))
            """
        },
        ["AUT009"],
    )
    assert [f.location.line for f in found(result, "AUT009")] == [5]


def test_plaintext_password_is_quiet_when_a_setter_hashes_the_column():
    result = audit_files(
        {
            "app/models.py": """
                from sqlalchemy import Column, Integer, String
                from passlib.hash import bcrypt

                class User(Base):
                    __tablename__ = "users"
                    id = Column(Integer, primary_key=True)
                    password = Column(String)

                def check(user, given):
                    return bcrypt.verify(given, user.password)
            """,
            "app/service.py": """
                from app.models import User

                def create(db, form):
                    db.add(User(password=form.password))
            """,
        },
        ["AUT010"],
    )
    assert found(result, "AUT010") == []
