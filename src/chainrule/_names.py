"""Looking up a component by name (activations, costs, initialisers, optimisers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def lookup(table: Mapping[str, T], name: str, kind: str,
           aliases: Mapping[str, str] | None = None, hint: str = "") -> T:
    """``table[name]`` ignoring case and through ``aliases``, or a ValueError that lists
    the choices (and ``hint``, such as " or pass a function")."""
    key = name.lower()
    key = (aliases or {}).get(key, key)
    if key not in table:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {', '.join(table)}{hint}")
    return table[key]


__all__ = ["lookup"]
