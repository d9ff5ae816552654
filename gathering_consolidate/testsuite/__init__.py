"""Test-suite consolidation: a static inventory of the tests pytest would collect, a classifier
that tags each `stub`, `contract`, `integration` or `unit` with its evidence (from the audit's STB
and MEM findings), a ledger of counts and skips, and a gate that keeps the suite from shrinking
or hiding failures in CI. The `tag-tests` codemod writes the tags as pytest marks."""

from .inventory import Inventory, Mark, Skip, TestItem, inventory, issue_reference
from .pytest_config import PytestConfig, PytestConfigError, load_pytest_config

__all__ = [
    "Inventory",
    "Mark",
    "PytestConfig",
    "PytestConfigError",
    "Skip",
    "TestItem",
    "inventory",
    "issue_reference",
    "load_pytest_config",
]
