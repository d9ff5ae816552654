"""Codemod `tag-tests`: write the classifier's tags (`stub`, `contract`, `integration`, `unit`)
into the tests as pytest marks, register them, and turn on `--strict-markers`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import libcst as cst
import tomlkit
import tomlkit.exceptions

from ..model import Applicability
from .base import (
    Changed,
    Codemod,
    CodemodProject,
    Failed,
    Keeps,
    Outcome,
    Refused,
    Rewrite,
    Unchanged,
)

DESCRIPTIONS = {
    "stub": "pins stub or fake behaviour; breaks when the real implementation lands"
    " (CI gates on -m 'not stub')",
    "contract": "HTTP contract: status codes and response shapes through a test client",
    "integration": "needs a real database, the network or a subprocess",
    "unit": "pure logic, no I/O",
}
#: Marks pytest or common plugins register themselves.
_KNOWN_MARKS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "asyncio",
     "anyio", "trio", "django_db", "timeout", "flaky", "benchmark", "freeze_time", "vcr",
     "order", "dependency", "xdist_group", "httpx_mock", "respx", "celery", "no_cover",
     "tryfirst", "trylast", "allow_hosts", "enable_socket", "disable_socket", "hypothesis"}
)  # fmt: skip


_CASE_PYPROJECT = """\
[project]
name = "demo"

[tool.pytest.ini_options]
testpaths = ["tests"]
"""
_CASE_PYPROJECT_REGISTERED = """\
[project]
name = "demo"

[tool.pytest.ini_options]
testpaths = ["tests"]
markers = ["unit: pure logic, no I/O"]
addopts = "--strict-markers"
"""
_CASE_STORE = """\
_users_store: dict[str, dict] = {}


def save_user(email, user):
    _users_store[email] = user
"""


class TagTests(Codemod):
    """Tag every test with the classifier's verdict, as a pytest mark, so CI can run
    `pytest -m "not stub"` and the ledger can count tests per tag.

    * A test gets `@pytest.mark.<tag>` (on top of its decorators), unless the mark already
      applies to it (on the test, its class, or the module's `pytestmark`): existing marks are
      respected and never duplicated. A module whose tests all get the same tag gets it once,
      in a module-level `pytestmark` (an existing one is extended).
    * The tags used are registered in the pytest configuration pytest reads (`pytest.ini`,
      `pyproject.toml`'s `[tool.pytest.ini_options]`, `tox.ini`'s `[pytest]`, `setup.cfg`'s
      `[tool:pytest]`; comments kept), with the marks already in use that nothing registers,
      and `--strict-markers` is added to `addopts` so a typo in a mark fails.
    * Verdicts come from `gathering-consolidate tests classify` (STB and MEM findings, HTTP
      clients, databases) and the reviewed overrides in `test-tags.toml`.

    Safe: marks select tests, they do not change what a test does. Idempotent.
    """

    id = "tag-tests"
    description = "Mark each test stub/contract/integration/unit and register the markers."
    applicability = Applicability.SAFE
    fixes = ()
    # The cases run on a project written to disk: the inventory reads the suite as pytest does.
    CASES = [
        Rewrite(
            path="tests/test_math.py",
            files={"pyproject.toml": _CASE_PYPROJECT},
            before="""
                def add(a, b):
                    return a + b


                def test_add():
                    # pure logic
                    assert add(1, 2) == 3
            """,
            after="""
                import pytest

                pytestmark = pytest.mark.unit


                def add(a, b):
                    return a + b


                def test_add():
                    # pure logic
                    assert add(1, 2) == 3
            """,
        ),
        Rewrite(
            path="tests/test_store.py",
            files={
                "pyproject.toml": _CASE_PYPROJECT,
                "app/__init__.py": "",
                "app/store.py": _CASE_STORE,
            },
            before="""
                import pytest

                from app import store


                def test_save_user(monkeypatch):
                    monkeypatch.setattr(store, "_users_store", {})
                    store.save_user("a@example.com", {"id": "1"})
                    assert store._users_store["a@example.com"]["id"] == "1"


                @pytest.mark.unit  # already tagged: kept, not duplicated
                def test_email_is_lowered():
                    assert "A@X".lower() == "a@x"
            """,
            after="""
                import pytest

                from app import store


                @pytest.mark.stub
                def test_save_user(monkeypatch):
                    monkeypatch.setattr(store, "_users_store", {})
                    store.save_user("a@example.com", {"id": "1"})
                    assert store._users_store["a@example.com"]["id"] == "1"


                @pytest.mark.unit  # already tagged: kept, not duplicated
                def test_email_is_lowered():
                    assert "A@X".lower() == "a@x"
            """,
        ),
        Keeps(
            path="tests/test_math.py",
            files={"pyproject.toml": _CASE_PYPROJECT_REGISTERED},
            code="""
                import pytest


                @pytest.mark.unit
                def test_add():
                    assert 1 + 2 == 3
            """,
        ),
    ]

    def run(self, project: CodemodProject) -> Iterator[Outcome]:
        from ..testsuite.classify import classify
        from ..testsuite.inventory import inventory as take_inventory
        from ..testsuite.pytest_config import PytestConfigError

        root = Path(project.root).resolve()
        try:
            found = take_inventory(root)
        except PytestConfigError as exc:
            yield Failed("<project>", str(exc))
            return
        if not found.items:
            yield Refused("<project>", "no tests found: nothing to tag")
            return
        result = project.audit(["STB", "MEM"])
        classification = classify(found, audit_result=result)
        verdicts_by_file: dict[str, list] = {}
        for verdict in classification.verdicts:
            verdicts_by_file.setdefault(verdict.path, []).append(verdict)
        items_by_function = {}
        for item in found.items:
            items_by_function.setdefault(item.function_id, item)
        used_tags: set[str] = set()
        for path, verdicts in sorted(verdicts_by_file.items()):
            project.step("tagging tests", 1, len(verdicts_by_file))
            rel = _project_path(found.root / path, root)
            if rel is None or rel not in project.files:
                yield Refused(path, "test file outside the project or not read; left as is")
                continue
            used_tags.update(v.tag for v in verdicts)
            missing: dict[str, str] = {}  # name (Class::test) -> tag
            for verdict in verdicts:
                item = items_by_function[verdict.test]
                if verdict.tag not in item.mark_names:
                    missing[verdict.name] = verdict.tag
            source = project.files[rel]
            if not missing:
                yield Unchanged(rel)
                continue
            tags = {v.tag for v in verdicts}
            module_tag = None
            if len(tags) == 1 and len(missing) == len(verdicts):
                module_tag = next(iter(tags))
            try:
                after = _tag_module(source, missing, module_tag)
            except _CannotTag as exc:
                yield Refused(rel, str(exc))
                continue
            yield Changed(rel, source, after) if after != source else Unchanged(rel)
        in_use = {m.name for i in found.items for m in i.marks}
        yield from _register(found, root, used_tags, in_use)


def _project_path(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return None


class _CannotTag(Exception):
    pass


# -- the test modules -----------------------------------------------------------------------------
def _pytest_alias(module: cst.Module) -> tuple[str | None, str | None]:
    """(name `pytest` is bound to, name `pytest.mark` is bound to) by the module's imports."""
    pytest_name = mark_name = None
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    if cst.helpers.get_full_name_for_node(alias.name) == "pytest":
                        pytest_name = (
                            alias.asname.name.value  # type: ignore[union-attr]
                            if alias.asname
                            else "pytest"
                        )
            elif (
                isinstance(small, cst.ImportFrom)
                and small.module is not None
                and cst.helpers.get_full_name_for_node(small.module) == "pytest"
                and not isinstance(small.names, cst.ImportStar)
            ):
                for alias in small.names:
                    if alias.name.value == "mark":  # type: ignore[union-attr]
                        mark_name = (
                            alias.asname.name.value  # type: ignore[union-attr]
                            if alias.asname
                            else "mark"
                        )
    return pytest_name, mark_name


def _insert_import(module: cst.Module) -> cst.Module:
    """`import pytest` after the docstring, `__future__` imports and the first import block."""
    body = list(module.body)
    index = 0
    for i, statement in enumerate(body):
        if isinstance(statement, cst.SimpleStatementLine) and all(
            isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body
        ):
            index = i + 1
        elif (
            i == 0
            and isinstance(statement, cst.SimpleStatementLine)
            and isinstance(statement.body[0], cst.Expr)
            and isinstance(statement.body[0].value, cst.SimpleString)
        ):
            index = 1
        else:
            break
    body.insert(index, cst.parse_statement("import pytest\n"))
    return module.with_changes(body=body)


def _mark_expr(prefix: str, tag: str) -> cst.BaseExpression:
    return cst.parse_expression(f"{prefix}.{tag}")


class _Decorate(cst.CSTTransformer):
    def __init__(self, missing: dict[str, str], prefix: str):
        self.missing = missing
        self.prefix = prefix
        self.stack: list[str] = []
        self.done: set[str] = set()

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.stack.append(node.name.value)
        return True

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        self.stack.pop()
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # nested functions are not tests

    def leave_FunctionDef(
        self, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.FunctionDef:
        name = "::".join([*self.stack, original.name.value])
        tag = self.missing.get(name)
        if tag is None or name in self.done:
            return updated
        self.done.add(name)
        decorator = cst.Decorator(decorator=_mark_expr(self.prefix, tag))
        return updated.with_changes(decorators=[decorator, *updated.decorators])


def _tag_module(source: str, missing: dict[str, str], module_tag: str | None) -> str:
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise _CannotTag(f"cannot parse: {exc}".splitlines()[0]) from None
    pytest_name, mark_name = _pytest_alias(module)
    if pytest_name is None and mark_name is None:
        module = _insert_import(module)
        pytest_name = "pytest"
    prefix = f"{pytest_name}.mark" if pytest_name else str(mark_name)
    if module_tag is not None:
        return _module_mark(module, prefix, module_tag).code
    transformer = _Decorate(missing, prefix)
    updated = module.visit(transformer)
    return updated.code


def _module_mark(module: cst.Module, prefix: str, tag: str) -> cst.Module:
    body = list(module.body)
    mark = _mark_expr(prefix, tag)
    for i, statement in enumerate(body):
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        small = statement.body[0]
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
            and small.targets[0].target.value == "pytestmark"
        ):
            value = small.value
            if isinstance(value, cst.List) and _multiline(value):
                new_value = _append_multiline(value, mark)
            elif isinstance(value, (cst.List, cst.Tuple)):
                elements = list(value.elements)
                if elements:
                    elements[-1] = elements[-1].with_changes(
                        comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                    )
                elements.append(cst.Element(mark))
                new_value = value.with_changes(elements=elements)
            else:
                new_value = cst.List(
                    [
                        cst.Element(
                            value, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                        ),
                        cst.Element(mark),
                    ]
                )
            body[i] = statement.with_changes(body=[small.with_changes(value=new_value)])
            return module.with_changes(body=body)
    # a new `pytestmark` after the imports
    index = 0
    for i, statement in enumerate(body):
        if isinstance(statement, cst.SimpleStatementLine) and all(
            isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body
        ):
            index = i + 1
        elif (i == 0 and isinstance(statement, cst.SimpleStatementLine)) or (
            isinstance(statement, cst.SimpleStatementLine) and i == index
        ):
            continue
        else:
            if index:
                break
    line = cst.parse_statement(f"pytestmark = {prefix}.{tag}\n")
    line = line.with_changes(leading_lines=[cst.EmptyLine()])
    body.insert(index, line)
    if index + 1 < len(body):  # PEP 8 spacing before what follows: two lines before a def
        following = body[index + 1]
        wanted = 2 if isinstance(following, (cst.FunctionDef, cst.ClassDef)) else 1
        blank = 0
        for leading in following.leading_lines:
            if leading.comment is not None:
                break
            blank += 1
        if blank < wanted:
            padding = [cst.EmptyLine()] * (wanted - blank)
            body[index + 1] = following.with_changes(
                leading_lines=[*padding, *following.leading_lines]
            )
    return module.with_changes(body=body)


def _multiline(value: cst.List) -> bool:
    return bool(value.elements) and isinstance(
        value.rbracket.whitespace_before, cst.ParenthesizedWhitespace
    )


def _append_multiline(value: cst.List, mark: cst.BaseExpression) -> cst.List:
    """Append to a list written one element per line: the new element on its own line, with
    the others' indentation; a comment after the last element stays with it."""
    closing = value.rbracket.whitespace_before
    assert isinstance(closing, cst.ParenthesizedWhitespace)
    opening = value.lbracket.whitespace_after
    indent = (
        opening.last_line
        if isinstance(opening, cst.ParenthesizedWhitespace)
        else cst.SimpleWhitespace("    ")
    )
    elements = list(value.elements)
    last = elements[-1]
    before = cst.SimpleWhitespace("")
    gap = ""
    if isinstance(last.comma, cst.Comma):
        before = last.comma.whitespace_before
        if isinstance(last.comma.whitespace_after, cst.SimpleWhitespace):
            gap = last.comma.whitespace_after.value
    first_line = closing.first_line.with_changes(
        whitespace=cst.SimpleWhitespace(gap + closing.first_line.whitespace.value)
    )
    elements[-1] = last.with_changes(
        comma=cst.Comma(
            whitespace_before=before,
            whitespace_after=cst.ParenthesizedWhitespace(
                first_line=first_line,
                empty_lines=closing.empty_lines,
                indent=closing.indent,
                last_line=indent,
            ),
        )
    )
    elements.append(cst.Element(mark, comma=cst.Comma()))
    return value.with_changes(
        elements=elements,
        rbracket=value.rbracket.with_changes(
            whitespace_before=cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(),
                indent=closing.indent,
                last_line=closing.last_line,
            )
        ),
    )


# -- the pytest configuration ---------------------------------------------------------------------
def _registered_in_conftests(found) -> set[str]:
    names: set[str] = set()
    for module in found.modules.values():
        for match in re.finditer(
            r"addinivalue_line\(\s*[\"']markers[\"']\s*,\s*[fr]?[\"']([\w]+)", module.source
        ):
            names.add(match.group(1))
    return names


def _register(found, root: Path, tags: set[str], in_use: set[str]) -> Iterator[Outcome]:
    config = found.config
    registered = set(config.markers) | _registered_in_conftests(found)
    wanted: list[tuple[str, str]] = [
        (tag, DESCRIPTIONS[tag])
        for tag in ("stub", "contract", "integration", "unit")
        if tag in tags
    ]
    for name in sorted(in_use - set(DESCRIPTIONS) - _KNOWN_MARKS):
        wanted.append((name, "in use before --strict-markers (registered by tag-tests)"))
    new = [(n, d) for n, d in wanted if n not in registered]
    strict = "--strict-markers" in config.addopts or "--strict" in config.addopts
    if not new and strict:
        if config.inifile is not None:
            rel = _project_path(config.inifile, root)
            if rel:
                yield Unchanged(rel)
        return
    inifile = config.inifile
    if inifile is None:
        candidate = config.rootdir / "pyproject.toml"
        inifile = candidate if candidate.is_file() else config.rootdir / "pytest.ini"
    rel = _project_path(inifile, root)
    if rel is None:
        yield Refused(str(inifile), "the pytest configuration is outside the project; not edited")
        return
    before = inifile.read_text(encoding="utf-8") if inifile.is_file() else ""
    try:
        if inifile.name == "pyproject.toml":
            after = _edit_pyproject(
                before, config.section or "tool.pytest.ini_options", new, strict
            )
        else:
            section = {"setup.cfg": "tool:pytest"}.get(inifile.name, "pytest")
            after = _edit_ini(before, section, new, strict)
    except tomlkit.exceptions.TOMLKitError as exc:
        yield Failed(rel, f"cannot parse: {exc}")
        return
    notes = tuple(f"registered marker `{n}`" for n, _ in new) + (
        () if strict else ("`--strict-markers` added to addopts: unregistered marks now fail",)
    )
    if after == before:
        yield Unchanged(rel)
    else:
        yield Changed(rel, before if inifile.is_file() else None, after, notes)


def _edit_pyproject(text: str, section: str, new: list[tuple[str, str]], strict: bool) -> str:
    document = tomlkit.parse(text)
    tool = document.setdefault("tool", tomlkit.table(is_super_table=True))
    pytest_table = tool.setdefault("pytest", tomlkit.table(is_super_table=True))
    table = (
        pytest_table
        if section == "tool.pytest"
        else pytest_table.setdefault("ini_options", tomlkit.table())
    )
    if new:
        markers = table.get("markers")
        if markers is None:
            markers = tomlkit.array()
            markers.multiline(True)
            table["markers"] = markers
        for name, description in new:
            markers.append(f"{name}: {description}")
    if not strict:
        addopts = table.get("addopts")
        if addopts is None:
            table["addopts"] = "--strict-markers"
        elif isinstance(addopts, list):
            addopts.append("--strict-markers")
        else:
            table["addopts"] = f"{str(addopts).rstrip()} --strict-markers".strip()
    return tomlkit.dumps(document)


def _edit_ini(text: str, section: str, new: list[tuple[str, str]], strict: bool) -> str:
    """Add marker lines and `--strict-markers` to an INI section, keeping everything else."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    header = next((i for i, line in enumerate(lines) if line.strip() == f"[{section}]"), None)
    if header is None:
        if lines and lines[-1].strip():
            lines.append("\n")
        lines.append(f"[{section}]\n")
        header = len(lines) - 1
    end = header + 1
    while end < len(lines) and not lines[end].startswith("["):
        end += 1

    def key_span(key: str) -> tuple[int, int] | None:
        for i in range(header + 1, end):
            if re.match(rf"^{key}\s*[=:]", lines[i]):
                j = i + 1
                while j < end and lines[j][:1] in (" ", "\t") and lines[j].strip():
                    j += 1
                return i, j
        return None

    insert_at = end
    while insert_at > header + 1 and not lines[insert_at - 1].strip():
        insert_at -= 1
    additions: list[tuple[int, list[str]]] = []
    if new:
        span = key_span("markers")
        marker_lines = [f"    {n}: {d}\n" for n, d in new]
        if span is None:
            additions.append((insert_at, ["markers =\n", *marker_lines]))
        else:
            additions.append((span[1], marker_lines))
    if not strict:
        span = key_span("addopts")
        if span is None:
            additions.append((insert_at, ["addopts = --strict-markers\n"]))
        else:
            last = span[1] - 1
            lines[last] = lines[last].rstrip("\n") + " --strict-markers\n"
    # from the bottom up; at one index, the later block first so the earlier ends up above it
    for _, index, block in sorted(
        ((order, index, block) for order, (index, block) in enumerate(additions)),
        key=lambda a: (-a[1], -a[0]),
    ):
        lines[index:index] = block
    return "".join(lines)
