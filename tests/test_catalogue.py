"""Meta-tests that keep the catalogue honest (ruff's check_docs_formatted, sqlfluff's metaclass)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

from gathering_consolidate.audit import Check, family_modules, registry
from gathering_consolidate.codemods.engine import codemod_registry

# `gathering_consolidate.audit` the attribute is the audit() function; the package is in sys.modules.
audit_package = importlib.import_module("gathering_consolidate.audit")

CHECKS = registry()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_ids_and_names_are_unique():
    assert len({c.id for c in CHECKS}) == len(CHECKS)
    assert len({c.name for c in CHECKS}) == len(CHECKS)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_check_is_documented_and_has_examples(check):
    assert check.summary().endswith(".")
    assert "## Why is this bad?" in check.__doc__
    assert check.VALID, f"{check.id} needs at least one Valid example"
    assert check.INVALID, f"{check.id} needs at least one Invalid example"
    module = inspect.getmodule(check).__name__.rsplit(".", 1)[1]
    assert module == _snake(check.__name__), "one module per check, named after the class"


def test_every_check_class_is_registered():
    registered = set(CHECKS)
    for family in family_modules():
        package = importlib.import_module(f"{audit_package.__name__}.{family}")
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for value in vars(module).values():
                if (
                    inspect.isclass(value)
                    and issubclass(value, Check)
                    and value.id
                    and value.__module__ == module.__name__
                ):
                    assert value in registered, f"{value.__name__} is missing from CHECKS"


def test_fixes_and_codemods_agree():
    codemods = codemod_registry()
    for check in CHECKS:
        if check.fix is not None and check.fix.codemod is not None:
            assert check.fix.codemod in codemods, f"{check.id} names unknown codemod"
            assert check.id in codemods[check.fix.codemod].fixes
    for codemod in codemods.values():
        for rule in codemod.fixes:
            check = next((c for c in CHECKS if c.id == rule), None)
            assert check is not None, f"{codemod.id} fixes unknown rule {rule}"
            assert check.fix is not None and check.fix.codemod == codemod.id, (codemod.id, rule)


@pytest.mark.parametrize("codemod", list(codemod_registry().values()), ids=lambda c: c.id)
def test_codemod_has_cases(codemod):
    assert codemod.CASES, f"{codemod.id} needs CASES"
    assert codemod.description


def test_rule_docs_are_current():
    import subprocess
    import sys

    from tests.conftest import REPO

    proc = subprocess.run(
        [sys.executable, "scripts/document_rules.py", "--check"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
