"""SQL cases as data (sqlfluff style): every `cases/*.yml` entry becomes a test named after it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CASES = Path(__file__).parent / "cases"


def load_cases(name: str) -> list[tuple[str, dict]]:
    with (CASES / name).open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return list(data.items())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, filename in (("slot_case", "slots.yml"), ("origin_case", "origins.yml")):
        if fixture in metafunc.fixturenames:
            cases = load_cases(filename)
            metafunc.parametrize(fixture, [c for _, c in cases], ids=[n for n, _ in cases])
