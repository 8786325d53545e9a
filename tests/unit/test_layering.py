"""The library stands alone: nothing in ``rag/`` imports a shell (CLI, UI, API, evals, bench)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELLS = {"ui", "api", "rag_cli", "evals", "bench"}


def _imported_packages(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_library_imports_no_shell() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & SHELLS)
        for path in sorted((ROOT / "rag").rglob("*.py"))
    }
    offenders = {path: shells for path, shells in offenders.items() if shells}
    assert not offenders, f"rag/ imports shells: {offenders}"


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ui.app import launch\n    return launch\n")
    assert _imported_packages(module) & SHELLS == {"ui"}
