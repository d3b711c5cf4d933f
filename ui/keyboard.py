"""The computer keyboard as a two-octave note keyboard (pure logic, no widgets).

Layout (tracker style, so T stays free for tap tempo and Space for play/stop):

    S D   G H J   L ;          black keys
   Z X C V B N M , . /         white keys: C D E F G A B C D E

Z is C of the current octave (C4 by default); [ and ] shift the octave.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt

_K = Qt.Key
# Qt key -> semitones above the keyboard's base C.
KEY_OFFSETS: dict[int, int] = {
    _K.Key_Z.value: 0,
    _K.Key_S.value: 1,
    _K.Key_X.value: 2,
    _K.Key_D.value: 3,
    _K.Key_C.value: 4,
    _K.Key_V.value: 5,
    _K.Key_G.value: 6,
    _K.Key_B.value: 7,
    _K.Key_H.value: 8,
    _K.Key_N.value: 9,
    _K.Key_J.value: 10,
    _K.Key_M.value: 11,
    _K.Key_Comma.value: 12,
    _K.Key_L.value: 13,
    _K.Key_Period.value: 14,
    _K.Key_Semicolon.value: 15,
    _K.Key_Slash.value: 16,
}
OCTAVE_DOWN = _K.Key_BracketLeft.value
OCTAVE_UP = _K.Key_BracketRight.value

# The inverse, for the autoplay demo and on-screen help: offset -> key.
OFFSET_KEYS: dict[int, int] = {v: k for k, v in KEY_OFFSETS.items()}


class ComputerKeyboard:
    """Turns key presses into MIDI pitches and remembers which pitch each held key
    started, so a release after an octave change still ends the right note.

    Thread: UI only.
    """

    def __init__(self, base_pitch: int = 60) -> None:
        self.base_pitch = base_pitch
        self._held: dict[int, int] = {}  # Qt key -> pitch sounding

    def is_note_key(self, key: int) -> bool:
        return key in KEY_OFFSETS

    def press(self, key: int) -> int | None:
        """The pitch to start for ``key``; None for a non-note key or a key already held."""
        if key == OCTAVE_DOWN:
            self.base_pitch = max(24, self.base_pitch - 12)
            return None
        if key == OCTAVE_UP:
            self.base_pitch = min(96, self.base_pitch + 12)
            return None
        if key not in KEY_OFFSETS or key in self._held:
            return None
        pitch = min(127, self.base_pitch + KEY_OFFSETS[key])
        self._held[key] = pitch
        return pitch

    def release(self, key: int) -> int | None:
        """The pitch to stop for ``key``; None when that key was not sounding."""
        return self._held.pop(key, None)

    def release_all(self) -> list[int]:
        """Pitches of every held key (focus lost, input mode changed); forgets them."""
        pitches = list(self._held.values())
        self._held.clear()
        return pitches
