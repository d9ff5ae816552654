"""Codemods: one libcst rewrite per module; `engine.py` runs, checks, diffs and writes them."""

from .base import (
    Changed,
    Codemod,
    CodemodProject,
    Failed,
    Keeps,
    Outcome,
    Refuse,
    Refused,
    Refuses,
    Rewrite,
    Unchanged,
)

__all__ = [
    "Changed",
    "Codemod",
    "CodemodProject",
    "Failed",
    "Keeps",
    "Outcome",
    "Refuse",
    "Refused",
    "Refuses",
    "Rewrite",
    "Unchanged",
]
