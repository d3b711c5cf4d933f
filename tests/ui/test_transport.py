"""The transport bar leaves the computer keys to the instrument."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QAbstractButton

from ui.transport import TransportBar


def test_only_the_number_boxes_take_the_keyboard_focus(qapp):
    bar = TransportBar(can_set_key=True)
    typing = {bar.tempo, bar.count_in}
    # The bar's own controls by name: walking findChildren() here would touch Qt's private
    # children, which is what the bar itself must not do.
    controls = [bar.play_btn, bar.record_btn, bar.tap_btn, bar.metronome, bar.meter, bar.key, bar.style_menu]
    controls += list(bar.mode_buttons.values())
    focusable = [w for w in controls if w.focusPolicy() != Qt.FocusPolicy.NoFocus]
    assert focusable == [], [w.text() if isinstance(w, QAbstractButton) else w.objectName() for w in focusable]
    assert all(w.focusPolicy() != Qt.FocusPolicy.NoFocus for w in typing)
