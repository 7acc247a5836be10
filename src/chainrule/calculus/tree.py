"""Nested containers of arrays ("pytrees"): tuples, lists and dicts of leaves."""

from __future__ import annotations

from typing import Any

# a treedef is a nested structure of ("leaf",) / ("tuple"|"list", [children]) /
# ("dict", keys, [children]); leaves come out in order.


def tree_flatten(obj: Any) -> tuple[list[Any], Any]:
    leaves: list[Any] = []

    def rec(o: Any) -> Any:
        if isinstance(o, tuple) and not hasattr(o, "_fields"):
            return ("tuple", [rec(c) for c in o])
        if isinstance(o, list):
            return ("list", [rec(c) for c in o])
        if isinstance(o, dict):
            keys = list(o.keys())
            return ("dict", keys, [rec(o[k]) for k in keys])
        leaves.append(o)
        return ("leaf",)

    return leaves, rec(obj)


def tree_unflatten(treedef: Any, leaves: list[Any]) -> Any:
    it = iter(leaves)

    def rec(d: Any) -> Any:
        kind = d[0]
        if kind == "leaf":
            return next(it)
        if kind == "tuple":
            return tuple(rec(c) for c in d[1])
        if kind == "list":
            return [rec(c) for c in d[1]]
        return {k: rec(c) for k, c in zip(d[1], d[2])}

    return rec(treedef)

