"""ui/ is a room of its own: PyQt6 widgets that talk to liveband's session (and read its
config), never to the engine or the models directly."""
import ast
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "ui"
ALLOWED_LIVEBAND = {"liveband.session", "liveband.config"}


def imported_modules(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
    return mods


def test_ui_never_imports_the_engine_or_the_models():
    files = sorted(UI.glob("*.py"))
    assert len(files) > 5
    for f in files:
        for mod in imported_modules(f):
            top = mod.split(".")[0]
            assert top not in ("engine", "models"), f"{f.name} imports {mod}"
            if top == "liveband":
                assert mod in ALLOWED_LIVEBAND, f"{f.name} imports {mod}"
