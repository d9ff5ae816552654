"""What an annotation promises, with its wrappers taken off, for every analysis that types
values from annotations (the EXC flow analysis, the ASY index).

`core(node)` peels what does not change the value's type: a string annotation is parsed,
`X | None`, `Optional[X]`, `Union[X, None]`, `Annotated[X, ...]`, `Final[X]`, `ClassVar[X]`,
`Required[X]`, `Awaitable[X]`, `Coroutine[..., X]`, `ContextManager[X]` (what `with` gives)
come down to `X`. Unions of several types are unknown (None): a caller that needs them reads
`members()`. Containers (`list[Client]`) are left to the caller, whose value model differs.
"""

from __future__ import annotations

import ast

#: Generic annotations that stand for one of their arguments (the last for `Coroutine`).
WRAPPERS = frozenset(
    {
        "Optional",
        "Annotated",
        "Final",
        "ClassVar",
        "Awaitable",
        "Coroutine",
        "ContextManager",
        "AbstractContextManager",
        "AsyncContextManager",
        "AbstractAsyncContextManager",
        "Required",
        "NotRequired",
        "ReadOnly",
    }
)
_MAX_PEEL = 32

#: Containers whose items (`x[i]`, `x.get()`, `x.pop()`, `for item in x`) are their (first)
#: argument: `list[Client]`, `queue.LifoQueue[Connection]`.
SEQUENCES = frozenset(
    {
        "list",
        "List",
        "set",
        "Set",
        "frozenset",
        "FrozenSet",
        "tuple",
        "Tuple",
        "deque",
        "Deque",
        "Sequence",
        "MutableSequence",
        "Collection",
        "Iterable",
        "Queue",
        "LifoQueue",
        "PriorityQueue",
        "SimpleQueue",
        "AbstractSet",
        "MutableSet",
    }
)
#: What a generator function promises (`Iterator[Connection]`: what `@contextmanager` makes a
#: `with ... as conn` give, what `for x in f()` binds).
ITERATORS = frozenset(
    {"Iterator", "Generator", "Iterable", "AsyncIterator", "AsyncGenerator", "AsyncIterable"}
)
#: Mappings: their items are the values (`Mapping[str, Client]`, the last argument).
MAPPINGS = frozenset(
    {
        "dict",
        "Dict",
        "Mapping",
        "MutableMapping",
        "defaultdict",
        "DefaultDict",
        "OrderedDict",
        "ChainMap",
        "WeakValueDictionary",
    }
)


#: The builtin type of a literal expression (`[...]` is a list, `f"..."` a str).
LITERAL_TYPES: dict[type[ast.AST], str] = {
    ast.JoinedStr: "str",
    ast.List: "list",
    ast.ListComp: "list",
    ast.Dict: "dict",
    ast.DictComp: "dict",
    ast.Set: "set",
    ast.SetComp: "set",
    ast.Tuple: "tuple",
}


def tail(expr: ast.AST) -> str:
    """The last name of `a.b.C` / `C`; "" for anything else."""
    if isinstance(expr, ast.Attribute):
        return expr.attr
    if isinstance(expr, ast.Name):
        return expr.id
    return ""


def is_none(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and node.value is None) or (
        isinstance(node, ast.Name) and node.id == "None"
    )


def members(node: ast.AST) -> list[ast.AST]:
    """`A | B | C` -> [A, B, C], without recursion (a long union is a deep left-nested tree)."""
    found: list[ast.AST] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.BinOp) and isinstance(current.op, ast.BitOr):
            stack.append(current.right)
            stack.append(current.left)
        else:
            found.append(current)
    return found


def arguments(node: ast.Subscript) -> list[ast.expr]:
    """The arguments of `X[a, b]` (`[a, b]`) or `X[a]` (`[a]`)."""
    return list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]


def core(node: ast.AST | None) -> ast.AST | None:
    """The annotation with its wrappers peeled (see the module's docstring); None when it names
    no single type (a union of several, `None` alone, a string that does not parse)."""
    return peel(node)[0]


def peel(node: ast.AST | None) -> tuple[ast.AST | None, list[ast.expr]]:
    """`core(node)` and the metadata of the `Annotated[...]` peeled on the way
    (`Annotated[Session, Depends(get_db)]` -> `(Session, [Depends(get_db)])`)."""
    metadata: list[ast.expr] = []
    for _ in range(_MAX_PEEL):
        if node is None or is_none(node):
            return None, metadata
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return None, metadata
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            kept = [m for m in members(node) if not is_none(m)]
            if len(kept) != 1:
                return None, metadata
            node = kept[0]
            continue
        if isinstance(node, ast.Subscript):
            name = tail(node.value)
            args = arguments(node)
            if name in WRAPPERS and args:
                if name == "Annotated":
                    metadata.extend(args[1:])
                node = args[-1] if name == "Coroutine" else args[0]
                continue
            if name == "Union":
                kept = [m for m in args if not is_none(m)]
                if len(kept) != 1:
                    return None, metadata
                node = kept[0]
                continue
        return node, metadata
    return None, metadata
