"""MIDI learn from the window: right-click a control, choose "MIDI learn", then move a
knob or press a pad or pedal on the controller. Thread: UI."""

from __future__ import annotations

from typing import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QMenu, QWidget

# what a control's MIDI learn does, where the control alone does not say it
ACTIONS = {"next_section": "next section", "lock_form": "lock / unlock the form", "arranger": "arranger on / off"}


def learn_actions(session, target: str) -> list[tuple[str, Callable[[], object], bool]]:
    """(label, action, enabled) for a control bound to MIDI learn ``target``."""
    bound = [b.describe().split(" -> ")[0] for b in session.midi_bindings() if b.target == target]
    what = f" ({ACTIONS[target]})" if target in ACTIONS else ""
    return [
        (f"MIDI learn{what}: move a control on your controller", lambda: session.midi_learn(target), True),
        (
            f"Forget MIDI binding ({', '.join(bound)})" if bound else "Forget MIDI binding",
            lambda: session.clear_binding(target),
            bool(bound),
        ),
    ]


def add_learn_menu(widget: QWidget, session, target: str, call: Callable) -> None:
    """A right-click menu on ``widget`` with MIDI learn for ``target``; ``call(fn)`` runs
    the chosen action (the window's way of turning a refusal into a message)."""
    widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def show(pos) -> None:
        menu = QMenu(widget)
        for label, fn, enabled in learn_actions(session, target):
            act = QAction(label, menu)
            act.setEnabled(enabled)
            act.triggered.connect(lambda _=False, f=fn: call(f))
            menu.addAction(act)
        menu.exec(widget.mapToGlobal(pos))

    widget.customContextMenuRequested.connect(show)
