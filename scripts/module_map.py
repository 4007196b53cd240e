"""``python scripts/module_map.py``: rewrite the module list of docs/layout.md ("## The modules") from the code.

One line per module of ``pipeline/``, ``tasks/`` and ``service/``: its path, its size in lines
and the first line of its docstring, grouped by package.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ["pipeline/core", "pipeline/data", "pipeline/stages", "pipeline/tools", "tasks", "service"]
HEADING = "## The modules\n"


def line(path: Path) -> str:
    text = path.read_text()
    doc = (ast.get_docstring(ast.parse(text)) or "").strip().splitlines()
    return f"- `{path.relative_to(ROOT)}` ({len(text.splitlines())}): {doc[0] if doc else '(no docstring)'}"


def module_map() -> str:
    parts = [HEADING]
    for group in GROUPS:
        files = sorted((ROOT / group).rglob("*.py"))
        parts.append(f"\n### `{group.replace('/', '.')}`\n\n" + "\n".join(line(p) for p in files) + "\n")
    return "".join(parts)


def main() -> None:
    doc = ROOT / "docs" / "layout.md"
    text = doc.read_text()
    head = text[:text.index(HEADING)] if HEADING in text else text + "\n"
    doc.write_text(head + module_map())


if __name__ == "__main__":
    main()
