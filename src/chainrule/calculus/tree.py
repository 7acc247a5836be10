"""Nested containers of arrays ("pytrees"): tuples, lists and dicts of leaves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# a treedef is a nested structure of ("leaf",) / ("tuple"|"list", [children]) /
# ("dict", keys, [children]); leaves come out in order.
#
# The walkers are module-level functions that take their accumulator as an argument. A
# recursive closure (a local ``rec`` that calls itself) is a reference cycle holding its
# free variables: every call would leave the leaves (a gradient, the traced inputs) alive
# until the cyclic garbage collector runs, and a fresh array's pages would be faulted in
# on every call.


def _flatten(o: Any, leaves: list[Any]) -> Any:
    if isinstance(o, tuple) and not hasattr(o, "_fields"):
        return ("tuple", [_flatten(c, leaves) for c in o])
    if isinstance(o, list):
        return ("list", [_flatten(c, leaves) for c in o])
    if isinstance(o, dict):
        keys = list(o.keys())
        return ("dict", keys, [_flatten(o[k], leaves) for k in keys])
    leaves.append(o)
    return ("leaf",)


def _unflatten(d: Any, it: Iterator[Any]) -> Any:
    kind = d[0]
    if kind == "leaf":
        return next(it)
    if kind == "tuple":
        return tuple(_unflatten(c, it) for c in d[1])
    if kind == "list":
        return [_unflatten(c, it) for c in d[1]]
    return {k: _unflatten(c, it) for k, c in zip(d[1], d[2])}


def tree_flatten(obj: Any) -> tuple[list[Any], Any]:
    """The leaves of ``obj`` in order, and its structure.

    >>> tree_flatten({"a": 1, "b": (2, [3])})
    ([1, 2, 3], ('dict', ['a', 'b'], [('leaf',), ('tuple', [('leaf',), ('list', [('leaf',)])])]))
    """
    leaves: list[Any] = []
    return leaves, _flatten(obj, leaves)


def tree_unflatten(treedef: Any, leaves: list[Any]) -> Any:
    """``obj`` back from its structure and (new) leaves.

    >>> leaves, d = tree_flatten({"a": 1, "b": (2, [3])})
    >>> tree_unflatten(d, [10, 20, 30])
    {'a': 10, 'b': (20, [30])}
    """
    return _unflatten(treedef, iter(leaves))
