"""One home for each thing: no module of the rooms only re-exports names that live elsewhere
(a split's forwarding shim), except the few listed here with the reason they stay."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("ui", "liveband", "engine", "models")
ALLOWED = {
    # ui must not import engine: the GM names reach the widgets through the shell
    "liveband/gm.py",
}


def only_reexports(path: Path) -> bool:
    """The module's statements are a docstring, imports and ``__all__``, with an import."""
    body = ast.parse(path.read_text(), str(path)).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    imports = [
        n
        for n in body
        if isinstance(n, (ast.Import, ast.ImportFrom))
        and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
    ]
    rest = [
        n
        for n in body
        if n not in imports
        and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
        and not (isinstance(n, ast.Assign) and [getattr(t, "id", "") for t in n.targets] == ["__all__"])
    ]
    return bool(imports) and not rest


def shims(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for room in ROOMS
        for p in (root / room).rglob("*.py")
        if p.name != "__init__.py" and only_reexports(p)
    )


def test_no_module_only_forwards_names_from_another():
    assert shims(ROOT) == sorted(ALLOWED)


def test_the_check_sees_a_forwarding_module(tmp_path):
    for room in ROOMS:
        (tmp_path / room).mkdir()
    (tmp_path / "engine" / "old.py").write_text('"""Moved."""\nfrom engine.new import f\n\n__all__ = ["f"]\n')
    (tmp_path / "engine" / "new.py").write_text("from engine.x import g\n\n\ndef f():\n    return g()\n")
    assert shims(tmp_path) == ["engine/old.py"]
