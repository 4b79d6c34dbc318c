"""Keep the code easy to enter: no module in studio/ over 400 lines, no function over 60,
and nine functions in ten at most 30 lines. `make lint` runs this; it prints what is over.

Migrations are generated and the catalog's data is the seeds' model table, so their
length says nothing about how hard the code is to read.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MODULE_LINES = 400
FUNCTION_LINES = 60
P90_FUNCTION_LINES = 30
# The seeds' model table: data, one entry per model, read top to bottom.
DATA_MODULES = {Path("studio/dashscope/catalog.py")}


def modules(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if "migrations" not in path.parts)


def function_lengths(path: Path) -> list[tuple[int, str]]:
    """(lines, "path:line name") for every function and method in the module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.end_lineno - node.lineno + 1, f"{path}:{node.lineno} {node.name}")
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
    ]


def problems(root: Path) -> tuple[list[str], list[int]]:
    found: list[str] = []
    lengths: list[int] = []
    for path in modules(root):
        lines = path.read_text().count("\n")
        if lines > MODULE_LINES and path not in DATA_MODULES:
            found.append(f"{path}: {lines} lines (at most {MODULE_LINES})")
        for length, where in function_lengths(path):
            lengths.append(length)
            if length > FUNCTION_LINES:
                found.append(f"{where}: {length} lines (at most {FUNCTION_LINES})")
    return found, sorted(lengths)


def main() -> int:
    found, lengths = problems(Path("studio"))
    p90 = lengths[int(len(lengths) * 0.9)] if lengths else 0
    median = lengths[len(lengths) // 2] if lengths else 0
    if p90 > P90_FUNCTION_LINES:
        found.append(f"p90 function length {p90} lines (at most {P90_FUNCTION_LINES})")
    for problem in found:
        print(problem)
    print(f"layout: {len(lengths)} functions, median {median} lines, p90 {p90} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
