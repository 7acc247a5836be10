"""Nested containers of arrays ("pytrees"), as JAX defines them: tuples, lists, dicts,
namedtuples and None (a node with no leaves), and any class registered with
:func:`register_pytree_node` or :func:`register_dataclass`."""

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


# type -> (flatten: obj -> (children, aux), unflatten: (aux, children) -> obj)
_REGISTRY: dict[type, tuple[Any, Any]] = {}


def register_pytree_node(cls: type, flatten: Any, unflatten: Any) -> None:
    """Make ``cls`` a pytree node, as ``jax.tree_util.register_pytree_node``:
    ``flatten(obj) -> (children, aux)`` and ``unflatten(aux, children) -> obj``."""
    _REGISTRY[cls] = (flatten, unflatten)


def register_dataclass(cls: type, data_fields: Any = None, meta_fields: Any = ()) -> type:
    """Make a dataclass a pytree node (``jax.tree_util.register_dataclass``): its
    ``data_fields`` (by default every field not in ``meta_fields``) are children, the
    ``meta_fields`` are static. Usable as a decorator."""
    import dataclasses

    if data_fields is None:
        data_fields = [f.name for f in dataclasses.fields(cls) if f.name not in meta_fields]
    data, meta = tuple(data_fields), tuple(meta_fields)

    def flatten(o: Any) -> Any:
        return [getattr(o, k) for k in data], tuple(getattr(o, k) for k in meta)

    def unflatten(aux: Any, children: Any) -> Any:
        kw = dict(zip(data, children))
        kw.update(zip(meta, aux))
        return cls(**kw)

    register_pytree_node(cls, flatten, unflatten)
    return cls


def _flatten(o: Any, leaves: list[Any]) -> Any:
    if o is None:
        return ("none",)
    if isinstance(o, tuple):
        if hasattr(o, "_fields"):
            return ("namedtuple", type(o), [_flatten(c, leaves) for c in o])
        return ("tuple", [_flatten(c, leaves) for c in o])
    if isinstance(o, list):
        return ("list", [_flatten(c, leaves) for c in o])
    if isinstance(o, dict):
        keys = list(o.keys())
        return ("dict", keys, [_flatten(o[k], leaves) for k in keys])
    reg = _REGISTRY.get(type(o))
    if reg is not None:
        children, aux = reg[0](o)
        return ("node", type(o), aux, [_flatten(c, leaves) for c in children])
    leaves.append(o)
    return ("leaf",)


def _unflatten(d: Any, it: Iterator[Any]) -> Any:
    kind = d[0]
    if kind == "leaf":
        return next(it)
    if kind == "none":
        return None
    if kind == "tuple":
        return tuple(_unflatten(c, it) for c in d[1])
    if kind == "namedtuple":
        return d[1](*[_unflatten(c, it) for c in d[2]])
    if kind == "node":
        return _REGISTRY[d[1]][1](d[2], [_unflatten(c, it) for c in d[3]])
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
