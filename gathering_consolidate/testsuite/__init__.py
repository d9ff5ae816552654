"""Test-suite consolidation: a static inventory of the tests pytest would collect, a classifier
that tags each `stub`, `contract`, `integration` or `unit` with its evidence (from the audit's STB
and MEM findings), a ledger of counts and skips, and a gate that keeps the suite from shrinking
or hiding failures in CI. The `tag-tests` codemod writes the tags as pytest marks.

    inventory(path) -> Inventory            what pytest would collect, read statically
    classify(inventory) -> Classification   a tag and its evidence per test
    build_ledger(path) -> Ledger            counts per tag and file, skips, xfails
    gate(path, ledger_file) -> GateResult   .passed, .problems (GateProblem(code, message, location))
"""

from .classify import Classification, Verdict, classify
from .gate import GateProblem, GateResult, gate
from .inventory import Inventory, Mark, Skip, TestItem, inventory, issue_reference
from .ledger import GATE_COMMAND, LEDGER_FILE, Ledger, LedgerError, build_ledger, load_ledger
from .overrides import OVERRIDES_FILE, TAGS, Override, OverridesError, load_overrides
from .pytest_config import PytestConfig, PytestConfigError, load_pytest_config

__all__ = [
    "GATE_COMMAND",
    "LEDGER_FILE",
    "OVERRIDES_FILE",
    "TAGS",
    "Classification",
    "GateProblem",
    "GateResult",
    "Inventory",
    "Ledger",
    "LedgerError",
    "Mark",
    "Override",
    "OverridesError",
    "PytestConfig",
    "PytestConfigError",
    "Skip",
    "TestItem",
    "Verdict",
    "build_ledger",
    "classify",
    "gate",
    "inventory",
    "issue_reference",
    "load_ledger",
    "load_overrides",
    "load_pytest_config",
]
