"""The one project model under the exception flow (EXC `World`) and the call graph (ASY
`Index`): both resolve names, look up members and order classes the same way, because both are
the same `semantic.project.ProjectModel`. Each test builds both engines over the same files."""

from __future__ import annotations

import ast

import pytest

from gathering_consolidate.audit.base import FileContext, dedent
from gathering_consolidate.audit.exceptions import flow
from gathering_consolidate.index import Index, build_index, collect_module
from gathering_consolidate.semantic.project import ProjectModel


def engines(files: dict[str, str]) -> tuple[flow.World, Index]:
    contexts = {}
    for path, code in files.items():
        text = dedent(code)
        contexts[path] = FileContext(path, text, ast.parse(text))
    world = flow.World({p: flow.collect(c) for p, c in contexts.items()}, flow.default_map())
    index = build_index([collect_module(c) for c in contexts.values()])
    return world, index


def both(world: flow.World, index: Index, dotted: str) -> tuple[object, object]:
    """What each engine resolves `dotted` to, with the external tag made common."""
    found = []
    for model in (world, index):
        entity = model.resolve(dotted)
        if entity is not None and entity[0] == model.external:
            entity = ("external", *entity[1:])
        found.append(entity)
    return found[0], found[1]


def test_both_engines_are_the_project_model():
    world, index = engines({"app/a.py": "x = 1\n"})
    assert isinstance(world, ProjectModel)
    assert isinstance(index, ProjectModel)
    assert world.modules.keys() == index.modules.keys() == {"app.a"}


PACKAGE = {
    "pkg/__init__.py": "from .events import event_bus\nfrom .impl import Service as Public\n",
    "pkg/events/__init__.py": "from .event_bus import event_bus\n",
    "pkg/events/event_bus.py": """
        class EventBus:
            def publish(self):
                pass

        def event_bus():
            return EventBus()
    """,
    "pkg/impl.py": """
        import os

        class Service:
            def run(self):
                pass

        def helper():
            pass

        PATH = os.path
    """,
    "pkg/star.py": "from pkg.impl import *\n",
    "pkg/cycle_a.py": "from pkg.cycle_b import thing\n",
    "pkg/cycle_b.py": "from pkg.cycle_a import thing\n",
}


@pytest.mark.parametrize(
    ("dotted", "expected"),
    [
        # a re-export under another name, then a method of the class it names
        ("pkg.Public", ("class", "pkg.impl.Service")),
        ("pkg.Public.run", ("func", "pkg.impl.Service.run")),
        # a package re-exporting a same-named function of its submodule: the import path into
        # the module names what the module binds, anything else the package's binding, the
        # name itself included (as Python's attribute access and `from pkg.events import` give)
        ("pkg.events.event_bus.EventBus", ("class", "pkg.events.event_bus.EventBus")),
        ("pkg.events.event_bus", ("func", "pkg.events.event_bus.event_bus")),
        ("pkg.event_bus", ("func", "pkg.events.event_bus.event_bus")),
        ("pkg.events.event_bus.event_bus", ("func", "pkg.events.event_bus.event_bus")),
        # a module-level variable holding a library value, then an attribute of it
        ("pkg.impl.PATH.join", ("external", "os.path.join")),
        # outside the project: external, by its dotted name
        ("os.path.join", ("external", "os.path.join")),
        # a name a star import brings is not visibly bound: unknown, never external
        ("pkg.star.helper", None),
        # a re-export cycle is unknown
        ("pkg.cycle_a.thing", None),
    ],
)
def test_both_engines_resolve_a_name_alike(dotted, expected):
    world, index = engines(PACKAGE)
    assert both(world, index, dotted) == (expected, expected)


def test_the_mro_is_c3_in_both_engines():
    world, index = engines(
        {
            "app/models.py": """
                class A:
                    pass

                class B(A):
                    pass

                class C(A):
                    pass

                class D(B, C):
                    pass

                class X:
                    pass

                class E(B, X):
                    pass
            """
        }
    )
    diamond = ["app.models.D", "app.models.B", "app.models.C", "app.models.A"]
    assert world.project_mro("app.models.D") == index.project_mro("app.models.D") == diamond
    # not breadth first: B's base A comes before E's second base X, as in Python
    ordered = ["app.models.E", "app.models.B", "app.models.A", "app.models.X"]
    assert world.project_mro("app.models.E") == index.project_mro("app.models.E") == ordered


def test_a_member_is_looked_up_along_the_mro_outside_bases_included():
    world, index = engines(
        {
            "app/models.py": """
                from pydantic import BaseModel

                class Mixin:
                    def save(self):
                        pass

                class Model(Mixin, BaseModel):
                    pass

                class Other(BaseModel, Mixin):
                    pass
            """
        }
    )
    expected = ["app.models.Model", "app.models.Mixin", "lib:pydantic.BaseModel"]
    assert world.mro("app.models.Model") == index.mro("app.models.Model") == expected
    assert world.external_bases("app.models.Other") == ["pydantic.BaseModel"]
    assert index.project_mro("app.models.Other") == ["app.models.Other", "app.models.Mixin"]
    for model in (world, index):
        ext = model.external
        assert model.resolve("app.models.Model.save") == ("func", "app.models.Mixin.save")
        assert model.resolve("app.models.Model.dump") == (ext, "pydantic.BaseModel.dump")
        # Python looks in BaseModel first: the tool cannot tell it has no `save`
        assert model.resolve("app.models.Other.save") == (ext, "pydantic.BaseModel.save")


def test_an_attribute_of_unknown_value_is_unknown_in_both_engines():
    files = {
        "app/helpers.py": "from app.other import *\n",
        "app/svc.py": """
            from app import helpers

            class Base:
                def __init__(self):
                    self.client = Client()

            class Client:
                def send(self):
                    pass

            class Service(Base):
                def __init__(self):
                    self.client = helpers.make_client()  # a star import: not resolved
        """,
    }
    world, index = engines(files)
    # Service binds `client` itself, to what the tool cannot tell: unknown, not Base's value
    # (a Service never runs Base.__init__); the next class answers only where one binds nothing
    assert index.class_member("app.svc.Service", "client", instance=True) is None
    assert world.class_member("app.svc.Service", "client", instance=True) is None
    assert index.class_member("app.svc.Base", "client", instance=True) == (
        "inst",
        "app.svc.Client",
    )


def test_a_cycle_of_bases_ends_and_keeps_each_class_once():
    world, index = engines(
        {"app/loop.py": "class A(B):\n    pass\n\nclass B(A):\n    pass\n\nclass K(K):\n    pass\n"}
    )
    for model in (world, index):
        assert model.mro("app.loop.K") == ["app.loop.K"]
        order = model.project_mro("app.loop.A")
        assert order[0] == "app.loop.A"
        assert sorted(order) == ["app.loop.A", "app.loop.B"]


def test_a_reexport_chain_deeper_than_the_bound_is_unknown_in_both_engines():
    depth = 200
    files = {f"deep/m{i}.py": f"from deep.m{i + 1} import thing\n" for i in range(depth)}
    files[f"deep/m{depth}.py"] = "def thing():\n    pass\n"
    world, index = engines(files)
    assert world.resolve("deep.m0.thing") is None
    assert index.resolve("deep.m0.thing") is None
    assert index.incomplete  # says what it gave up on
    # a shallower start still resolves: the bound does not memoise "unknown"
    near = f"deep.m{depth - 5}.thing"
    assert both(world, index, near) == (("func", f"deep.m{depth}.thing"),) * 2
