"""The shape of the house: no import cycles among our modules, and modules, classes and
functions small enough to read (the limits of issue #14). ``make test`` also runs import-linter
(the layers in pyproject.toml) and ruff."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "diffusion_gui"
MAX_MODULE, MAX_CLASS, MAX_FUNCTION = 600, 400, 100


def _sources():
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _import_cycles() -> list[list[str]]:
    """Strongly connected components (more than one module) of our import graph, lazy
    imports included."""
    grimp = pytest.importorskip("grimp")
    g = grimp.build_graph("diffusion_gui")
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in sorted(g.modules):
        if m not in index:
            visit(m)
    return out


def test_no_import_cycles():
    assert _import_cycles() == []


def test_modules_classes_and_functions_stay_small():
    too_big = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(PKG.parent)
        n = len(text.splitlines())
        if n > MAX_MODULE:
            too_big.append(f"{rel}: {n} lines (module, max {MAX_MODULE})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
                if size > limit:
                    too_big.append(f"{rel}:{node.lineno} {node.name}: {size} lines (max {limit})")
    assert too_big == [], "\n".join(too_big)
