"""`file_may_have_sql` gives the answer of a plain `_FILE_HINT.search`, trying the pattern only
where one of its leading words occurs."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from gathering_consolidate.sql.sites import _FILE_HINT, _FOLD, _HINT_WORDS, file_may_have_sql

REPO = Path(__file__).resolve().parents[2]

TEXTS = [
    'q = "SELECT id FROM users WHERE name = %s"',
    "q = 'select *\n   from t'",
    "cur.execute(f'UPDATE runs SET state = {s}')",
    "INSERT  INTO t VALUES (1)",
    "sql = 'DELETE FROM t'",
    "TRUNCATE t",
    "MERGE INTO t USING s",
    "WITH recent AS (SELECT 1)",
    "DROP TABLE t",
    "create index ix on t (c)",
    "ALTER SCHEMA s RENAME TO r",
    "SET LOCAL search_path = x",
    "set  role admin",
    # Characters that case-insensitive matching pairs with ASCII letters.
    "\u017felect a FROM b",
    "\u0130nsert into t values (1)",
    "\u0131NSERT INTO t",
    "\u212aEEP = 1; upda\u0131e = 2; \u017fet role x",
    "DROP TABLE \u00e9t\u00e9",
    # Near misses: the words without the rest, or inside longer words.
    "settings = Settings()\nwith open(p) as fh:\n    pass",
    "selected = [x for x in items if x.created]",
    "updater.setdefault('k', 1)",
    "with_ctx = reset(offset)",
    "\u00e9select x from y",
    "select" + "x" * 700 + " from t",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_same_answer_as_a_search(text: str) -> None:
    assert file_may_have_sql(text) == bool(_FILE_HINT.search(text))


def test_positive_and_negative_texts_are_both_covered() -> None:
    answers = {bool(_FILE_HINT.search(t)) for t in TEXTS}
    assert answers == {True, False}


def test_same_answer_on_the_repository_sources() -> None:
    files = sorted((REPO / "gathering_consolidate").rglob("*.py")) + sorted(
        (REPO / "fixtures").rglob("*.py")
    )
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert file_may_have_sql(text) == bool(_FILE_HINT.search(text)), path


def test_every_match_starts_with_a_hint_word() -> None:
    for text in TEXTS:
        for at in range(len(text)):
            if _FILE_HINT.match(text, at):
                folded = text.translate(_FOLD)
                assert folded.startswith(_HINT_WORDS, at), (text, at)


def test_fold_covers_every_character_matching_an_ascii_letter() -> None:
    # Non-ASCII characters that a case-insensitive pattern letter matches: the fold must map
    # each to that letter, or a match starting with one would be missed.
    others = "".join(chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000)
    found: dict[int, int] = {}
    for letter in string.ascii_lowercase:
        for match in re.finditer(letter, others, re.IGNORECASE):
            found[ord(match.group())] = ord(letter)
    assert found == {k: v for k, v in _FOLD.items() if k >= 0x80}
    assert all(_FOLD[ord(c)] == ord(c.lower()) for c in string.ascii_uppercase)
