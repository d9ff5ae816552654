"""Seeded random Python projects built to make cross-module analyses loop (issue 9, point 2).

`generate(seed)` returns a small project (a `pyproject.toml` and a package tree of 3-12 modules,
nested packages included) that combines, at random, the idioms that made the audit recurse without
end or crash: re-exports in `__init__.py` (relative and absolute, renamed); rings of modules that
re-export from each other a name none defines; a name re-exported under the name of its own
submodule (`pkg/events/__init__.py: from pkg.events.event_bus import event_bus`); import cycles at
module level and inside functions; star imports and `__all__` (dynamic, extended, naming what does
not exist); self-referencing aliases (`x = x`, `from . import x` inside x, `import pkg.a as a`
inside a, `class C(C)`); conditional imports; deep attribute chains (a class whose attribute is an
instance of itself, fluent chains of up to 150 calls); recursive and mutually recursive functions
across modules; classes inheriting in cycles through aliases and re-exports; FastAPI routes with
`Depends(...)` (and dependency cycles); attribute, factory and parameter types that refer back
to themselves; broad handlers around calls into all of this; SQL built
with f-strings, `%` and recursion; imports that resolve to nothing; now and then a file that does
not parse.

The code is never run (by the tests or by the tool): it only has to parse, and it is as hostile to
a static resolver as it can be. `issue_reproduction()`, `reexport_chain()`, `nested_chain()` and
`deep_expression()` are the hand-written cases. To look at a seed:
`python tests/_package_generator.py SEED DIR`.
"""

from __future__ import annotations

import ast
import itertools
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PYPROJECT = '[project]\nname = "generated"\nversion = "0.0.0"\n'
TOPS = ("pkg", "app", "svc")
# Leaf names: `events`/`event_bus` for the issue's idiom, names shared by many projects, and two that
# shadow the standard library (`logging`, `json`), which sibling modules also import absolutely.
NAMES = (
    "events",
    "event_bus",
    "service",
    "models",
    "db",
    "api",
    "routes",
    "utils",
    "handlers",
    "core",
    "base",
    "deps",
    "a",
    "b",
    "c",
    "node",
    "chain",
    "logging",
    "json",
)


def _code(template: str, **values: object) -> list[str]:
    """The template's lines with `<<key>>` replaced (braces stay literal for generated f-strings)."""
    text = template
    for key, value in values.items():
        text = text.replace(f"<<{key}>>", str(value))
    assert "<<" not in text, text
    return text.strip("\n").splitlines()


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) or "X"


@dataclass
class Module:
    dotted: str
    is_package: bool
    imports: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)  # names bound at module level
    needs_log: bool = False

    @property
    def path(self) -> str:
        base = self.dotted.replace(".", "/")
        return f"{base}/__init__.py" if self.is_package else f"{base}.py"

    @property
    def package(self) -> str:
        return self.dotted if self.is_package else self.dotted.rpartition(".")[0]

    @property
    def leaf(self) -> str:
        return self.dotted.rpartition(".")[2]

    def render(self) -> str:
        head = []
        if self.needs_log:
            head += ["import logging", "", "log = logging.getLogger(__name__)", ""]
        lines = [*self.imports, "", *head, *self.body] if self.imports else [*head, *self.body]
        return "\n".join(lines).strip("\n") + "\n"


@dataclass
class Project:
    """A generated project: relative path -> text, the files made not to parse (`invalid`: the
    tool must report them), the files the tool may decline to analyse (`may_fail`: nesting deeper
    than an analysis follows), and the features the generator used."""

    name: str
    files: dict[str, str]
    invalid: frozenset[str] = frozenset()
    may_fail: frozenset[str] = frozenset()
    features: tuple[str, ...] = ()

    @property
    def python_files(self) -> list[str]:
        return sorted(p for p in self.files if p.endswith(".py"))

    def write(self, root: Path) -> None:
        for rel, text in self.files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def describe(self, max_lines: int = 40, max_chars: int = 12000) -> str:
        """File names and contents, truncated, to paste into a failure message."""
        out = [
            f"project {self.name}: {len(self.files)} files; features: {', '.join(self.features)}"
        ]
        for rel in sorted(self.files):
            lines = self.files[rel].splitlines()
            shown = [
                line if len(line) <= 160 else line[:160] + " ..." for line in lines[:max_lines]
            ]
            out.append(f"----- {rel} ({len(lines)} lines)")
            out.extend(shown)
            if len(lines) > max_lines:
                out.append(f"... ({len(lines) - max_lines} more lines)")
        text = "\n".join(out)
        if len(text) > max_chars:
            text = text[:max_chars] + f"\n... (truncated, {len(text) - max_chars} more chars)"
        return text


class _Builder:
    def __init__(self, seed: int, scale: int = 1):
        self.seed = seed
        self.scale = scale
        self.rng = random.Random(seed)
        self.top = self.rng.choice(TOPS)
        self.modules: dict[str, Module] = {}
        self.features: list[str] = []
        self.invalid: set[str] = set()
        self.extra_files: dict[str, str] = {}
        self._ids = itertools.count()

    # -- helpers -------------------------------------------------------------------------------
    def uid(self) -> int:
        return next(self._ids)

    def leaves(self) -> list[Module]:
        return [m for m in self.modules.values() if not m.is_package]

    def packages(self) -> list[Module]:
        return [m for m in self.modules.values() if m.is_package]

    def leaf(self) -> Module:
        return self.rng.choice(self.leaves())

    def any_module(self) -> Module:
        return self.rng.choice(list(self.modules.values()))

    def callable_of(self, module: Module) -> str:
        return f"{module.leaf}_helper" if not module.is_package else "None"

    def import_from(self, src: Module, target: str, names: str) -> str:
        """`from <target> import <names>` as seen from `src`: absolute, or relative at random."""
        if self.rng.random() < 0.5:
            return f"from {target} import {names}"
        here = src.package.split(".")
        there = target.split(".")
        common = 0
        while common < min(len(here), len(there)) and here[common] == there[common]:
            common += 1
        if common == 0:
            return f"from {target} import {names}"
        dots = "." * (len(here) - common + 1)
        rest = ".".join(there[common:])
        return f"from {dots}{rest} import {names}"

    def guarded(self, module: Module, name: str, calls: list[str], args: str = "value") -> None:
        """A function whose try body makes `calls` under a broad handler of a random behaviour."""
        module.needs_log = True
        handler = self.rng.choice(
            [
                ["    except Exception:", '        log.warning("failed")'],
                ["    except Exception:", "        pass"],
                ["    except Exception:", "        return None"],
                ["    except Exception:", '        log.exception("failed")', "        raise"],
                [
                    "    except (ValueError, Exception) as exc:",
                    '        raise RuntimeError("wrapped") from exc',
                ],
                ["    except:  # noqa: E722", '        log.error("failed")'],
                [
                    "    except Exception:",
                    "        try:",
                    f"            return {calls[0]}",
                    "        except Exception:",
                    "            return None",
                ],
            ]
        )
        body = [f"def {name}({args}):", "    try:"]
        body += [f"        result = {call}" for call in calls]
        body += ["        return result", *handler, ""]
        module.body += body

    # -- the tree ------------------------------------------------------------------------------
    def tree(self) -> None:
        target = self.rng.randint(3, 12 * self.scale)
        self.modules[self.top] = Module(self.top, True)
        while len(self.modules) < target:
            parent = self.rng.choice(self.packages())
            depth = parent.dotted.count(".")
            name = self.rng.choice(NAMES)
            dotted = f"{parent.dotted}.{name}"
            if dotted in self.modules:
                continue
            is_package = depth < 3 and len(self.modules) <= target - 2 and self.rng.random() < 0.3
            self.modules[dotted] = Module(dotted, is_package)
        if not self.leaves():  # every package needs something in it
            parent = self.rng.choice(self.packages())
            self.modules[f"{parent.dotted}.service"] = Module(f"{parent.dotted}.service", False)
        for module in self.leaves():
            cls = _camel(module.leaf)
            module.needs_log = True
            module.body += _code(
                """
class <<cls>>:
    def run(self, value):
        if not value:
            raise ValueError("empty")
        return value


def <<leaf>>_helper(value):
    return <<cls>>().run(value)

""",
                cls=cls,
                leaf=module.leaf,
            )
            module.exports += [cls, f"{module.leaf}_helper"]
        for package in self.packages():
            if self.rng.random() < 0.3:
                package.body.append(f'"""The {package.leaf} package."""')

    # -- features ------------------------------------------------------------------------------
    def feat_reexport(self) -> None:
        """`from .a import x` / `from pkg.a import x [as y]` / `from . import a` in `__init__.py`,
        used by another module through the package."""
        package = self.rng.choice(self.packages())
        inside = [m for m in self.leaves() if m.dotted.startswith(package.dotted + ".")]
        if not inside:
            return
        module = self.rng.choice(inside)
        name = self.rng.choice(module.exports)
        style = self.rng.randrange(3)
        if style == 0:
            package.imports.append(self.import_from(package, module.dotted, name))
            bound = name
        elif style == 1:
            bound = f"{name}_{self.uid()}"
            package.imports.append(self.import_from(package, module.dotted, f"{name} as {bound}"))
        else:
            child = module.dotted[len(package.dotted) + 1 :].split(".")[0]
            package.imports.append(f"from . import {child}")
            package.exports.append(child)
            bound = name
            package.imports.append(f"from {module.dotted} import {name}")
        package.exports.append(bound)
        user = self.leaf()
        user.imports.append(self.import_from(user, package.dotted, bound))
        call = f"{bound}().run(value)" if bound[0].isupper() else f"{bound}(value)"
        self.guarded(user, f"use_reexport_{self.uid()}", [call])

    def feat_same_name(self) -> None:
        """The issue's idiom: `event_bus = EventBus()` in `event_bus.py`, re-exported by the package
        under the submodule's own name, emitted through the package and through the dotted path."""
        candidates = [m for m in self.leaves() if m.dotted.count(".") >= 1]
        module = self.rng.choice(candidates)
        package = self.modules[module.package]
        bus, leaf = f"{_camel(module.leaf)}Bus", module.leaf
        module.body += _code(
            """
class <<bus>>:
    def __init__(self):
        self._handlers = {}

    def subscribe(self, name, handler):
        self._handlers.setdefault(name, []).append(handler)

    def emit(self, name, payload=None):
        if not name:
            raise ValueError("empty")
        for handler in self._handlers.get(name, []):
<<dispatch>>


<<leaf>> = <<bus>>()

""",
            bus=bus,
            leaf=leaf,
            dispatch=self.rng.choice(
                [
                    "            handler(payload)",
                    "            try:\n                handler(payload)\n"
                    "            except Exception:\n"
                    '                log.warning("handler %s failed", handler)',
                ]
            ),
        )
        module.needs_log = True
        module.exports += [bus, leaf]
        package.imports.append(self.import_from(package, module.dotted, f"{bus}, {leaf}"))
        package.exports += [bus, leaf]
        user = self.leaf()
        n = self.uid()
        if user is module or self.rng.random() < 0.3:
            user.imports.append(f"import {module.dotted}")
            target = f"{module.dotted}.emit(name)"
        else:
            user.imports.append(self.import_from(user, package.dotted, leaf))
            target = f"{leaf}.emit(name)"
        self.guarded(user, f"publish_{n}", [target], args="name")
        user.body += _code(
            """
def on_<<n>>(payload):
    return payload


<<subscribe>>("created_<<n>>", on_<<n>>)

""",
            n=n,
            subscribe=target.replace(".emit(name)", ".subscribe"),
        )

    def feat_cycle(self) -> None:
        """Import cycles of 2-3 modules (module level, inside functions, `import a.b as c`), with
        functions recursing through the cycle."""
        size = min(len(self.leaves()), self.rng.choice([1, 2, 2, 3]))
        ring = self.rng.sample(self.leaves(), size)
        n = self.uid()
        for i, module in enumerate(ring):
            nxt = ring[(i + 1) % size]
            fn = f"cycle_{n}_{(i + 1) % size}"
            style = self.rng.randrange(4)
            inner = []
            if style == 0:
                module.imports.append(self.import_from(module, nxt.dotted, fn))
                call = fn
            elif style == 1:
                inner = [f"    {self.import_from(module, nxt.dotted, fn)}"]
                call = fn
            elif style == 2:
                alias = f"mod_{n}_{i}"
                module.imports.append(f"import {nxt.dotted} as {alias}")
                call = f"{alias}.{fn}"
            else:
                inner = [f"    import {nxt.dotted}"]
                call = f"{nxt.dotted}.{fn}"
            module.body += [
                f"def cycle_{n}_{i}(depth):",
                *inner,
                "    if depth <= 0:",
                f"        return {module.leaf}_helper(depth)",
                f"    return {call}(depth - 1)",
                "",
            ]
            module.exports.append(f"cycle_{n}_{i}")
        self.guarded(ring[0], f"run_cycle_{n}", [f"cycle_{n}_0(value)"])

    def feat_reexport_cycle(self) -> None:
        """A name that 2-3 modules (packages or not) re-export from each other in a ring and none
        defines, reached through an alias, from a user's try body."""
        ring = self.rng.sample(list(self.modules.values()), min(len(self.modules), 3))
        n = self.uid()
        for i, module in enumerate(ring):
            nxt = ring[(i + 1) % len(ring)]
            module.imports.append(self.import_from(module, nxt.dotted, f"ghost_{n}"))
            if self.rng.random() < 0.5:
                module.body.append(f"ghost_alias_{n} = ghost_{n}")
        user = self.leaf()
        user.imports.append(self.import_from(user, ring[0].dotted, f"ghost_{n} as spectre_{n}"))
        self.guarded(user, f"use_ghost_{n}", [f"spectre_{n}(value)", f"spectre_{n}.run(value)"])

    def feat_star(self) -> None:
        """Star imports (sometimes both ways, sometimes a package star-importing itself), with or
        without `__all__`, and a star-imported name used unqualified."""
        a, b = self.any_module(), self.any_module()
        a.imports.append(self.import_from(a, b.dotted, "*"))
        if self.rng.random() < 0.5:
            b.imports.append(self.import_from(b, a.dotted, "*"))
        if self.rng.random() < 0.3:
            top = self.modules[self.top]
            top.imports.append("from . import *")
        if b.exports and not a.is_package:
            name = self.rng.choice(b.exports)
            call = f"{name}().run(value)" if name[0].isupper() else f"{name}(value)"
            self.guarded(a, f"use_star_{self.uid()}", [call])

    def feat_dunder_all(self) -> None:
        """`__all__` written in the ways real code writes it, including names that do not exist
        and submodule names."""
        module = self.any_module()
        names = [*module.exports[:3]]
        style = self.rng.randrange(5)
        if style == 0:
            module.body.append(f"__all__ = {names!r}")
        elif style == 1:
            module.body.append(f"__all__ = {tuple(names)!r}")
        elif style == 2:
            module.body += [f"__all__ = {names!r}", '__all__ += ["does_not_exist", "__all__"]']
        elif style == 3:
            subs = [m.leaf for m in self.modules.values() if m.package == module.dotted]
            module.body += [f"__all__ = {names + subs!r}", "__all__.extend(__all__)"]
        else:
            module.body.append('__all__ = [name for name in dir() if not name.startswith("_")]')

    def feat_self_alias(self) -> None:
        """Names bound to themselves: `x = x`, `from . import x` inside x, `import pkg.a as a`
        inside a, a module star-importing itself, alias cycles, `class C(C)`."""
        module = self.leaf()
        n = self.uid()
        for style in self.rng.sample(range(7), self.rng.randint(1, 3)):
            if style == 0 and module.exports:
                name = self.rng.choice(module.exports)
                module.body.append(f"{name} = {name}")
            elif style == 1:
                module.imports.append(f"from . import {module.leaf}")
                self.guarded(
                    module, f"self_pkg_{n}", [f"{module.leaf}.{module.leaf}_helper(value)"]
                )
            elif style == 2:
                module.imports.append(f"import {module.dotted} as {module.leaf}")
                self.guarded(
                    module, f"self_mod_{n}", [f"{module.leaf}.{module.leaf}_helper(value)"]
                )
            elif style == 3:
                module.imports.append(f"from {module.dotted} import *")
            elif style == 4:
                module.body += _code(
                    """
alias_a_<<n>> = alias_b_<<n>> = None
alias_a_<<n>> = alias_b_<<n>>
alias_b_<<n>> = alias_a_<<n>>


def use_alias_<<n>>(value):
    try:
        return alias_a_<<n>>.run(value)
    except Exception:
        return alias_b_<<n>>(value)

""",
                    n=n,
                )
            elif style == 5:
                cls = _camel(module.leaf)
                module.body += [f"class {cls}({cls}):", "    pass", "", f"{cls}.again = {cls}", ""]
            else:
                top = self.modules[self.top]
                top.imports.append(f"import {self.top}")
                top.body.append(f"{self.top} = {self.top}")

    def feat_conditional(self) -> None:
        """`try: import y except ImportError: y = None`, `if TYPE_CHECKING:` and version switches."""
        module, other = self.leaf(), self.leaf()
        n = self.uid()
        style = self.rng.randrange(4)
        if style == 0:
            module.body += _code(
                """
try:
    import <<dotted>> as optional_<<n>>
except ImportError:
    optional_<<n>> = None

""",
                dotted=other.dotted,
                n=n,
            )
            self.guarded(module, f"use_optional_{n}", [f"optional_{n}.{other.leaf}_helper(value)"])
        elif style == 1:
            helper = f"{other.leaf}_helper"
            module.body += [
                "try:",
                f"    {self.import_from(module, other.dotted, helper)}",
                "except ImportError:  # optional",
                f"    {helper} = None",
                "",
            ]
            self.guarded(module, f"use_optional_{n}", [f"{helper}(value)"])
        elif style == 2:
            cls = _camel(other.leaf)
            module.imports += ["from typing import TYPE_CHECKING", "", "if TYPE_CHECKING:"]
            module.imports.append(f"    {self.import_from(module, other.dotted, cls)}")
            module.body += [
                f'def typed_{n}(item: "{cls}"):',
                "    return item.run(1)",
                "",
            ]
        else:
            module.body += _code(
                """
import sys

if sys.version_info >= (3, 11):
    import tomllib as toml_<<n>>
else:
    try:
        import tomli as toml_<<n>>
    except ImportError:
        toml_<<n>> = None

""",
                n=n,
            )
            self.guarded(module, f"use_toml_{n}", [f"toml_{n}.loads(value)"])

    def feat_deep_chain(self) -> None:
        """`Root().a.b.c.d.e.f.g()` through classes spread over modules (importing each other), and
        a class whose attribute is an instance of itself."""
        n = self.uid()
        depth = self.rng.randint(4, 9)
        attrs = "abcdefghijk"
        homes = [self.leaf() for _ in range(depth + 1)]
        for i in range(depth + 1):
            home = homes[i]
            cls = f"Chain{n}L{i}"
            if i < depth:
                nxt = f"Chain{n}L{i + 1}"
                if homes[i + 1] is not home:
                    home.imports.append(self.import_from(home, homes[i + 1].dotted, nxt))
                home.body += [
                    f"class {cls}:",
                    f'    {attrs[i]}: "{nxt}"',
                    "",
                    "    def __init__(self):",
                    f"        self.{attrs[i]} = {nxt}()",
                    "",
                ]
            else:
                home.body += [
                    f"class {cls}:",
                    f"    def {attrs[i]}(self):",
                    '        raise KeyError("deep")',
                    "",
                ]
            home.exports.append(cls)
        user = self.leaf()
        if homes[0] is not user:
            user.imports.append(self.import_from(user, homes[0].dotted, f"Chain{n}L0"))
        chain = ".".join(attrs[: depth + 1])
        self.guarded(user, f"walk_chain_{n}", [f"Chain{n}L0().{chain}()"], args="")
        if self.rng.random() < 0.7:
            user.body += _code(
                """
class Node<<n>>:
    parent: "Node<<n>> | None"
    shared: "Node<<n>>"

    def __init__(self, parent=None):
        self.parent = parent
        self.child = Node<<n>>(self)
        self.me = self

    def run(self):
        return self.child.run()


Node<<n>>.shared = Node<<n>>()

""",
                n=n,
            )
            self.guarded(
                user,
                f"walk_node_{n}",
                [f"Node{n}().child.child.me.child.parent.child.shared.me.run()"],
                args="",
            )
        if self.rng.random() < 0.5:
            holder = self.leaf()
            holder.body += [f"root_{n} = Chain{n}L0()", ""]
            if holder is not homes[0]:
                holder.imports.append(self.import_from(holder, homes[0].dotted, f"Chain{n}L0"))
            other = self.leaf()
            other.imports.append(f"import {holder.dotted}")
            self.guarded(other, f"walk_dotted_{n}", [f"{holder.dotted}.root_{n}.{chain}()"], "")

    def feat_long_chain(self) -> None:
        """A fluent chain of 20-150 calls and attribute hops on an object that returns itself, in a
        try body and as SQL text."""
        module = self.leaf()
        n = self.uid()
        length = self.rng.randint(20, 150)
        fluent = "".join(f".where(k{i % 7})" if i % 3 else ".me" for i in range(length))
        module.body += _code(
            """
class Query<<n>>:
    def __init__(self):
        self.me = self

    def where(self, key):
        if key is None:
            raise LookupError(key)
        return self


def long_chain_<<n>>(cursor, k0=0, k1=1, k2=2, k3=3, k4=4, k5=5, k6=6):
    try:
        query = Query<<n>>()<<fluent>>
        cursor.execute(f"SELECT * FROM t WHERE q = {query}")
    except Exception:
        return None

""",
            n=n,
            fluent=fluent,
        )

    def feat_recursion(self) -> None:
        """Direct, mutual (across modules), method, async and lambda recursion."""
        module, other = self.leaf(), self.leaf()
        n = self.uid()
        module.body += _code(
            """
def rec_<<n>>(depth):
    return rec_<<n>>(depth - 1) if depth else 0


fact_<<n>> = lambda k: 1 if k <= 1 else k * fact_<<n>>(k - 1)  # noqa: E731


class Walker<<n>>:
    def walk(self, depth):
        return self.walk(depth - 1) if depth else self.other(depth)

    def other(self, depth):
        return self.walk(depth)


async def arec_<<n>>(depth):
    return await arec_<<n>>(depth - 1) if depth else 0


def even_<<n>>(k):
    <<imp>>
    return True if k == 0 else odd_<<n>>(k - 1)

""",
            n=n,
            imp=self.import_from(module, other.dotted, f"odd_{n}"),
        )
        other.body += [
            f"def odd_{n}(k):",
            f"    {self.import_from(other, module.dotted, f'even_{n}')}",
            f"    return False if k == 0 else even_{n}(k - 1)",
            "",
        ]
        self.guarded(
            module,
            f"run_rec_{n}",
            [f"rec_{n}(value)", f"Walker{n}().walk(value)", f"even_{n}(value)"],
        )

    def feat_inherit_cycle(self) -> None:
        """`class A(B)` / `class B(A)` through aliases and package re-exports; `class C(C)` across
        two modules importing each other's `C`."""
        x, y = self.leaf(), self.leaf()
        n = self.uid()
        a, b = f"CycleA{n}", f"CycleB{n}"
        package = self.modules[x.package]
        via_package = x.package == y.package and self.rng.random() < 0.6
        if via_package:
            package.imports.append(self.import_from(package, x.dotted, a))
            package.imports.append(self.import_from(package, y.dotted, b))
            package.exports += [a, b]
            x.imports.append(self.import_from(x, package.dotted, f"{b} as Parent{n}"))
            y.imports.append(self.import_from(y, package.dotted, a))
        else:
            x.imports.append(self.import_from(x, y.dotted, f"{b} as Parent{n}"))
            y.imports.append(self.import_from(y, x.dotted, a))
        x.body += [
            f"class {a}(Parent{n}):",
            "    def run(self, value):",
            "        return super().run(value)",
            "",
        ]
        y.body += [f"class {b}({a}):", "    pass", ""]
        x.exports.append(a)
        y.exports.append(b)
        self.guarded(x, f"use_cycle_class_{n}", [f"{a}().run(value)", f"{b}().run(value)"])
        if self.rng.random() < 0.5:
            shadow = f"Shadow{n}"
            x.imports.append(self.import_from(x, y.dotted, shadow))
            y.imports.append(self.import_from(y, x.dotted, shadow))
            for module in (x, y):
                module.body += [
                    f"class {shadow}({shadow}):",
                    "    def go(self):",
                    "        return self.go()",
                    "",
                ]
            self.guarded(y, f"use_shadow_{n}", [f"{shadow}().go()"])

    def feat_routes(self) -> None:
        """FastAPI routes with `Depends(...)` providers (a generator dependency, a chain and a
        cycle), blocking calls in async handlers, helpers from other modules, broad handlers."""
        module, other = self.leaf(), self.leaf()
        n = self.uid()
        helper = f"{other.leaf}_helper"
        if other is not module:
            module.imports.append(self.import_from(module, other.dotted, helper))
        module.needs_log = True
        module.body += _code(
            """
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI

router_<<n>> = APIRouter()


def connect_<<n>>():
    import psycopg

    return psycopg.connect("dbname=test")


def get_db_<<n>>():
    db = connect_<<n>>()
    try:
        yield db
    finally:
        db.close()


class Service<<n>>:
    def __init__(self, db):
        self.db = db

    def fetch(self, item_id):
        cursor = self.db.cursor()
        cursor.execute(f"SELECT * FROM items WHERE id = {item_id}")
        return cursor.fetchone()


def get_service_<<n>>(db=Depends(get_db_<<n>>)):
    return Service<<n>>(db)


def dep_a_<<n>>(b=Depends(lambda: dep_b_<<n>>())):
    return b


def dep_b_<<n>>(a=Depends(dep_a_<<n>>)):
    return a


@router_<<n>>.get("/items/{item_id}")
async def read_item_<<n>>(item_id: int, svc=Depends(get_service_<<n>>)):
    try:
        return svc.fetch(item_id)
    except Exception:
        log.warning("read failed")
        return None


@router_<<n>>.post("/items")
async def create_item_<<n>>(payload: dict, db: Annotated[Any, Depends(get_db_<<n>>)]):
    time.sleep(0.1)
    try:
        return <<helper>>(payload)
    except Exception:
        return {"ok": False}


@router_<<n>>.get("/cycle")
async def cycle_<<n>>(x=Depends(dep_b_<<n>>)):
    return x


app_<<n>> = FastAPI()
app_<<n>>.include_router(router_<<n>>)

""",
            n=n,
            helper=helper,
        )

    def feat_inference_cycles(self) -> None:
        """Types the analyses infer that point back at themselves: attributes assigned from
        recursive factories and from each other, a module singleton, parameters typed from
        callers that call each other, a `Depends` provider returning the holder, an `Any` hop."""
        module = self.leaf()
        n = self.uid()
        module.needs_log = True
        module.body += _code(
            """
import time as time_<<n>>
from typing import Any

from fastapi import APIRouter, Depends

inference_router_<<n>> = APIRouter()


def make_<<n>>():
    return make_<<n>>()


def factory_<<n>>():
    return Holder<<n>>()


class Holder<<n>>:
    def __init__(self, db=None):
        self.db = make_<<n>>()
        self.svc = factory_<<n>>()
        self.a = self.b = db
        self.a = self.b
        self.b = self.a
        self.me = self.me

    def run(self, value):
        return self.svc.run(value)

    def query(self, sql):
        return self.a.b.db.execute(sql)


holder_<<n>> = Holder<<n>>()
holder_<<n>>.svc = holder_<<n>>


def pass_a_<<n>>(svc, depth):
    return pass_b_<<n>>(svc.me, depth - 1)


def pass_b_<<n>>(svc: Any, depth):
    time_<<n>>.sleep(0.01)
    svc.db.execute(f"SELECT {depth}")
    return pass_a_<<n>>(svc.svc, depth)


@inference_router_<<n>>.get("/holder")
async def holder_route_<<n>>(svc=Depends(factory_<<n>>)):
    try:
        return pass_a_<<n>>(svc, 3)
    except Exception:
        log.warning("holder failed")
        return holder_<<n>>.run(svc)

""",
            n=n,
        )

    def feat_sql(self) -> None:
        """SQL built with f-strings, `%`, joins, recursion and alias cycles, passed to `execute`."""
        module = self.leaf()
        n = self.uid()
        module.body += _code(
            """
def find_<<n>>(cursor, table, user_id):
    cursor.execute(f"SELECT * FROM {table} WHERE id = {user_id}")
    return cursor.fetchall()


def update_<<n>>(conn, item_id, fields):
    sets = ", ".join(f"{key} = %s" for key in fields)
    with conn.cursor() as cursor:
        cursor.execute(f"UPDATE items SET {sets} WHERE id = %s", (*fields.values(), item_id))


def search_<<n>>(cursor, name):
    query = "SELECT id FROM users WHERE name = '%s'" % name
    try:
        cursor.execute(query)
    except Exception:
        pass


def build_<<n>>(parts):
    if not parts:
        return "SELECT 1 FROM t WHERE TRUE"
    return build_<<n>>(parts[1:]) + f" AND {parts[0]}"


def run_built_<<n>>(cursor, parts):
    q1 = q2 = build_<<n>>(parts)
    q1 = q2
    q2 = q1
    q1 += f" LIMIT {len(parts)}"
    cursor.execute(q1)

""",
            n=n,
        )

    def feat_guarded_calls(self) -> None:
        """A try body that calls into several other modules' helpers and classes."""
        module = self.leaf()
        calls = []
        for other in self.rng.sample(self.leaves(), min(3, len(self.leaves()))):
            if other is module:
                calls.append(f"{other.leaf}_helper(value)")
                continue
            alias = f"{other.leaf}_helper_{self.uid()}"
            module.imports.append(
                self.import_from(module, other.dotted, f"{other.leaf}_helper as {alias}")
            )
            calls.append(f"{alias}(value)")
        self.guarded(module, f"guarded_{self.uid()}", calls)

    def feat_unresolvable(self) -> None:
        """Imports that resolve to nothing: beyond the top package, missing modules, missing
        third-party libraries, called in try bodies."""
        module = self.leaf()
        n = self.uid()
        dots = "." * (module.dotted.count(".") + 2)
        module.imports += [
            f"from {dots} import nowhere_{n}",
            f"from .missing_{n} import ghost_{n}",
            f"import not_installed_{n}",
            f"from {self.top}.absent_{n} import phantom_{n}",
        ]
        self.guarded(
            module,
            f"use_missing_{n}",
            [f"ghost_{n}(value)", f"not_installed_{n}.connect(value).query()", f"phantom_{n}()"],
        )

    def feat_datetime_state(self) -> None:
        """Naive datetimes and module-level mutable state used from functions."""
        module = self.leaf()
        n = self.uid()
        module.body += _code(
            """
from datetime import datetime

_cache_<<n>>: dict = {}


def stamp_<<n>>(key):
    _cache_<<n>>[key] = datetime.utcnow()
    return _cache_<<n>>[key]

""",
            n=n,
        )

    def feat_invalid_file(self) -> None:
        """A file that does not parse, imported by a valid one: reported, never an internal error."""
        package = self.rng.choice(self.packages())
        n = self.uid()
        rel = f"{package.dotted.replace('.', '/')}/broken_{n}.py"
        self.extra_files[rel] = f"def broken_{n}(:\n    pass\n"
        self.invalid.add(rel)
        user = self.leaf()
        user.imports.append(self.import_from(user, f"{package.dotted}.broken_{n}", f"broken_{n}"))
        self.guarded(user, f"use_broken_{n}", [f"broken_{n}()"])

    FEATURES: tuple[tuple[str, float], ...] = (
        ("reexport", 0.8),
        ("same_name", 0.6),
        ("cycle", 0.6),
        ("reexport_cycle", 0.35),
        ("star", 0.4),
        ("dunder_all", 0.4),
        ("self_alias", 0.5),
        ("conditional", 0.4),
        ("deep_chain", 0.5),
        ("recursion", 0.5),
        ("long_chain", 0.25),
        ("inherit_cycle", 0.4),
        ("routes", 0.4),
        ("sql", 0.4),
        ("inference_cycles", 0.3),
        ("guarded_calls", 0.6),
        ("unresolvable", 0.25),
        ("datetime_state", 0.25),
        ("invalid_file", 0.12),
    )

    def build(self) -> Project:
        self.tree()
        for name, chance in self.FEATURES:
            repeats = sum(self.rng.random() < chance for _ in range(2 * self.scale))
            feature: Callable[[], None] = getattr(self, f"feat_{name}")
            if name == "same_name" and not any(m.dotted.count(".") for m in self.leaves()):
                continue
            for _ in range(repeats):
                feature()
                self.features.append(name)
        files = {"pyproject.toml": PYPROJECT}
        for module in self.modules.values():
            files[module.path] = module.render()
        files.update(self.extra_files)
        for rel, text in files.items():
            if rel.endswith(".py") and rel not in self.invalid:
                ast.parse(text, filename=rel)  # the generator's own bug if this raises
        return Project(
            f"seed {self.seed}",
            files,
            invalid=frozenset(self.invalid),
            features=tuple(dict.fromkeys(self.features)),
        )


def generate(seed: int, scale: int = 1) -> Project:
    """The project of `seed`; `scale` multiplies the module count and feature repeats (the test
    uses 1; larger scales are for exploring by hand)."""
    return _Builder(seed, scale).build()


ISSUE_EVENT_BUS = """class EventBus:
    def emit(self, name):
        if not name:
            raise ValueError("empty")

event_bus = EventBus()
"""
ISSUE_SERVICE = """import logging
from pkg.events import event_bus
log = logging.getLogger(__name__)

def publish(name):
    try:
        event_bus.emit(name)
    except Exception:
        log.warning("emit failed")
"""


def issue_reproduction() -> Project:
    """The three files of issue 9, verbatim (`pkg` is a namespace package, as in the issue)."""
    files = {
        "pyproject.toml": PYPROJECT,
        "pkg/events/event_bus.py": ISSUE_EVENT_BUS,
        "pkg/events/__init__.py": "from pkg.events.event_bus import EventBus, event_bus\n",
        "pkg/service.py": ISSUE_SERVICE,
    }
    return Project("issue 9 reproduction", files, features=("same_name",))


def reexport_chain(length: int = 200) -> Project:
    """`pkg/m000.py` defines `thing = Thing()`; each next module re-exports it (alternating
    absolute, relative and renamed imports); the package and a service use the last one."""
    files = {"pyproject.toml": PYPROJECT}
    files["pkg/m000.py"] = (
        "class Thing:\n    def run(self, name):\n        if not name:\n"
        '            raise ValueError("empty")\n\n\nthing = Thing()\n'
    )
    for i in range(1, length):
        style = i % 3
        if style == 0:
            line = f"from pkg.m{i - 1:03d} import thing\n"
        elif style == 1:
            line = f"from .m{i - 1:03d} import thing\n"
        else:
            line = f"from .m{i - 1:03d} import thing as other\n\nthing = other\n"
        files[f"pkg/m{i:03d}.py"] = line + '\n__all__ = ["thing"]\n'
    files["pkg/__init__.py"] = f"from pkg.m{length - 1:03d} import thing\n"
    files["pkg/service.py"] = ISSUE_SERVICE.replace(
        "pkg.events import event_bus", "pkg import thing"
    ).replace("event_bus.emit", "thing.run")
    return Project(f"{length}-module re-export chain", files, features=("reexport",))


def nested_chain(depth: int = 50) -> Project:
    """A package nested `depth` deep; each `__init__.py` re-exports its child's `thing`, and the
    innermost module is named like the name it defines."""
    files = {"pyproject.toml": PYPROJECT}
    parts = ["pkg"]
    for i in range(depth):
        files["/".join(parts) + "/__init__.py"] = f"from .l{i} import thing\n"
        parts.append(f"l{i}")
    files["/".join(parts) + "/__init__.py"] = "from .thing import thing\n"
    files["/".join(parts) + "/thing.py"] = (
        "class Thing:\n    def run(self, name):\n        raise ValueError(name)\n\n\nthing = Thing()\n"
    )
    files["pkg/service.py"] = ISSUE_SERVICE.replace(
        "pkg.events import event_bus", "pkg import thing"
    ).replace("event_bus.emit", "thing.run")
    return Project(f"{depth}-deep nested re-export chain", files, features=("reexport",))


def deep_expression(length: int = 1000) -> Project:
    """A `Node().me.me...run()` chain `length` long in a try body: the audit may decline to
    analyse the file (it must then say so, as it does for a syntax error), but never crash."""
    chain = ".me" * length
    files = {
        "pyproject.toml": PYPROJECT,
        "pkg/__init__.py": "",
        "pkg/m.py": (
            "import logging\n\nlog = logging.getLogger(__name__)\n\n\nclass Node:\n"
            "    def __init__(self):\n        self.me = self\n\n    def run(self):\n"
            '        raise KeyError("x")\n\n\ndef deep():\n    try:\n'
            f"        return Node(){chain}.run()\n"
            '    except Exception:\n        log.warning("failed")\n'
        ),
    }
    return Project(f"{length}-long attribute chain", files, may_fail=frozenset({"pkg/m.py"}))


if __name__ == "__main__":  # python tests/_package_generator.py SEED DIR
    generate(int(sys.argv[1])).write(Path(sys.argv[2]))
