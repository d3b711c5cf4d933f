"""The four rooms depend one way: ui -> liveband -> engine -> models. Every import in every
.py file of a room (inside functions too) is checked, so a lazy import cannot slip past."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("ui", "liveband", "engine", "models")
# what each room may import from the others
MAY_IMPORT = {
    "ui": {"liveband"},
    "liveband": {"engine", "models"},
    "engine": {"models"},
    "models": set(),
}
# ui talks to the shell's session, config and stores, never to its entry points or benches
UI_MUST_NOT_IMPORT = ("liveband.cli", "liveband.commands", "liveband.bench")
# the benches (and their synthetic corpora) measure the app; the running app never needs
# them: only the benches themselves, the `liveband bench` command and the CLI import them
BENCH = "liveband.bench"
BENCH_USERS = ("liveband.bench", "liveband.commands", "liveband.cli")
# the one way back: the `liveband` command opens the window (lazily, in its handler)
ENTRY_POINTS = {("liveband.commands.play", "ui.app")}
# the one output writer, which imports nothing of the project: every room writes its files
# through it (ui: the settings file), so none has a temp-file-and-rename of its own
EVERY_ROOM_MAY_IMPORT = {"models.atomic"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved)."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mods.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module in ROOMS:  # `from liveband import presets`: a module
                mods.update(f"{node.module}.{a.name}" for a in node.names)
            elif node.module:
                mods.add(node.module)
    return mods


def within(module: str, packages: tuple[str, ...]) -> bool:
    """``module`` is one of ``packages`` or inside one."""
    return any(module == p or module.startswith(p + ".") for p in packages)


def violations(root: Path) -> list[str]:
    found = []
    for room in ROOMS:
        files = sorted((root / room).rglob("*.py"))
        assert len(files) > 3, f"no python files found in {room}/"
        for f in files:
            me = module_name(f, root)
            for mod in sorted(imported_modules(f, root)):
                top = mod.split(".")[0]
                if room == "liveband" and within(mod, (BENCH,)) and not within(me, BENCH_USERS):
                    found.append(
                        f"{f.relative_to(root)} imports {mod} (only benches, commands, the CLI import {BENCH})"
                    )
                if top == room or top not in ROOMS or (me, mod) in ENTRY_POINTS or mod in EVERY_ROOM_MAY_IMPORT:
                    continue
                if top not in MAY_IMPORT[room]:
                    found.append(f"{f.relative_to(root)} imports {mod} ({room} must not import {top})")
                elif room == "ui" and mod.startswith(UI_MUST_NOT_IMPORT):
                    found.append(
                        f"{f.relative_to(root)} imports {mod} (ui must not import {', '.join(UI_MUST_NOT_IMPORT)})"
                    )
    return found


def test_every_room_imports_only_the_rooms_below_it():
    assert violations(ROOT) == []


def test_the_check_sees_lazy_and_relative_imports(tmp_path):
    for room in ROOMS:
        (tmp_path / room).mkdir()
        for i in range(4):
            (tmp_path / room / f"m{i}.py").write_text("")
    (tmp_path / "engine" / "sub").mkdir()
    (tmp_path / "engine" / "sub" / "__init__.py").write_text("")
    (tmp_path / "engine" / "sub" / "lazy.py").write_text("def f():\n    from liveband import session\n")
    (tmp_path / "models" / "rel.py").write_text("from . import m0\nfrom .m1 import x\n")
    (tmp_path / "ui" / "deep.py").write_text("import liveband.session\nfrom liveband import bench\n")
    (tmp_path / "ui" / "writes.py").write_text("from models.atomic import write_atomic\nimport models.sampling\n")
    for d in ("bench", "commands"):
        (tmp_path / "liveband" / d).mkdir()
        (tmp_path / "liveband" / d / "b.py").write_text("from liveband.bench.pitch import run\n")
    (tmp_path / "liveband" / "cli.py").write_text("import liveband.bench\n")
    (tmp_path / "liveband" / "benchmarks.py").write_text("import liveband.benchmarks_util\n")
    (tmp_path / "liveband" / "runtime.py").write_text("def f():\n    from liveband.bench import synth_hum\n")
    assert violations(tmp_path) == [
        "ui/deep.py imports liveband.bench (ui must not import liveband.cli, liveband.commands, liveband.bench)",
        "ui/writes.py imports models.sampling (ui must not import models)",
        "liveband/runtime.py imports liveband.bench (only benches, commands, the CLI import liveband.bench)",
        "engine/sub/lazy.py imports liveband.session (engine must not import liveband)",
    ]
