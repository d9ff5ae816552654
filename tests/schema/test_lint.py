"""schema lint: our rendered revisions are clean (every inline ignore has its reason); a bad
revision is caught and mapped to its lines; a target's revisions are never imported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gathering_consolidate.schema.lint import lint_own, lint_path

BAD = textwrap.dedent(
    '''
    """A revision that locks a hot table."""
    from alembic import op
    import sqlalchemy as sa

    revision = "bad1"
    down_revision = None


    def upgrade():
        op.add_column("users", sa.Column("age", sa.BigInteger(), nullable=False))
        op.create_index("ix_users_age", "users", ["age"])


    def downgrade():
        op.drop_index("ix_users_age")
    '''
)


def test_own_revisions_have_no_unexplained_violation():
    result = lint_own()
    assert result.violations == [], [v.to_dict() for v in result.violations]
    assert result.files == 5
    assert result.statements > 50
    assert result.ignored  # the explained ones are listed, each with its reason
    for ignored in result.ignored:
        assert len(ignored.reason) > 20, ignored
    rules = {i.rule for i in result.ignored}
    assert "changing-column-type" in rules  # the user id's type change, explained


def test_bad_revision_is_caught_at_its_lines(tmp_path: Path):
    (tmp_path / "versions").mkdir()
    bad = tmp_path / "versions" / "bad1.py"
    bad.write_text(BAD)
    result = lint_path(tmp_path)
    assert not result.ok
    found = {(v.rule, v.line) for v in result.violations}
    assert ("adding-required-field", 11) in found  # NOT NULL without a default
    assert ("require-concurrent-index-creation", 12) in found  # index without CONCURRENTLY
    assert all(v.path == str(bad) for v in result.violations)
    assert result.files == 1 and result.statements == 2


def test_a_fixed_revision_passes(tmp_path: Path):
    good = textwrap.dedent(
        """
        from alembic import op
        import sqlalchemy as sa

        revision = "good1"
        down_revision = None


        def upgrade():
            op.execute("SET lock_timeout = '5s'")
            op.execute("SET statement_timeout = '60s'")
            op.add_column("users", sa.Column("age", sa.BigInteger(), nullable=True))
            with op.get_context().autocommit_block():
                op.create_index(
                    "ix_users_age", "users", ["age"], postgresql_concurrently=True,
                    if_not_exists=True,
                )
        """
    )
    (tmp_path / "good1.py").write_text(good)
    result = lint_path(tmp_path / "good1.py")
    assert result.violations == [], [v.to_dict() for v in result.violations]
    assert result.statements == 4


def test_target_code_is_never_run(tmp_path: Path):
    marker = tmp_path / "ran"
    evil = textwrap.dedent(
        f"""
        import os
        from alembic import op
        import sqlalchemy as sa
        from sqlalchemy.util import langhelpers

        revision = "evil"
        down_revision = None
        open({str(marker)!r}, "w").write("module level")


        def helper():
            open({str(marker)!r}, "w").write("helper")


        def upgrade():
            helper()
            os.system("touch {marker}")
            langhelpers.load_uncompiled_module("x")
            sa.util.langhelpers.warn("x")
            op.get_bind().execute(sa.text("select 1"))
            op.execute(sa.text("ALTER TABLE t ADD COLUMN c text"))
        """
    )
    (tmp_path / "evil.py").write_text(evil)
    result = lint_path(tmp_path)
    assert not marker.exists()
    assert result.statements == 1  # only the plain op.execute
    reasons = {n.line: n.reason for n in result.not_rendered}
    assert len(reasons) == 5, reasons
    assert "helper" in reasons[17]


def test_sql_files_are_linted_as_they_are(tmp_path: Path):
    (tmp_path / "001.sql").write_text("CREATE INDEX i ON t (a);\n")
    result = lint_path(tmp_path)
    assert {v.rule for v in result.violations} >= {"require-concurrent-index-creation"}
    assert result.violations[0].line == 1


@pytest.mark.parametrize("missing", ["nope", "nope.py"])
def test_missing_path_is_an_error(tmp_path: Path, missing: str):
    from gathering_consolidate.schema.lint import LintError

    with pytest.raises(LintError, match="no such file"):
        lint_path(tmp_path / missing)


def test_a_revision_that_doubles_a_string_is_bounded(tmp_path: Path):
    """`s = s + s` sixty times would build 2**60 characters: the replay stops at its bound and
    lists the statement as not rendered; the lint still finishes."""
    doubling = "\n".join("    s = s + s" for _ in range(60))
    (tmp_path / "big.py").write_text(
        "from alembic import op\n\nrevision = 'big'\ndown_revision = None\n\n\n"
        f"def upgrade():\n    s = 'x'\n{doubling}\n    op.execute(s)\n"
    )
    result = lint_path(tmp_path)
    assert result.statements == 0
    assert any(
        "longer than the lint reads" in item["reason"] for item in result.to_dict()["not_rendered"]
    )
