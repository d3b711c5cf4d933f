"""The computer keyboard as a note keyboard (pure logic)."""

from PyQt6.QtCore import Qt

from ui.keyboard import OCTAVE_DOWN, OCTAVE_UP, ComputerKeyboard

K = Qt.Key


def test_bottom_row_is_a_c_major_scale_from_middle_c():
    kb = ComputerKeyboard()
    whites = [K.Key_Z, K.Key_X, K.Key_C, K.Key_V, K.Key_B, K.Key_N, K.Key_M, K.Key_Comma]
    pitches = []
    for k in whites:
        pitches.append(kb.press(k.value))
        kb.release(k.value)
    assert pitches == [60, 62, 64, 65, 67, 69, 71, 72]


def test_black_keys_sit_between_the_white_ones():
    kb = ComputerKeyboard()
    assert [kb.press(k.value) for k in (K.Key_S, K.Key_D, K.Key_G, K.Key_H, K.Key_J)] == [61, 63, 66, 68, 70]


def test_tap_and_play_keys_are_not_notes():
    kb = ComputerKeyboard()
    assert kb.press(K.Key_T.value) is None
    assert kb.press(K.Key_Space.value) is None
    assert not kb.is_note_key(K.Key_T.value)


def test_held_key_does_not_retrigger_and_release_ends_the_note_it_started():
    kb = ComputerKeyboard()
    assert kb.press(K.Key_Z.value) == 60
    assert kb.press(K.Key_Z.value) is None  # auto-repeat or double press
    kb.press(OCTAVE_UP)
    assert kb.release(K.Key_Z.value) == 60  # not 72: the octave moved while held
    assert kb.press(K.Key_Z.value) == 72
    assert kb.release(K.Key_X.value) is None  # never pressed


def test_octave_shift_is_bounded():
    kb = ComputerKeyboard()
    for _ in range(20):
        kb.press(OCTAVE_DOWN)
    assert kb.press(K.Key_Z.value) == 24
    for _ in range(20):
        kb.press(OCTAVE_UP)
    assert kb.base_pitch == 96
    assert kb.press(K.Key_Slash.value) == 112


def test_release_all_returns_every_sounding_pitch_once():
    kb = ComputerKeyboard()
    kb.press(K.Key_Z.value)
    kb.press(K.Key_C.value)
    assert sorted(kb.release_all()) == [60, 64]
    assert kb.release_all() == []
