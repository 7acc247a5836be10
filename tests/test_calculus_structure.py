"""The calculus package's structure: one registration per primitive, and no import cycle
(every import statement counts, including those inside functions)."""

from __future__ import annotations

import ast
import pathlib

import numpy as onp

import chainrule.numpy as np
from chainrule.calculus import PRIMITIVES, numpy_api

PKG = pathlib.Path(numpy_api.__file__).parent


def _imports(path: pathlib.Path) -> set[str]:
    """The sibling modules of the calculus package that ``path`` imports."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
    return out


def test_the_calculus_package_has_no_import_cycle():
    graph = {p.stem: _imports(p) for p in PKG.glob("*.py") if p.stem != "__init__"}
    order: list[str] = []
    done: set[str] = set()
    while len(done) < len(graph):
        ready = sorted(m for m in graph if m not in done and graph[m] <= done)
        assert ready, f"import cycle among {sorted(set(graph) - done)}: {graph}"
        order.extend(ready)
        done.update(ready)
    # the layers, lowest first
    assert order.index("core") < order.index("rules") < order.index("numpy_api") \
        < order.index("transforms")


def test_every_public_primitive_is_exported_and_dispatched():
    for name, p in PRIMITIVES.items():
        if not p.public:
            continue
        if p.numpy is None:
            assert getattr(np, name) is p, name
            continue
        table = numpy_api.UFUNCS if isinstance(p.numpy, onp.ufunc) else numpy_api.FUNCTIONS
        home = np.linalg if p.numpy.__module__ == "numpy.linalg" else np
        # the primitive itself, or a function of numpy_api that @implements it
        assert table[p.numpy] is getattr(home, p.numpy.__name__), name
        assert table[p.numpy] is p or table[p.numpy].__module__ == numpy_api.__name__


def test_chainrule_numpy_has_every_public_numpy_name():
    missing = [n for n in onp.__all__ if not n.startswith("_") and not hasattr(np, n)]
    assert not missing
    missing = [n for n in onp.linalg.__all__ if not hasattr(np.linalg, n)]
    assert not missing
